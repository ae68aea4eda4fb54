"""Calibrate a checkpoint's joint intervals on a validation set and record them in its header
(issue 21; :mod:`disrt_core.uncertainty`): ``training/calibrate_interval.py``.

    python training/calibrate_interval.py runs/x/model.safetensors --data data/val [...] \
        [--hypotheses 1,8] [--steps 5] [--level 0.9] [--out calibrated.safetensors]

For each number of hypotheses K in ``--hypotheses`` the checkpoint answers every validation
frame (its own sampler timesteps, ``--steps`` DDIM steps, noise seed 0); per joint the error
(m, no alignment) and the spread of the K answers are fitted with
:func:`~disrt_core.uncertainty.fit_interval`. The header's ``diffusion.interval`` gets one
entry per K (with the step count, the data and the coverage on it); the estimator uses the
entry of its K when it samples with that step count. The weights are copied unchanged
(:func:`disrt_core.checkpoint.rewrite_header`). Fit on a set that no evaluation uses.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from disrt_core.train.config import DataSpec


def errors_and_spread(path: str | Path, spec: DataSpec, hypotheses: int, steps: int = 5,
                      seed: int = 0, batch_size: int = 64, max_samples: int | None = None,
                      device: str = "cpu", body=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint error and spread [N, 24] (m) of the checkpoint on ``spec`` with K =
    ``hypotheses`` and ``steps`` DDIM steps."""
    from disrt_core.checkpoint import read_header
    from disrt_core.infer import Estimator, load_body_for
    from disrt_core.train.data import eval_batches

    if body is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            body = load_body_for(read_header(path).model_id, device=device)
    est = Estimator.from_checkpoint(path, device=device, body_model=body, seed=seed,
                                    steps=steps, hypotheses=hypotheses)
    errors, spreads = [], []
    for batch in eval_batches(spec, body, torch.device(device), batch_size, max_samples):
        gender = batch["gender"].to(device).float() if body.takes_gender else None
        pred = est.predict(batch["depth"], gender)
        errors.append(torch.linalg.vector_norm(
            pred.joints.float() - batch["joints"].to(device).float(), dim=-1).cpu())
        spreads.append(pred.joint_spread.float().cpu())
    return torch.cat(errors).numpy(), torch.cat(spreads).numpy()


def main(argv=None) -> None:
    from disrt_core.checkpoint import read_header, rewrite_header
    from disrt_core.uncertainty import fit_interval

    p = argparse.ArgumentParser(description="calibrate the joint intervals on a validation "
                                "set and write them into a checkpoint's header")
    p.add_argument("checkpoint")
    p.add_argument("--data", required=True, nargs="+",
                   help="validation shard folders (disrt-generate), fitted together")
    p.add_argument("--hypotheses", default="1,8", help="numbers of hypotheses K to fit")
    p.add_argument("--steps", type=int, default=5, help="DDIM steps (the node's ddim_steps)")
    p.add_argument("--level", type=float, default=0.9, help="share of true joints inside")
    p.add_argument("--max-samples", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="output checkpoint (default: in place)")
    p.add_argument("--dry-run", action="store_true", help="print the fit, write nothing")
    args = p.parse_args(argv)
    interval = dict(read_header(args.checkpoint).diffusion.get("interval", {}))
    for k in (int(v) for v in args.hypotheses.split(",")):
        parts = [errors_and_spread(args.checkpoint, DataSpec(type="shards", path=folder), k,
                                   args.steps, max_samples=args.max_samples,
                                   device=args.device) for folder in args.data]
        err, spread = (np.concatenate(x) for x in zip(*parts))
        entry = fit_interval(err, spread, args.level)
        entry.update(steps=args.steps, data=", ".join(args.data), samples=len(err),
                     mean_radius_m=round(float(np.mean(
                         np.array(entry["offset_m"]) + np.array(entry["scale"]) * spread)), 4))
        interval[str(k)] = entry
        print(f"[calibrate_interval] K={k}: coverage {entry['coverage']:.3f} on {len(err)} "
              f"frames, mean radius {1000 * entry['mean_radius_m']:.0f} mm")
    print(json.dumps(interval, indent=1))
    if not args.dry_run:
        out = rewrite_header(args.checkpoint, args.out, diffusion={"interval": interval})
        print(f"[calibrate_interval] wrote {out}")
