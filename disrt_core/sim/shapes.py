"""Adult body shapes (height about 1.5–2.0 m, slim to heavy) and their mass.

**Anny** (default): the six phenotypes are drawn directly and converted to the centred shape
vector with :func:`disrt_core.body.anny.phenotype_to_shape`:

* gender: 45 % near male (U[0, 0.15]), 45 % near female (U[0.85, 1]), 10 % U[0, 1];
* age U[0.6, 1.0] (adult, about 18 to 90 years); muscle U[0.15, 0.85]; weight U[0.05, 0.95]
  (slim to heavy); proportions U[0.2, 0.8];
* height: a target stature is drawn (half of the samples U[1.5, 2.0] m, half from the
  gender's normal, female 1.63 ± 0.07 m, male 1.77 ± 0.075 m, clipped to [1.5, 2.0]) and
  the height phenotype that gives it is solved from a stature model fitted when the sampler
  is built (:meth:`ShapeSampler.calibrate`: 256 random bodies at zero pose, least squares of
  the mesh's y extent on the phenotypes and their products with the height phenotype;
  residual about 2–3 cm). Achieved statures are therefore the targets ± a few cm.

**SMPL** (or any other backend): shape coefficients N(0, 1) clipped to ±2.5; the target
stature is met the same way through the coefficient the fitted stature model depends on
most (for SMPL's betas mostly the first one).

**Mass** = mesh volume (divergence theorem on the closed posed mesh) × 1000 kg/m³ [choice:
whole-body density with the lungs' air is about 985–1010 kg/m³], clipped to [30, 250] kg.
"""

from __future__ import annotations

import torch
from torch import Tensor

from disrt_core.body.anny import PHENOTYPES, phenotype_to_shape
from disrt_core.constants import on_device

BODY_DENSITY = 1000.0  # kg/m³
MASS_RANGE = (30.0, 250.0)  # kg
STATURE_RANGE = (1.5, 2.0)  # m
FEMALE_STATURE = (1.63, 0.07)
MALE_STATURE = (1.77, 0.075)


def mesh_volume(vertices: Tensor, faces: Tensor) -> Tensor:
    """Volume [B] (m³) of closed meshes vertices [B,V,3] with outward faces [F,3]."""
    a, b, c = (vertices[:, faces[:, k]] for k in range(3))
    return (a * torch.linalg.cross(b, c)).sum((-1, -2)) / 6.0


def body_mass(vertices: Tensor, faces: Tensor) -> Tensor:
    """Mass [B] in kg from the mesh volume (see the module docstring)."""
    return (mesh_volume(vertices, faces).abs() * BODY_DENSITY).clamp(*MASS_RANGE)


def stature(vertices: Tensor) -> Tensor:
    """Standing height [B] of zero-pose meshes: extent along the canonical y axis."""
    y = vertices[..., 1]
    return y.amax(-1) - y.amin(-1)


