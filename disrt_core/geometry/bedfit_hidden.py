"""Bed finding (aside): the cells of a candidate's fine grid hidden from the camera behind
something standing on it.

Batched torch, part of the fill check (:func:`bedfit_checks.checks`). A person lying on the
mattress, a raised blanket or a tray over it hide the mattress behind them from the camera:
those cells read nothing (or too little to be known), and where the hidden stretch reaches an
edge of the bed (the person lies along the side away from the camera, the bed stands against
a wall) it is not enclosed by bed, so the fine grid counts it as no bed at all
(:func:`bedfit_rect.fine_maps`). On the benchmark and tuning rooms a person's shadow took the
fill of rectangles right to 3-4 cm below ``min_fill`` (0.77-0.79: 15-21 % of the rectangle
lost on cells without readings; :func:`hidden_cells` is the test of why they read nothing).

A cell is hidden when, on the straight line from it toward the camera's foot point on the
mattress plane, a cell within ``reach`` stands high enough to cut the ray from the camera to
it: with the camera ``H`` above the plane and the cell ``r`` from its foot point, the ray
passes ``H·s/r`` above the plane at ``s`` back toward the camera (similar triangles); a
surface at least that high there (and ``CASTER`` above the level, so that the mattress's
own noise casts nothing) blocks the view. Only the fill counts these cells: the extents, and
so the corners, are measured as before; an edge inside such a shadow is not seen on the raw
pixels, so the fit comes back weak (``unseen_edge``).

Measured (median of 5 frames): tuning rooms 4000-4095, right 594 -> 603 of 762, refused
84 -> 70, unflagged wrong 4 -> 4 (the 5 newly accepted fits 5 cm or more off are all weak);
3000-3047 unchanged but for one refusal now a weak fit 5.7 cm off; benchmark rooms 500-531
(256) right 194 -> 201, refused 31 -> 22, unflagged wrong 0 -> 0; validation rooms
6000-6095 right 621 -> 625 of 754, refused 59 -> 55, unflagged wrong 6 -> 6; bed scenes
unchanged (94 and 93 of 96).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

CASTER = 0.1  # m above the level: a surface that can cast a shadow on the mattress
# [choice] The 3×3-mean height of a caster's cells is below its ridge (a body's top is
# rounded, the mean takes in its sides): a caster of SLACK of the needed height still hides.
# On the tuning rooms 4000-4095 SLACK 0.6, 0.8 and 1.0 gave the same counts.
SLACK = 0.8
REACH = 1.0  # m: the farthest a shadow is looked back along (a 0.5 m caster 3 m out seen from 2 m)


def hidden_cells(height: Tensor, where: Tensor, pa: Tensor, pb: Tensor, phi: Tensor,
                 cell: Tensor, level: Tensor, reach: float = REACH) -> Tensor:
    """[B,K,F,F] bool: the ``where`` cells of fine grids (heights above the level ``height``,
    plane coordinates pa, pb [B,K,F,F] with the camera's foot point at (0, 0), grids turned by
    phi [B,K], cells [B,K] m, the level ``level`` [B,K] m below the camera) that something on
    the line toward the camera stands high enough to hide (see the module docstring).
    Only the ``where`` cells are looked at."""
    B, K, F, _ = height.shape
    out = torch.zeros_like(where)
    sel = where.reshape(-1).nonzero()[:, 0]
    if sel.numel() == 0:
        return out
    grid = sel // (F * F)  # candidate index b·K + k
    row, col = (sel % (F * F)) // F, sel % F
    a, b = pa.reshape(-1)[sel], pb.reshape(-1)[sel]
    dist = torch.sqrt(a**2 + b**2).clamp(min=1e-6)
    da, db = -a / dist, -b / dist  # unit direction toward the camera, plane coordinates
    p = phi.reshape(-1)[grid]
    cos, sin = torch.cos(p), torch.sin(p)
    c_ = cell.reshape(-1)[grid]
    du, dv = da * cos + db * sin, -da * sin + db * cos  # cells per cell, grid axes
    H = level.reshape(-1)[grid]
    flat = height.reshape(B * K, F * F)
    steps = math.ceil(reach / float(cell.min()))
    k = torch.arange(1, max(1, steps) + 1, device=height.device, dtype=dv.dtype)[:, None]
    r = (row + torch.round(k * dv)).long()
    c = (col + torch.round(k * du)).long()
    s = k * c_  # m back toward the camera [S,M]
    ok = (r >= 0) & (r < F) & (c >= 0) & (c < F) & (s <= reach) & (s < dist)
    h = flat[grid, r.clamp(0, F - 1) * F + c.clamp(0, F - 1)]
    need = torch.clamp(SLACK * H * s / dist, min=CASTER)
    out.view(-1)[sel] = (ok & (h >= need)).any(0)
    return out
