"""SLPDataset reads the miniature SLP / cleaned arrays / BodyMAP fits back exactly."""

import shutil
import types

import numpy as np
import pytest
import torch

from disrt_core.data import labels
from disrt_core.data import slp as slp_data
from disrt_core.data.source import DataError
from disrt_core.geometry.bedframe import normalize_depth
from disrt_core.geometry.slp import slp_raw_to_network


def test_cleaned_depth_and_labels_read_back_exactly(slp_fixture, smpl_both):
    fx = slp_fixture
    source = slp_data.SLPDataset(fx.root, [1, 81], poses=fx.poses, vertices=True,
                                 body_model=smpl_both)
    assert source.unit_sizes() == [9, 9] and len(source) == 18
    samples = [source[i] for i in range(len(source))]
    order = [(s, p, c) for s in (1, 81) for p in fx.poses for c in fx.covers]
    for sample, (s, p, cover) in zip(samples, order, strict=True):
        assert sample["key"] == f"slp/danaLab/{s:05d}/{cover}/{p:06d}"
        np.testing.assert_array_equal(sample["depth"][0],
                                      normalize_depth(fx.cleaned[(s, cover, p)], 2101.0))
        truth = fx.labels[(s, p)]
        np.testing.assert_allclose(sample["label"], truth, rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(sample["params"], labels.label_to_params(truth), atol=1e-5)
        np.testing.assert_allclose(sample["joints"], truth[:72].reshape(24, 3) / 1000, atol=1e-6)
        np.testing.assert_array_equal(sample["gender"], truth[157:159])
        assert sample["cover"] == fx.covers.index(cover)
        assert sample["posture"] == {1: 0, 16: 1, 31: 2}[p]  # supine, left, right
        np.testing.assert_allclose(sample["vertices_gt"], fx.vertices[(s, p)], atol=1e-5)
    # The labels are the body model's: its joints from the params are the label joints.
    params = torch.from_numpy(np.stack([s["params"] for s in samples]))
    gender = torch.from_numpy(np.stack([s["gender"] for s in samples]))
    with torch.no_grad():
        verts, joints = smpl_both(params, gender)
    np.testing.assert_allclose(joints.numpy(), np.stack([s["joints"] for s in samples]),
                               atol=2e-5)
    np.testing.assert_allclose(verts.numpy(), np.stack([s["vertices_gt"] for s in samples]),
                               atol=2e-5)


def test_raw_pipeline_reproduces_the_cleaned_arrays(slp_fixture):
    fx = slp_fixture
    raw = slp_data.SLPDataset(fx.root, [81], poses=[16], depth="raw", clean=True,
                              integer=True, labels=False)
    cleaned = slp_data.SLPDataset(fx.root, [81], poses=[16], labels=False)
    for i in range(3):
        np.testing.assert_array_equal(raw[i]["depth"], cleaned[i]["depth"])
    assert "params" not in raw[0] and raw[0]["posture"] == -1
    plain = slp_data.SLPDataset(fx.root, [81], poses=[16], depth="raw", labels=False)[0]
    expected = slp_raw_to_network(fx.raw[("danaLab", 81, "uncover", 16)],
                                  fx.homography[("danaLab", 81)])
    np.testing.assert_array_equal(plain["depth"][0], normalize_depth(expected, 2101.0))


def test_simlab_is_raw_and_unlabelled(slp_fixture):
    fx = slp_fixture
    source = slp_data.SLPDataset(fx.root, [2], setting="simLab", poses=[31], depth="raw",
                                 labels=False, covers=("cover2",))
    sample = source[0]
    raw = fx.raw[("simLab", 2, "cover2", 31)]
    expected = slp_raw_to_network(raw, fx.homography[("simLab", 2)], simlab=True)
    np.testing.assert_array_equal(sample["depth"][0], normalize_depth(expected, 2264.0))
    assert np.all(expected[-2:] == 0)  # the 4 cm mat adjustment pads the foot end
    assert sample["key"] == "slp/simLab/00002/cover2/000031" and sample["cover"] == 2
    with pytest.raises(ValueError, match="simLab has only raw depth"):
        slp_data.SLPDataset(fx.root, [2], setting="simLab")


def test_missing_and_bad_files_raise_clear_errors(slp_fixture, tmp_path):
    fx = slp_fixture
    with pytest.raises(FileNotFoundError, match=r"SLP/danaLab: SLP folder not found"):
        slp_data.SLPDataset(tmp_path, [1])
    root = tmp_path / "copy"
    shutil.copytree(fx.root, root, ignore=shutil.ignore_patterns("depth_cover*_cleaned*"))
    with pytest.raises(FileNotFoundError, match=r"depth_cover1_cleaned_0to102.npy: not found"):
        slp_data.SLPDataset(root, [1])
    source = slp_data.SLPDataset(root, [1, 81], poses=fx.poses, covers=("uncover",))
    # A missing fit names the file; an SLP-3Dfits original is recognised.
    fit = root / "SLP_SMPL_fits/fits/p001/proc_16.pkl"
    fit.rename(fit.with_name("s16.pkl"))
    source[0]
    with pytest.raises(DataError, match=r"proc_16.pkl: not found, but s16.pkl is there"):
        source[1]
    # A raw frame of the wrong shape or dtype; NaN in the cleaned depth.
    raw_path = slp_data.raw_depth_path(root, "danaLab", 81, "uncover", 1)
    np.save(raw_path, np.zeros((424, 512), np.uint16))
    raw = slp_data.SLPDataset(root, [81], poses=[1], covers=("uncover",), depth="raw",
                              labels=False)
    with pytest.raises(DataError, match=r"000001.npy: 'depthRaw' has shape \(424, 512\), "
                                        r"expected \(512, 424\)"):
        raw[0]
    np.save(raw_path, np.zeros((512, 424), np.float32))
    with pytest.raises(DataError, match="'depthRaw' is float32, expected uint16"):
        raw[0]
    cleaned = np.load(slp_data.cleaned_depth_path(root, "uncover"), mmap_mode="r+")
    cleaned[80, 0, 5, 5] = np.nan
    cleaned.flush()
    with pytest.raises(DataError, match=r"depth_uncover_cleaned_0to102.npy\[80, 0\]: 'depth' "
                                        "contains NaN"):
        source[3]


def test_labels_are_refused_for_a_non_smpl_body_model(slp_fixture):
    anny = types.SimpleNamespace(model_id="anny-0.6", param_dim=84)
    with pytest.raises(DataError, match=r"SLP has smpl labels .* load the SMPL body model"):
        slp_data.SLPDataset(slp_fixture.root, [1], body_model=anny)
    slp_data.SLPDataset(slp_fixture.root, [1], labels=False, body_model=anny)
    with pytest.raises(ValueError, match=r"subjects are 1..102"):
        slp_data.SLPDataset(slp_fixture.root, [0])
    with pytest.raises(ValueError, match="covers must be"):
        slp_data.SLPDataset(slp_fixture.root, [1], covers=("blanket",))
