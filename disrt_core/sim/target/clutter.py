"""What lies on and around the target domain's beds that the source's beds lack.

All on the 1 cm scene grid of :mod:`disrt_core.sim.scene` (label frame, heights above the
undeformed mattress top, m). Drawn per sample by :func:`sample_clutter` (every draw made
for every sample, so the random stream does not depend on what is present):

* **Hospital bed rails** (each side, probability ``rail_prob``; they replace the source's
  low half rails): a 3 cm bar U[0, 3] cm outside the mattress edge, its top U[0.28, 0.45] m
  above the mattress, from U[0.05, 0.20] m below the head end over U[0.8, 1.6] m.
* **Head pillows of other shapes** (probability ``head_pillow_prob``, instead of the
  source's single super-elliptic cushion): a *box* pillow (flat top, 3 cm rounded edges,
  U[8, 14] cm), two *stacked* cushions (U[14, 24] cm in all), or a *contour* pillow (a
  U[9, 14] cm neck roll in front of a lower hollow).
* **Props beside the body** (probability ``prop_prob``): a foam *wedge* (a ramp U[12, 25] cm
  high at the body's side, U[20, 35] cm wide, U[40, 70] cm long), a *bolster* (cylinder of
  radius U[6, 10] cm, U[40, 70] cm long, along the body) — behind the back of a lateral
  body, on a random side otherwise — or a *hugged* cushion in front of a lateral body's
  chest. Like pillows they give way under the body (their top is the lower of their shape
  and the body's underside).
* **Hair** (probability ``hair_prob``): 16–48 strands from around the crown of the head
  outward, U[3, 12] mm high, short (2–8 cm) or (40 %) long (10–30 cm), and a cap
  U[5, 20] mm over the crown. The sensor model adds its noise where hair is seen
  (:mod:`disrt_core.sim.target.sensors`).

The second blanket is in :mod:`disrt_core.sim.target.blankets`.
"""

from __future__ import annotations

from dataclasses import dataclass

import roma
import torch
from torch import Tensor

from disrt_core.geometry.bedframe import BED_CENTRE_LABEL
from disrt_core.posture import LEFT, RIGHT
from disrt_core.sim.scene import GRID, BedScene, SceneGrid

HEAD_PILLOWS = ("none", "box", "stacked", "contour")
PROPS = ("none", "wedge", "bolster", "hug")
MAX_STRANDS = 48
STRAND_POINTS = 24


@dataclass
class Clutter:
    """Per-sample clutter parameters (see the module docstring; metres)."""

    rails: Tensor  # [B,2,4] per side (left, right): present, top, offset, length
    rail_start: Tensor  # [B] distance of the rails' head end below the mattress's head end
    pillow_kind: Tensor  # [B] long, HEAD_PILLOWS index
    pillow: Tensor  # [B,6] x offset, gap beyond the head, half width, half length, h1, h2
    prop_kind: Tensor  # [B] long, PROPS index
    prop: Tensor  # [B,6] side (±1), along offset, half length, height/radius, half width, -
    hair: Tensor  # [B,3] present, long, cap height
    strands: Tensor  # [B,S,4] angle offset, length, height, curl (height 0 = no strand)


def _lerp(lo: float, hi: float, u: Tensor) -> Tensor:
    return lo + (hi - lo) * u


def sample_clutter(n: int, gen: torch.Generator, device="cpu", rail_prob: float = 0.55,
                   head_pillow_prob: float = 0.6, prop_prob: float = 0.5,
                   hair_prob: float = 0.75) -> Clutter:
    """Random clutter for ``n`` samples (module docstring)."""
    u = torch.rand(n, 28, generator=gen, device=device)
    s = torch.rand(n, MAX_STRANDS, 4, generator=gen, device=device)
    rails = torch.stack([torch.stack([(u[:, k] < rail_prob).float(), _lerp(0.28, 0.45, u[:, 2 + k]),
                                      _lerp(0.0, 0.03, u[:, 4 + k]), _lerp(0.8, 1.6, u[:, 6 + k])],
                                     -1) for k in (0, 1)], 1)
    pillow_kind = torch.where(u[:, 9] < head_pillow_prob,
                              1 + (u[:, 10] * 3).long().clamp(max=2), 0)
    pillow = torch.stack([_lerp(-0.05, 0.05, u[:, 11]), _lerp(0.0, 0.08, u[:, 12]),
                          _lerp(0.26, 0.34, u[:, 13]), _lerp(0.17, 0.24, u[:, 14]),
                          u[:, 15], u[:, 16]], -1)
    prop_kind = torch.where(u[:, 17] < prop_prob, 1 + (u[:, 18] * 3).long().clamp(max=2), 0)
    prop = torch.stack([torch.where(u[:, 19] < 0.5, -1.0, 1.0), _lerp(-0.25, 0.35, u[:, 20]),
                        _lerp(0.20, 0.35, u[:, 21]), u[:, 22], _lerp(0.10, 0.175, u[:, 23]),
                        torch.zeros_like(u[:, 0])], -1)
    long = u[:, 25] < 0.4
    count = torch.where(long, float(MAX_STRANDS), 16 + (u[:, 26] * 32).floor())
    present = torch.arange(MAX_STRANDS, device=device)[None] < count[:, None]
    length = torch.where(long[:, None], _lerp(0.10, 0.30, s[..., 1]), _lerp(0.02, 0.08, s[..., 1]))
    strands = torch.stack([_lerp(-1.75, 1.75, s[..., 0]), length,
                           _lerp(0.003, 0.012, s[..., 2]) * present,
                           _lerp(-3.0, 3.0, s[..., 3])], -1)
    hair = torch.stack([(u[:, 24] < hair_prob).float(), long.float(),
                        _lerp(0.005, 0.02, u[:, 27])], -1)
    return Clutter(rails=rails, rail_start=_lerp(0.05, 0.20, u[:, 8]), pillow_kind=pillow_kind,
                   pillow=pillow, prop_kind=prop_kind, prop=prop, hair=hair, strands=strands)


