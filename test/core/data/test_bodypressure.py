"""BodyPressureSD reader on miniature files in the original Python-2 pickle format."""

import os
import pickle
import types

import numpy as np
import pytest
import torch

from disrt_core.data import labels
from disrt_core.data.bodypressure import (
    PAPER_STEMS,
    BodyPressureSD,
    FilteredSample,
    parse_stem,
)
from disrt_core.data.fixtures import write_pickle
from disrt_core.data.source import DataError
from disrt_core.geometry.bedframe import normalize_depth


def expected_depth(fx, stem, i, blanket):
    """DiSRT's synthetic branch, by hand: row 127 zeroed, bed = max over the pair."""
    ref = fx.depth[stem]["overhead_depthcam_noblanket"][i].astype(np.float32)
    key = "overhead_depthcam" if blanket else "overhead_depthcam_noblanket"
    shown = fx.depth[stem][key][i].astype(np.float32)
    ref[127], shown[127] = 0, 0
    return normalize_depth(shown, max(ref.max(), shown.max()))


@pytest.mark.parametrize("cached", [False, True])
def test_reads_labels_depth_and_the_two_to_one_rule(bodypressure_fixture, smpl_both, cached,
                                                    tmp_path):
    fx = bodypressure_fixture
    source = BodyPressureSD(fx.root, fx.stems, vertices=True, body_model=smpl_both,
                            cache=tmp_path if cached else False)
    assert source.random_access == cached
    assert source.unit_sizes() == [4, 3]
    kept = []
    for index in range(len(source)):
        unit, i = source.locate(index)
        stem = fx.stems[unit]
        if fx.nan[stem][i]:
            with pytest.raises(FilteredSample, match="NaN"):
                source[index]
            continue
        sample = source[index]
        blanket = (i + 1) % 3 != 0
        assert sample["cover"] == int(blanket)
        assert sample["key"] == f"bodypressure/{stem}/{i}/{'cover1' if blanket else 'uncover'}"
        np.testing.assert_array_equal(sample["depth"][0], expected_depth(fx, stem, i, blanket))
        assert sample["depth"][0, 127].max() == 0.0  # row 127 zeroed
        truth = fx.labels[stem][i]
        np.testing.assert_allclose(sample["label"], truth, rtol=1e-6, atol=1e-4)
        np.testing.assert_allclose(sample["params"], labels.label_to_params(truth), atol=1e-6)
        np.testing.assert_allclose(sample["joints"], truth[:72].reshape(24, 3) / 1000, atol=1e-6)
        np.testing.assert_array_equal(sample["gender"], [1, 0] if "_f_" in stem else [0, 1])
        assert sample["posture"] == (0 if "_lay_" in stem else 1)
        np.testing.assert_allclose(sample["vertices_gt"], fx.vertices[stem][i], atol=1e-5)
        kept.append(sample)
    assert len(kept) == 6  # one NaN sample left out
    params = torch.from_numpy(np.stack([s["params"] for s in kept]))
    gender = torch.from_numpy(np.stack([s["gender"] for s in kept]))
    with torch.no_grad():
        joints = smpl_both(params, gender).joints
    np.testing.assert_allclose(joints.numpy(), np.stack([s["joints"] for s in kept]), atol=2e-5)


