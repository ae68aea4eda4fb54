"""Experiment (docs/diffusion_xt.md, section 9): what DDIM steps can buy with a PERFECT
x0-predicting network, on a problem whose answers are known in closed form.

The toy: a parameter vector x0 ∈ R^P with prior N(0, s²I); the "image" is y = x0 + n,
n ~ N(0, σ_o²I). Then x0 | y ~ N(μ_y, v·I) with μ_y = s²/(s² + σ_o²)·y and
v = s²σ_o²/(s² + σ_o²), and the Bayes-optimal x0 predictor at timestep t (the minimiser of
the training loss E‖x̂0 − x0‖², which is what an x0-predicting network approximates) is

    E[x0 | x_t, y] = μ_y + g_t·(x_t − √ᾱ_t·μ_y),   g_t = √ᾱ_t·v / (ᾱ_t·v + 1 − ᾱ_t).

It is run through the project's own DDIM (:class:`disrt_core.diffusion.GaussianDiffusion`,
the SPEC's schedule). What it shows, for any s, σ_o:

* one step from t = T−1 returns ≈ μ_y, the posterior mean: the least squared error any
  answer can have (RMS error / √v ≈ 1);
* more steps turn the answer into a SAMPLE of the posterior (the probability-flow ODE):
  its error grows toward √2·√v (a sample and the truth are two independent draws);
* only then do K hypotheses spread as the truth does: their 90 % interval holds ~90 % of the
  true values; at one step they coincide and the interval holds almost nothing.

So for a well-trained network "5 steps better than 1" cannot hold in a squared-error metric
(the perception-distortion trade-off: the one-step answer is the blurry mean, the chain's
answer a sharp sample), while a trustworthy spread needs the chain. Run:

    python training/experiments/xt_bayes.py                 # table, ~1 s on a CPU
    python training/experiments/xt_bayes.py --prior-std 1   # a normalised parameter space
"""

from __future__ import annotations

import argparse
import math

import torch
from scipy.stats import t as student_t

from disrt_core.diffusion import GaussianDiffusion


def posterior(y: torch.Tensor, prior_std: float, obs_std: float) -> tuple[torch.Tensor, float]:
    """(μ_y [N,P], v): the posterior of x0 given y = x0 + n for the toy's Gaussians."""
    s2, o2 = prior_std**2, obs_std**2
    return s2 / (s2 + o2) * y, s2 * o2 / (s2 + o2)


def bayes_x0(diffusion: GaussianDiffusion, mean: torch.Tensor, var: float):
    """The exact E[x0 | x_t, y] as a ``model_fn(x_t, t, cond)`` for ``ddim_sample``."""
    def model_fn(x_t: torch.Tensor, t: torch.Tensor, cond) -> torch.Tensor:
        ab = torch.as_tensor(diffusion.alphas_cumprod, dtype=torch.float64)[t.long()][:, None]
        gain = ab.sqrt() * var / (ab * var + 1.0 - ab)
        return (mean.double() + gain * (x_t.double() - ab.sqrt() * mean.double())).float()
    return model_fn


def run(prior_std: float, obs_std: float, steps: list[int], n: int = 4096, dim: int = 24,
        hypotheses: int = 8, seed: int = 0) -> list[dict]:
    """Per step count: RMS error of hypothesis 0 and of the K-mean over √v, and the share of
    true values inside the mean ± q·(sample std of the K)·√(1 + 1/K), q the 95 % quantile of
    Student's t with K − 1 degrees of freedom: the exact 90 % prediction interval of one more
    draw when the K are draws of the same normal as the truth (posterior samples)."""
    g = torch.Generator().manual_seed(seed)
    x0 = prior_std * torch.randn(n, dim, generator=g)
    y = x0 + obs_std * torch.randn(n, dim, generator=g)
    mean, var = posterior(y, prior_std, obs_std)
    diffusion = GaussianDiffusion(100)
    model_fn = bayes_x0(diffusion, mean.repeat_interleave(hypotheses, 0), var)
    noise = torch.randn(n * hypotheses, dim, generator=g)
    rows = []
    for k in steps:
        h = diffusion.ddim_sample(model_fn, None, (n * hypotheses, dim), k, noise=noise)
        h = h.view(n, hypotheses, dim)
        avg, sd = h.mean(1), h.std(1)
        half = student_t.ppf(0.95, hypotheses - 1) * sd * math.sqrt(1.0 + 1.0 / hypotheses)
        rows.append({
            "steps": k,
            "rms_one": ((h[:, 0] - x0).pow(2).mean().sqrt() / math.sqrt(var)).item(),
            "rms_mean": ((avg - x0).pow(2).mean().sqrt() / math.sqrt(var)).item(),
            "coverage90": ((avg - x0).abs() <= half).float().mean().item(),
        })
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prior-std", type=float, default=0.18,
                   help="s: the prior's std (0.18 rad: the raw pose parameters' spread)")
    p.add_argument("--obs-std", type=float, default=0.1, help="σ_o: how much the image says")
    p.add_argument("--steps", default="1,2,5,10,25,100")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rows = run(args.prior_std, args.obs_std, [int(s) for s in args.steps.split(",")],
               seed=args.seed)
    print(f"prior std {args.prior_std}, observation std {args.obs_std}; errors in units of "
          "the posterior std √v (1 = the posterior mean, √2 = a posterior sample)")
    print("steps | one hypothesis | mean of K=8 | 90 % interval holds")
    for r in rows:
        print(f"{r['steps']:5d} | {r['rms_one']:14.3f} | {r['rms_mean']:11.3f} | "
              f"{100 * r['coverage90']:5.1f} %")


if __name__ == "__main__":
    main()
