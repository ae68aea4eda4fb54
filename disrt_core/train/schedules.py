"""Learning-rate schedules of the two stages (SPEC §5, paper Eq. 15 and its ablation).

A schedule is a factor ``f(s)`` of the stage's base learning rate for optimizer step s =
0, 1, ..., S−1 of a stage with S steps, used through ``torch.optim.lr_scheduler.LambdaLR``
(``lr_s = lr_init·f(s)``; the scheduler is rebuilt at each stage, so stage 2 restarts at
lr_init while AdamW keeps its moments, SPEC §8.5):

================ =============================================================================
kind             f(s)
================ =============================================================================
constant, none   1 (stage 1 of the paper; "none" is the ablation's name for it)
linear           ``1 − s/S`` (paper Eq. 15): lr_init at s = 0, lr_init/2 at s = S/2,
                 lr_init/S at the last step. ``variant="reference"``: the released code's
                 ``1 − s/(S+1)`` with ``S = epochs·N_real // batch`` (4999 for 100 % real,
                 which runs 4995 steps).
cosine           ``(1 + cos(π·s/S))/2`` (CosineAnnealingLR with T_max = S, η_min = 0)
exponential      ``γ^s`` (ExponentialLR, γ = 0.999 per step in the reference)
================ =============================================================================

``warmup_steps`` W > 0 multiplies by ``min(1, (s+1)/W)`` (not in the paper). The factor is
computed in closed form (float64), so the value at any step is exact, also after a resume.
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR


class LRFactor:
    """Picklable ``f(step)`` (LambdaLR stores its ``__dict__`` in the scheduler state)."""

    def __init__(self, kind: str, total_steps: int, gamma: float = 0.999,
                 warmup_steps: int = 0, horizon: int | None = None) -> None:
        if kind not in ("constant", "none", "linear", "cosine", "exponential"):
            raise ValueError(f"unknown schedule {kind!r}")
        if total_steps < 1:
            raise ValueError(f"a schedule needs ≥ 1 step, got {total_steps}")
        self.kind, self.total_steps, self.gamma = kind, int(total_steps), float(gamma)
        self.warmup_steps = int(warmup_steps)
        #: the S in the formulas (reference variant of linear: S+1, see module docstring)
        self.horizon = int(horizon if horizon is not None else total_steps)

    def __call__(self, step: int) -> float:
        s, horizon = float(step), float(self.horizon)
        if self.kind == "linear":
            factor = 1.0 - s / horizon
        elif self.kind == "cosine":
            factor = 0.5 * (1.0 + math.cos(math.pi * s / horizon))
        elif self.kind == "exponential":
            factor = self.gamma ** s
        else:
            factor = 1.0
        if self.warmup_steps > 0:
            factor *= min(1.0, (s + 1.0) / self.warmup_steps)
        return max(factor, 0.0)


def stage_factor(kind: str, total_steps: int, *, variant: str = "paper", gamma: float = 0.999,
                 warmup_steps: int = 0, epochs: int | None = None,
                 samples_per_epoch: int | None = None, batch_size: int | None = None) -> LRFactor:
    """The factor of a stage with ``total_steps`` optimizer steps. ``variant="reference"``
    (linear only) uses DiSRT's horizon ``S + 1``, ``S = epochs·samples_per_epoch //
    batch_size`` (SPEC §5), which needs those three numbers."""
    horizon = None
    if kind == "linear" and variant == "reference":
        if None in (epochs, samples_per_epoch, batch_size):
            raise ValueError("the reference linear schedule needs epochs, samples_per_epoch "
                             "and batch_size")
        horizon = epochs * samples_per_epoch // batch_size + 1
    elif variant not in ("paper", "reference"):
        raise ValueError(f"variant must be 'paper' or 'reference', got {variant!r}")
    return LRFactor(kind, total_steps, gamma, warmup_steps, horizon)


def build_scheduler(optimizer: torch.optim.Optimizer, lr: float, factor: LRFactor) -> LambdaLR:
    """A fresh LambdaLR at step 0 with base learning rate ``lr`` for every parameter group
    (the groups' ``initial_lr`` is reset: a previous stage's scheduler must not leak in)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
        group["initial_lr"] = lr
    return LambdaLR(optimizer, factor)
