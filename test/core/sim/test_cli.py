"""disrt-generate: shards that read back identical, resume, refusal, preview."""

import json
import os

import numpy as np
import pytest
import torch

from disrt_core.data.shards import read_manifest, read_shard, shard_name
from disrt_core.sim import cli
from disrt_core.sim.generator import to_shard_arrays

REAL_MAKE_GENERATOR = cli._make_generator  # the module fixture below swaps it for a fake


@pytest.fixture(scope="module")
def generated(tmp_path_factory, sim_generator, monkeypatch_module):
    """A 64-sample run in 2 shards of 32 (batches of 16), with the session generator."""
    out = tmp_path_factory.mktemp("synth")
    monkeypatch_module.setattr(cli, "_make_generator", lambda args: sim_generator)
    assert cli.main(["--n", "64", "--out", str(out), "--shard-size", "32", "--batch-size",
                     "16", "--seed", "7", "--body-model", "anny", "--quiet",
                     "--workers", "1"]) == 0
    return out


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_64_sample_run_reads_back_identical(generated, sim_generator):
    manifest = read_manifest(generated)
    assert manifest["complete"] and manifest["total"] == 64
    assert [s["file"] for s in manifest["shards"]] == [shard_name(0), shard_name(1)]
    assert manifest["body_model"] == sim_generator.body.model_id
    assert manifest["settings"]["config"]["sensor"] == "kinect2"
    for index in (0, 1):
        _, meta = read_shard(generated / shard_name(index))
        assert meta["count"] == "32" and meta["body_model"] == sim_generator.body.model_id
    # A shard made again in memory is identical, value for value.
    arrays, _ = read_shard(generated / shard_name(1))
    with cli.cpu_threads("cpu"):  # the CLI generates on one thread per process
        again = cli.generate_shard(sim_generator, 7, 1, 32, 16)
    assert set(again) == set(arrays)
    for key in arrays:
        np.testing.assert_array_equal(arrays[key], again[key], err_msg=key)
    # Two different shards hold different samples.
    a, _ = read_shard(generated / shard_name(0))
    b, _ = read_shard(generated / shard_name(1))
    assert not np.array_equal(a["params"], b["params"])


def test_dataset_reader_streams_the_shards(generated, sim_generator):
    synthetic = pytest.importorskip("disrt_core.data.synthetic")
    source = synthetic.SyntheticShards(generated, body_model=sim_generator.body,
                                       extras=("depth_mm", "pressure", "T_cam_bed"))
    assert source.unit_sizes() == [32, 32]
    arrays, _ = read_shard(generated / shard_name(1))
    samples = list(source.iter_samples())
    assert len(samples) == 64
    s = samples[32 + 5]
    np.testing.assert_array_equal(s["depth_mm"], arrays["depth"][5])
    np.testing.assert_array_equal(np.asarray(s["params"]), arrays["params"][5])
    np.testing.assert_array_equal(np.asarray(s["joints"]), arrays["joints"][5])
    np.testing.assert_array_equal(s["pressure"], arrays["pressure"][5])
    assert int(s["cover"]) == int(arrays["cover"][5])


def test_resume_redoes_only_missing_shards(generated, sim_generator):
    first = generated / shard_name(0)
    second = generated / shard_name(1)
    before = first.stat().st_mtime_ns
    content, _ = read_shard(second)
    second.unlink()
    manifest = json.loads((generated / "manifest.json").read_text())
    manifest["complete"] = False
    (generated / "manifest.json").write_text(json.dumps(manifest))
    assert cli.main(["--n", "64", "--out", str(generated), "--shard-size", "32",
                     "--batch-size", "16", "--seed", "7", "--body-model", "anny",
                     "--quiet", "--workers", "1"]) == 0
    assert first.stat().st_mtime_ns == before  # not rewritten
    again, _ = read_shard(second)  # made again, identical
    for key in content:
        np.testing.assert_array_equal(again[key], content[key], err_msg=key)
    assert read_manifest(generated)["complete"]


