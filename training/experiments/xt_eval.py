"""The issue-21 scorecard of one checkpoint on one shard set (docs/diffusion_xt.md):
MPJPE at 1/5/10 DDIM steps, x̂0 at t = 0 given the true parameters, and the spread of K
hypotheses against the error (Spearman, coverage of the 90 % interval, a calibration curve).

    nice -n 19 .venv/bin/python training/experiments/xt_eval.py CKPT --data DIR \
        [--n 512] [--spread-n 256] [--k 8] [--out result.json]

Everything goes through ``Estimator.from_checkpoint``, so the checkpoint's diffusion space and
sampler timesteps (header) are the ones used. Seeds: sampling noise seed 0, t = 0 noise seed 1.

The interval from the spread: ``joint_spread`` s is the RMS 3D distance of the K hypotheses'
joints from their mean. Read as an isotropic Gaussian with per-axis σ = s/√3 (widened by
√(1 + 1/K) for the error of a mean of K draws), the true joint lies within
``r_p = σ·√(χ²₃⁻¹(p))`` of the answer with probability p (r_90 = 1.443·s·√(1+1/K)).
Coverage = the fraction of true joints inside r_p. Where the checkpoint's header has a
calibration of the joint intervals (:mod:`disrt_core.uncertainty`) for K = 1 or K, the share
of true joints inside ``Prediction.joint_interval`` is reported too (``interval_5_k1``,
``spread.calibrated``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.stats import chi2, spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from xt_common import joints_of, load_set, mpjpe_mm

from disrt_core.decoder import MeshDecoder
from disrt_core.infer import Estimator, load_body_for

LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def coverage(err: np.ndarray, spread: np.ndarray, k: int, levels=LEVELS) -> dict[str, float]:
    """Observed coverage of the chi-3 intervals at each nominal level (see the module)."""
    sigma = spread / math.sqrt(3) * math.sqrt(1 + 1 / k)
    return {f"{p:.2f}": float((err <= sigma * math.sqrt(chi2.ppf(p, 3))).mean())
            for p in levels}


@torch.no_grad()
def t0_error(est: Estimator, data: dict, n: int, seed: int = 1, t_value: int = 0) -> float:
    """MPJPE (mm) of x̂0 at t = ``t_value`` (default 0) from x_t made from the true
    parameters (in the checkpoint's diffusion space, as in its training: the truth is the
    decoder's inverse when the header says ``invert_bounds``, else x0 − offset)."""
    x0, depth = data["params"][:n].float(), data["depth"][:n]
    shift = est.decoder.transl_shift
    inverse = est.header is not None and est.header.diffusion.get("invert_bounds", False)
    z0 = est.space.to_z(est.decoder.invert(x0) if inverse else x0 - shift)
    eps = torch.randn(z0.shape, generator=torch.Generator().manual_seed(seed))
    t = torch.full((len(z0),), t_value, dtype=torch.long)
    z_t = est.diffusion.q_sample(z0, t, eps)
    est.model.eval()
    out = torch.cat([est._space_fn(z_t[i:i + 128], t[i:i + 128], est._encode(depth[i:i + 128]))
                     for i in range(0, len(z0), 128)])
    pred = joints_of(est.decoder, est.space.from_z(out))
    gt = joints_of(est.decoder, x0, is_gt=True)
    return float(mpjpe_mm(pred, gt).mean())


def t0_floor(est: Estimator, data: dict, n: int, seed: int = 1) -> dict[str, float]:
    """What no network can beat at t = 0 in this checkpoint's space (docs/diffusion_xt.md,
    section 9): MPJPE (mm) of answering the true z0 itself, and of answering x_t (the Bayes
    answer where the image adds little to x_t), both decoded as predictions. In the raw space
    the decoder's bounds move the truth, and the t = 0 noise (√(1 − ᾱ₀) = 0.03 per entry)
    is 3 cm of translation per axis."""
    x0 = data["params"][:n].float()
    shift = est.decoder.transl_shift
    inverse = est.header is not None and est.header.diffusion.get("invert_bounds", False)
    z0 = est.space.to_z(est.decoder.invert(x0) if inverse else x0 - shift)
    eps = torch.randn(z0.shape, generator=torch.Generator().manual_seed(seed))
    z_t = est.diffusion.q_sample(z0, torch.zeros(len(z0), dtype=torch.long), eps)
    gt = joints_of(est.decoder, x0, is_gt=True)
    return {name: float(mpjpe_mm(joints_of(est.decoder, est.space.from_z(z)), gt).mean())
            for name, z in (("truth", z0), ("x_t", z_t))}


def tsweep(checkpoint: str, data: str, n: int = 128) -> dict[int, float]:
    """MPJPE (mm) of x̂0 from the truth noised at t = 0, 10, 25, 50, 74, 99 (:func:`t0_error`)."""
    est = Estimator.from_checkpoint(checkpoint, seed=0)
    samples = load_set(data, est.body_model)
    return {t: round(t0_error(est, samples, n, t_value=t), 1) for t in (0, 10, 25, 50, 74, 99)}


def predict_all(est: Estimator, depth: torch.Tensor, batch: int = 128):
    """Joints [N,24,3], spread [N,24] and the calibrated joint intervals [N,24] (None
    without a calibration for the estimator's K and steps) of every frame."""
    joints, spread, interval = [], [], []
    for i in range(0, len(depth), batch):
        p = est.predict(depth[i:i + batch])
        joints.append(p.joints)
        spread.append(p.joint_spread)
        interval.append(p.joint_interval)
    calibrated = None if interval[0] is None else torch.cat(interval)
    return torch.cat(joints), torch.cat(spread), calibrated


def interval_coverage(joints, gt, interval) -> dict | None:
    """Share of true joints inside the calibrated radius, and the mean radius (mm)."""
    if interval is None:
        return None
    err = torch.linalg.vector_norm(joints - gt, dim=-1)
    return {"coverage": float((err <= interval).float().mean()),
            "mean_radius_mm": float(1000 * interval.mean())}


def scorecard(path: str, data_dir: str, n: int = 512, spread_n: int = 256, k: int = 8,
              steps=(1, 5, 10), body=None) -> dict:
    from disrt_core.checkpoint import read_header

    header = read_header(path)
    if body is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            body = load_body_for(header.model_id)
    data = load_set(data_dir, body, n)
    n = len(data["params"])
    est = Estimator.from_checkpoint(path, body_model=body, seed=0)
    gt = joints_of(MeshDecoder(body), data["params"].float(), is_gt=True)
    out: dict = {"checkpoint": str(path), "data": str(data_dir), "n": n,
                 "diffusion": {k_: v for k_, v in header.diffusion.items()
                               if k_ not in ("mean", "std")}}
    for s in steps:
        est.set_sampling(steps=s, hypotheses=1)
        joints, _, interval = predict_all(est, data["depth"])
        out[f"mpjpe_{s}"] = float(mpjpe_mm(joints, gt).mean())
        if interval is not None:  # the checkpoint's calibration for K = 1 (header)
            out[f"interval_{s}_k1"] = interval_coverage(joints, gt, interval)
        out[f"timesteps_{s}"] = est.diffusion.ddim_timesteps(s)
    out["t0_truth"] = t0_error(est, data, n)
    out["t0_floor"] = t0_floor(est, data, n)
    m = min(spread_n, n)
    est.set_sampling(steps=5, hypotheses=k)
    joints, spread, interval = predict_all(est, data["depth"][:m], batch=32)
    err = 1000 * torch.linalg.vector_norm(joints - gt[:m], dim=-1).numpy().ravel()
    spr = 1000 * spread.numpy().ravel()
    out["spread"] = {"k": k, "n": m, "mpjpe_5_k": float(err.mean()),
                     "mean_spread_mm": float(spr.mean()),
                     "spearman": float(spearmanr(spr, err).statistic),
                     "coverage": coverage(err, spr, k),
                     "calibrated": interval_coverage(joints, gt[:m], interval)}
    # the scale that would make the 90 % interval exact on this set (for calibration on a
    # validation set): the 90th percentile of err / r_90(spread = 1)
    unit = math.sqrt(chi2.ppf(0.9, 3) / 3 * (1 + 1 / k))
    out["spread"]["scale_for_90"] = float(np.quantile(err / np.maximum(spr * unit, 1e-9), 0.9))
    out["spread"]["per_sample"] = {"err_mm": err.round(2).tolist(), "spread_mm": spr.round(3)
                                   .tolist()}
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--data", required=True)
    p.add_argument("--n", type=int, default=512)
    p.add_argument("--spread-n", type=int, default=256)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # one thread: a shared, oversubscribed CPU (spin-waits)
    res = scorecard(args.checkpoint, args.data, args.n, args.spread_n, args.k)
    short = {k: v for k, v in res.items() if k != "spread"}
    short["spread"] = {k: v for k, v in res["spread"].items() if k != "per_sample"}
    print(json.dumps(short, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(res))


if __name__ == "__main__":
    main()