class ShapeSampler:
    """Draws adult shape vectors for one body model (see the module docstring)."""

    def __init__(self, body, calibration_size: int = 256, seed: int = 0) -> None:
        self.shape_dim = body.param_layout.shape_dim
        self.is_anny = body.model_id.startswith("anny")
        if self.is_anny and self.shape_dim != len(PHENOTYPES):
            raise ValueError(f"Anny model with {self.shape_dim} shape values, expected "
                             f"{len(PHENOTYPES)} phenotypes")
        self.height_index = PHENOTYPES.index("height") if self.is_anny else 0
        self.calibrate(body, calibration_size, seed)

    def _base(self, n: int, gen: torch.Generator, device) -> tuple[Tensor, Tensor]:
        """Shape coordinates before the height solve ([n, D]; phenotypes for Anny) and
        a female weight in [0, 1] per sample (for the stature distribution)."""
        u = torch.rand(n, self.shape_dim, generator=gen, device=device)
        if not self.is_anny:
            z = torch.randn(n, self.shape_dim, generator=gen, device=device).clamp(-2.5, 2.5)
            return z, u[:, 0].round()
        pick = torch.rand(n, generator=gen, device=device)
        g = torch.where(pick < 0.45, 0.15 * u[:, 0],
                        torch.where(pick < 0.9, 0.85 + 0.15 * u[:, 0], u[:, 0]))
        ph = torch.stack([
            g, 0.6 + 0.4 * u[:, 1], 0.15 + 0.7 * u[:, 2], 0.05 + 0.9 * u[:, 3], u[:, 4],
            0.2 + 0.6 * u[:, 5],
        ], -1)  # fmt: skip
        return ph, g  # Anny's gender phenotype: 1 = female

    def _to_shape(self, coords: Tensor) -> Tensor:
        return phenotype_to_shape(coords) if self.is_anny else coords

    def _features(self, coords: Tensor) -> tuple[Tensor, Tensor]:
        """Stature model: stature ≈ A(others)·w + h·(B(others)·u); returns (A, B) rows."""
        h = self.height_index
        others = torch.cat([coords[:, :h], coords[:, h + 1:]], 1)
        ones = torch.ones_like(coords[:, :1])
        return torch.cat([ones, others], 1), torch.cat([ones, others], 1)

    @torch.no_grad()
    def calibrate(self, body, n: int, seed: int) -> None:
        """Fit the stature model on ``n`` random bodies at zero pose (CPU generator)."""
        gen = torch.Generator().manual_seed(seed)
        device = body.faces.device
        coords, _ = self._base(n, gen, "cpu")
        low, high = (0.0, 1.0) if self.is_anny else (-2.5, 2.5)
        coords[:, self.height_index] = low + (high - low) * torch.rand(n, generator=gen)
        params = body.zero_params(n)
        params[:, body.param_layout.shape] = self._to_shape(coords).to(device)
        vertices, _ = body(params)
        target = stature(vertices).cpu()
        a, b = self._features(coords)
        h = coords[:, self.height_index : self.height_index + 1]
        design = torch.cat([a, b * h], 1).double()
        sol = torch.linalg.lstsq(design, target[:, None].double()).solution[:, 0].float()
        self.w_a, self.w_b = sol[: a.shape[1]], sol[a.shape[1]:]
        fitted = (design.float() @ sol)
        self.residual_m = float((fitted - target).pow(2).mean().sqrt())
        self.height_bounds = (low, high)

    def sample_stature(self, female: Tensor, gen: torch.Generator) -> Tensor:
        """Target statures [n] in metres (see the module docstring)."""
        n, device = female.shape[0], female.device
        pick = torch.rand(n, generator=gen, device=device)
        uniform = STATURE_RANGE[0] + (STATURE_RANGE[1] - STATURE_RANGE[0]) * torch.rand(
            n, generator=gen, device=device)
        mean = torch.where(female > 0.5, FEMALE_STATURE[0], MALE_STATURE[0])
        std = torch.where(female > 0.5, FEMALE_STATURE[1], MALE_STATURE[1])
        normal = mean + std * torch.randn(n, generator=gen, device=device)
        return torch.where(pick < 0.5, uniform, normal).clamp(*STATURE_RANGE)

    def sample(self, n: int, gen: torch.Generator, device="cpu") -> tuple[Tensor, Tensor]:
        """Shape vectors [n, shape_dim] and their target statures [n] (m)."""
        coords, female = self._base(n, gen, device)
        target = self.sample_stature(female, gen)
        a, b = self._features(coords)
        w_a, w_b = on_device(self.w_a, a), on_device(self.w_b, b)
        slope = b @ w_b
        h = (target - a @ w_a) / torch.where(slope.abs() > 1e-6, slope, torch.ones_like(slope))
        coords[:, self.height_index] = h.clamp(*self.height_bounds)
        return self._to_shape(coords), target
