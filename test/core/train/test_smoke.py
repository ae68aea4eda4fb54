"""A two-stage run on the generator's output (Anny) through ``train.py --smoke``: stage 1 on
shards written by ``disrt-generate``, stage 2 on a pool generated during training (the
smoke run's own data, shrunk to keep the CPU test short)."""

import json

import pytest
import torch

from disrt_core.checkpoint import read_header
from disrt_core.losses import LossConfig
from disrt_core.train.cli import train_main
from disrt_core.train.monitor import read_log
from disrt_core.train.state import load_state, stage_path

KINECT = "{sensor: kinect2}"


@pytest.mark.slow
def test_two_stages_on_generated_data(tmp_path, keep_threads, capsys):
    from disrt_core.sim.cli import main as generate

    shards = tmp_path / "shards"
    assert generate(["--n", "2", "--out", str(shards), "--body-model", "anny",
                     "--shard-size", "1", "--batch-size", "1", "--quiet", "--seed", "3"]) == 0
    out = tmp_path / "smoke"
    args = ["--smoke", "--out", str(out),
            f"stages.synth.data=[{{type: shards, path: {shards}, fraction: 0.5}}]",
            "stages.synth.batch_size=1",  # the first of 2 shards: 1 sample, 1 step per epoch
            "stages.target.data.0.samples=4", f"stages.target.data.0.sim={KINECT}",
            "stages.target.batch_size=2", f"eval.data.sim={KINECT}", "eval.data.samples=2",
            "eval.batch_size=2", "loss.normaliser_samples=1", "run.progress=false",
            "run.threads=2"]
    assert train_main(args) == 0
    rows = read_log(out / "log.csv")
    assert [r["stage"] for r in rows] == ["synth"] * 2 + ["target"] * 2
    assert [float(r["lr"]) for r in rows[2:]] == [1e-4, 0.5e-4]  # linear decay, S = 2
    assert all(torch.isfinite(torch.tensor(float(r["loss"]))) for r in rows)
    state = load_state(stage_path(out, "target"))
    assert state["loss"]["norm_betas"] != LossConfig().norm_betas  # stds of the Anny data
    for tag in ("synth-end", "target-end"):
        result = json.loads((out / "eval" / f"{tag}.json").read_text())
        assert result["summary"]["n"]["all"] == 2
        assert set(result["summary"]["shape_cm"]) == {"height", "chest", "waist", "hips"}
    assert read_header(out / "model.safetensors").model_id.startswith("anny")
    # --resume of a finished run trains nothing more
    assert train_main([*args, "--resume"]) == 0
    assert len(read_log(out / "log.csv")) == 4
    # a missing shard folder is reported before anything runs
    assert train_main(["--smoke", "--out", str(tmp_path / "bad"),
                       "stages.synth.data=[{type: shards, path: /nonexistent}]"]) == 2
    assert "stages.synth.data.0.path" in capsys.readouterr().err
