"""Bed finding, stage 3: the mattress rectangle of a candidate, measured on a fine grid.

Batched torch, part of :func:`bedfit_batch.fit_beds`. Each candidate (a region with its
first rectangle, stage 2) gets a fine F×F top-down grid aligned with its rectangle (cells of
2 cm, or the point spacing when coarser), and per cell the counts of all points, of "bed"
points (from 0.6 m above the level down to its tolerance below), of points at the level, of
lower points (floor), of higher points (nearer the camera than anything on a bed) and the
summed height of the bed points above the level. From these:

* the bed-cell share per cell: its coverage by bed points (3×3 means), so a mattress edge
  becomes a ramp whose half-way point is the edge, to sub-cell precision; vertical
  surfaces (walls, board faces) are not bed; thin structures are removed by a 5-cell
  opening (headboard, rails, an arm, walls); holes enclosed by bed are filled (half, or
  more in the depth shadow of a body or a blanket, :func:`bedfit_regions.toward_camera`);
* the extent along each axis: where the occupancy profile across the rectangle is above
  one half, interpolated (iterated: each axis measured within the other's extent), short
  partial dips bridged (``BRIDGE``: a body lying across the bed, speckled dark bedding);
* the residual angle: straight lines fitted to the four edges (per row, the edge's
  position from the ramp), one turn of the grid by their mean slope, measured again;
* the ends: trimmed past a head- or footboard (:func:`trim_boards`), or moved out across a
  strip a tall board hides from the camera (:func:`shadowed_ends`);
* the checks of a rectangle (``FLAG_*``) are in :mod:`bedfit_checks`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from disrt_core.constants import const, on_device
from disrt_core.geometry import bedfit_gaps as gaps_mod
from disrt_core.geometry.bedfit_regions import (
    BAND_ABOVE,
    band_tolerance,
    box_sum,
    bridge_dips,
    bridge_reach,
    dilate,
    enclosed_cells,
    erode,
    run_extent,
    toward_camera,
)

FINE = 128
OPEN = 5
EDGE_BIAS = 0.5  # cells: the mean outward shift of an edge whose cells count whole
EDGE_WINDOW = 6
SHADOW_CASTER = 0.1  # m above the level: a surface that shadows the mattress behind it
SHADOW_REACH = 0.25  # m: how far beyond it (away from the camera) a hole is its shadow
# [choice] A dip in an occupancy profile at most BRIDGE m wide that stays at BRIDGE_FLOOR or
# more is bridged (``extents``): a body across the bed (its steep sides are not bed) or a
# speckled stretch of dark bedding cut the profile, and the rectangle kept one half of the
# mattress. Tuning rooms (seeds 3000-3047, median of 5 frames): right 284 -> 290 of 379,
# refusals for size 23 -> 16, unflagged wrong 13 -> 13 (floors 0.1 / 0.2: 287 / 288 right).
BRIDGE, BRIDGE_FLOOR = 0.3, 0.3
# [choice] ... or where this share of the points across the profile lie in the band (on the
# bed: a body's hips are steep, so not bed, but lie on it; the floor of a gap does not).
# Tuning rooms: one more fit geometrically right (a body with its legs spread, D455), no
# other change (0.7-0.95 alike); single frames and bed scenes unchanged.
BRIDGE_BAND = 0.9
# The first BOXED channels also get 3×3 sums (``box``).
(CH_ALL, CH_BAND, CH_HEIGHT, CH_HEIGHT2, CH_HIGH, CH_HIGH_H, CH_HIGH_H2, CH_LEVEL, CH_LOW,
 CH_BELOW, CH_BELOW_D) = range(11)
CHANNELS, BOXED = 11, 7

FLAG_SIZE, FLAG_FILL, FLAG_FLAT, FLAG_RAISED, FLAG_SOFA, FLAG_OCCLUDED, FLAG_VIEW, \
    FLAG_EMPTY = (1 << i for i in range(8))


def fine_maps(a: Tensor, b: Tensor, d: Tensor, valid: Tensor, phi: Tensor, centre: Tensor,
              size: Tensor, level: Tensor, sigma: Tensor, spacing: Tensor, basis: tuple,
              pixel_area: Tensor, deep: float = 0.0, bridge: bool = False) -> dict:
    """Per-cell sums ``maps`` [B,K,C,F,F] (channels ``CH_*``) of the points (a, b, d [B,N])
    around candidates (phi [B,K], centre [B,K,2], size [B,K,2] along (u, v); level, sigma,
    spacing [B,K]), their 3×3 sums ``box``, the bed share ``soft`` and mask ``bed`` [B,K,F,F],
    the smoothed height ``height`` and the cell size [B,K]. ``deep``: how much deeper (m)
    than its tolerance the band reaches below the level. ``basis`` = (e1, e2, n) [B,3] each;
    ``pixel_area`` [B]: the solid angle of a block, (stride²/fx·fy). ``bridge``: the opening
    keeps strips cut off by thin unread lines (:mod:`bedfit_gaps`).

    A cell counts as seen when its 3×3 neighbourhood holds at least 30 % of the points a
    surface at the level would give there (one block covers (stride·z/f)²·cos α / cos θ of
    it), so the few scattered points in a shadow (between a headboard and the wall) do not
    make a surface; holes are filled only where enclosed (see the module docstring)."""
    B, K = phi.shape
    cell = torch.maximum(torch.maximum(spacing, (size.amax(-1) + 0.6) / FINE),
                         torch.full_like(spacing, 0.02))
    cos, sin = torch.cos(phi)[..., None], torch.sin(phi)[..., None]
    ra, rb = a[:, None] - centre[..., 0:1], b[:, None] - centre[..., 1:2]
    iu = torch.floor((ra * cos + rb * sin) / cell[..., None] + FINE / 2)
    iv = torch.floor((rb * cos - ra * sin) / cell[..., None] + FINE / 2)
    inside = valid[:, None] & (iu >= 0) & (iu < FINE) & (iv >= 0) & (iv < FINE)
    index = (iv.clamp(0, FINE - 1) * FINE + iu.clamp(0, FINE - 1)).long()
    # Only points on a grid are summed (same additions, same order): ids = (b·K + k)·N + i
    N, ids = a.shape[1], inside.view(-1).nonzero()[:, 0]
    grid = ids // N  # b·K + k [M]
    tol = band_tolerance(sigma).reshape(-1)[grid]
    h = level.reshape(-1)[grid] - d.reshape(-1)[grid // K * N + ids % N]  # above the level
    band = (h <= BAND_ABOVE) & (h >= -tol - deep)
    below = (h < -tol) & (h >= -tol - 0.08)
    high = h > BAND_ABOVE
    hb = torch.where(band, h.clamp(0, BAND_ABOVE), 0.0)
    hh = torch.where(high, h, 0.0)
    vals = (torch.ones_like(h), band.to(h.dtype), hb, hb * hb, high.to(h.dtype),
            hh, hh * hh, (h.abs() <= tol).to(h.dtype),
            (h < -torch.clamp(tol + 0.05, min=0.15)).to(h.dtype), below.to(h.dtype),
            torch.where(below, -h, 0.0))  # the C channels' values [M]
    at = grid * (CHANNELS * FINE**2) + index.view(-1)[ids]  # each point's cell in channel 0
    out = torch.zeros(B * K * CHANNELS * FINE * FINE, device=a.device, dtype=h.dtype)
    for c, v in enumerate(vals):  # a scatter per channel: no [C,M] index and values stack
        out[c * FINE**2:].scatter_add_(0, at, v)
    maps = out.reshape(B, K, CHANNELS, FINE, FINE)  # rows v, columns u
    box = box_sum(maps[:, :, :BOXED], 3)
    n3, b3 = box[:, :, CH_ALL], box[:, :, CH_BAND]
    e1, e2, n = basis
    cu = _centres(cell)  # [B,K,F]
    pa = centre[..., 0, None, None] + cos[..., None] * cu[..., None, :] \
        - sin[..., None] * cu[..., :, None]
    pb = centre[..., 1, None, None] + sin[..., None] * cu[..., None, :] \
        + cos[..., None] * cu[..., :, None]
    z = (pa * e1[:, None, None, None, 2] + pb * e2[:, None, None, None, 2]
         - level[..., None, None] * n[:, None, None, None, 2]).clamp(min=0.05)
    expected = cell[..., None, None] ** 2 * level[..., None, None] / (
        pixel_area[:, None, None, None] * z**3)
    known = n3 >= 0.3 * 9 * expected
    frac = torch.where(known, b3 / n3.clamp(min=1e-9), 0.0)
    # Vertical surfaces (walls, the faces of boards and furniture) put points of many
    # heights into the same few cells: not bed, so that a wall, the gap behind a headboard
    # and the board do not make one thick block with the mattress that the opening keeps.
    mean_h = box[:, :, CH_HEIGHT] / b3.clamp(min=1e-9)
    spread = (box[:, :, CH_HEIGHT2] / b3.clamp(min=1e-9) - mean_h**2).clamp(min=0).sqrt()
    vertical = (spread > torch.clamp(2.5 * sigma, min=0.08)[..., None, None]) & (b3 >= 3)
    hard = ((frac > 0.5) & ~vertical).to(frac.dtype)
    opened = dilate(erode(hard, OPEN), OPEN)
    if bridge:  # thin unread lines do not cut the mattress into strips (bedfit_gaps)
        opened = gaps_mod.kept(hard, opened, known, cell, OPEN)
    # A larger hole without readings (dropout, the mattress hidden behind a body from an
    # oblique camera), with steep surfaces (a blanket's fold, a body's side) or with things
    # higher than the band (a raised arm, an overbed table) is probably
    # bed where bed lies on both sides of it within 40 cm (after
    # the opening: not the gap between a headboard and the wall, whose few scattered points
    # the opening removes with the board and the wall). Such cells count 0.45: a profile
    # across them still passes one half where real bed surrounds them, a run of them alone
    # (floor hidden beyond the bed) does not.
    reach = (0.4 / cell).clamp(min=2)
    over = box[:, :, CH_HIGH] > box[:, :, CH_BAND]  # an arm raised, a table over the bed
    enclosed = (enclosed_cells(opened > 0, reach) & (~known | vertical | over) & (opened == 0)).to(
        frac.dtype)
    opened = torch.maximum(opened, enclosed)
    # The bed share of a cell is its coverage: bed points over the points a surface there
    # gives (3×3 means; the expected count scaled by its median ratio to the observed one
    # on the bed). At an edge it falls from 1 to 0 across the edge cell in proportion to
    # the part of it on the bed, whether or not the floor beyond is seen (often it is
    # hidden behind the mattress), so the profile's half-way point is the edge.
    ratio = torch.where(opened > 0, n3 / (9 * expected), float("nan"))
    ratio = ratio.flatten(-2).nanmedian(-1).values.nan_to_num(1.0).clamp(0.3, 3.0)
    cover = (b3 / (9 * expected * ratio[..., None, None])).clamp(max=1.0)
    # Such a hole just beyond something well above the level (a body or a blanket over it,
    # a pillow), seen from the camera, is its depth shadow on the mattress: often a band
    # across the whole bed where the camera looks past a covered body at the bare head
    # end. Those cells count more than one half, so the profile runs on across the band.
    tall = (mean_h >= SHADOW_CASTER) & (b3 >= 3) & (opened > 0)
    shadow = toward_camera(tall, enclosed > 0, pa, pb, phi, cell, SHADOW_REACH)
    # Bed cells count whole (a sparse stretch inside is still bed): an edge cell then counts
    # whole too, which ``extents`` takes back (EDGE_BIAS).
    soft = torch.maximum(torch.maximum(cover * dilate(opened, 3), hard * opened),
                         torch.maximum(0.45 * enclosed, 0.6 * shadow.to(frac.dtype)))
    count = b3 + box[:, :, CH_HIGH]
    height = (box[:, :, CH_HEIGHT] + 0.7 * box[:, :, CH_HIGH]) / count.clamp(min=1e-6)
    return {"maps": maps, "box": box, "soft": soft, "bed": opened, "cell": cell, "sigma": sigma,
            "height": height, "seen": (count > 0).to(h.dtype), "known": known, "pa": pa,
            "pb": pb, "phi": phi, "level": level}


# Cell-centre coordinates in cells (exact in float32): made once, not ~70 times a fit.
_CENTRES = torch.arange(FINE, dtype=torch.float32) + 0.5 - FINE / 2


def _centres(cell: Tensor) -> Tensor:
    """Cell-centre coordinates [...,F] (m) of the fine grid for cell sizes [...]."""
    return on_device(_CENTRES, cell) * cell[..., None]


def axis_coords(cell: Tensor, rect: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Per cell of fine grids [B,F,F] (rows v, columns u; cells [B] m) of rectangles rect
    [B,4] = (u0, u1, v0, v1): the coordinates s along the rectangle's long axis and t across
    it (m, from its centre), its half length and half width [B,1,1], and whether u is the
    long axis [B]."""
    u0, u1, v0, v1 = rect.unbind(-1)
    cen = _centres(cell)  # [B,F]
    cu = (cen - ((u0 + u1) / 2)[:, None])[:, None, :].expand(-1, FINE, -1)  # columns
    cv = (cen - ((v0 + v1) / 2)[:, None])[:, :, None].expand(-1, -1, FINE)  # rows
    u_long = (u1 - u0) >= (v1 - v0)
    ul = u_long[:, None, None]
    half_l = (torch.maximum(u1 - u0, v1 - v0) / 2)[:, None, None]
    half_w = (torch.minimum(u1 - u0, v1 - v0) / 2)[:, None, None]
    return torch.where(ul, cu, cv), torch.where(ul, cv, cu), half_l, half_w, u_long


