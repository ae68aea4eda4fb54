"""The miniature datasets have the originals' names, dtypes, shapes and pickle flavour."""

import pickle
import pickletools

import numpy as np

from disrt_core.data import bodymap
from disrt_core.data import slp as slp_data
from disrt_core.data.fixtures import write_pickle
from disrt_core.safe_pickle import load_pickle


def opcodes(path):
    return {op.name for op, _, _ in pickletools.genops(path.read_bytes())}


def test_bodypressure_pickles_look_written_by_python2(bodypressure_fixture):
    stem = bodypressure_fixture.stems[0]
    for path in (bodypressure_fixture.root / "synth" / f"{stem}.p",
                 bodypressure_fixture.root / "synth_depth" / f"{stem}_depthims.p"):
        data = path.read_bytes()
        assert data[:2] == b"\x80\x02"  # protocol 2
        assert b"cnumpy.core.multiarray\n_reconstruct\n" in data
        ops = opcodes(path)
        assert "SHORT_BINSTRING" in ops or "BINSTRING" in ops
        assert not ops & {"BINUNICODE", "SHORT_BINUNICODE", "BINBYTES", "SHORT_BINBYTES"}
        # What the reference code does: pickle.load(f, encoding="latin1").
        with path.open("rb") as f:
            plain = pickle.load(f, encoding="latin1")
        restricted = load_pickle(path)
        assert sorted(plain) == sorted(restricted)
        for key, value in plain.items():
            np.testing.assert_array_equal(np.asarray(value), np.asarray(restricted[key]))
    depth = load_pickle(bodypressure_fixture.root / "synth_depth" / f"{stem}_depthims.p")
    assert isinstance(depth["overhead_depthcam"], list)
    assert depth["overhead_depthcam"][0].dtype == np.uint16
    assert depth["overhead_depthcam"][0].shape == (128, 54)
    synth = load_pickle(bodypressure_fixture.root / "synth" / f"{stem}.p")
    assert synth["images"][0].shape == (1728,) and len(synth["markers_xyz_m"][0]) >= 72


def test_slp_files_have_the_original_formats(slp_fixture):
    root = slp_fixture.root
    for s in (1, 7, 102):  # every subject's alignments, all three modalities
        for mod in ("depth", "IR", "RGB"):
            path = slp_data.align_path(root, "danaLab", s, mod)
            assert path.stat().st_size == 200  # npy v1.0, (3, 3) float64
            assert np.load(path).dtype == np.float64
    raw = np.load(slp_data.raw_depth_path(root, "danaLab", 81, "cover1", 16))
    assert raw.dtype == np.uint16 and raw.shape == (512, 424)
    cleaned = np.load(root / "slp_real_cleaned/depth_cover2_cleaned_0to102.npy",
                      allow_pickle=True, mmap_mode="r")  # as the reference readers call it
    assert cleaned.dtype == np.float32 and cleaned.shape == (102, 45, 128, 54)
    t_cam = np.load(root / "slp_real_cleaned/slp_T_cam_0to102.npy", allow_pickle=True)
    assert t_cam.dtype == np.float64 and t_cam.shape == (102, 45, 3)
    o_t = np.load(root / "slp_real_cleaned/O_T_slp_0to102.npy")
    np.testing.assert_array_equal(o_t[5, 5], [-0.0678, -1.8304, 0.0])
    assert np.load(root / "SLP/danaLab/physiqueData.npy").shape == (102, 10)
    assert np.load(root / "SLP/simLab/physiqueData.npy").shape == (7, 10)
    fit_path = root / "SLP_SMPL_fits/fits/p081/proc_16.pkl"
    assert fit_path.read_bytes()[:2] == b"\x80\x03"
    with fit_path.open("rb") as f:
        fit = pickle.load(f, encoding="latin1")
    assert tuple(fit) == bodymap.FIT_KEYS and fit["gender"] in ("female", "male")
    assert fit["betas"].dtype == np.float32 and fit["markers_xyz_m"].shape == (24, 3)
    assert fit["camera_focal_length_x"].shape == ()
    gt = root / "GT_BP_data/slp2/00081/cover2/000016_gt_vertices.npy"
    assert np.load(gt).shape == (6890, 3)
    assert np.load(gt.with_name("000016_gt_jtr.npy")).shape == (24, 3)


def test_legacy_pickler_round_trips_scalars_and_long_strings(tmp_path):
    obj = {"a": np.float64(2.5), "b": np.arange(300, dtype=np.int16), "c": "x" * 300,
           "d": [1, 2.0, True, None], "e": np.dtype("<f4")}
    path = write_pickle(tmp_path / "x.p", obj, protocol=2, py2_strings=True)
    back = load_pickle(path)
    assert back["a"] == 2.5 and back["c"] == "x" * 300 and back["d"] == [1, 2.0, True, None]
    np.testing.assert_array_equal(back["b"], obj["b"])
    assert back["e"] == np.dtype("<f4")
