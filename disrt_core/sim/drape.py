"""Blanket drape as a height field: a thin sheet (SLP cover1) or a thick blanket (cover2).

Model [choice]: the cloth is a **membrane under gravity resting on an obstacle** (the
"obstacle problem"): its height H over the bed grid satisfies ``∇²H = c`` where it hangs
free and ``H = U`` where it touches the support ``U`` (mattress, pillow, body top, plus the
cloth thickness), with H ≥ U everywhere and free (Neumann) edges at the blanket's border.
``c`` = weight per area / effective tension (1/m) sets how much the cloth sags between
supports: a gap of width L sags ``c·L²/8`` unless it reaches the mattress first. The
cloth's border is pinned to the support (a free edge hangs down until something holds it:
the mattress beyond the body, the mattress edge it falls over, the chest). A light
sheet (large c) falls into the gaps between limbs; a stiff thick blanket (small c) bridges
them. Solved by projected red-black SOR sweeps of ``H ← max(U, mean₄(H) − c·h²/4)`` on a
pyramid (16, 8, 4, 2, 1 cm), starting from a flat cloth at the highest support, each level
refining the previous one (cascadic multigrid): cheap, batched, and H ≥ U by construction,
so **the
cloth never passes below the body** and everything under it, e.g. a hand, is hidden (the
body top is dilated by one cell before draping, so the 1 cm sampling cannot let a ridge
poke through).

Blanket extent [choice] (per sample, :func:`sample_blankets`): a rectangle turned by
U[−10°, 10°], from the foot end of the bed (85 %; else stopping U[0.2, 0.6] m below the
pelvis) to a top edge U[−0.05, 0.35] m below the neck joint, across the whole mattress
(80 %; else ending U[0.15, 0.45] m from the body's midline on one side), hanging over the
mattress edges (the heightfield drops from the cloth to the frame there). Folds: 3–6
ridges per blanket (Gaussian cross-section, cos² taper along their length, random position,
direction and length 15–60 cm; sheet 0.4–1.5 cm high and 1–2.5 cm wide, blanket 0.8–3 cm
high and 2–5 cm wide) and, in half of the samples, the top edge turned down: a band of
U[5, 25] cm with a second layer. Thickness: sheet U[1.5, 3] mm, blanket U[8, 25] mm.
Sag ``c``: sheet U[1, 8], blanket U[0.5, 5] 1/m, around the values that fit a cloth
simulation best (``benchmarks/bench_drape_cloth.py``: a position-based cloth dropped on
four generated scenes is matched best at c ≈ 2–4 for both, with a mean height difference
of about 3 cm over the mattress — the simulated cloth, of fixed size, also slides inward
and forms tension folds that a height field cannot). [choice] Since generator 1.3 the
ranges reach down to 1 and 0.5: a stiff quilt or down comforter stands as a tent from
body part to body part (a membrane has no bending stiffness; a small c is how it bridges),
which hides the body's outline more than the earlier drapes did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from disrt_core.constants import const
from disrt_core.sim.fused import fused
from disrt_core.sim.graphs import replay
from disrt_core.sim.rumple import Rumples, bridge, sag_factor, wave_relief
from disrt_core.sim.scene import GRID, SceneGrid, dilate

#: Per cover level (1 sheet, 2 blanket): thickness, sag c, fold height, fold width (m).
COVER_RANGES = {
    1: {"thickness": (0.0015, 0.003), "sag": (1.0, 8.0), "fold_h": (0.004, 0.015),
        "fold_w": (0.01, 0.025)},
    2: {"thickness": (0.008, 0.025), "sag": (0.5, 5.0), "fold_h": (0.008, 0.03),
        "fold_w": (0.02, 0.05)},
}
NUM_FOLDS = 6


@dataclass
class Blankets:
    """Per-sample blanket parameters (all [B] unless noted; metres, radians)."""

    cover: Tensor  # [B] 0 none, 1 sheet, 2 blanket
    centre: Tensor  # [B,2] label (x, y) of the rotation centre
    angle: Tensor
    x_range: Tensor  # [B,2] extent across, in the blanket's frame, relative to centre
    y_range: Tensor  # [B,2] extent along
    thickness: Tensor
    sag: Tensor
    turn_down: Tensor  # width of the turned-down top band (0 = none)
    folds: Tensor  # [B,K,6] (x, y, direction, half length, height, width); height 0 = none


def sample_blankets(cover: Tensor, joints: Tensor, bed_width: Tensor, bed_length: Tensor,
                    bed_centre: tuple[float, float], gen: torch.Generator) -> Blankets:
    """Random blankets for a batch (see the module docstring). joints [B,24,3] label frame;
    everything is drawn for every sample so the random stream does not depend on ``cover``."""
    n, device = cover.shape[0], cover.device
    u = torch.rand(n, 12, generator=gen, device=device)
    neck_y, pelvis_y, mid_x = joints[:, 12, 1], joints[:, 0, 1], joints[:, 0, 0]
    top = neck_y - (-0.05 + 0.40 * u[:, 0])
    foot_end = bed_centre[1] - bed_length / 2 - 0.3
    bottom = torch.where(u[:, 1] < 0.85, foot_end, pelvis_y - 0.2 - 0.4 * u[:, 2])
    left = torch.full_like(top, bed_centre[0]) - bed_width / 2 - 0.3
    right = torch.full_like(top, bed_centre[0]) + bed_width / 2 + 0.3
    partial = u[:, 3] >= 0.8
    cut = 0.15 + 0.30 * u[:, 4]
    left = torch.where(partial & (u[:, 5] < 0.5), mid_x - cut, left)
    right = torch.where(partial & (u[:, 5] >= 0.5), mid_x + cut, right)
    centre = torch.stack([(left + right) / 2, (top + bottom) / 2], -1)
    x_range = torch.stack([left - centre[:, 0], right - centre[:, 0]], -1)
    y_range = torch.stack([bottom - centre[:, 1], top - centre[:, 1]], -1)
    angle = torch.deg2rad(-10 + 20 * u[:, 6])

    def pick(key: str, uu: Tensor) -> Tensor:
        lo = const(tuple(COVER_RANGES[c][key][0] for c in (1, 2)), device)
        hi = const(tuple(COVER_RANGES[c][key][1] for c in (1, 2)), device)
        level = (cover.clamp(1, 2) - 1).long()
        if uu.dim() == 2:
            level = level[:, None]
        return lo[level] + (hi[level] - lo[level]) * uu

    folds = _folds(centre, x_range, y_range, pick, gen)
    return Blankets(cover=cover, centre=centre, angle=angle, x_range=x_range, y_range=y_range,
                    thickness=pick("thickness", u[:, 7]), sag=pick("sag", u[:, 8]),
                    turn_down=torch.where(u[:, 9] < 0.5, 0.05 + 0.2 * u[:, 10], 0.0),
                    folds=folds)


def _folds(centre: Tensor, x_range: Tensor, y_range: Tensor, pick, gen: torch.Generator
           ) -> Tensor:
    """3-6 fold ridges [B,NUM_FOLDS,6] inside a blanket's extent (module docstring);
    ``pick(key, u)`` maps uniform numbers to the cover level's range of ``key``."""
    n, device = centre.shape[0], centre.device
    f = torch.rand(n, NUM_FOLDS, 6, generator=gen, device=device)
    count = 3 + (f[:, 0, 5] * 4).floor()  # 3..6 folds
    present = torch.arange(NUM_FOLDS, device=device)[None] < count[:, None]
    return torch.stack([
        centre[:, None, 0] + (x_range[:, None, 0] + (x_range[:, None, 1] - x_range[:, None, 0])
                              * f[..., 0]) * 0.6,
        centre[:, None, 1] + y_range[:, None, 0] + (y_range[:, None, 1] - y_range[:, None, 0])
        * f[..., 1],
        math.pi * f[..., 2], 0.075 + 0.225 * f[..., 3],
        pick("fold_h", f[..., 4]) * present, pick("fold_w", f[..., 5]),
    ], -1)  # fmt: skip


