"""Positioning aids against the body: a foam wedge or a bolster along the trunk.

Wedges and bolsters are how nurses keep a patient turned (the 30° tilt of pressure-injury
prevention), and people tuck a long pillow against their back or hug one; unlike the things
of :mod:`disrt_core.sim.bed_objects`, which keep 3 cm from the body, these touch it.

Per sample, with probability ``prob`` [choice] (``SimConfig.prop_prob``), one prop on a
random side of the body, its long axis along the trunk (pelvis to neck, joints 0 and 12),
centred U[0, 0.6] of the way from the pelvis to the neck, U[0.40, 0.70] m long, its near
edge U[0, 2] cm outside the body's outline on that side over the prop's length:

* a *wedge* (half of them): a ramp U[0.12, 0.25] m high against the body falling to the
  mattress over U[0.20, 0.35] m;
* a *bolster*: a cylinder of radius U[0.06, 0.10] m lying on the mattress.

On the 1 cm scene grid of :mod:`disrt_core.sim.scene` (label frame; heights above the
mattress surface, m). The prop gives way under the body (never above its underside) and
carries none of its weight; the cover drapes over it; an empty bed gets none. Every draw
is made for every sample, so the random stream does not depend on what is present.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from disrt_core.sim.scene import GRID, SceneGrid


def body_props(body_top: Tensor, body_under: Tensor, joints: Tensor, gen: torch.Generator,
               prob: float, grid: SceneGrid = GRID) -> Tensor:
    """Prop heights [B,R,C] above the mattress surface (0 where none; module docstring).

    body_top, body_under: the body's top and underside heights [B,R,C] (m, −inf off the
    body), the underside over the mattress surface; joints [B,24,3] label frame (m)."""
    n, device = joints.shape[0], joints.device
    u = torch.rand(n, 8, generator=gen, device=device)
    pelvis, neck = joints[:, 0, :2], joints[:, 12, :2]
    axis = neck - pelvis
    along = axis / torch.linalg.vector_norm(axis, dim=-1, keepdim=True).clamp(min=1e-6)
    normal = torch.stack([-along[:, 1], along[:, 0]], -1)
    side = torch.where(u[:, 1] < 0.5, -1.0, 1.0)
    centre = pelvis + 0.6 * u[:, 2, None] * axis
    half_len = 0.20 + 0.15 * u[:, 3]
    x, y = grid.xy(device)
    dx, dy = x[None] - centre[:, 0, None, None], y[None] - centre[:, 1, None, None]
    a = dx * along[:, 0, None, None] + dy * along[:, 1, None, None]
    d = side[:, None, None] * (dx * normal[:, 0, None, None] + dy * normal[:, 1, None, None])
    on_body = torch.isfinite(body_top)
    within = a.abs() <= half_len[:, None, None]
    # The body's outline on the prop's side over its length (15 cm where no body is there).
    reach = torch.where(on_body & within, d, torch.full_like(d, -math.inf)).amax((-1, -2))
    reach = torch.where(torch.isfinite(reach), reach, torch.full_like(reach, 0.15))
    q = d - (reach + 0.02 * u[:, 4])[:, None, None]  # outward from the prop's near edge
    wedge = u[:, 5] < 0.5
    h = (0.12 + 0.13 * u[:, 6])[:, None, None]
    w = (0.20 + 0.15 * u[:, 7])[:, None, None]
    r = (0.06 + 0.04 * u[:, 7])[:, None, None]
    ramp = torch.where((q >= 0) & (q <= w), h * (1 - q / w), 0.0)
    roll = torch.sqrt((r * r - (q - r) ** 2).clamp(min=0))
    tube = torch.where((q >= 0) & (q <= 2 * r), r + roll, 0.0)
    height = torch.where(wedge[:, None, None], ramp, tube)
    # Only against a body: none on an empty bed.
    present = ((u[:, 0] < prob) & on_body.flatten(1).any(1))[:, None, None] & within
    height = torch.where(present, height, 0.0)
    # It gives way under the body: never above the body's underside.
    return torch.where(on_body, torch.minimum(height, body_under.clamp(min=0)), height)