def test_cache_is_made_once_and_follows_the_files(bodypressure_fixture, tmp_path,
                                                  monkeypatch):
    import disrt_core.data.bodypressure as bp

    fx = bodypressure_fixture
    first = BodyPressureSD(fx.root, fx.stems, cache=tmp_path)
    reference = [first[i]["depth"] for i in (0, 1, 3)]  # sample 2 is the NaN one
    assert sorted(p.name.rsplit("-", 1)[0] for p in tmp_path.iterdir()) == sorted(fx.stems)

    def no_pickles(*_, **__):
        raise AssertionError("the pickles were read again")

    monkeypatch.setattr(bp, "load_pickle", no_pickles)
    again = BodyPressureSD(fx.root, fx.stems, cache=tmp_path)
    for i, depth in zip((0, 1, 3), reference, strict=True):
        np.testing.assert_array_equal(again[i]["depth"], depth)
    synth = fx.root / "synth" / f"{fx.stems[0]}.p"
    stat = synth.stat()
    os.utime(synth, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file changed
    with pytest.raises(DataError, match="read again"):  # converted anew
        BodyPressureSD(fx.root, fx.stems, cache=tmp_path)


def test_image_modes(bodypressure_fixture):
    fx = bodypressure_fixture
    both = BodyPressureSD(fx.root, fx.stems[1:], images="both", cache=False)
    assert both.unit_sizes() == [6]
    assert [both[k]["cover"] for k in range(6)] == [0, 1, 0, 1, 0, 1]
    np.testing.assert_array_equal(both[5]["depth"][0], expected_depth(fx, fx.stems[1], 2, True))
    plain = BodyPressureSD(fx.root, fx.stems[1:], images="noblanket", zero_last_row=False,
                           cache=False)
    assert plain[0]["cover"] == 0 and plain[0]["depth"][0, 127].max() > 0
    with pytest.raises(ValueError, match="images must be one of"):
        BodyPressureSD(fx.root, fx.stems, images="all", cache=False)


def test_paper_stems_and_names():
    assert len(PAPER_STEMS) == 18
    assert sum(int(parse_stem(s)["count"]) for s in PAPER_STEMS) == 97_495
    assert "train_slp_lay_f_1to40_8549" in PAPER_STEMS
    assert parse_stem("train_slp_rside_m_71to80_1939")["gender"] == "m"
    with pytest.raises(ValueError, match="not a BodyPressureSD file stem"):
        parse_stem("train_slp_lay_x_1to40_5")


def test_errors_name_the_file(bodypressure_fixture, tmp_path):
    fx = bodypressure_fixture
    with pytest.raises(FileNotFoundError, match="synth: not found"):
        BodyPressureSD(tmp_path, fx.stems)
    with pytest.raises(FileNotFoundError, match=r"files missing: \['train_slp_lay_f_1to40_8549"):
        BodyPressureSD(fx.root, cache=False)  # the 18 paper files are not all there
    smpl_needed = types.SimpleNamespace(model_id="anny-0.6", param_dim=84)
    with pytest.raises(DataError, match="BodyPressureSD has smpl labels"):
        BodyPressureSD(fx.root, fx.stems, body_model=smpl_needed, cache=False)
    # A file whose sample count disagrees with its name; a missing key; a bad image shape.
    root = tmp_path / "bp"
    (root / "synth").mkdir(parents=True)
    (root / "synth_depth").mkdir()
    stem = "train_slp_lay_m_1to40_2"
    good = {"images": [np.zeros(1728)] * 2, "markers_xyz_m": [np.zeros(72)] * 2,
            "body_shape": [np.zeros(10)] * 2, "joint_angles": [np.zeros(72)] * 2,
            "root_xyz_shift": [np.zeros(3)] * 2, "body_volume": [0.07] * 2,
            "body_height": [1.7] * 2}
    depth = {"overhead_depthcam": [np.zeros((128, 54), np.uint16)] * 2,
             "overhead_depthcam_noblanket": [np.zeros((128, 54), np.uint16)] * 2}
    write_pickle(root / "synth_depth" / f"{stem}_depthims.p", depth, protocol=2, py2_strings=True)
    for broken, message in [
        (dict(good, body_height=[1.7]), "'body_height' has 1 entries, the file name says 2"),
        ({k: v for k, v in good.items() if k != "joint_angles"}, r"missing keys \['joint_angles'"),
    ]:
        write_pickle(root / "synth" / f"{stem}.p", broken, protocol=2, py2_strings=True)
        with pytest.raises(DataError, match=message):
            BodyPressureSD(root, [stem], cache=False)[0]
    write_pickle(root / "synth" / f"{stem}.p", good, protocol=2, py2_strings=True)
    BodyPressureSD(root, [stem], cache=False)[0]
    depth["overhead_depthcam"] = [np.zeros((64, 27), np.uint16)] * 2
    write_pickle(root / "synth_depth" / f"{stem}_depthims.p", depth, protocol=2, py2_strings=True)
    with pytest.raises(DataError, match=r"_depthims.p: 'overhead_depthcam' images are \(64, 27\)"):
        BodyPressureSD(root, [stem], cache=False)[0]
    # A pickle that references code is refused by the restricted unpickler.
    with (root / "synth" / f"{stem}.p").open("wb") as f:
        pickle.dump({"images": types.SimpleNamespace()}, f, protocol=2)
    with pytest.raises(DataError, match=r"refusing to load 'types.SimpleNamespace'"):
        BodyPressureSD(root, [stem], cache=tmp_path / "cache")  # converting it fails


def test_default_cache_lives_in_the_data_folder(bodypressure_fixture, tmp_path):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(bodypressure_fixture.root / "synth", root / "synth")
    shutil.copytree(bodypressure_fixture.root / "synth_depth", root / "synth_depth")
    source = BodyPressureSD(root, bodypressure_fixture.stems)
    assert source.random_access and source.cache == root / "synth_cache"
    assert len(list((root / "synth_cache").iterdir())) == 2
