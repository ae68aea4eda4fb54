"""The bed scene around the body: the 1 cm scene grid, mattress, frame, boards, rails,
pillow and floor, as height fields in the label (bed) frame.

**Scene grid** (:data:`GRID`): 1 cm cells aligned with SLP's pressure-mat grid (cell
centres at the PM cell centres, ``bedframe.pm_to_label``), extended by 19 rows and 18
columns on each side: 230 rows (head end first, y decreasing) × 120 columns (x increasing).
Its PM window (rows 19..210, columns 18..101) is where the pressure map is read. Contact,
pressure and the blanket drape are computed on it; the renderer meshes it at 2 cm (max over
2×2 blocks, so the mesh never dips below a finer feature).

**Bed** (per sample, :func:`sample_beds`): a mattress of U[0.88, 1.0] × U[1.95, 2.06] m
centred on the PM grid (``bedframe.BED_CENTRE_LABEL``), top at z = 0 with 3 cm rounded
edges; a 4 cm frame rim (rooms: by base) U[6, 16] cm below the top; floor U[45, 75] cm below it;
a headboard (p 0.5, top U[15, 50] cm above the mattress), a footboard (p 0.4, U[5, 30] cm)
and side rails on the upper half (p 0.25, U[15, 30] cm); a head pillow (p ``pillow_prob``,
0.85: most beds have one): a super-ellipse cushion 50–66 × 34–48 cm, 8–14 cm high
(:func:`pillow_height_at`), its near edge U[3, 9] cm below the head joint (above the neck:
the head lies on it, the shoulders below it) and its centre U[±5] cm beside the head (kept
on the mattress, :func:`pillow_boxes`). What lies on it compresses it to ``squash`` =
U[40, 70] % of its free height (column 6 of ``BedScene.pillow``): the head rests on the
compressed top (:mod:`disrt_core.sim.rest`), and the visible pillow is the lower of its
free shape and the underside of what lies on it. Under a body lying on its side (the
pose prior's left or right class, ¾ turns included) the pillow is thicker and bunched up
(:func:`side_pillows`, [choice]): 10–16 cm high, compressed to 55–85 %, from the same
random numbers (side sleepers use higher pillows and push them together under the head,
which lies a shoulder's half width above the mattress). With ``stack_prob`` a share of the
pillows are two stacked (:data:`STACK_FACTOR`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from disrt_core.geometry.bedframe import BED_CENTRE_LABEL, O_T_SLP, PM_CELL_M, PM_SHAPE


@dataclass(frozen=True)
class SceneGrid:
    """A regular grid of the bed plane, row 0 at the head end (see the module docstring)."""

    margin_rows: int = 19
    margin_cols: int = 18
    pitch: float = PM_CELL_M

    @property
    def shape(self) -> tuple[int, int]:
        return PM_SHAPE[0] + 2 * self.margin_rows, PM_SHAPE[1] + 2 * self.margin_cols

    @property
    def pm_window(self) -> tuple[slice, slice]:
        """Rows and columns of the grid that are SLP's 192×84 pressure-mat cells."""
        return (slice(self.margin_rows, self.margin_rows + PM_SHAPE[0]),
                slice(self.margin_cols, self.margin_cols + PM_SHAPE[1]))

    @property
    def origin(self) -> tuple[float, float]:
        """Label (x, y) of the centre of cell (0, 0)."""
        return (O_T_SLP[0] - self.pitch * self.margin_cols,
                -O_T_SLP[1] + self.pitch * self.margin_rows)

    def xy(self, device=None) -> tuple[Tensor, Tensor]:
        """Label x and y of every cell centre, each [R, C]."""
        rows, cols = self.shape
        x0, y0 = self.origin
        r = torch.arange(rows, device=device, dtype=torch.float32)
        c = torch.arange(cols, device=device, dtype=torch.float32)
        return ((x0 + self.pitch * c)[None].expand(rows, cols),
                (y0 - self.pitch * r)[:, None].expand(rows, cols))

    def to_cells(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Label (x, y) -> fractional (column, row) of the grid (cell centres at integers)."""
        x0, y0 = self.origin
        return (x - x0) / self.pitch, (y0 - y) / self.pitch


GRID = SceneGrid()


def blur(image: Tensor, sigma: float | Tensor) -> Tensor:
    """Separable Gaussian blur of [B,H,W] with ``sigma`` in cells (float or [B]); borders
    replicate the edge value."""
    sig = torch.as_tensor(sigma, dtype=image.dtype, device=image.device).reshape(-1)
    radius = max(1, math.ceil(3 * float(sig.max())))
    t = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-0.5 * (t[None] / sig[:, None].clamp(min=1e-3)) ** 2)
    kernel = (kernel / kernel.sum(-1, keepdim=True)).expand(image.shape[0], -1)
    batch, _h, _w = image.shape
    x = F.pad(image[None], (radius, radius, 0, 0), mode="replicate")
    x = F.conv2d(x, kernel[:, None, None, :], groups=batch)
    x = F.pad(x, (0, 0, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel[:, None, :, None], groups=batch)
    return x[0]


def dilate(image: Tensor, radius: int) -> Tensor:
    """Max over a (2r+1)² window of [B,H,W] (keeps -inf where nothing is near)."""
    return F.max_pool2d(image[:, None], 2 * radius + 1, stride=1, padding=radius)[:, 0]


@dataclass
class BedScene:
    """Per-sample bed geometry (all [B], metres, label frame; heights relative to the
    undeformed mattress top)."""

    width: Tensor
    length: Tensor
    frame_z: Tensor
    floor_z: Tensor
    headboard: Tensor  # top height, or nan for none
    footboard: Tensor
    rails: Tensor
    pillow: Tensor  # [B,7] (present 0/1, x offset from the head, its near edge's distance
    #                   below the head, half width, half length, height, squash: compressed
    #                   fraction, 0.55 where a caller gives only 6 columns)
    rim: Tensor  # how far the frame reaches beyond the mattress on every side (RIM here;
    #              room scenes draw it by the base's type, ``room.sample_rooms``)

    def to(self, device) -> BedScene:
        return BedScene(**{k: v.to(device) for k, v in self.__dict__.items()})


PILLOW_PROB = 0.85
RIM = 0.04  # m: the frame's rim beyond the mattress, bed scenes (SLP's hospital beds)
SQUASH_RANGE = (0.4, 0.7)
HEIGHT_RANGE = (0.08, 0.14)  # m, free height of the head pillow
#: [choice] Side sleepers use thicker pillows and bunch them up under the head (the gap
#: between the ear and the mattress is the shoulder's half width): free height and
#: compressed fraction of a lateral body's pillow (:func:`side_pillows`).
SIDE_HEIGHT_RANGE = (0.10, 0.16)
SIDE_SQUASH_RANGE = (0.55, 0.85)
#: [choice] Two pillows stacked under the head (``SimConfig.pillow_stack_prob``): the free
#: height times U[1.5, 1.9], so 12-27 cm (side sleepers' 2 cm more, :func:`side_pillows`),
#: compressed as a single one. Real beds often have two; the head then lies higher
#: (:mod:`disrt_core.sim.rest` rests it on the pillow's compressed top).
STACK_FACTOR = (1.5, 1.9)


def sample_beds(n: int, gen: torch.Generator, device="cpu",
                pillow_prob: float = PILLOW_PROB, stack_prob: float = 0.0) -> BedScene:
    """Random bed geometry for ``n`` samples (see the module docstring). ``stack_prob``: the
    share of head pillows that are two stacked (free height × ``STACK_FACTOR``); with 0 no
    extra random number is drawn, so the stream is that of a caller without stacking."""
    u = torch.rand(n, 17, generator=gen, device=device)
    nan = torch.full((n,), float("nan"), device=device)
    width = 0.88 + 0.12 * u[:, 0]
    length = 1.95 + 0.11 * u[:, 1]
    lo, hi = SQUASH_RANGE
    pillow = torch.stack([
        (u[:, 8] < pillow_prob).float(), 0.1 * (u[:, 9] - 0.5),
        0.03 + 0.06 * u[:, 10], 0.25 + 0.08 * u[:, 12], 0.17 + 0.07 * u[:, 11],
        HEIGHT_RANGE[0] + (HEIGHT_RANGE[1] - HEIGHT_RANGE[0]) * u[:, 13],
        lo + (hi - lo) * u[:, 16],
    ], -1)  # fmt: skip
    if stack_prob > 0:  # drawn after the rest: the other numbers stay what they were
        s_lo, s_hi = STACK_FACTOR
        v = torch.rand(n, generator=gen, device=device)
        stacked = v < stack_prob
        factor = s_lo + (s_hi - s_lo) * (v / stack_prob).clamp(max=1.0)  # U[lo, hi] if stacked
        pillow[:, 5] = torch.where(stacked, pillow[:, 5] * factor, pillow[:, 5])
    return BedScene(
        width=width, length=length,
        frame_z=-(0.06 + 0.10 * u[:, 2]), floor_z=-(0.45 + 0.30 * u[:, 3]),
        headboard=torch.where(u[:, 4] < 0.5, 0.15 + 0.35 * u[:, 5], nan),
        footboard=torch.where(u[:, 6] < 0.4, 0.05 + 0.25 * u[:, 7], nan),
        rails=torch.where(u[:, 14] < 0.25, 0.15 + 0.15 * u[:, 15], nan),
        pillow=pillow, rim=torch.full_like(width, RIM),
    )


def _remap(value: Tensor, old: tuple[float, float], new: tuple[float, float]) -> Tensor:
    return new[0] + (new[1] - new[0]) * (value - old[0]) / (old[1] - old[0])


def side_pillows(scene: BedScene, side: Tensor) -> BedScene:
    """The scene with the pillow of every body lying on its side (``side`` [B] bool) thicker
    and bunched up: free height in ``SIDE_HEIGHT_RANGE``, compressed to ``SIDE_SQUASH_RANGE``
    (module docstring), each from the same random number as the drawn one (the random
    stream does not change)."""
    p = scene.pillow.clone()
    s = side.to(p.device)
    p[:, 5] = torch.where(s, _remap(p[:, 5], HEIGHT_RANGE, SIDE_HEIGHT_RANGE), p[:, 5])
    if p.shape[1] > 6:
        p[:, 6] = torch.where(s, _remap(p[:, 6], SQUASH_RANGE, SIDE_SQUASH_RANGE), p[:, 6])
    return BedScene(**{**scene.__dict__, "pillow": p})


def bed_heightfield(scene: BedScene, grid: SceneGrid = GRID) -> Tensor:
    """Height of the bed and floor (no body, pillow or blanket) on the grid, [B,R,C]."""
    x, y = grid.xy(scene.width.device)
    cx, cy = BED_CENTRE_LABEL
    hw, hl = scene.width[:, None, None] / 2, scene.length[:, None, None] / 2
    dx, dy = (x - cx).abs()[None], (y - cy).abs()[None]
    inside = (dx <= hw) & (dy <= hl)
    edge = torch.minimum(hw - dx, hl - dy)  # distance to the mattress edge, inside
    r = 0.03
    rounded = -(r - torch.sqrt((r * r - (r - edge).clamp(min=0) ** 2).clamp(min=0)))
    height = torch.where(inside, rounded, scene.floor_z[:, None, None])
    out = scene.rim[:, None, None]
    rim = ~inside & (dx <= hw + out) & (dy <= hl + out)
    height = torch.where(rim, scene.frame_z[:, None, None], height)
    in_x = dx <= hw + out
    # The bed scenes' boards, over their 4 cm rim; room scenes draw theirs as boxes at the
    # rim's end (``room.sample_rooms`` sets these to nan).
    head = in_x & (y - cy > hl + 0.005) & (y - cy <= hl + 0.045)
    foot = in_x & (cy - y > hl + 0.005) & (cy - y <= hl + 0.045)
    rail = (dx > hw + 0.005) & (dx <= hw + 0.03) & (y > cy) & (y < cy + hl - 0.1)
    for mask, top in ((head, scene.headboard), (foot, scene.footboard), (rail, scene.rails)):
        top = top[:, None, None]
        height = torch.where(mask & ~torch.isnan(top), torch.nan_to_num(top), height)
    return height


def pillow_boxes(scene: BedScene, head_xy: Tensor) -> Tensor:
    """Where each pillow lies, [B,6]: (present, centre x, centre y, half width, half length,
    free height), from the head joint's label (x, y) [B,2] when the scene is made (module
    docstring: beyond and beside the head, the whole pillow on the mattress)."""
    p = scene.pillow
    cx, cy = BED_CENTRE_LABEL
    room_x = (scene.width / 2 - p[:, 3]).clamp(min=0)
    x = (head_xy[:, 0] + p[:, 1]).clamp(min=cx - room_x, max=cx + room_x)
    y = torch.minimum(head_xy[:, 1] - p[:, 2] + p[:, 4], cy + scene.length / 2 - p[:, 4])
    return torch.stack([p[:, 0], x, y, p[:, 3], p[:, 4], p[:, 5]], -1)


def pillow_height_at(boxes: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """Free height of the pillows ``boxes`` [B,6] (:func:`pillow_boxes`) above the mattress
    at label points x, y [B,...]; 0 off them: ``h·sqrt(1 − |dx/a|⁴ − |dy/b|⁴)``."""
    b = boxes.reshape(boxes.shape[0], *([1] * (x.dim() - 1)), 6).unbind(-1)
    u, v = ((x - b[1]) / b[3]).square(), ((y - b[2]) / b[4]).square()
    t = u * u + v * v
    return b[0] * b[5] * torch.sqrt((1 - t).clamp(min=0))


def pillow_squash(scene: BedScene) -> Tensor:
    """Compressed fraction [B] of each pillow's free height under what rests on it."""
    p = scene.pillow
    return p[:, 6] if p.shape[1] > 6 else torch.full_like(p[:, 0], 0.55)


