"""Damaged dataset files: every read names the file (DataError), ``skip_bad`` skips the
samples they hold, and ``check_files`` finds them before any sample is read."""

import re
import shutil

import numpy as np
import pytest

from disrt_core.data import bodymap, shards
from disrt_core.data import slp as slp_data
from disrt_core.data.bodypressure import CACHED_ARRAYS, BodyPressureSD
from disrt_core.data.dataset import make_loader
from disrt_core.data.fixtures import write_pickle
from disrt_core.data.slp import SLPDataset
from disrt_core.data.source import DataError
from disrt_core.data.synthetic import SyntheticShards
from disrt_core.safe_pickle import load_pickle

from .test_synthetic import write_shard_folder


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _garbage(path):
    path.write_bytes(b"these bytes are no array " * 8)


def _named(path):
    return re.escape(str(path))


@pytest.fixture
def root(slp_fixture, tmp_path):
    """A copy of the SLP fixture without the (sparse, large) cleaned arrays."""
    out = tmp_path / "data"
    shutil.copytree(slp_fixture.root, out, ignore=shutil.ignore_patterns("depth_*_cleaned*"))
    return out


def _raw_source(root, **kwargs):
    return SLPDataset(root, kwargs.pop("subjects", [81]), poses=kwargs.pop("poses", [1]),
                      covers=("uncover",), depth="raw", **kwargs)


@pytest.mark.parametrize("damage", [_truncate, _garbage])
@pytest.mark.parametrize("target", ["raw", "align", "vertices", "fit"])
def test_damaged_per_sample_files_are_named(root, damage, target):
    source = _raw_source(root, vertices=True)
    assert source.check_files() == []
    path = {"raw": slp_data.raw_depth_path(root, "danaLab", 81, "uncover", 1),
            "align": slp_data.align_path(root, "danaLab", 81),
            "vertices": slp_data.gt_vertices_path(root, 81, "uncover", 1),
            "fit": bodymap.fit_path(root, 81, 1)}[target]
    damage(path)
    with pytest.raises(DataError, match=_named(path)):
        source[0]
    problems = source.check_files()
    assert len(problems) == 1 and problems[0].startswith(f"{path}: ")


def test_non_numeric_fit_values_are_named(root):
    path = bodymap.fit_path(root, 81, 1)
    fit = load_pickle(path)
    fit["betas"] = ["tall"] * 10
    write_pickle(path, fit, protocol=3)
    with pytest.raises(DataError, match=_named(path) + r": 'betas' holds <U4 values, expected "
                                                       "numbers"):
        _raw_source(root)[0]


def _npy_header_only(path, shape, dtype="<f4"):
    """A .npy file in the exact format whose data stops after a few bytes."""
    with path.open("wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": dtype, "fortran_order": False, "shape": shape})
        f.write(b"\0" * 64)


@pytest.mark.parametrize("target", ["physique", "physique_text", "slp_t_cam", "cleaned"])
def test_damaged_shared_arrays_are_named_when_opening(root, target):
    if target == "physique":
        path = slp_data.physique_path(root, "danaLab")
        _truncate(path)
    elif target == "physique_text":
        path = slp_data.physique_path(root, "danaLab")
        np.save(path, np.full((102, 10), "n/a"))
    elif target == "slp_t_cam":
        path = slp_data.slp_t_cam_path(root)
        _garbage(path)
    else:
        path = slp_data.cleaned_depth_path(root, "uncover")
        _npy_header_only(path, (102, 45, 128, 54))
    message = r": 'physiqueData' holds <U3 values" if target == "physique_text" else \
        ": cannot read"
    depth = "cleaned" if target == "cleaned" else "raw"
    with pytest.raises(DataError, match=_named(path) + message):
        SLPDataset(root, [81], poses=[1], covers=("uncover",), depth=depth)


