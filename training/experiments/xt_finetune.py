"""Fine-tune the shipped weights with one training recipe for a fixed number of steps on the
CPU, then score the result (docs/diffusion_xt.md, part 2). Every recipe starts from the same
weights, sees the same batches (seed 0) and runs the same steps; only the options differ.

    nice -n 19 .venv/bin/python training/experiments/xt_finetune.py --name paper --steps 400
    nice -n 19 .venv/bin/python training/experiments/xt_finetune.py --name skip --steps 400 \
        diffusion.space=normalised diffusion.parametrisation=skip loss.lambda_x0=1.0

Data: ``data/diffxt/train_k2`` (2,048 Kinect v2 samples, seed 11); scored on
``data/diffxt/test_k2`` (512, seed 7) and ``data/diffxt/target_test`` (the SIM2REAL target
domain, seed 200) with :mod:`xt_eval`. Results: ``runs/diffxt/<name>/scores_*.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from xt_common import DEFAULT_WEIGHTS, ROOT
from xt_eval import scorecard

from disrt_core.train.config import TrainConfig, apply_overrides, from_dict, validate
from disrt_core.train.trainer import Trainer


def recipe_config(name: str, steps: int, overrides: list[str], data: Path, out: Path,
                  init: str) -> TrainConfig:
    raw = {
        "name": f"diffxt-{name}", "seed": 0,
        "body": {"kind": "anny"},
        "model": {"preset": "small"},
        "loss": {"normalisers": "data", "normaliser_samples": 2048},
        "optim": {"lr": 1.0e-4, "weight_decay": 5.0e-4, "grad_clip": 1.0},
        "ema": {"enabled": False},
        "augment": {"enabled": True},
        "stages": [{"name": "ft", "data": [{"type": "shards", "path": str(data)}],
                    "epochs": 1000, "max_steps": steps, "batch_size": 32,
                    "schedule": {"kind": "constant", "warmup_steps": 20}}],
        "init": {"checkpoint": init},
        "run": {"out_dir": str(out), "device": "cpu", "num_workers": 0, "streams": 1,
                "checkpoint_every": 0, "log_every": 10, "progress": False, "threads": 1},
    }
    return validate(from_dict(TrainConfig, apply_overrides(raw, overrides)))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--name", required=True)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--data", default=str(ROOT / "data/diffxt/train_k2"))
    p.add_argument("--init", default=str(DEFAULT_WEIGHTS))
    p.add_argument("--sets", default="test_k2,target_test")
    p.add_argument("--score-only", action="store_true", help="score the existing run")
    p.add_argument("--n", type=int, default=512, help="samples scored per set")
    p.add_argument("--spread-n", type=int, default=256, help="of which scored with K = 8")
    p.add_argument("overrides", nargs="*", help="dotted.key=value config overrides")
    args = p.parse_args(argv)
    out = ROOT / "runs" / "diffxt" / args.name
    if not args.score_only:
        config = recipe_config(args.name, args.steps, args.overrides, Path(args.data), out,
                               args.init)
        with Trainer(config) as trainer:
            trainer.fit()
    torch.set_num_threads(1)  # one thread: a shared, oversubscribed CPU (spin-waits)
    for name in args.sets.split(","):
        folder = ROOT / "data" / "diffxt" / name
        if not (folder / "manifest.json").is_file():
            print(f"[skip] {folder} not there")
            continue
        res = scorecard(str(out / "model.safetensors"), str(folder), args.n, args.spread_n)
        (out / f"scores_{name}.json").write_text(json.dumps(res))
        short = {k: v for k, v in res.items() if k not in ("spread", "diffusion")}
        short["spread"] = {k: v for k, v in res["spread"].items() if k != "per_sample"}
        print(name, json.dumps(short))


if __name__ == "__main__":
    main()
