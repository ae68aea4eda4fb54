"""A small position-based cloth simulation, to check the height-field drape against.

Not used by the generator (too slow for millions of samples); ``benchmarks/
bench_drape_cloth.py`` drops a simulated cloth on a few generated scenes and compares the
resting cloth with :func:`disrt_core.sim.drape.drape`.

Model (Müller et al. 2007, "Position based dynamics"): a rectangular grid of particles
(spacing ``spacing``) held together by distance constraints between grid neighbours
(stretch), diagonal neighbours (shear) and second neighbours (bending, weaker for a thin
sheet), each projected Gauss-Seidel style in colour groups that share no particle (so
every group is one vectorised update). Per time step: gravity, Verlet-style prediction
with velocity damping, ``iterations`` constraint sweeps, then collision with the support
height field (particles pushed up to ``support + thickness``, bilinear lookup) with static
friction (a particle in contact keeps its horizontal position). The cloth starts flat, 2 cm
above the highest support under it, and is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from disrt_core.sim.render import grid_faces, rasterize
from disrt_core.sim.scene import GRID, SceneGrid


@dataclass(frozen=True)
class ClothMaterial:
    """Stiffness per constraint sweep (0..1) of the three constraint families, thickness."""

    stretch: float = 1.0
    shear: float = 0.8
    bend: float = 0.05
    thickness: float = 0.002


SHEET = ClothMaterial(bend=0.02, thickness=0.002)
BLANKET = ClothMaterial(bend=0.4, thickness=0.015)


def _pairs(rows: int, cols: int, dr: int, dc: int, device) -> list[tuple[Tensor, Tensor]]:
    """Constraint (i, j) index pairs between particle (r, c) and (r+dr, c+dc), split into
    colour groups whose pairs share no particle."""
    r, c = torch.meshgrid(torch.arange(rows, device=device), torch.arange(cols, device=device),
                          indexing="ij")
    ok = (r + dr < rows) & (c + dc >= 0) & (c + dc < cols)
    r, c = r[ok], c[ok]
    # Pairs along one line share a particle with their neighbours on it only: alternate.
    colour = (r // abs(dr) if dr else c // abs(dc)) % 2
    return [(r[sel] * cols + c[sel], (r[sel] + dr) * cols + c[sel] + dc)
            for sel in (colour == 0, colour == 1)]


def _sample(height: Tensor, xy: Tensor, grid: SceneGrid) -> Tensor:
    """Bilinear lookup of a [R,C] height field at label points xy [P,2]."""
    col, row = grid.to_cells(xy[:, 0], xy[:, 1])
    rows, cols = height.shape
    g = torch.stack([col / (cols - 1), row / (rows - 1)], -1) * 2 - 1
    out = F.grid_sample(height[None, None], g[None, None], mode="bilinear",
                        padding_mode="border", align_corners=True)
    return out[0, 0, 0]


def simulate_cloth(support: Tensor, x_range: tuple[float, float], y_range: tuple[float, float],
                   material: ClothMaterial = SHEET, spacing: float = 0.02,
                   steps: int = 600, dt: float = 1 / 300, iterations: int = 8,
                   damping: float = 0.02, grid: SceneGrid = GRID) -> tuple[Tensor, Tensor]:
    """Drop a cloth covering the label rectangle ``x_range`` × ``y_range`` onto ``support``
    ([R,C] heights on ``grid``, m). Returns the resting particles [P,3] and the cloth's
    triangles [F,3] (particles row-major, rows toward −y)."""
    device = support.device
    xs = torch.arange(x_range[0], x_range[1] + 1e-9, spacing, device=device)
    ys = torch.arange(y_range[1], y_range[0] - 1e-9, -spacing, device=device)
    rows, cols = len(ys), len(xs)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    xy = torch.stack([xx.reshape(-1), yy.reshape(-1)], -1)
    floor = _sample(support, xy, grid) + material.thickness
    pos = torch.cat([xy, torch.full_like(xy[:, :1], float(floor.max()) + 0.02)], -1)
    prev = pos.clone()

    def pairs(*offsets):
        return [g for dr, dc in offsets for g in _pairs(rows, cols, dr, dc, device)]

    families = [
        (material.stretch, spacing, pairs((0, 1), (1, 0))),
        (material.shear, spacing * 2**0.5, pairs((1, 1), (1, -1))),
        (material.bend, 2 * spacing, pairs((0, 2), (2, 0))),
    ]
    gravity = torch.tensor([0.0, 0.0, -9.81], device=device) * dt * dt
    for _ in range(steps):
        velocity = (pos - prev) * (1 - damping)
        prev = pos
        pos = pos + velocity + gravity
        for _ in range(iterations):
            for stiffness, rest, groups in families:
                for i, j in groups:
                    d = pos[j] - pos[i]
                    length = d.norm(dim=-1, keepdim=True).clamp(min=1e-9)
                    corr = stiffness * 0.5 * (length - rest) / length * d
                    pos[i] += corr
                    pos[j] -= corr
        ground = _sample(support, pos[:, :2], grid) + material.thickness
        contact = pos[:, 2] < ground
        pos[:, 2] = torch.maximum(pos[:, 2], ground)
        pos[:, :2] = torch.where(contact[:, None], prev[:, :2], pos[:, :2])  # static friction
    return pos, grid_faces(rows, cols, device)


def cloth_heightfield(particles: Tensor, faces: Tensor, grid: SceneGrid = GRID) -> Tensor:
    """Top of the cloth mesh on the grid [R,C] (orthographic z-buffer); −inf off it."""
    col, row = grid.to_cells(particles[:, 0], particles[:, 1])
    uv = torch.stack([col, row], -1)[None]
    return rasterize(uv, particles[None, :, 2:3], faces, grid.shape, ("amax",))[0, 0]
