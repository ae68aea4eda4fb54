"""Does an EMA of the weights help? Train once, evaluate the raw weights and EMAs of several
decays on a held-out generated set (MPJPE / PVE, 5 DDIM steps).

    python benchmarks/bench_ema.py                       # CPU: tiny network, 400 steps
    python benchmarks/bench_ema.py --device cuda --preset small --steps 5000 --batch 256

The SPEC keeps the reference's EMA (decay 0.9999) but evaluates the raw last weights
(SPEC §5). Every EMA here is updated after each optimizer step from the same run, so the
comparison is paired. The data are a generator pool (Anny, Kinect, all covers) and the
held-out set is generated from another seed.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Result, Row, command_line, machine_info, save

from disrt_core.train.config import TINY_NETWORK, DataSpec, load_config
from disrt_core.train.evaluation import EvalSettings, evaluate_model
from disrt_core.train.trainer import Trainer


class MultiEMATrainer(Trainer):
    """A trainer that also keeps EMAs of the weights at other decays."""

    decays: tuple[float, ...] = ()

    def __init__(self, *args, decays=(0.99, 0.999, 0.9999), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.extra = {d: copy.deepcopy(self.model).eval().requires_grad_(False) for d in decays}

    @torch.no_grad()
    def _update_ema(self) -> None:
        super()._update_ema()
        weights = [p.detach() for p in self.model.parameters()]
        for decay, ema in self.extra.items():
            torch._foreach_lerp_(list(ema.parameters()), weights, 1.0 - decay)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--preset", default="tiny", help="tiny (the test network) or a preset")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--pool", type=int, default=512, help="training pool size")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eval-samples", type=int, default=128)
    p.add_argument("--decays", default="0.99,0.999,0.9999")
    p.add_argument("--note", default="")
    args = p.parse_args(argv)
    decays = tuple(float(d) for d in args.decays.split(","))
    model = ({"preset": "small", "overrides": TINY_NETWORK} if args.preset == "tiny"
             else {"preset": args.preset})
    heldout = {"type": "generator", "samples": args.eval_samples, "seed": 1000,
               "gen_batch": 64}
    with tempfile.TemporaryDirectory() as out:
        raw = {"name": "ema", "seed": 0, "body": {"kind": "anny"}, "model": model,
               "loss": {"normalisers": "data", "normaliser_samples": min(args.pool, 1024)},
               "optim": {"lr": args.lr, "grad_clip": 1.0}, "ema": {"decay": decays[0]},
               "stages": [{"name": "synth", "batch_size": args.batch, "epochs": 10**6,
                           "max_steps": args.steps,
                           "data": [{"type": "generator", "samples": args.pool,
                                     "gen_batch": 64}]}],
               "eval": {"at_stage_end": False},
               "run": {"out_dir": out, "device": args.device, "num_workers": 0, "streams": 1,
                       "checkpoint_every": 0, "log_every": 50, "progress": False}}
        trainer = MultiEMATrainer(load_config(None, base=raw), decays=decays)
        trainer.fit()
        settings = EvalSettings(batch_size=64, measurements=False, seed=0)
        spec = DataSpec(**heldout, name="heldout")
        models = {"raw": trainer.model, **{f"ema {d:g}": m for d, m in trainer.extra.items()}}
        result = Result("ema", machine_info(), command_line())
        scores = {}
        for name, net in models.items():
            summary = evaluate_model(net, trainer.body, spec, settings, trainer.device,
                                     trainer.decoder.config)["summary"]
            scores[name] = summary["mpjpe_mm"]["all"]
            result.rows.append(Row(f"{name}: MPJPE", round(summary["mpjpe_mm"]["all"], 2), "mm",
                                   note=f"PVE {summary['pve_mm']['all']:.2f} mm"))
            print(f"{name}: MPJPE {summary['mpjpe_mm']['all']:.2f} mm, PVE "
                  f"{summary['pve_mm']['all']:.2f} mm", flush=True)
        trainer.close()
    best = min(scores, key=scores.get)
    result.notes.append(f"Lowest MPJPE: {best} ({scores[best]:.2f} mm; raw {scores['raw']:.2f}).")
    result.notes.append(
        f"{args.preset} network, Anny, {args.steps} steps of batch {args.batch} (lr "
        f"{args.lr:g}, AdamW) on a generated pool of {args.pool}; held-out: "
        f"{args.eval_samples} generated samples (seed 1000), 5 DDIM steps. All EMAs from the "
        "same run (paired).")
    if args.note:
        result.notes.append(args.note)
    print(f"wrote {save(result)}")


if __name__ == "__main__":
    main()