def sample_throws(bed_width: Tensor, bed_length: Tensor, bed_centre: tuple[float, float],
                  gen: torch.Generator, prob: float) -> Blankets:
    """A second blanket thrown over the bed (``cover`` 2 where present, 0 elsewhere), drawn
    for every sample: a blanket folded double, U[0.6, 1.3] × U[0.5, 1.1] m, its centre
    anywhere over the lower three quarters of the mattress, turned by U[−45°, 45°], with the
    blanket's folds and sag (module docstring). [choice] Real beds often carry a quilt, a
    throw or a folded blanket over the legs besides the main cover. Its sag is drawn from
    the same number as its thickness (a thicker throw drapes more closely): so generator 1.3
    made the scenes the shipped default was trained on, kept for their reproducibility."""
    n, device = bed_width.shape[0], bed_width.device
    u = torch.rand(n, 7, generator=gen, device=device)
    along = bed_centre[1] - bed_length / 2 + 0.75 * bed_length * u[:, 0]
    across = bed_centre[0] + (bed_width / 2 - 0.2) * (2 * u[:, 1] - 1)
    centre = torch.stack([across, along], -1)
    half_w, half_l = 0.30 + 0.35 * u[:, 2], 0.25 + 0.30 * u[:, 3]
    x_range = torch.stack([-half_w, half_w], -1)
    y_range = torch.stack([-half_l, half_l], -1)

    def pick(key: str, uu: Tensor) -> Tensor:  # the blanket's range of ``key``
        lo, hi = COVER_RANGES[2][key]
        return lo + (hi - lo) * uu

    return Blankets(cover=2 * (u[:, 4] < prob).long(),
                    centre=centre, angle=torch.deg2rad(-45 + 90 * u[:, 5]),
                    x_range=x_range, y_range=y_range,
                    thickness=2 * pick("thickness", u[:, 6]), sag=pick("sag", u[:, 6]),
                    turn_down=torch.zeros(n, device=device),
                    folds=_folds(centre, x_range, y_range, pick, gen))