def test_skip_bad_skips_the_damaged_frame_instead_of_stopping(root):
    source = _raw_source(root, subjects=[1, 81], poses=[1, 16], labels=False)
    path = slp_data.raw_depth_path(root, "danaLab", 81, "uncover", 16)
    _truncate(path)
    with pytest.raises(DataError, match=_named(path) + ".*pass skip_bad=True"):
        list(make_loader([source], batch_size=2, train=False).epoch(0))
    pipe = make_loader([source], batch_size=2, train=False, skip_bad=True)
    with pytest.warns(UserWarning, match=r"skipped 1 bad samples"):
        keys = [k for batch in pipe.epoch(0) for k in batch["key"]]
    assert sorted(keys) == ["slp/danaLab/00001/uncover/000001",
                            "slp/danaLab/00001/uncover/000016",
                            "slp/danaLab/00081/uncover/000001"]
    assert any(str(path) in line for line in pipe.examples)


def test_check_files_lists_every_missing_or_damaged_file(root):
    source = _raw_source(root, subjects=[1, 81], poses=[1, 16, 31], vertices=True)
    fit = bodymap.fit_path(root, 1, 16)
    fit.unlink()
    frame = slp_data.raw_depth_path(root, "danaLab", 81, "uncover", 31)
    _truncate(frame)
    gt = slp_data.gt_vertices_path(root, 81, "uncover", 1)
    gt.unlink()
    problems = source.check_files()
    assert len(problems) == 3
    assert any(line.startswith(f"{fit}: SMPL fit not found") for line in problems)
    assert any(line.startswith(f"{frame}: cannot read raw depth frame") for line in problems)
    assert any(line.startswith(f"{gt}: GT vertices not found") for line in problems)


@pytest.fixture
def bp_root(bodypressure_fixture, tmp_path):
    out = tmp_path / "bp"
    for folder in ("synth", "synth_depth", "GT_BP_data"):
        shutil.copytree(bodypressure_fixture.root / folder, out / folder)
    return out


@pytest.mark.parametrize("damage", [_truncate, _garbage])
@pytest.mark.parametrize("target", ["label", "overhead_depthcam", "vertices"])
def test_damaged_bodypressure_arrays_are_named(bp_root, bodypressure_fixture, damage, target):
    stem = bodypressure_fixture.stems[0]
    source = BodyPressureSD(bp_root, [stem], vertices=True, cache=bp_root / "cache")
    assert source.check_files() == [] and target in (*CACHED_ARRAYS, "vertices")
    path = (source.files(stem)[2] if target == "vertices"
            else source._cache_path(stem) / f"{target}.npy")
    damage(path)
    with pytest.raises(DataError, match=_named(path)):
        source[0]
    problems = source.check_files()
    assert len(problems) == 1 and problems[0].startswith(f"{path}: ")


def test_truncated_bodypressure_pickle_is_found_before_reading(bp_root, bodypressure_fixture):
    stem = bodypressure_fixture.stems[1]
    source = BodyPressureSD(bp_root, bodypressure_fixture.stems, cache=False)
    path = source.files(stem)[1]
    _truncate(path)
    problems = source.check_files()
    assert len(problems) == 1 and problems[0].startswith(f"{path}: BodyPressureSD pickle is "
                                                         "truncated")
    with pytest.raises(DataError, match=_named(path)):
        source[source.unit_sizes()[0]]


@pytest.mark.parametrize("damage", [_truncate, _garbage])
def test_damaged_shard_is_named(tmp_path, damage):
    write_shard_folder(tmp_path / "synth")
    source = SyntheticShards(tmp_path / "synth")
    path = tmp_path / "synth" / shards.shard_name(1)
    damage(path)
    assert len(source.check_files()) == 1 and source.check_files()[0].startswith(str(path))
    with pytest.raises(DataError, match=_named(path)):
        source.load_unit(1)
    pipe = make_loader([source], batch_size=5, train=False, skip_bad=True)
    with pytest.warns(UserWarning, match=r"skipped 2 bad samples"):
        assert sum(len(b["key"]) for b in pipe.epoch(0)) == 3