def rail_heightfield(clutter: Clutter, beds: BedScene, grid: SceneGrid = GRID) -> Tensor:
    """Top of the rails [B,R,C] (−inf where there is none)."""
    x, y = grid.xy(beds.width.device)
    cx, cy = BED_CENTRE_LABEL
    hw, hl = beds.width[:, None, None] / 2, beds.length[:, None, None] / 2
    top_end = cy + hl - clutter.rail_start[:, None, None]
    out = torch.full((beds.width.shape[0], *x.shape), float("-inf"), device=x.device)
    for side, sign in ((0, -1.0), (1, 1.0)):
        present, top, offset, length = (clutter.rails[:, side, k, None, None] for k in range(4))
        bar_x = cx + sign * (hw + offset + 0.015)
        on = ((x - bar_x).abs() <= 0.015) & (y <= top_end) & (y >= top_end - length)
        out = torch.where(on & (present > 0), torch.maximum(out, top), out)
    return out


def head_pillow_heightfield(clutter: Clutter, beds: BedScene, head_y: Tensor,
                            grid: SceneGrid = GRID) -> Tensor:
    """Top of the head pillow [B,R,C] above the mattress (0 where none), its centre beyond
    ``head_y`` (label y of the head joint) and kept on the mattress."""
    x, y = grid.xy(beds.width.device)
    p = clutter.pillow
    kind = clutter.pillow_kind[:, None, None]
    half_w, half_l = p[:, 2, None, None], p[:, 3, None, None]
    top_edge = BED_CENTRE_LABEL[1] + beds.length / 2 - p[:, 3]
    py = torch.minimum(head_y + p[:, 1] + 0.05, top_edge)[:, None, None]
    px = BED_CENTRE_LABEL[0] + p[:, 0, None, None]
    dx, dy = (x - px).abs(), y - py
    inside = (dx <= half_w) & (dy.abs() <= half_l)
    edge = torch.minimum(half_w - dx, half_l - dy.abs()).clamp(min=0)
    # box: flat top U[8, 14] cm with rounded 3 cm edges
    box = _lerp(0.08, 0.14, p[:, 4, None, None]) * (edge / 0.03).clamp(max=1).sqrt()
    # stacked: two super-elliptic cushions, the upper one 85 % of the lower
    t1 = (dx / half_w) ** 4 + (dy / half_l) ** 4
    t2 = (dx / (0.85 * half_w)) ** 4 + ((dy - 0.01) / (0.85 * half_l)) ** 4
    h1, h2 = _lerp(0.08, 0.13, p[:, 4, None, None]), _lerp(0.06, 0.11, p[:, 5, None, None])
    stacked = h1 * (1 - t1).clamp(min=0).sqrt() + h2 * (1 - t2).clamp(min=0).sqrt()
    # contour: a neck roll on the body's side (−y) of a lower hollow
    roll = torch.exp(-0.5 * ((dy + 0.55 * half_l) / (0.25 * half_l)) ** 2)
    contour = _lerp(0.09, 0.14, p[:, 4, None, None]) * (0.6 + 0.4 * roll) * (
        (edge / 0.03).clamp(max=1).sqrt())
    out = torch.where(kind == 1, box, torch.where(kind == 2, stacked, contour))
    return torch.where(inside & (kind > 0), out, torch.zeros_like(out))