def pillow_heightfield(scene: BedScene, head: Tensor, grid: SceneGrid = GRID) -> Tensor:
    """Top of the free (uncompressed) pillow above the mattress, 0 where there is none,
    [B,R,C]; ``head`` is the head joint's label (x, y) [B,2] (:func:`pillow_boxes`)."""
    x, y = grid.xy(scene.width.device)
    return pillow_height_at(pillow_boxes(scene, head), x[None], y[None])


def mattress_mask(scene: BedScene, grid: SceneGrid = GRID) -> Tensor:
    """Bool [B,R,C]: cells over the mattress."""
    x, y = grid.xy(scene.width.device)
    cx, cy = BED_CENTRE_LABEL
    return (((x - cx).abs()[None] <= scene.width[:, None, None] / 2)
            & ((y - cy).abs()[None] <= scene.length[:, None, None] / 2))


def render_grid(height: Tensor, floor_z: Tensor, grid: SceneGrid = GRID,
                block: int = 2) -> tuple[Tensor, Tensor]:
    """The scene height field as mesh vertices for the renderer: the maximum over
    ``block``×``block`` cells (so the mesh covers every finer feature) at the block centres,
    the outermost ring put down to the floor so that the bed's sides reach it.
    Returns label-frame vertices [B, R', C', 3] (row-major) of a grid for ``grid_faces``."""
    pooled = F.max_pool2d(height[:, None], block, ceil_mode=True)[:, 0]
    for edge in (0, -1):  # (slices: an index list would be a host copy on the GPU)
        pooled[:, edge, :] = floor_z[:, None]
        pooled[:, :, edge] = floor_z[:, None]
    rows, cols = pooled.shape[-2:]
    x0, y0 = grid.origin
    offset = (block - 1) / 2 * grid.pitch
    x = x0 + offset + block * grid.pitch * torch.arange(cols, device=height.device)
    y = y0 - offset - block * grid.pitch * torch.arange(rows, device=height.device)
    xx, yy = x[None].expand(rows, cols), y[:, None].expand(rows, cols)
    return torch.stack([xx.expand_as(pooled), yy.expand_as(pooled), pooled], -1)
