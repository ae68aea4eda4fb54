"""The target domain's blankets: simulated cloths with folds, tucking and overhang, and a
second blanket thrown over the bed.

Main cover (per sample, :func:`sample_blankets`; cover level 1 = sheet, 2 = blanket):

* extent: across the whole mattress plus an overhang of U[0.10, 0.35] m on each side
  (independently), or (20 %) pushed aside so that one side ends U[0.15, 0.45] m from the
  body's midline; from U[0.05, 0.30] m beyond the foot end to a top edge U[−0.05, 0.30] m
  below the neck joint; turned by U[−6°, 6°];
* material: stretch 1, shear 0.8; sheet bending U[0.01, 0.05], thickness U[1.5, 3] mm;
  blanket bending U[0.08, 0.3], thickness U[8, 25] mm (around the materials of
  :mod:`disrt_core.sim.cloth`; stiffer blankets stand as one arch instead of folding);
* folds: the cloth starts gathered, compressed to U[0.88, 1.0] of its length along a random
  direction, with a wave of amplitude U[0, 2] cm and wavelength U[0.15, 0.4] m across it;
  dropped onto the bed it pulls back to length where it can and buckles where friction holds
  it;
* tucking: each long side and the foot end is tucked with probability 0.3 (not a side that
  was pushed aside): the cloth's border beyond that mattress edge is pinned and led, over
  the first half of the simulation, down the mattress's side (5 mm outside the edge, each
  particle as far below the top as it lay beyond the edge: the cloth keeps its length on
  its way under the mattress), which pulls the blanket taut over the body on that side;
* overhang: what is not tucked hangs over the mattress edges toward the frame and floor.

Second blanket (a throw, :func:`sample_throws`, probability ``throw_prob``): U[0.6, 1.2] ×
U[0.5, 1.0] m, anywhere over the lower three quarters of the mattress, turned by U[−35°,
35°], blanket material folded double (thickness U[15, 40] mm), gathered to U[0.7, 0.95]; it
is dropped after the main cover, onto it. Neither changes the ``cover`` label's meaning
(that of the main cover; the throw is clutter).

The simulated cloth is rasterised to the 1 cm scene grid and never left below the body or
the bed between its particles (its height is at least the support's plus its thickness
where it lies), so a coarse particle grid cannot let a hand poke through.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from disrt_core.geometry.bedframe import BED_CENTRE_LABEL
from disrt_core.sim.scene import GRID, BedScene, SceneGrid, dilate
from disrt_core.sim.target.cloth import (
    ClothState,
    cloth_faces,
    cloth_heightfields,
    sample_heights,
    simulate_cloths,
)

TUCK_PROB = 0.3
TUCK_DEPTH = 0.01  # m below the mattress top where a tucked border starts down its side
#: (lo, hi) per material property of cover levels 1 (sheet) and 2 (blanket).
MATERIALS = {1: {"bend": (0.01, 0.05), "thickness": (0.0015, 0.003)},
             2: {"bend": (0.08, 0.3), "thickness": (0.008, 0.025)}}
STRETCH, SHEAR = 1.0, 0.8


@dataclass
class Cloths:
    """Per-sample cloth layouts (all [B] unless noted; metres, radians, label frame)."""

    present: Tensor  # [B] bool
    centre: Tensor  # [B,2]
    angle: Tensor
    x_range: Tensor  # [B,2] across, in the cloth's frame, relative to centre
    y_range: Tensor  # [B,2] along
    bend: Tensor
    thickness: Tensor
    gather: Tensor  # length factor of the start shape along ``gather_dir`` (1 = flat)
    gather_dir: Tensor  # angle of the compression direction in the cloth's frame
    wave: Tensor  # [B,3] amplitude (m), wavelength (m), phase
    tuck: Tensor  # [B,3] bool: left, right, foot end

    def select(self, idx: Tensor) -> Cloths:
        return Cloths(**{k: v[idx] for k, v in self.__dict__.items()})


def _lerp(lo_hi: tuple[float, float], u: Tensor) -> Tensor:
    return lo_hi[0] + (lo_hi[1] - lo_hi[0]) * u


def sample_blankets(cover: Tensor, joints: Tensor, beds: BedScene,
                    gen: torch.Generator) -> Cloths:
    """The main cover of each sample (module docstring); joints [B,24,3] label frame. All
    draws are made for every sample, so the random stream does not depend on ``cover``."""
    n, device = cover.shape[0], cover.device
    u = torch.rand(n, 16, generator=gen, device=device)
    cx, cy = BED_CENTRE_LABEL
    hw, hl = beds.width / 2, beds.length / 2
    neck_y, mid_x = joints[:, 12, 1], joints[:, 0, 0]
    top = neck_y - _lerp((-0.05, 0.30), u[:, 0])
    bottom = cy - hl - _lerp((0.05, 0.30), u[:, 1])
    left = cx - hw - _lerp((0.10, 0.35), u[:, 2])
    right = cx + hw + _lerp((0.10, 0.35), u[:, 3])
    aside = u[:, 4] < 0.2
    cut = _lerp((0.15, 0.45), u[:, 5])
    left_cut = aside & (u[:, 6] < 0.5)
    right_cut = aside & (u[:, 6] >= 0.5)
    left = torch.where(left_cut, mid_x - cut, left)
    right = torch.where(right_cut, mid_x + cut, right)
    centre = torch.stack([(left + right) / 2, (top + bottom) / 2], -1)
    tuck = torch.stack([(u[:, 7] < TUCK_PROB) & ~left_cut, (u[:, 8] < TUCK_PROB) & ~right_cut,
                        u[:, 9] < TUCK_PROB], -1)
    level = cover.clamp(1, 2)

    def pick(key: str, uu: Tensor) -> Tensor:
        return torch.where(level == 1, _lerp(MATERIALS[1][key], uu), _lerp(MATERIALS[2][key], uu))

    return Cloths(
        present=cover > 0, centre=centre, angle=torch.deg2rad(_lerp((-6.0, 6.0), u[:, 10])),
        x_range=torch.stack([left - centre[:, 0], right - centre[:, 0]], -1),
        y_range=torch.stack([bottom - centre[:, 1], top - centre[:, 1]], -1),
        bend=pick("bend", u[:, 11]), thickness=pick("thickness", u[:, 12]),
        gather=_lerp((0.88, 1.0), u[:, 13]), gather_dir=math.pi * u[:, 14],
        wave=torch.stack([0.02 * u[:, 15], _lerp((0.15, 0.4), u[:, 13]),
                          2 * math.pi * u[:, 14]], -1),
        tuck=tuck)


def sample_throws(beds: BedScene, gen: torch.Generator, prob: float) -> Cloths:
    """The second blanket (module docstring), present with probability ``prob``."""
    n, device = beds.width.shape[0], beds.width.device
    u = torch.rand(n, 10, generator=gen, device=device)
    cx, cy = BED_CENTRE_LABEL
    hl = beds.length / 2
    half_x, half_y = _lerp((0.3, 0.6), u[:, 1]), _lerp((0.25, 0.5), u[:, 2])
    centre = torch.stack([cx + _lerp((-0.3, 0.3), u[:, 3]),
                          cy - hl + 0.25 + 1.5 * hl * u[:, 4]], -1)
    return Cloths(
        present=u[:, 0] < prob, centre=centre,
        angle=torch.deg2rad(_lerp((-35.0, 35.0), u[:, 5])),
        x_range=torch.stack([-half_x, half_x], -1), y_range=torch.stack([-half_y, half_y], -1),
        bend=_lerp(MATERIALS[2]["bend"], u[:, 6]), thickness=_lerp((0.015, 0.04), u[:, 7]),
        gather=_lerp((0.7, 0.95), u[:, 8]), gather_dir=math.pi * u[:, 9],
        wave=torch.stack([0.02 * u[:, 8], _lerp((0.1, 0.3), u[:, 9]),
                          2 * math.pi * u[:, 6]], -1),
        tuck=torch.zeros(n, 3, dtype=torch.bool, device=device))


def _rotate(a: Tensor, b: Tensor, angle: Tensor) -> tuple[Tensor, Tensor]:
    c, s = angle.cos()[:, None], angle.sin()[:, None]
    return c * a - s * b, s * a + c * b


def cloth_start(cloths: Cloths, support: Tensor, beds: BedScene, rows: int, cols: int,
                grid: SceneGrid = GRID) -> tuple[ClothState, Tensor]:
    """Initial state of the simulation for present cloths only ([b] = ``present``): the
    gathered, waved start shape 2 cm above the highest support under the cloth, tucked
    borders pinned. Returns the state and the pin targets [b,P,3]."""
    device = support.device
    a = torch.linspace(0, 1, cols, device=device)[None].expand(rows, cols).reshape(1, -1)
    b = torch.linspace(1, 0, rows, device=device)[:, None].expand(rows, cols).reshape(1, -1)
    xr, yr = cloths.x_range, cloths.y_range
    a = xr[:, :1] + (xr[:, 1:] - xr[:, :1]) * a  # [b,P] cloth frame, rows toward -y
    b = yr[:, :1] + (yr[:, 1:] - yr[:, :1]) * b
    spacing = torch.stack([(xr[:, 1] - xr[:, 0]) / (cols - 1),
                           (yr[:, 1] - yr[:, 0]) / (rows - 1)], -1)
    rx, ry = _rotate(a, b, cloths.angle)
    rest = torch.stack([rx + cloths.centre[:, :1], ry + cloths.centre[:, 1:]], -1)
    # Gathered start: compressed along the direction g toward the cloth's centre, waved.
    gx, gy = cloths.gather_dir.cos()[:, None], cloths.gather_dir.sin()[:, None]
    along = a * gx + b * gy
    shrink = (1 - cloths.gather)[:, None] * along
    sa, sb = _rotate(a - shrink * gx, b - shrink * gy, cloths.angle)
    start_xy = torch.stack([sa + cloths.centre[:, :1], sb + cloths.centre[:, 1:]], -1)
    amp, length, phase = cloths.wave.unbind(-1)
    wave = amp[:, None] * torch.sin(2 * math.pi * along / length[:, None] + phase[:, None])
    floor = sample_heights(support, rest, grid) + cloths.thickness[:, None]
    z0 = floor.amax(1, keepdim=True) + 0.02 + wave + amp[:, None]
    start = torch.cat([start_xy, z0[..., None]], -1)
    # Tucked borders: particles beyond a tucked mattress edge go down its side, 5 mm outside
    # it, each as far below the top as it lay beyond the edge (the cloth keeps its length).
    cx, cy = BED_CENTRE_LABEL
    hw, hl = (beds.width / 2)[:, None], (beds.length / 2)[:, None]
    x, y = rest[..., 0], rest[..., 1]
    beyond_left, beyond_right = (cx - hw) - x, x - (cx + hw)
    beyond_foot = (cy - hl) - y
    left = cloths.tuck[:, :1] & (beyond_left > 0.02)
    right = cloths.tuck[:, 1:2] & (beyond_right > 0.02)
    foot = cloths.tuck[:, 2:] & (beyond_foot > 0.02)
    pinned = left | right | foot
    depth = torch.zeros_like(x)
    for mask, beyond in ((left, beyond_left), (right, beyond_right), (foot, beyond_foot)):
        depth = torch.where(mask, torch.maximum(depth, beyond), depth)
    tx = torch.where(left, cx - hw - 0.005, torch.where(right, cx + hw + 0.005, x))
    ty = torch.where(foot, cy - hl - 0.005, y)
    target = torch.stack([tx, ty, -TUCK_DEPTH - depth], -1)
    stiffness = torch.stack([torch.full_like(cloths.bend, STRETCH),
                             torch.full_like(cloths.bend, SHEAR), cloths.bend], -1)
    state = ClothState(start=start, spacing=spacing, stiffness=stiffness,
                       thickness=cloths.thickness, pinned=pinned)
    return state, target


def drape_cloths(support: Tensor, body_top: Tensor, cloths: Cloths, beds: BedScene,
                 rows: int, cols: int, steps: int = 200, iterations: int = 6,
                 dt: float = 1 / 200, grid: SceneGrid = GRID) -> Tensor:
    """Top of the simulated cloths on the grid [B,R,C] (−inf where a sample has none or
    off the cloth). support: bed, pillows and clutter [B,R,C]; body_top: [B,R,C], −inf off
    the body."""
    out = torch.full_like(support, float("-inf"))
    idx = cloths.present.nonzero()[:, 0]
    if idx.numel() == 0:
        return out
    sub = cloths.select(idx)
    beds_sub = BedScene(**{k: v[idx] for k, v in beds.__dict__.items()})
    ground = torch.maximum(support[idx], dilate(body_top[idx], 1))
    state, target = cloth_start(sub, ground, beds_sub, rows, cols, grid)
    particles = simulate_cloths(ground, state, rows, cols, steps=steps, dt=dt,
                                iterations=iterations, grid=grid, pin_target=target)
    height = cloth_heightfields(particles, cloth_faces(rows, cols, support.device), grid)
    floor = ground + sub.thickness[:, None, None]
    height = torch.where(torch.isfinite(height), torch.maximum(height, floor), height)
    out[idx] = height
    return out