def blanket_frame(blankets: Blankets, grid: SceneGrid = GRID) -> tuple[Tensor, Tensor]:
    """Coordinates (across, along) [B,R,C] of every grid cell in each blanket's frame."""
    x, y = grid.xy(blankets.centre.device)
    dx = x[None] - blankets.centre[:, 0, None, None]
    dy = y[None] - blankets.centre[:, 1, None, None]
    c, s = blankets.angle.cos()[:, None, None], blankets.angle.sin()[:, None, None]
    return c * dx + s * dy, -s * dx + c * dy


def blanket_mask(blankets: Blankets, grid: SceneGrid = GRID) -> Tensor:
    """Bool [B,R,C]: cells inside the blanket's rectangle (any cover level)."""
    a, b = blanket_frame(blankets, grid)
    xr, yr = blankets.x_range[:, :, None, None], blankets.y_range[:, :, None, None]
    return (a >= xr[:, 0]) & (a <= xr[:, 1]) & (b >= yr[:, 0]) & (b <= yr[:, 1])


def fold_relief(blankets: Blankets, grid: SceneGrid = GRID, patch: int = 64) -> Tensor:
    """Extra height [B,R,C] ≥ 0 of the folds and the turned-down top band.

    Each fold is evaluated on a ``patch``×``patch`` window of cells around its centre (a
    fold reaches at most 30 cm along and 15 cm across) and merged with a maximum."""
    batch = blankets.folds.shape[0]
    rows, cols = grid.shape
    device = blankets.folds.device
    f = blankets.folds[..., None, None]  # [B,K,6,1,1]
    col, row = grid.to_cells(blankets.folds[..., 0], blankets.folds[..., 1])
    c0 = col.round().long() - patch // 2
    r0 = row.round().long() - patch // 2
    offset = torch.arange(patch, device=device)
    cc = c0[..., None, None] + offset  # [B,K,1,P]
    rr = r0[..., None, None] + offset[:, None]  # [B,K,P,1]
    x0, y0 = grid.origin
    dx = x0 + grid.pitch * cc - f[:, :, 0]
    dy = y0 - grid.pitch * rr - f[:, :, 1]
    ux, uy = torch.cos(f[:, :, 2]), torch.sin(f[:, :, 2])
    along = dx * ux + dy * uy
    across = -dx * uy + dy * ux
    taper = torch.cos(0.5 * math.pi * (along / f[:, :, 3]).clamp(-1, 1)) ** 2
    ridge = f[:, :, 4] * taper * torch.exp(-0.5 * (across / f[:, :, 5]) ** 2)  # [B,K,P,P]
    inside = (rr >= 0) & (rr < rows) & (cc >= 0) & (cc < cols)
    index = (rr.clamp(0, rows - 1) * cols + cc.clamp(0, cols - 1)).expand(-1, -1, patch, patch)
    ridge = torch.where(inside, ridge, torch.zeros_like(ridge))
    relief = torch.zeros(batch, rows * cols, device=device, dtype=ridge.dtype)
    relief.scatter_reduce_(1, index.reshape(batch, -1), ridge.reshape(batch, -1), "amax")
    relief = relief.view(batch, rows, cols)
    _, b = blanket_frame(blankets, grid)
    band = blankets.turn_down[:, None, None]
    top = blankets.y_range[:, 1, None, None]
    in_band = (band > 0) & (b >= top - band)
    edge = torch.exp(-0.5 * ((b - (top - band)) / 0.015) ** 2) * 0.01
    relief = relief + torch.where(in_band, blankets.thickness[:, None, None], 0.0)
    return relief + torch.where(band > 0, edge, 0.0)


