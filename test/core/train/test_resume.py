"""A training process killed with SIGKILL and resumed ends bit-identical to an uninterrupted
run (CPU): weights, EMA, AdamW state and the logged losses."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from disrt_core.train.monitor import read_log
from disrt_core.train.state import load_state, stage_path, step_files

TRAIN = Path(__file__).resolve().parents[3] / "training" / "train.py"


def _config(make_config, out: Path) -> Path:
    raw = make_config(out)
    raw["stages"][0]["epochs"] = 4  # 16 steps of batch 4, then 6 fine-tune steps
    raw["stages"][0]["batch_size"] = 4
    raw["augment"] = {"enabled": True}
    raw["ema"] = {"decay": 0.9}
    raw["model"]["overrides"]["dropout"] = 0.1  # global-RNG draws must resume too
    path = out.parent / f"{out.name}.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    return path


def _train(config: Path, *extra: str, wait: bool = True) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(TRAIN), "--config", str(config), *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if wait:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out.decode()[-3000:]
    return proc


def _kill_after(proc: subprocess.Popen, out: Path, step: int) -> int:
    """SIGKILL the run once its log shows ``step`` steps and a state file exists."""
    log = out / "log.csv"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail("the run ended before it could be killed: "
                        + proc.stdout.read().decode()[-2000:])
        try:
            rows = read_log(log) if log.is_file() else []
        except (ValueError, KeyError):
            rows = []
        if rows and int(rows[-1]["step"]) >= step and step_files(out):
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return int(rows[-1]["step"])
        time.sleep(0.01)
    proc.kill()
    pytest.fail("the run did not reach the step to kill at")


@pytest.mark.slow
def test_sigkill_and_resume_is_bit_identical(make_config, tmp_path):
    full_cfg = _config(make_config, tmp_path / "full")
    killed_cfg = _config(make_config, tmp_path / "killed")
    killed = tmp_path / "killed"

    proc = _train(killed_cfg, wait=False)
    at = _kill_after(proc, killed, step=7)
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "summary.json").exists()
    saved = max(s for s, _ in step_files(killed))
    assert saved <= at < 22
    _train(killed_cfg, "--resume")

    _train(full_cfg)
    full = tmp_path / "full"
    for name in ("model", "model-ema", "model-synth"):
        a = load_file(str(full / f"{name}.safetensors"))
        b = load_file(str(killed / f"{name}.safetensors"))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}: {key} differs"
    sa, sb = (load_state(stage_path(d, "finetune")) for d in (full, killed))
    for i, slot in sa["optimizer"]["state"].items():
        for key, value in slot.items():
            assert torch.equal(value, sb["optimizer"]["state"][i][key]), (i, key)
    log_a, log_b = read_log(full / "log.csv"), read_log(killed / "log.csv")
    assert [r["step"] for r in log_b] == [str(s) for s in range(1, 23)]  # no duplicate rows
    assert [r["loss"] for r in log_a] == [r["loss"] for r in log_b]