def along_last(x: Tensor, u_long: Tensor) -> Tensor:
    """Grids x [B,F,F] (rows v, columns u) with the positions along the rectangles' long
    axis in the last dimension: transposed where v is long (``u_long`` [B] False, as
    :func:`axis_coords` gives it); its own inverse."""
    return torch.where(u_long[:, None, None], x, x.transpose(-1, -2))


def _overlap(cell: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """Share [...,F] of each fine cell inside [lo, hi] (m)."""
    start = _centres(cell) - cell[..., None] / 2
    end = start + cell[..., None]
    return ((torch.minimum(end, hi[..., None]) - torch.maximum(start, lo[..., None]))
            / cell[..., None]).clamp(0, 1)


def extents(soft: Tensor, cell: Tensor, size: Tensor, iterations: int = 3,
            counts: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """Rectangle [B,K,4] = (u0, u1, v0, v1) in the fine grid (m, about its centre): the runs
    of the occupancy profiles above 1/2, each within the inner 90 % of the other's extent,
    their dips bridged (``BRIDGE``) where the occupancy stays at ``BRIDGE_FLOOR`` or, given
    ``counts`` (the points in the band and all points per cell [B,K,F,F]), where
    ``BRIDGE_BAND`` of the points across the profile lie in the band (a body's hips: steep,
    so not bed, but on it)."""
    u0, u1 = -size[..., 0] / 2, size[..., 0] / 2
    v0, v1 = -size[..., 1] / 2, size[..., 1] / 2
    grids = soft[:, :, None] if counts is None else torch.stack([soft, *counts], 2)
    reach = bridge_reach(cell, BRIDGE)  # the same cells in all passes
    for _ in range(iterations):
        for axis in (0, 1):
            lo_m, hi_m, lo_o, hi_o = (u0, u1, v0, v1) if axis == 0 else (v0, v1, u0, u1)
            pad = 0.05 * (hi_o - lo_o)
            mid, quarter = (lo_m + hi_m) / 2, (hi_m - lo_m) / 4
            # At once: the weights of the other axis's inner 90 % and this axis's middle
            # half, from which the run starts at the fullest position (the middle itself
            # may be a hole: a body's shadow, something over the bed).
            w, middle = _overlap(cell[..., None], torch.stack([lo_o + pad, mid - quarter], -1),
                                 torch.stack([hi_o - pad, mid + quarter], -1)).unbind(-2)
            prof = (grids * (w[..., None, :, None] if axis == 0 else w[..., None, None, :])).sum(
                -2 if axis == 0 else -1)  # [B,K,1 or 3,F]: occupancy, band and all points
            occ = prof[:, :, 0] / w.sum(-1, keepdim=True).clamp(min=1e-6)
            start = torch.where(middle > 0, occ, -1.0).argmax(-1)
            on_bed = None if counts is None else \
                prof[:, :, 1] >= BRIDGE_BAND * prof[:, :, 2].clamp(min=1e-6)
            lo, hi = run_extent(bridge_dips(occ, cell, BRIDGE, BRIDGE_FLOOR, on_bed, reach),
                                start, 0.5)
            lo, hi = (lo - FINE / 2 + EDGE_BIAS) * cell, (hi - FINE / 2 - EDGE_BIAS) * cell
            u0, u1, v0, v1 = (lo, hi, v0, v1) if axis == 0 else (u0, u1, lo, hi)
    return torch.stack([u0, u1, v0, v1], -1)


def _edge_fits(soft: Tensor, cell: Tensor, rect: Tensor) -> tuple[Tensor, Tensor]:
    """Slopes and weights [B,K,4] of straight edges near the rectangle's u0, u1, v0, v1 (m)
    in ``soft`` [B,K,F(v),F(u)], each fitted to its per-row (per-column) position over the
    inner 80 % of the other axis: the four edges in one pass (a window of columns for the u
    edges, of rows for the v edges, gathered from the one grid)."""
    w = EDGE_WINDOW
    u0, u1, v0, v1 = rect.unbind(-1)
    edge = rect  # [B,K,4]
    lv, hv = v0 + 0.1 * (v1 - v0), v1 - 0.1 * (v1 - v0)
    lu, hu = u0 + 0.1 * (u1 - u0), u1 - 0.1 * (u1 - u0)
    lo, hi = torch.stack([lv, lv, lu, lu], -1), torch.stack([hv, hv, hu, hu], -1)
    c0 = torch.floor(edge / cell[..., None] + FINE / 2).long()
    cols = (c0[..., None] + torch.arange(-w, w + 1, device=soft.device)).clamp(0, FINE - 1)
    line = torch.arange(FINE, device=soft.device)[:, None]  # rows (u edges), columns (v)
    u_edge = const((True, True, False, False), soft.device)[:, None, None]
    flat = torch.where(u_edge, line * FINE + cols[..., None, :], cols[..., None, :] * FINE + line)
    win = torch.gather(soft.flatten(-2), -1, flat.flatten(-3)).reshape(
        *flat.shape)  # [B,K,4,F,2w+1]
    total = win.sum(-1) * cell[..., None, None]
    # The bed lies after the u0 and v0 edges, before u1 and v1.
    after = const((True, False, True, False), soft.device)
    pos = (c0 + const((w + 1, -w) * 2, soft.device) - FINE / 2)[..., None] \
        * cell[..., None, None] + const((-1.0, 1.0) * 2, soft.device)[:, None] * total
    first, last = win[..., 0], win[..., -1]
    good = (torch.where(after[:, None], first, last) < 0.25) & (
        torch.where(after[:, None], last, first) > 0.75)
    y = _centres(cell)[..., None, :]
    good &= (y >= lo[..., None]) & (y <= hi[..., None])
    for _ in range(2):
        wt = good.to(soft.dtype)
        n = wt.sum(-1).clamp(min=1e-6)
        my, mp = (wt * y).sum(-1) / n, (wt * pos).sum(-1) / n
        cov = (wt * (y - my[..., None]) * (pos - mp[..., None])).sum(-1)
        var = (wt * (y - my[..., None]) ** 2).sum(-1).clamp(min=1e-9)
        slope = cov / var
        resid = pos - (mp[..., None] + slope[..., None] * (y - my[..., None]))
        good &= resid.abs() <= 1.5 * cell[..., None, None]
    count = good.sum(-1).to(soft.dtype)
    return slope, torch.where(count >= 6, count, 0.0)


def trim_boards(fine: dict, rect: Tensor) -> Tensor:
    """Move an end of the long axis inward past a board (head- or footboard): the outermost
    run of positions along the bed, at most 14 cm long, raised near both long edges (mean
    height 2–9 cm inside each edge above max(4 cm, 2σ) and 4 cm above the same zones 20–40
    cm further in: a blanket's thickness is not a board), followed inward by a position that
    is not. A board spans the width; a pillow, a head or a blanket's end leaves the mattress
    bare near at least one edge, or is longer. The run may start one position inside the
    end (the edge's ramp); the new end is the middle of the board's innermost position (the
    board's face bleeds about a cell into the mattress through the noise)."""
    u0, u1, v0, v1 = rect.unbind(-1)
    cell, sigma, maps = fine["cell"], fine["sigma"], fine["maps"]
    height, seen = fine["height"], fine["seen"]  # 3×3 means: the grids beat, rows are empty
    window = 12  # positions looked at from each end (20-40 cm)
    steps = torch.arange(window, device=maps.device)
    base = torch.clamp(2 * sigma, min=0.04)[..., None]
    centres = _centres(cell)
    weighted = height * seen
    # Both ends at once: [..., 2] = (the +end hi, its sign +1; the −end lo, sign −1).
    sign = const((1, -1), maps.device)
    out = []
    for axis, (lo, hi, wlo, whi) in enumerate(((u0, u1, v0, v1), (v0, v1, u0, u1))):
        dim = -2 if axis == 0 else -1  # across the bed
        # The two zones inside the long edges at once: w [B,K,2,F].
        w = _overlap(cell[..., None], torch.stack([wlo + 0.02, whi - 0.09], -1),
                     torch.stack([wlo + 0.09, whi - 0.02], -1))
        w = w[..., :, None] if axis == 0 else w[..., None, :]
        zones = (weighted[:, :, None] * w).sum(dim) / (seen[:, :, None] * w).sum(dim).clamp(
            min=1e-6)
        edges = torch.minimum(zones[:, :, 0], zones[:, :, 1])[:, :, None]  # [B,K,1,F]
        edge = torch.stack([hi, lo], -1)
        inside = _overlap(cell[..., None], torch.stack([hi - 0.4, lo + 0.2], -1),
                          torch.stack([hi - 0.2, lo + 0.4], -1))
        ref = (edges * inside).sum(-1) / inside.sum(-1).clamp(min=1e-6)
        thr = torch.maximum(base, ref + 0.04)
        board = (edges >= thr[..., None]).to(torch.int64)
        last = torch.floor(edge / cell[..., None] + FINE / 2 - sign * 0.5).long()
        idx = (last[..., None] - sign[:, None] * steps).clamp(0, FINE - 1)
        run_b = torch.gather(board, -1, idx)  # from the end inward
        run0 = run_b.cumprod(-1).sum(-1)
        run1 = run_b[..., 1:].cumprod(-1).sum(-1)
        run = torch.where((run0 == 0) & (run1 > 0), run1 + 1, run0)
        ok = (run >= 1) & (run.to(cell.dtype) * cell[..., None] <= 0.14)
        inner = torch.gather(centres, -1, (last - sign * (run - 1)).clamp(0, FINE - 1))
        out.append(torch.where(ok, inner, edge).unbind(-1))
    return _long_ends(rect, out)


GAP_TO_BOARD = 0.02  # [choice] m: a mattress stops 0-4 cm short of the board it is pushed to


def shadowed_ends(fine: dict, rect: Tensor, reach: float = 0.25) -> Tensor:
    """Move an end of the long axis outward across a shadow up to a board or a wall: beyond
    the end, positions along the bed without a reading across the middle 80 % of the width
    (the strip of mattress that a tall board or wall hides from a camera beyond it), then,
    within ``reach`` m, a position raised 10 cm or more above the level across the width
    (the board or wall). The mattress is taken to reach that structure (it is not seen: the
    edge stage finds no step there, so such a fit is weak)."""
    u0, u1, v0, v1 = rect.unbind(-1)
    cell, height, seen = fine["cell"], fine["height"], fine["seen"]
    any_reading = (fine["maps"][:, :, CH_ALL] > 0).to(height.dtype)
    raised = ((height >= 0.1) & (seen > 0)).to(height.dtype)
    steps = torch.arange(1, FINE, device=cell.device)
    steps = steps[steps * 0.02 <= reach + 1e-6]  # cells are 2 cm or more
    # Both ends at once: [..., 2] = (the +end hi, its sign +1; the −end lo, sign −1).
    sign = const((1, -1), cell.device)
    out = []
    for axis, (lo, hi, wlo, whi) in enumerate(((u0, u1, v0, v1), (v0, v1, u0, u1))):
        dim = -2 if axis == 0 else -1  # across the bed
        w = _overlap(cell, wlo + 0.1 * (whi - wlo), whi - 0.1 * (whi - wlo))
        w = w[..., :, None] if axis == 0 else w[..., None, :]
        norm = (w.sum(dim)).clamp(min=1e-6)
        read = (any_reading * w).sum(dim) / norm  # [B,K,F] per position along the bed
        board = (raised * w).sum(dim) / norm
        edge = torch.stack([hi, lo], -1)
        last = torch.floor(edge / cell[..., None] + FINE / 2 - sign * 0.5).long()
        idx = last[..., None] + sign[:, None] * steps  # [B,K,2,S]
        inside = (idx >= 0) & (idx < FINE) & (steps * cell[..., None, None] <= reach)
        idx = idx.clamp(0, FINE - 1).flatten(-2)
        shadow = (torch.gather(read, -1, idx).view(inside.shape) <= 0.1) & inside
        run = shadow.long().cumprod(-1).sum(-1)  # positions without readings
        at = torch.gather(board, -1, idx).view(inside.shape)
        hit = torch.gather(at, -1, run[..., None].clamp(max=steps.shape[0] - 1))[..., 0]
        hit_in = torch.gather(inside, -1, run[..., None].clamp(max=steps.shape[0] - 1))[..., 0]
        ok = (run >= 1) & (hit >= 0.7) & hit_in
        # The inner side of the board's first cell, less GAP_TO_BOARD.
        face = (last + sign * (run + 1) - FINE / 2 + (sign < 0)).to(cell.dtype) * cell[..., None]
        moved = face - sign * GAP_TO_BOARD
        out.append(torch.where(ok, moved, edge).unbind(-1))
    return _long_ends(rect, out)


def _long_ends(rect: Tensor, out: list) -> Tensor:
    """``rect`` with the ends of its long axis replaced by ``out`` = [[u1', u0'], [v1', v0']]
    (the new ends computed along u and along v; only the long axis's are taken)."""
    u0, u1, v0, v1 = rect.unbind(-1)
    (u1n, u0n), (v1n, v0n) = out
    u_long = (u1 - u0) >= (v1 - v0)
    return torch.stack([torch.where(u_long, u0n, u0), torch.where(u_long, u1n, u1),
                        torch.where(u_long, v0, v0n), torch.where(u_long, v1, v1n)], -1)


def residual_angle(soft: Tensor, cell: Tensor, rect: Tensor) -> Tensor:
    """Turn [B,K] (rad) that aligns the grid with the rectangle's edges (see module)."""
    slope, weight = _edge_fits(soft, cell, rect)
    angle = torch.atan(slope) * const((-1.0, -1.0, 1.0, 1.0), soft.device)
    mean = (angle * weight).sum(-1) / weight.sum(-1).clamp(min=1e-6)
    weight = weight * ((angle - mean[..., None]).abs() < math.radians(1.5))
    mean2 = (angle * weight).sum(-1) / weight.sum(-1).clamp(min=1e-6)
    return torch.where(weight.sum(-1) > 0, mean2, 0.0).clamp(
        -math.radians(8), math.radians(8))


def lower_level(fine: dict, rect: Tensor, level: Tensor) -> Tensor:
    """The level [B,K] to measure again with: when at least 4 % of the points inside the
    rectangle (10 cm in from its edges) lie 0–8 cm below the level's band, the level was a
    blanket's top over a mattress that shows elsewhere (at the head end, beside the pillow;
    the first measurement uses a band 7 cm deeper to find it), and their mean is the
    mattress."""
    maps, cell = fine["maps"], fine["cell"]
    inner = _region(cell, rect, (-0.1,) * 4).to(maps.dtype)
    n_all = (maps[:, :, CH_ALL] * inner).sum((-1, -2))
    n_below = (maps[:, :, CH_BELOW] * inner).sum((-1, -2))
    offset = (maps[:, :, CH_BELOW_D] * inner).sum((-1, -2)) / n_below.clamp(min=1)
    use = (n_below >= 0.04 * n_all) & (n_below >= 15)
    return torch.where(use, level + offset, level)


def _region(cell: Tensor, rect: Tensor, grow: tuple[float, float, float, float]) -> Tensor:
    """Cells [B,K,F(v),F(u)] inside the rectangle grown by (du0, du1, dv0, dv1) m."""
    u0, u1, v0, v1 = rect.unbind(-1)
    c = _centres(cell)
    inu = (c >= (u0 - grow[0])[..., None]) & (c <= (u1 + grow[1])[..., None])
    inv = (c >= (v0 - grow[2])[..., None]) & (c <= (v1 + grow[3])[..., None])
    return inv[..., :, None] & inu[..., None, :]