def solve_membrane(support: Tensor, mask: Tensor, sag: Tensor, pitch: float, levels: int = 5,
                   iterations: tuple[int, ...] = (8, 10, 15, 20, 40),
                   omega: float = 1.8) -> Tensor:
    """Height [B,H,W] of a membrane with sag ``c`` [B] (1/m) resting on ``support`` [B,H,W]
    over the cells of ``mask`` [B,H,W] (bool); −inf elsewhere. See the module docstring.

    Projected red-black SOR (relaxation ``omega``) on each level of a max-pooled pyramid
    (cell size pitch·2^k at level k, ``iterations[k]`` sweeps), coarse to fine, each level
    starting from the previous one upsampled bilinearly.
    """
    inf = float("-inf")
    sup = torch.where(mask, support, torch.full_like(support, inf))
    m = mask.to(support.dtype)
    pyramid = [(sup, m)]
    for _ in range(levels - 1):
        s, mm = pyramid[-1]
        pad = (0, s.shape[-1] % 2, 0, s.shape[-2] % 2)
        s = F.max_pool2d(F.pad(s[:, None], pad, value=inf), 2)[:, 0]
        mm = F.max_pool2d(F.pad(mm[:, None], pad), 2)[:, 0]
        pyramid.append((s, mm))
    step_scale = sag[:, None, None] * pitch**2 / 4
    h = sup.amax((-1, -2), keepdim=True)  # a flat cloth at the highest support
    for level in range(levels - 1, -1, -1):
        s, mm = pyramid[level]
        rows, cols = s.shape[-2:]
        if h.shape[-1] != 1:
            h = F.interpolate(h[:, None], size=(rows, cols), mode="bilinear",
                              align_corners=False)[:, 0]
        on = mm > 0
        step = step_scale * 4**level
        # The cloth lives in a zero-padded buffer, 0 off the cloth, so a neighbour sum is
        # four shifted views. Border cells of the cloth (a neighbour off it) are pinned to
        # the support: a free edge hangs down until something holds it.
        mp = F.pad(mm, (1, 1, 1, 1))
        count = mp[:, :-2, 1:-1] + mp[:, 2:, 1:-1] + mp[:, 1:-1, :-2] + mp[:, 1:-1, 2:]
        interior = on & (count == 4)
        floor = torch.where(on, s, torch.zeros_like(s))  # 0 off the cloth (finite)
        buf = F.pad(torch.where(interior, torch.maximum(h.expand_as(s), s), floor),
                    (1, 1, 1, 1))
        inner = buf[:, 1:-1, 1:-1]
        r = torch.arange(rows, device=s.device)[:, None]
        c = torch.arange(cols, device=s.device)[None]
        red = ((r + c) % 2 == 0)
        colours = [(interior & red).to(s.dtype), (interior & ~red).to(s.dtype)]
        for _ in range(iterations[min(level, len(iterations) - 1)]):
            for colour in colours:
                _relax(buf, floor, colour, step, omega)
        h = inner.clone()
    return torch.where(mask, h, torch.full_like(support, inf))


@fused
def _relax(buf: Tensor, floor: Tensor, colour: Tensor, step: Tensor, omega: float) -> None:
    """One half-sweep of :func:`solve_membrane`: the cells of ``colour`` (1.0, else 0.0)
    relaxed toward their four neighbours' mean less the sag ``step``, held above ``floor``,
    written into ``buf``'s interior (a single kernel on the GPU, :mod:`disrt_core.sim.fused`:
    eager, ten passes over the grid)."""
    inner = buf[:, 1:-1, 1:-1]
    total = buf[:, :-2, 1:-1] + buf[:, 2:, 1:-1] + buf[:, 1:-1, :-2] + buf[:, 1:-1, 2:]
    relaxed = inner + omega * (total * 0.25 - step - inner)
    inner.copy_(inner + colour * (torch.maximum(floor, relaxed) - inner))


def drape(support: Tensor, body_top: Tensor, blankets: Blankets, mattress: Tensor,
          grid: SceneGrid = GRID, rumples: Rumples | None = None) -> Tensor:
    """Blanket height [B,R,C] on the grid, −inf where there is no cloth.

    support: mattress, pillow and frame heights [B,R,C]; body_top: top of the body (m,
    −inf where no body); mattress: bool [B,R,C], cells over the mattress (the cloth rests
    there; beyond it hangs down the side); rumples: stiffer, tauter, gathered covers
    (:mod:`disrt_core.sim.rumple`), none if not given.
    """
    covered = blankets.cover > 0
    mask = blanket_mask(blankets, grid) & mattress & covered[:, None, None]
    top = torch.maximum(support, dilate(body_top, 1))
    sag, relief = blankets.sag, fold_relief(blankets, grid)
    if rumples is not None:
        top, sag = bridge(top, rumples), sag * sag_factor(rumples)
        relief = relief + wave_relief(rumples, grid)
    obstacle = top + blankets.thickness[:, None, None]
    # A few thousand small launches (the sweeps): one CUDA graph on the GPU (sim/graphs.py).
    h = replay(("membrane", grid.pitch), lambda o, m, c: [solve_membrane(o, m, c, grid.pitch)],
               [obstacle, mask, sag])[0]
    return torch.where(mask, h + relief, h)
