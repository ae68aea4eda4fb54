"""The space the diffusion runs in and what the network's output means (issue 21).

The SPEC (§2) diffuses the parameter vector itself and the network returns x̂0 directly
("raw" space, "x0" parametrisation): the paper's recipe, and the default here. The vector's
parts (metres, radians, cos/sin, Anny phenotypes) have standard deviations of 0.03-0.5
against unit noise, so x_t carries almost no information about x0 from t ≈ 20 on, and a
network trained that way learns to ignore x_t (docs/diffusion_xt.md).

``normalised`` space diffuses ``z = (x − μ)/σ`` instead, with per-dimension mean and std of
the training data's vectors in the network's (offset) space, ``x = x0_label − offset``
(SPEC §1.3 step 1; this makes the translation consistent, SPEC §8.1). ``skip``
parametrisation then anchors the output to z_t: ``ẑ0 = c_skip(t)·z_t + c_out(t)·F`` with
``c_skip = √ᾱ_t`` and ``c_out = √(1−ᾱ_t)`` (the linear posterior mean of unit-variance data,
so F is −v of v-prediction). At small t, ẑ0 ≈ z_t whatever F is, so the identity that a
network from x_t through the embedding to the head hardly learns comes for free.

``sigma_data`` σ_d (scalar or per dimension, default 1) generalises the skip to EDM's
preconditioning (Karras et al. 2022) written for z_t = √ᾱ·z0 + √(1−ᾱ)·ε:

    c_skip = √ᾱ·σ_d² / (1 − ᾱ + ᾱ·σ_d²),   c_out = √(1−ᾱ)·σ_d / √(1 − ᾱ + ᾱ·σ_d²)

c_skip·z_t is the posterior mean of z0 given z_t when z0 is known to ±σ_d beforehand; with
σ_d = 1 (the data's own spread) it is the v-prediction above. Our network reads x_t only
through its embedding and cannot cancel the skip's noise precisely, so with σ_d = 1 its
mid-t answers mix in √ᾱ of a noisy z_t even where the depth image tells the dimension far
better (root turn and translation: 0.25 of their std): given the truth at t = 25 it was
worse than at t = 99 (docs/diffusion_xt.md, section 6). σ_d = the RMS error of the
network's image-only answer (t = T−1) per dimension makes ``c_skip·z_t + (1−c_skip)·μ``,
with μ the image-only answer, the right blend without reading z_t at all.

Spaces are stored in the checkpoint header's ``diffusion`` block (:meth:`to_dict`); a header
without them is the SPEC's raw/x0. Tensors: x and z [..., P], t [N] integer timesteps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

SPACES = ("raw", "normalised")
PARAMETRISATIONS = ("x0", "skip")
#: Smallest per-dimension std of the normalised space: dimensions that barely vary in the
#: data (locked joints, ±0.01 rad) are not blown up to unit variance, which would make the
#: network's tiny errors there huge in z.
DEFAULT_STD_FLOOR = 0.01

ModelFn = Callable[[Tensor, Tensor, Tensor], Tensor]


@dataclass
class DiffusionSpace:
    """Map between the network's parameter space x (offset space) and the diffused
    variable z, and the network's output parametrisation.

    kind: ``raw`` (z = x, the SPEC) or ``normalised`` (z = (x − mean)/std).
    parametrisation: ``x0`` (the network returns ẑ0) or ``skip`` (see the module; needs
        ``normalised``, where the data have unit variance).
    mean, std: [P] (``normalised`` only).
    sigma_data: σ_d of the skip coefficients, a float or [P] (``skip`` only; None = 1).
    """

    kind: str = "raw"
    parametrisation: str = "x0"
    mean: Tensor | None = None
    std: Tensor | None = None
    sigma_data: Tensor | float | None = None

    def __post_init__(self) -> None:
        if self.kind not in SPACES:
            raise ValueError(f"diffusion space must be one of {SPACES}, got {self.kind!r}")
        if self.parametrisation not in PARAMETRISATIONS:
            raise ValueError(f"parametrisation must be one of {PARAMETRISATIONS}, got "
                             f"{self.parametrisation!r}")
        if self.parametrisation == "skip" and self.kind != "normalised":
            raise ValueError("the skip parametrisation assumes unit-variance data: use it with "
                             "the normalised space")
        if self.kind == "normalised":
            if self.mean is None or self.std is None:
                raise ValueError("the normalised space needs mean and std")
            self.mean = torch.as_tensor(self.mean, dtype=torch.float32).flatten()
            self.std = torch.as_tensor(self.std, dtype=torch.float32).flatten()
            self.std = self.std.to(self.mean.device)
            if self.mean.shape != self.std.shape:
                raise ValueError(f"mean {tuple(self.mean.shape)} and std "
                                 f"{tuple(self.std.shape)} differ in shape")
            if not (torch.isfinite(self.mean).all() and torch.isfinite(self.std).all()
                    and (self.std > 0).all()):
                raise ValueError("normalised space: mean must be finite and std finite and > 0")
        if self.sigma_data is not None:
            if self.parametrisation != "skip":
                raise ValueError("sigma_data belongs to the skip parametrisation")
            sd = torch.as_tensor(self.sigma_data, dtype=torch.float32)
            if sd.ndim > 1 or (sd.ndim == 1 and self.mean is not None
                               and sd.shape != self.mean.shape):
                raise ValueError(f"sigma_data must be a number or one value per dimension, "
                                 f"got shape {tuple(sd.shape)}")
            if not (torch.isfinite(sd).all() and (sd > 0).all()):
                raise ValueError("sigma_data must be finite and > 0")
            self.sigma_data = sd

    def to(self, device: str | torch.device) -> DiffusionSpace:
        """A copy whose statistics live on ``device`` (no copies per call while sampling,
        e.g. inside a CUDA graph)."""
        if self.kind == "raw":
            return DiffusionSpace(self.kind, self.parametrisation)
        sd = None if self.sigma_data is None else self.sigma_data.to(device)
        return DiffusionSpace(self.kind, self.parametrisation, self.mean.to(device),
                              self.std.to(device), sd)

    @property
    def is_identity(self) -> bool:
        """True for the SPEC's raw space with x0 output (nothing to do)."""
        return self.kind == "raw" and self.parametrisation == "x0"

    @classmethod
    def from_data(cls, x: Tensor, parametrisation: str = "skip",
                  std_floor: float = DEFAULT_STD_FLOOR) -> DiffusionSpace:
        """The normalised space of vectors x [N, P] (network/offset space): per-dimension
        mean and std (population), the std floored at ``std_floor``."""
        x = x.detach().double()
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"need [N ≥ 2, P] vectors to normalise, got {tuple(x.shape)}")
        std = x.std(dim=0, unbiased=False).clamp_min(std_floor)
        return cls("normalised", parametrisation, x.mean(dim=0).float(), std.float())

    # --- the map -----------------------------------------------------------------------

    def _stats(self, like: Tensor) -> tuple[Tensor, Tensor]:
        return (self.mean.to(device=like.device, dtype=like.dtype),
                self.std.to(device=like.device, dtype=like.dtype))

    def to_z(self, x: Tensor) -> Tensor:
        """Network-space vectors x [..., P] -> diffused variable z."""
        if self.kind == "raw":
            return x
        mean, std = self._stats(x)
        return (x - mean) / std

    def from_z(self, z: Tensor) -> Tensor:
        """Diffused variable z [..., P] -> network-space vectors x (decoder input)."""
        if self.kind == "raw":
            return z
        mean, std = self._stats(z)
        return z * std + mean

    # --- the parametrisation -----------------------------------------------------------

    def skip_coefficients(self, alphas_cumprod: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """(c_skip, c_out) [N, 1] (or [N, P] with a per-dimension σ_d) at timesteps t:
        √ᾱ_t and √(1−ᾱ_t), or their σ_d form (module docstring)."""
        ab = alphas_cumprod.to(t.device)[t.long()][:, None]
        if self.sigma_data is None:
            return ab.sqrt(), (1.0 - ab).sqrt()
        s2 = self.sigma_data.to(device=ab.device, dtype=ab.dtype) ** 2
        denom = 1.0 - ab + ab * s2
        return ab.sqrt() * s2 / denom, (1.0 - ab).sqrt() * s2.sqrt() / denom.sqrt()

    def x0_from_output(self, out: Tensor, z_t: Tensor, t: Tensor, alphas_cumprod: Tensor
                       ) -> Tensor:
        """ẑ0 from the network's output F [N, P] (float32 arithmetic)."""
        if self.parametrisation == "x0":
            return out
        c_skip, c_out = self.skip_coefficients(alphas_cumprod, t)
        return (c_skip * z_t.float() + c_out * out.float()).to(out.dtype)

    def wrap(self, model_fn: ModelFn, alphas_cumprod) -> ModelFn:
        """``model_fn(z_t, t, cond) -> F`` as ``(z_t, t, cond) -> ẑ0`` for the sampler;
        ``model_fn`` itself for the x0 parametrisation."""
        if self.parametrisation == "x0":
            return model_fn
        table = torch.as_tensor(alphas_cumprod, dtype=torch.float32)
        cache: dict[torch.device, Tensor] = {table.device: table}

        def fn(z_t: Tensor, t: Tensor, cond: Tensor) -> Tensor:
            if z_t.device not in cache:
                cache[z_t.device] = table.to(z_t.device)
            return self.x0_from_output(model_fn(z_t, t, cond).float(), z_t, t,
                                       cache[z_t.device])

        return fn

    # --- header ------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """The checkpoint header's entries (plain JSON)."""
        out = {"space": self.kind, "parametrisation": self.parametrisation}
        if self.kind == "normalised":
            out["mean"] = [float(v) for v in self.mean]
            out["std"] = [float(v) for v in self.std]
        if self.sigma_data is not None:
            sd = self.sigma_data
            out["sigma_data"] = float(sd) if sd.ndim == 0 else [float(v) for v in sd]
        return out

    @classmethod
    def from_dict(cls, data: dict | None) -> DiffusionSpace:
        """Inverse of :meth:`to_dict`; missing keys are the SPEC's raw/x0."""
        data = data or {}
        return cls(data.get("space", "raw"), data.get("parametrisation", "x0"),
                   data.get("mean"), data.get("std"), data.get("sigma_data"))


def min_snr_weight(alphas_cumprod: Tensor, t: Tensor, gamma: float = 5.0) -> Tensor:
    """Min-SNR-γ weight of an x0 error at timesteps t [N]: ``min(SNR_t, γ)/γ`` with
    ``SNR_t = ᾱ_t/(1−ᾱ_t)`` (Hang et al. 2023; divided by γ so that it lies in (0, 1]).
    Small t keep the weight of 1 instead of SNR's 1000, large t fade out (SNR → 0)."""
    if not gamma > 0 or not math.isfinite(gamma):
        raise ValueError(f"min-SNR gamma must be > 0, got {gamma}")
    ab = alphas_cumprod.to(t.device)[t.long()]
    return torch.clamp(ab / (1.0 - ab), max=gamma) / gamma
