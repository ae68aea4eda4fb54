import numpy as np
import pytest

from disrt_core.data import shards


def _sample_arrays(n, p=84, raw=False):
    rng = np.random.default_rng(0)
    arrays = {
        "depth": rng.integers(0, 2300, (n, 128, 54)).astype(np.uint16),
        "bed_mm": np.full(n, 2101, np.float32),
        "params": rng.normal(size=(n, p)).astype(np.float32),
        "params_cam": rng.normal(size=(n, p)).astype(np.float32),
        "joints": rng.normal(size=(n, 24, 3)).astype(np.float32),
        "cover": rng.integers(0, 3, n).astype(np.uint8),
        "posture": rng.integers(0, 4, n).astype(np.uint8),
        "pressure": rng.random((n, 192, 84)).astype(np.float16),
        "K": np.tile(np.eye(3, dtype=np.float32), (n, 1, 1)),
        "T_cam_bed": np.tile(np.eye(4, dtype=np.float32), (n, 1, 1)),
    }
    if raw:
        arrays["depth_raw"] = rng.integers(0, 4000, (n, 512, 424)).astype(np.uint16)
    return arrays


def test_write_read_round_trip(tmp_path):
    arrays = _sample_arrays(5, raw=True)
    path = tmp_path / shards.shard_name(3)
    assert shards.write_shard(path, arrays, body_model="anny-0.6", param_dim=84, shard_index=3) == 5
    back, meta = shards.read_shard(path)
    assert meta["body_model"] == "anny-0.6" and meta["count"] == "5"
    for key, value in arrays.items():
        np.testing.assert_array_equal(back[key], value)
        assert back[key].dtype == value.dtype
    assert not list(tmp_path.glob("*.tmp*"))


def test_schema_errors_name_the_array(tmp_path):
    arrays = _sample_arrays(2)
    bad = dict(arrays, joints=arrays["joints"][:, :20])
    with pytest.raises(ValueError, match=r"'joints' is float32\[20, 3\]"):
        shards.write_shard(tmp_path / "s", bad, body_model="x", param_dim=84, shard_index=0)
    with pytest.raises(ValueError, match=r"missing arrays \['cover'\]"):
        shards.validate({k: v for k, v in arrays.items() if k != "cover"}, 84)
    with pytest.raises(ValueError, match="disagree on the sample count"):
        shards.validate(dict(arrays, cover=arrays["cover"][:1]), 84)


def test_manifest_round_trip_and_missing(tmp_path):
    shards.write_manifest(tmp_path, {"format": "disrt-synth-1", "total": 3})
    assert shards.read_manifest(tmp_path)["total"] == 3
    with pytest.raises(FileNotFoundError, match="disrt-generate"):
        shards.read_manifest(tmp_path / "nope")
