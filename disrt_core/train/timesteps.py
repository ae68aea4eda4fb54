"""Choose a checkpoint's sampler timesteps on a validation set and record them in its header
(issue 21; SPEC §2 "Reopened"): ``training/choose_timesteps.py``.

    python training/choose_timesteps.py runs/x/model.safetensors --data data/val \
        [--steps 5,10] [--lasts 0,10,20,...,90] [--out chosen.safetensors]

Candidates are ranges ``round(linspace(T−1, last, N))`` for each ``last`` in ``--lasts``.
Each is scored by MPJPE on the validation set (seeded noise, one hypothesis), for every
step count N in ``--steps``. The header gets ``timesteps = {"first": T−1, "last": L5,
"by_steps": {N: best list}, "validation": {...}}`` where L5 is the best ``last`` for the
first count in ``--steps`` (the node's default 5): a count without its own list uses the
range ``first..L5``. Ties go to the smaller ``last`` (more of the chain refines). The SPEC's
{99, 74, 50, 25, 0} (last = 0) is always a candidate, so the chosen set is never worse on the
validation data than the SPEC's. The weights are copied unchanged
(:func:`disrt_core.checkpoint.rewrite_header`).
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import torch

from disrt_core.train.config import DataSpec

DEFAULT_LASTS = tuple(range(0, 100, 10))


def score_candidates(path: str | Path, spec: DataSpec, steps=(5, 10), lasts=DEFAULT_LASTS,
                     seed: int = 0, batch_size: int = 128, max_samples: int | None = None,
                     device: str = "cpu", body=None) -> dict[int, dict[int, float]]:
    """MPJPE (mm) on ``spec`` per step count and candidate ``last``: {N: {last: mm}}."""
    from disrt_core.checkpoint import read_header
    from disrt_core.infer import Estimator, load_body_for
    from disrt_core.metrics import mpjpe_mm
    from disrt_core.train.data import eval_batches

    header = read_header(path)
    if body is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            body = load_body_for(header.model_id, device=device)
    batches = list(eval_batches(spec, body, torch.device(device), batch_size, max_samples))
    est = Estimator.from_checkpoint(path, device=device, body_model=body, seed=seed,
                                    timesteps=None)
    first = est.diffusion.num_timesteps - 1
    out: dict[int, dict[int, float]] = {}
    for n in steps:
        out[n] = {}
        for last in lasts:
            if n > first - last + 1:
                continue
            est.diffusion.timesteps = {"first": first, "last": int(last)}
            est.set_sampling(steps=n, hypotheses=1)
            errors = []
            gender_ok = body.takes_gender
            for batch in batches:
                gender = batch["gender"].to(device).float() if gender_ok else None
                pred = est.predict(batch["depth"], gender)
                errors.append(mpjpe_mm(pred.joints, batch["joints"].to(device).float()))
            out[n][int(last)] = float(torch.cat(errors).mean())
    return out


def choose(scores: dict[int, dict[int, float]], first: int = 99) -> dict:
    """The header's ``timesteps`` from :func:`score_candidates` (see the module)."""
    import numpy as np

    by_steps, best_last = {}, {}
    for n, table in scores.items():
        last = min(table, key=lambda k: (round(table[k], 6), k))
        best_last[n] = last
        by_steps[str(n)] = [first] if n == 1 else [
            int(v) for v in np.round(np.linspace(first, last, n))]
    primary = next(iter(scores))
    return {"first": first, "last": best_last[primary], "by_steps": by_steps}


def main(argv=None) -> None:
    from disrt_core.checkpoint import rewrite_header

    p = argparse.ArgumentParser(description="choose sampler timesteps on a validation set "
                                "and write them into a checkpoint's header")
    p.add_argument("checkpoint")
    p.add_argument("--data", help="validation shard folder (disrt-generate output)")
    p.add_argument("--generate", type=int, default=None,
                   help="instead of --data: generate this many validation samples")
    p.add_argument("--data-seed", type=int, default=12, help="seed of --generate")
    p.add_argument("--sim", default="{}", help="SimConfig fields for --generate, as JSON or "
                   "YAML (e.g. '{scene: room, sensor: d435}')")
    p.add_argument("--steps", default="5,10", help="step counts, the node's default first")
    p.add_argument("--lasts", default=",".join(map(str, DEFAULT_LASTS)))
    p.add_argument("--max-samples", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="output checkpoint (default: in place)")
    p.add_argument("--dry-run", action="store_true", help="print the scores, write nothing")
    args = p.parse_args(argv)
    if (args.data is None) == (args.generate is None):
        p.error("give one of --data or --generate")
    import yaml

    spec = (DataSpec(type="shards", path=args.data) if args.data else
            DataSpec(type="generator", samples=args.generate, seed=args.data_seed,
                     sim=yaml.safe_load(args.sim) or {}))
    steps = tuple(int(s) for s in args.steps.split(","))
    lasts = tuple(int(s) for s in args.lasts.split(","))
    scores = score_candidates(args.checkpoint, spec, steps, lasts,
                              max_samples=args.max_samples, device=args.device)
    chosen = choose(scores)
    chosen["validation"] = {"data": args.data or f"generator seed {args.data_seed}",
                            "samples": args.max_samples or args.generate,
                            "metric": "MPJPE mm, 1 hypothesis, noise seed 0",
                            "mpjpe_mm": {str(n): {str(k): round(v, 2) for k, v in t.items()}
                                         for n, t in scores.items()}}
    print(json.dumps(chosen, indent=1))
    if not args.dry_run:
        out = rewrite_header(args.checkpoint, args.out, diffusion={"timesteps": chosen})
        print(f"[choose_timesteps] wrote {out}")
