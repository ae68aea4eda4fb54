"""Things lying on the bed beside the person: extra pillows, cushions, books, a laptop, a
phone, folded clothes, a bag or a stuffed toy.

On the 1 cm scene grid of :mod:`disrt_core.sim.scene` (label frame; heights above the
mattress surface they rest on, m). Per sample, :data:`SLOTS` objects, each present with
probability ``prob`` [choice]; a type drawn uniformly from :data:`OBJECTS`; a super-ellipse
footprint ``|x/a|^p + |y/b|^p ≤ 1`` turned by a uniform angle, with the profile
``h·sqrt(1 − t)`` of the pillow (``p`` small: round and soft; large: boxy and flat); put
uniformly on the mattress (pillows toward the head end, against the head edge) at the
first of :data:`TRIES` positions whose outline keeps 3 cm from the body, and dropped if it
would still lie within 3 cm of it. Half of them lie under the cover (the
blanket drapes over them), half on top of it. Every draw is made for every slot, so the
random stream does not depend on what is present.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from disrt_core.geometry.bedframe import BED_CENTRE_LABEL
from disrt_core.sim.scene import GRID, BedScene, SceneGrid, dilate, mattress_mask

SLOTS = 3
TRIES = 8  # positions tried per object
#: name -> (half length a lo/hi, half width b lo/hi, height lo/hi, exponent p), metres.
OBJECTS = {
    "pillow": ((0.25, 0.33), (0.17, 0.24), (0.08, 0.14), 4.0),
    "cushion": ((0.18, 0.25), (0.18, 0.25), (0.08, 0.12), 4.0),
    "book": ((0.10, 0.15), (0.07, 0.11), (0.01, 0.04), 16.0),
    "laptop": ((0.15, 0.19), (0.10, 0.13), (0.015, 0.025), 16.0),
    "phone": ((0.07, 0.08), (0.034, 0.04), (0.007, 0.01), 16.0),
    "clothes": ((0.15, 0.30), (0.12, 0.25), (0.03, 0.10), 3.0),
    "bag": ((0.10, 0.25), (0.08, 0.20), (0.08, 0.25), 2.0),
}
_TABLE = torch.tensor([[*a, *b, *h, p] for a, b, h, p in OBJECTS.values()])
_PILLOW = list(OBJECTS).index("pillow")


def bed_objects(beds: BedScene, body_top: Tensor, gen: torch.Generator, prob: float = 0.5,
                grid: SceneGrid = GRID) -> tuple[Tensor, Tensor]:
    """Heights [B,R,C] of the objects under the cover and of those on top of it (0 where
    none) above the mattress surface; ``body_top`` [B,R,C] is the body's top height map
    (−inf off the body)."""
    n, device = beds.width.shape[0], beds.width.device
    u = torch.rand(n, SLOTS, 10, generator=gen, device=device)
    table = _TABLE.to(device)[(u[..., 0] * len(OBJECTS)).long().clamp(max=len(OBJECTS) - 1)]
    a = table[..., 0] + (table[..., 1] - table[..., 0]) * u[..., 1]
    b = table[..., 2] + (table[..., 3] - table[..., 2]) * u[..., 2]
    h = table[..., 4] + (table[..., 5] - table[..., 4]) * u[..., 3]
    p = table[..., 6]
    pillow = (u[..., 0] * len(OBJECTS)).long() == _PILLOW
    angle = torch.where(pillow, (u[..., 4] - 0.5) * math.radians(20), 2 * math.pi * u[..., 4])
    cx, cy = BED_CENTRE_LABEL
    hw, hl = beds.width[:, None, None] / 2, beds.length[:, None, None] / 2
    # TRIES positions per slot; the first whose outline (centre and 8 points around it)
    # keeps 3 cm from the body is used.
    reach = torch.sqrt(a * a + b * b)[..., None]  # a turned box's corners reach this far
    v = torch.rand(n, SLOTS, TRIES, 2, generator=gen, device=device)
    x = cx + (hw - reach).clamp(min=0) * (2 * v[..., 0] - 1)
    y = cy + (hl - reach).clamp(min=0) * (2 * v[..., 1] - 1)
    y = torch.where(pillow[..., None], cy + hl - b[..., None] - 0.1 * v[..., 1], y)
    near_body = dilate(body_top, 3) > -math.inf  # within 3 cells of the body
    ring = torch.linspace(0, 2 * math.pi, 9, device=device)[:-1]
    px = torch.cat([x[..., None], x[..., None] + a[..., None, None] * torch.cos(ring)], -1)
    py = torch.cat([y[..., None], y[..., None] + b[..., None, None] * torch.sin(ring)], -1)
    col, row = grid.to_cells(px, py)
    rows, cols = grid.shape
    flat = (row.round().long().clamp(0, rows - 1) * cols
            + col.round().long().clamp(0, cols - 1)).reshape(n, -1)
    hit = near_body.reshape(n, -1).gather(1, flat).reshape(n, SLOTS, TRIES, 9).any(-1)
    first = (~hit).float().argmax(-1)  # the first clear try (0 when none is)
    x = x.gather(-1, first[..., None])[..., 0]
    y = y.gather(-1, first[..., None])[..., 0]
    present = u[..., 7] < prob
    under = u[..., 8] < 0.5
    gx, gy = grid.xy(device)
    dx, dy = gx[None, None] - x[..., None, None], gy[None, None] - y[..., None, None]
    c, s = torch.cos(angle)[..., None, None], torch.sin(angle)[..., None, None]
    lx, ly = c * dx + s * dy, -s * dx + c * dy
    t = (lx / a[..., None, None]).abs() ** p[..., None, None] + (
        ly / b[..., None, None]).abs() ** p[..., None, None]
    height = h[..., None, None] * torch.sqrt((1 - t).clamp(min=0))  # [B,S,R,C]
    clash = ((height > 0) & near_body[:, None]).any(-1).any(-1)
    height = height * (present & ~clash)[..., None, None] * mattress_mask(beds, grid)[:, None]
    below = torch.where(under[..., None, None], height, torch.zeros_like(height)).amax(1)
    above = torch.where(~under[..., None, None], height, torch.zeros_like(height)).amax(1)
    return below, above