def prop_heightfield(clutter: Clutter, joints: Tensor, root_orient: Tensor, posture: Tensor,
                     grid: SceneGrid = GRID) -> Tensor:
    """Top of the prop beside the body [B,R,C] (0 where none). joints [B,24,3], root_orient
    [B,3] (label frame), posture [B] (``disrt_core.posture`` index)."""
    x, y = grid.xy(joints.device)
    p = clutter.prop
    kind = clutter.prop_kind[:, None, None]
    lateral = (posture == LEFT) | (posture == RIGHT)
    chest = roma.rotvec_to_rotmat(root_orient)[:, :2, 2]  # canonical z (out of the chest)
    chest = chest / chest.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    side_x = torch.stack([p[:, 0], torch.zeros_like(p[:, 0])], -1)
    # Beside the back of a lateral body; on a random side (across the bed) otherwise.
    away = torch.where(lateral[:, None], -chest, side_x)
    pelvis = joints[:, 0, :2]
    along = torch.stack([-away[:, 1], away[:, 0]], -1)  # along the body's side
    half_len, size, half_w = p[:, 2], p[:, 3], p[:, 4]
    radius = _lerp(0.06, 0.10, size)
    wedge_h = _lerp(0.12, 0.25, size)
    reach = torch.where(clutter.prop_kind == 2, radius, half_w)
    hug = clutter.prop_kind == 3
    centre = pelvis + away * (0.18 + reach)[:, None] + along * p[:, 1, None]
    chest_pt = joints[:, 9, :2] + chest * 0.25
    centre = torch.where((hug & lateral)[:, None], chest_pt, centre)
    dx = x[None] - centre[:, 0, None, None]
    dy = y[None] - centre[:, 1, None, None]
    a = dx * away[:, 0, None, None] + dy * away[:, 1, None, None]  # toward away from body
    b = dx * along[:, 0, None, None] + dy * along[:, 1, None, None]
    hl, hw = half_len[:, None, None], half_w[:, None, None]
    within = b.abs() <= hl
    wedge = wedge_h[:, None, None] * (1 - (a + hw) / (2 * hw)).clamp(0, 1) * (a.abs() <= hw)
    r = radius[:, None, None]
    bolster = (r + (r * r - a * a).clamp(min=0).sqrt()) * (a.abs() <= r)
    t = (a / hw) ** 4 + (b / hl) ** 4
    cushion = _lerp(0.12, 0.18, p[:, 3, None, None]) * (1 - t).clamp(min=0).sqrt()
    out = torch.where(kind == 1, wedge * within, torch.where(kind == 2, bolster * within, cushion))
    return torch.where(kind > 0, out, torch.zeros_like(out))


def hair_heightfield(clutter: Clutter, joints: Tensor, body_top: Tensor,
                     grid: SceneGrid = GRID) -> Tensor:
    """Height of the hair [B,R,C] above what it lies on (0 where none): strands from the
    crown outward (away from the neck) and a cap over the crown where the body is."""
    batch, device = joints.shape[0], joints.device
    rows, cols = grid.shape
    head, neck = joints[:, 15, :2], joints[:, 12, :2]
    up = head - neck
    up = up / up.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    base = torch.atan2(up[:, 1], up[:, 0])[:, None]  # [B,1]
    angle0, length, height, curl = clutter.strands.unbind(-1)  # [B,S]
    start_angle = base + angle0
    t = torch.linspace(0, 1, STRAND_POINTS, device=device)  # [K]
    heading = start_angle[..., None] + curl[..., None] * t * length[..., None]  # [B,S,K]
    step = length[..., None] / (STRAND_POINTS - 1)
    dx, dy = step * heading.cos(), step * heading.sin()  # exclusive sums: first point at 0
    rx = 0.09 * start_angle.cos()[..., None] + dx.cumsum(-1) - dx
    ry = 0.09 * start_angle.sin()[..., None] + dy.cumsum(-1) - dy
    px, py = head[:, 0, None, None] + rx, head[:, 1, None, None] + ry
    col, row = grid.to_cells(px, py)
    col, row = col.round().long(), row.round().long()
    ok = (col >= 0) & (col < cols) & (row >= 0) & (row < rows)
    index = (row.clamp(0, rows - 1) * cols + col.clamp(0, cols - 1)).reshape(batch, -1)
    value = torch.where(ok, height[..., None].expand_as(px), 0.0).reshape(batch, -1)
    hair = torch.zeros(batch, rows * cols, device=device)
    hair.scatter_reduce_(1, index, value, "amax")
    hair = hair.view(batch, rows, cols)
    x, y = grid.xy(device)
    dx, dy = x[None] - head[:, 0, None, None], y[None] - head[:, 1, None, None]
    crown = ((dx * dx + dy * dy) < 0.11**2) & (dx * up[:, 0, None, None]
                                                + dy * up[:, 1, None, None] > -0.02)
    cap = torch.where(crown & torch.isfinite(body_top), clutter.hair[:, 2, None, None], 0.0)
    return torch.maximum(hair, cap) * clutter.hair[:, 0, None, None]
