"""Gaussian diffusion over the parameter vector: schedule, ``q_sample`` and the DDIM sampler
for x0 prediction (SPEC §2).

The schedule arrays are computed once, in float64, in :class:`GaussianDiffusion`; names
follow the papers (β_t, ᾱ_t = ``alphas_cumprod``). Timesteps are 0-based integers 0..T−1
(t = 0 is one noising step). The network sees the integer original t, also when sampling
with fewer steps.

The sampler takes any ``model_fn(x_t [N,P], t [N] long, cond) -> x̂0 [N,P]``, so the same
code drives the real denoiser, a compiled one, or a toy in the tests; ``cond`` is passed
through untouched (a depth batch, or the estimator's encoded depth).

Sampler timesteps: the SPEC's rule round(linspace(T−1, 0, N)) unless the diffusion is built
with a checkpoint's own ``timesteps`` (chosen on a validation set and stored in its header,
issue 21): ``{"first": a, "last": b}`` gives round(linspace(a, b, N)) for every N, and
``{"by_steps": {"5": [...]}}`` names the exact list for some N (tried first). The step count
N is always the caller's (the node's ``ddim_steps``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

ModelFn = Callable[[Tensor, Tensor, object], Tensor]  # (x_t, t, cond) -> x̂0; cond is the caller's


def linear_betas(num_timesteps: int) -> np.ndarray:
    """The reference's linear β schedule (float64): s = min(1000/T, 50),
    β = linspace(s·1e-4, s·0.02, T); for T = 100: linspace(0.001, 0.2, 100) (SPEC §2)."""
    scale = min(1000.0 / num_timesteps, 50.0)
    return np.linspace(scale * 1e-4, scale * 0.02, num_timesteps, dtype=np.float64)


def check_timesteps(spec: dict | None, num_timesteps: int = 100) -> dict | None:
    """A checkpoint's sampler timesteps, checked: ``None``, or a dict with optional
    ``first`` ≥ ``last`` (integers in 0..T−1), ``by_steps`` (step count as a string ->
    strictly decreasing timesteps in 0..T−1, as many as the count) and free-form
    ``validation`` notes (how they were chosen). ValueError names what is wrong."""
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ValueError(f"timesteps must be an object, got {spec!r}")
    unknown = sorted(set(spec) - {"first", "last", "by_steps", "validation"})
    if unknown:
        raise ValueError(f"unknown timesteps keys {unknown}; known: by_steps, first, last, "
                         "validation")

    def valid_t(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < num_timesteps

    first, last = spec.get("first", num_timesteps - 1), spec.get("last", 0)
    if not (valid_t(first) and valid_t(last) and first >= last):
        raise ValueError(f"timesteps first/last must be integers with {num_timesteps - 1} ≥ "
                         f"first ≥ last ≥ 0, got {first!r}, {last!r}")
    by_steps = spec.get("by_steps", {})
    if not isinstance(by_steps, dict):
        raise ValueError(f"timesteps by_steps must be an object, got {by_steps!r}")
    for key, ts in by_steps.items():
        ok = (str(key).isdigit() and isinstance(ts, list) and len(ts) == int(key)
              and all(valid_t(v) for v in ts) and all(a > b for a, b in itertools.pairwise(ts)))
        if not ok:
            raise ValueError(f"timesteps by_steps[{key!r}] must list {key} strictly decreasing "
                             f"integers in 0..{num_timesteps - 1}, got {ts!r}")
    return {**spec, "by_steps": {str(k): list(v) for k, v in by_steps.items()}}


class GaussianDiffusion:
    """Forward process and DDIM reverse process over x0-predicting networks (SPEC §2)."""

    def __init__(self, num_timesteps: int = 100, timesteps: dict | None = None) -> None:
        if num_timesteps < 1:
            raise ValueError(f"num_timesteps must be ≥ 1, got {num_timesteps}")
        self.num_timesteps = num_timesteps
        self.timesteps = check_timesteps(timesteps, num_timesteps)
        self.betas = linear_betas(num_timesteps)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = np.cumprod(self.alphas)  # ᾱ_t
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        self._coef_cache: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def _coefs(self, device: torch.device) -> tuple[Tensor, Tensor]:
        if device not in self._coef_cache:
            self._coef_cache[device] = (
                torch.as_tensor(self.sqrt_alphas_cumprod, device=device),
                torch.as_tensor(self.sqrt_one_minus_alphas_cumprod, device=device),
            )
        return self._coef_cache[device]

    def sample_timesteps(self, n: int, device=None, generator=None) -> Tensor:
        """Training timesteps: n integers uniform in 0..T−1 (SPEC §2)."""
        return torch.randint(0, self.num_timesteps, (n,), device=device, generator=generator)

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor | None = None) -> Tensor:
        """Forward process: ``x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε``, ε ~ N(0, I) (SPEC §2).

        x0 [N, P], t [N] integer timesteps; computed in float64 then cast to x0's dtype.
        """
        if noise is None:
            noise = torch.randn_like(x0)
        a, b = self._coefs(x0.device)
        a, b = a[t.long()][:, None], b[t.long()][:, None]
        return (a * x0.double() + b * noise.double()).to(x0.dtype)

    def ddim_timesteps(self, steps: int) -> list[int]:
        """The ``steps`` timesteps visited by DDIM: round(linspace(T−1, 0, steps)) [choice,
        SPEC §2]; for T = 100: 5 -> [99, 74, 50, 25, 0], 1 -> [99]. With the diffusion's
        ``timesteps`` (see the module docstring): its list for ``steps`` if it has one, else
        round(linspace(first, last, steps))."""
        if not 1 <= steps <= self.num_timesteps:
            raise ValueError(f"DDIM steps must be in 1..{self.num_timesteps}, got {steps}")
        spec = self.timesteps or {}
        if str(steps) in spec.get("by_steps", {}):
            return list(spec["by_steps"][str(steps)])
        first = spec.get("first", self.num_timesteps - 1)
        last = spec.get("last", 0)
        if steps > first - last + 1:
            raise ValueError(f"DDIM steps must be ≤ {first - last + 1} for this checkpoint's "
                             f"timesteps {first}..{last}, got {steps}")
        if steps == 1:
            return [first]
        # round half to even like numpy; linspace(99, 0, 5) hits 74.25, 49.5, 24.75.
        return [int(v) for v in np.round(np.linspace(first, last, steps))]

    def ddim_step(self, x_t: Tensor, x0_pred: Tensor, t: int, s: int | None, eta: float = 0.0,
                  noise: Tensor | None = None) -> Tensor:
        """One DDIM update from timestep t to the next kept step s (SPEC §2).

        ``ε̂ = (x_t − √ᾱ_t·x̂0)/√(1−ᾱ_t)``, ``σ = η·√((1−ᾱ_s)/(1−ᾱ_t))·√(1−ᾱ_t/ᾱ_s)``,
        ``x_s = √ᾱ_s·x̂0 + √(1−ᾱ_s−σ²)·ε̂ + σ·z``. ``s=None`` is past the last step
        (ᾱ_s := 1): the result is x̂0 exactly. ``noise`` is z (needed when η > 0).
        """
        if s is None:
            return x0_pred
        ab_t, ab_s = float(self.alphas_cumprod[t]), float(self.alphas_cumprod[s])
        eps = (x_t - math.sqrt(ab_t) * x0_pred) / math.sqrt(1.0 - ab_t)
        sigma = eta * math.sqrt((1.0 - ab_s) / (1.0 - ab_t)) * math.sqrt(1.0 - ab_t / ab_s)
        out = math.sqrt(ab_s) * x0_pred + math.sqrt(max(1.0 - ab_s - sigma**2, 0.0)) * eps
        if sigma > 0.0:
            if noise is None:
                raise ValueError("eta > 0 needs noise for the DDIM step")
            out = out + sigma * noise
        return out

    def ddim_sample(
        self,
        model_fn: ModelFn,
        cond,
        shape: Sequence[int],
        steps: int = 5,
        eta: float = 0.0,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
        step_noise: Sequence[Tensor] | None = None,
    ) -> Tensor:
        """DDIM with x0 prediction: x_T ~ N(0, I) -> x̂0 [N, P] (SPEC §2).

        model_fn(x_t, t, cond) -> x̂0; ``cond`` has N rows (repeat it for K hypotheses, see
        :meth:`sample_hypotheses`); it may be any object when ``noise`` is given (the device is
        then the noise's). ``noise`` is x_T (else drawn with ``generator``);
        ``step_noise`` the z of each step but the last (η > 0; else drawn). Deterministic for
        η = 0 and fixed ``noise``. Arithmetic runs in float32 whatever the network's dtype.
        """
        device = (cond if noise is None else noise).device
        shape = tuple(shape)
        if noise is None:
            noise = torch.randn(shape, device=device, generator=generator)
        elif tuple(noise.shape) != shape:
            raise ValueError(f"noise has shape {tuple(noise.shape)}, expected {shape}")
        timesteps = self.ddim_timesteps(steps)
        x = noise.float()
        for i, t in enumerate(timesteps):
            t_batch = torch.full((shape[0],), t, device=device, dtype=torch.long)
            x0_pred = model_fn(x, t_batch, cond).float()
            s = timesteps[i + 1] if i + 1 < len(timesteps) else None
            z = None
            if eta > 0.0 and s is not None:
                z = (step_noise[i] if step_noise is not None
                     else torch.randn(shape, device=device, generator=generator))
            x = self.ddim_step(x, x0_pred, t, s, eta, z)
        return x

    def sample_hypotheses(
        self,
        model_fn: ModelFn,
        cond: Tensor,
        param_dim: int,
        hypotheses: int = 1,
        steps: int = 5,
        eta: float = 0.0,
        noise: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """K hypotheses per image in one batched call: cond [B, ...] -> x̂0 [B, K, P].

        The B·K rows run through the network together (each image repeated K times,
        hypotheses of one image adjacent). ``noise`` is x_T [B, K, P].
        """
        b = cond.shape[0]
        rows = cond.repeat_interleave(hypotheses, dim=0) if hypotheses > 1 else cond
        flat_noise = None if noise is None else noise.reshape(b * hypotheses, param_dim)
        x0 = self.ddim_sample(model_fn, rows, (b * hypotheses, param_dim), steps, eta,
                              flat_noise, generator)
        return x0.view(b, hypotheses, param_dim)
