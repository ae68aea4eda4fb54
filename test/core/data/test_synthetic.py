"""SyntheticShards: generator shard folders read back as samples of the common interface."""

import types

import numpy as np
import pytest

from disrt_core.data import shards
from disrt_core.data.source import DataError
from disrt_core.data.synthetic import SyntheticShards
from disrt_core.geometry.bedframe import normalize_depth


def write_shard_folder(root, counts=(3, 2), param_dim=84, model_id="anny-0.6", seed=0):
    """A shard folder as the generator writes it; returns the arrays of each shard."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    written, entries = [], []
    for index, n in enumerate(counts):
        arrays = {
            "depth": rng.integers(1500, 2300, (n, 128, 54)).astype(np.uint16),
            "bed_mm": rng.uniform(1900, 2300, n).astype(np.float32),
            "params": rng.normal(size=(n, param_dim)).astype(np.float32),
            "params_cam": rng.normal(size=(n, param_dim)).astype(np.float32),
            "joints": rng.normal(size=(n, 24, 3)).astype(np.float32),
            "cover": rng.integers(0, 3, n).astype(np.uint8),
            "posture": rng.integers(0, 4, n).astype(np.uint8),
            "pressure": rng.random((n, 192, 84)).astype(np.float16),
            "K": np.tile(np.eye(3, dtype=np.float32), (n, 1, 1)),
            "T_cam_bed": np.tile(np.eye(4, dtype=np.float32), (n, 1, 1)),
        }
        name = shards.shard_name(index)
        shards.write_shard(root / name, arrays, body_model=model_id, param_dim=param_dim,
                           shard_index=index)
        written.append(arrays)
        entries.append({"file": name, "count": n})
    shards.write_manifest(root, {"format": "disrt-synth-1", "body_model": model_id,
                                 "param_layout": {"param_dim": param_dim}, "shards": entries,
                                 "total": sum(counts), "complete": True})
    return written


def test_reads_every_sample_back_in_the_common_interface(tmp_path):
    written = write_shard_folder(tmp_path / "synth")
    source = SyntheticShards(tmp_path / "synth", extras=("pressure", "depth_mm"))
    assert len(source) == 5 and source.unit_sizes() == [3, 2] and source.param_dim == 84
    samples = list(source.iter_samples())
    flat = [(a, i) for a in written for i in range(len(a["depth"]))]
    for sample, (arrays, i) in zip(samples, flat, strict=True):
        expected = normalize_depth(arrays["depth"][i].astype(np.float32), arrays["bed_mm"][i])
        np.testing.assert_array_equal(sample["depth"][0], expected)
        assert sample["depth"].shape == (1, 128, 54) and sample["depth"].dtype == np.float32
        np.testing.assert_array_equal(sample["params"], arrays["params"][i])
        np.testing.assert_array_equal(sample["joints"], arrays["joints"][i])
        np.testing.assert_array_equal(sample["pressure"], arrays["pressure"][i])
        np.testing.assert_array_equal(sample["depth_mm"], arrays["depth"][i])
        assert sample["cover"] == arrays["cover"][i] and sample["posture"] == arrays["posture"][i]
        np.testing.assert_array_equal(sample["gender"], [0.5, 0.5])
        assert sample["source"] == "synthetic"
    assert samples[4]["key"] == "synth/shard-00001.safetensors/1"
    # Random access agrees with streaming.
    np.testing.assert_array_equal(source[3]["params"], samples[3]["params"])


def test_bed_distance_normalisation_puts_the_bed_at_one(tmp_path):
    written = write_shard_folder(tmp_path / "s", counts=(1,))
    written[0]["depth"][:] = 2000
    written[0]["bed_mm"][:] = 2000.0
    shards.write_shard(tmp_path / "s" / shards.shard_name(0), written[0], body_model="anny-0.6",
                       param_dim=84, shard_index=0)
    assert np.all(SyntheticShards(tmp_path / "s")[0]["depth"] == 1.0)


def test_body_model_mismatch_and_missing_files_are_refused(tmp_path):
    write_shard_folder(tmp_path / "s")
    smpl = types.SimpleNamespace(model_id="smpl-both", param_dim=88)
    with pytest.raises(DataError, match=r"anny-0.6 labels .* body model is smpl-both"):
        SyntheticShards(tmp_path / "s", body_model=smpl)
    other_anny = types.SimpleNamespace(model_id="anny-0.7", param_dim=84)
    with pytest.raises(DataError, match="generated with"):
        SyntheticShards(tmp_path / "s", body_model=other_anny)
    SyntheticShards(tmp_path / "s", body_model=types.SimpleNamespace(model_id="anny-0.6",
                                                                     param_dim=84))
    with pytest.raises(FileNotFoundError, match="not found"):
        SyntheticShards(tmp_path / "nope")
    (tmp_path / "s" / shards.shard_name(1)).unlink()
    with pytest.raises(FileNotFoundError, match=r"missing: \['shard-00001.safetensors'\]"):
        SyntheticShards(tmp_path / "s")


def test_nan_labels_and_unknown_extras_raise_naming_the_sample(tmp_path):
    written = write_shard_folder(tmp_path / "s", counts=(2,))
    written[0]["params"][1, 5] = np.nan
    shards.write_shard(tmp_path / "s" / shards.shard_name(0), written[0], body_model="anny-0.6",
                       param_dim=84, shard_index=0)
    source = SyntheticShards(tmp_path / "s")
    source[0]
    with pytest.raises(DataError, match=r"synthetic:s/shard-00000.safetensors/1: 'params' "
                                        "contains NaN"):
        source[1]
    with pytest.raises(ValueError, match="unknown extras"):
        SyntheticShards(tmp_path / "s", extras=("colour",))
    with pytest.raises(DataError, match="no 'depth_raw' array stored"):
        SyntheticShards(tmp_path / "s", extras=("depth_raw",))[0]
