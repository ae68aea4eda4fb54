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

import torch
from torch import Tensor

from disrt_core.geometry.bedfit_regions import any_on_ray

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
    flat, lv = height.reshape(B * K, F * F), level.reshape(-1)

    def hides(grid: Tensor, idx: Tensor, s: Tensor, dist: Tensor) -> Tensor:
        need = torch.clamp(SLACK * lv[grid] * s / dist, min=CASTER)
        return (s < dist) & (flat[grid, idx] >= need)

    return any_on_ray(where, pa, pb, phi, cell, reach, hides)