def test_other_settings_are_refused(generated):
    with pytest.raises(SystemExit, match="other settings"):
        cli.main(["--n", "64", "--out", str(generated), "--shard-size", "32",
                  "--batch-size", "16", "--seed", "8", "--body-model", "anny", "--quiet",
                  "--workers", "1"])


def test_preview_contact_sheet(tmp_path, generated):
    import cv2

    path = tmp_path / "sheet.png"
    assert cli.main(["--preview", str(path), "--preview-n", "2", "--body-model", "anny"]) == 0
    image = cv2.imread(str(path))
    # 3 cover rows + a pressure row + a side-view row of 128×4 px panels, 2 of 54×4 px.
    assert image.shape == (5 * 512 + 4 * 4, 2 * 216, 3)
    assert image.std() > 10


def test_shard_seeds_are_distinct_and_stable():
    seeds = {cli.shard_seed(0, i) for i in range(100)}
    assert len(seeds) == 100
    assert cli.shard_seed(3, 5) == cli.shard_seed(3, 5) != cli.shard_seed(4, 5)
    assert to_shard_arrays({"cover": torch.tensor([2])})["cover"].dtype == np.uint8
    assert os.environ.get("ROS_DOMAIN_ID")  # conftest set-up reached this process


@pytest.mark.slow
def test_worker_processes_write_the_same_shards(tmp_path, sim_generator):
    # Two spawned single-threaded workers (each builds its own Anny generator) make the
    # same samples as one process: shards depend on their seed only.
    out = tmp_path / "parallel"
    assert cli.main(["--n", "12", "--out", str(out), "--shard-size", "6", "--batch-size", "6",
                     "--seed", "3", "--body-model", "anny", "--quiet", "--workers", "2"]) == 0
    manifest = read_manifest(out)
    assert manifest["complete"] and manifest["total"] == 12
    with cli.cpu_threads("cpu"):
        again = cli.generate_shard(sim_generator, 3, 1, 6, 6)
    arrays, _ = read_shard(out / shard_name(1))
    for key in arrays:
        np.testing.assert_array_equal(arrays[key], again[key], err_msg=key)


def test_room_scenes_with_the_node_fit_from_the_command_line(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "_make_generator", REAL_MAKE_GENERATOR)
    out = tmp_path / "rooms"
    assert cli.main(["--scene", "room", "--sensor", "d435_424x240", "--n", "4", "--out",
                     str(out), "--shard-size", "4", "--batch-size", "4", "--body-model",
                     "anny", "--quiet", "--workers", "1"]) == 0
    config = read_manifest(out)["settings"]["config"]
    assert config["scene"] == "room" and config["bed_pose"] == "fit"
    assert config["sensor"] == "d435_424x240" and config["occupancy"] == [1.0, 0.0, 0.0]
    arrays, _ = read_shard(out / shard_name(0))
    assert arrays["depth"].shape == (4, 128, 54) and np.isfinite(arrays["params"]).all()
    with pytest.raises(SystemExit):
        cli.main(["--scene", "room", "--domain", "target", "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit):
        cli.main(["--occupancy", "1,2", "--out", str(tmp_path / "y")])


def test_clutter_shares_reach_the_generator_and_its_manifest(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "_make_generator", REAL_MAKE_GENERATOR)
    out = tmp_path / "plain"
    assert cli.main(["--n", "2", "--out", str(out), "--shard-size", "2", "--batch-size", "2",
                     "--body-model", "anny", "--quiet", "--workers", "1",
                     "--pillow-stack-prob", "0", "--throw-prob", "0.5", "--prop-prob", "1",
                     "--rumple-prob", "0.25"]) == 0
    config = read_manifest(out)["settings"]["config"]
    assert (config["pillow_stack_prob"], config["throw_prob"], config["prop_prob"],
            config["rumple_prob"]) == (0, 0.5, 1, 0.25)
    with pytest.raises(SystemExit):  # the target domain has its own clutter
        cli.main(["--domain", "target", "--throw-prob", "0", "--out", str(tmp_path / "t")])
