"""Batched position-based cloth on the GPU: the target domain's blankets.

The same model as :mod:`disrt_core.sim.cloth` (Müller et al. 2007: distance constraints
between grid neighbours (stretch), diagonal neighbours (shear) and second neighbours
(bending), projected Gauss-Seidel style in colour groups that share no particle; gravity,
velocity damping, collision with the support height field plus the cloth's thickness, static
friction), extended so that one call simulates a whole batch and can hold what a bed does to
a blanket:

* every sample has its own cloth of ``rows × cols`` particles: its own rest positions
  (size, place, rotation), rest lengths (``spacing`` [B,2]), material (stiffness per family
  and thickness) and support height field;
* ``start`` positions differ from the rest shape: a cloth started gathered (compressed
  along some direction) buckles into folds as its constraints pull it back to length while
  the particles that touch the body or the mattress stick (friction);
* contacts are inelastic (``inelastic``, default): a particle pushed up onto the support
  loses its vertical velocity; and a step into the support deeper than ``wall_m`` (2 cm,
  more than a falling particle moves in one step) is taken as running into a wall, e.g.
  the side of the mattress: the particle keeps its previous horizontal position instead of
  being lifted onto the top. Without these, cloth hanging beside the mattress that swings
  against its side is launched upward (``sim.cloth`` drops its cloth inside the edges and
  does without them);
* ``pinned`` particles (inverse mass 0) are moved, not simulated: from ``start`` to
  ``pin_target`` in equal steps over the first ``pin_ramp`` of the simulation, then held
  there (the border of a blanket being tucked under the mattress).

With one sample, no pins, elastic contacts, ``start`` = rest shape at one height and equal
spacings this computes exactly what :func:`disrt_core.sim.cloth.simulate_cloth` does (a test
checks it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from disrt_core.sim.cloth import _pairs
from disrt_core.sim.render import grid_faces, rasterize
from disrt_core.sim.scene import GRID, SceneGrid

#: Constraint families in solver order: (family index, grid offsets (drow, dcol)).
FAMILIES = ((0, ((0, 1), (1, 0))), (1, ((1, 1), (1, -1))), (2, ((0, 2), (2, 0))))


@dataclass
class ClothState:
    """A batch of cloths: particles row-major (rows toward the cloth's −y side)."""

    start: Tensor  # [B,P,3] initial positions (label frame, m)
    spacing: Tensor  # [B,2] rest distance between neighbours along a row (x) and a column (y)
    stiffness: Tensor  # [B,3] per sweep, stretch / shear / bend (0..1)
    thickness: Tensor  # [B] m
    pinned: Tensor | None = None  # [B,P] bool: moved, not simulated


def sample_heights(height: Tensor, xy: Tensor, grid: SceneGrid = GRID) -> Tensor:
    """Bilinear lookup of height fields [B,R,C] at label points xy [B,P,2] -> [B,P]
    (borders repeat the edge value)."""
    col, row = grid.to_cells(xy[..., 0], xy[..., 1])
    rows, cols = height.shape[-2:]
    g = torch.stack([col / (cols - 1), row / (rows - 1)], -1) * 2 - 1
    out = F.grid_sample(height[:, None], g[:, None], mode="bilinear", padding_mode="border",
                        align_corners=True)
    return out[:, 0, 0]


def simulate_cloths(support: Tensor, cloth: ClothState, rows: int, cols: int,
                    steps: int = 200, dt: float = 1 / 200, iterations: int = 6,
                    damping: float = 0.02, grid: SceneGrid = GRID,
                    pin_target: Tensor | None = None, pin_ramp: float = 0.5,
                    inelastic: bool = True, wall_m: float | None = 0.02) -> Tensor:
    """Drop a batch of cloths on ``support`` [B,R,C] (heights on ``grid``, m); returns the
    resting particles [B,P,3] (P = rows·cols). One time step: gravity and damped Verlet
    prediction, ``iterations`` sweeps over the constraint colour groups, collision with the
    support + thickness with static friction, pinned particles put where they are led
    (``pin_target`` [B,P,3], default: they stay at ``start``)."""
    device = support.device
    pos = cloth.start.clone()
    prev = pos.clone()
    batch = pos.shape[0]
    pinned = cloth.pinned if cloth.pinned is not None else torch.zeros(
        batch, rows * cols, dtype=torch.bool, device=device)
    inv_mass = (~pinned).to(pos.dtype)[..., None]  # [B,P,1]
    any_pinned = bool(pinned.any())
    sx, sy = cloth.spacing[:, 0], cloth.spacing[:, 1]
    groups = []
    for family, offsets in FAMILIES:
        stiffness = cloth.stiffness[:, family, None, None]  # [B,1,1]
        for dr, dc in offsets:
            rest = torch.hypot(dr * sy, dc * sx)[:, None, None]  # [B,1,1]
            for i, j in _pairs(rows, cols, dr, dc, device):
                wi, wj = inv_mass[:, i], inv_mass[:, j]
                groups.append((i, j, stiffness, rest, wi, wj,
                               1.0 / (wi + wj).clamp(min=1e-9)))
    gravity = torch.tensor([0.0, 0.0, -9.81], device=device, dtype=pos.dtype) * dt * dt
    thickness = cloth.thickness[:, None]
    target = cloth.start if pin_target is None else pin_target
    ramp = max(1, round(pin_ramp * steps))
    for step in range(steps):
        velocity = (pos - prev) * (1 - damping)
        prev = pos
        pos = pos + velocity + gravity
        for _ in range(iterations):
            for i, j, stiffness, rest, wi, wj, inv_w in groups:
                d = pos[:, j] - pos[:, i]
                length = d.norm(dim=-1, keepdim=True).clamp(min=1e-9)
                # Two free particles each move half the violation (as sim.cloth does); a
                # pinned one does not move and its partner takes all of it.
                corr = stiffness * (length - rest) / length * d * inv_w
                pos[:, i] += wi * corr
                pos[:, j] -= wj * corr
        ground = sample_heights(support, pos[..., :2], grid) + thickness
        if wall_m is not None:
            wall = (ground - pos[..., 2]) > wall_m
            pos[..., :2] = torch.where(wall[..., None], prev[..., :2], pos[..., :2])
            ground = sample_heights(support, pos[..., :2], grid) + thickness
        contact = pos[..., 2] < ground
        pos[..., 2] = torch.maximum(pos[..., 2], ground)
        pos[..., :2] = torch.where(contact[..., None], prev[..., :2], pos[..., :2])
        if inelastic:
            prev = prev.clone()
            prev[..., 2] = torch.where(contact, pos[..., 2], prev[..., 2])
        if any_pinned:
            held = torch.lerp(cloth.start, target, min(1.0, (step + 1) / ramp))
            pos = torch.where(pinned[..., None], held, pos)
    return pos


def cloth_faces(rows: int, cols: int, device=None) -> Tensor:
    """Triangles [F,3] of a row-major particle grid (normals up for rows toward −y)."""
    return grid_faces(rows, cols, device)


def cloth_heightfields(particles: Tensor, faces: Tensor, grid: SceneGrid = GRID) -> Tensor:
    """Top of each cloth mesh on the grid [B,R,C] (orthographic z-buffer); −inf off it."""
    col, row = grid.to_cells(particles[..., 0], particles[..., 1])
    uv = torch.stack([col, row], -1)
    return rasterize(uv, particles[..., 2:3], faces, grid.shape, ("amax",))[:, 0]
