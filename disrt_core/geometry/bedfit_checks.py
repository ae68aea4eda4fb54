"""Bed finding, stage 3 (end): the checks of a candidate's rectangle on its fine grid.

Batched torch, part of :func:`bedfit_batch.fit_beds`; flags ``bedfit_rect.FLAG_*`` where a
check fails: size, fill (cells hidden from the camera behind something on the mattress count
as filled, :mod:`bedfit_hidden`), flatness, raised above its surroundings, a raised back along
a long side (a sofa), edges hidden by something nearer the camera; and in view (corners and a
strip 3 cm beyond each edge inside the image and its valid window). Among passing candidates:
the same bed found twice (:func:`duplicates`) and a rectangle lying on another
(:func:`stacked`); of the chosen fit, an edge with a blind strip inside it
(:func:`blind_edges`, a weak cause).
"""

from __future__ import annotations

import torch
from torch import Tensor

from disrt_core.geometry.bedfit_boards import moved_edges
from disrt_core.geometry.bedfit_edges import _depth_at, outward_edges
from disrt_core.geometry.bedfit_hidden import hidden_cells
from disrt_core.geometry.bedfit_rect import (
    CH_ALL,
    CH_HIGH,
    CH_HIGH_H,
    CH_HIGH_H2,
    CH_LEVEL,
    CH_LOW,
    FLAG_EMPTY,
    FLAG_FILL,
    FLAG_FLAT,
    FLAG_OCCLUDED,
    FLAG_RAISED,
    FLAG_SIZE,
    FLAG_SOFA,
    FLAG_VIEW,
    _region,
)
from disrt_core.geometry.bedfit_result import HIDDEN, NO_DEPTH, NO_MATTRESS, NO_PLANE, OK, PARTIAL


def size_flags(width: Tensor, length: Tensor, limits: dict) -> Tensor:
    """``FLAG_SIZE`` where a rectangle's width or length is beyond the limits."""
    (wlo, whi), (llo, lhi) = limits["width"], limits["length"]
    tol = limits["size_tol"]
    bad = (width < wlo - tol) | (width > whi + tol) | (length < llo - tol) | \
        (length > lhi + tol)
    return bad.long() * FLAG_SIZE


def checks(fine: dict, rect: Tensor, lower_level: Tensor, limits: dict) -> dict:
    """Flags [B,K] (``FLAG_*``) and the figures behind them for candidate rectangles."""
    maps, cell = fine["maps"], fine["cell"]
    u0, u1, v0, v1 = rect.unbind(-1)
    du, dv = u1 - u0, v1 - v0
    width, length = torch.minimum(du, dv), torch.maximum(du, dv)
    flags = size_flags(width, length, limits)
    inner = _region(cell, rect, (0.0,) * 4).to(maps.dtype)

    def total(x: Tensor, where: Tensor) -> Tensor:
        return (x * where).sum((-1, -2))

    fill = total(fine["soft"], inner) / inner.sum((-1, -2)).clamp(min=1)
    # Cells without readings that something on the mattress hides from the camera count as
    # filled (bedfit_hidden: a person's shadow reaching an edge is not enclosed by bed).
    hidden = hidden_cells(fine["height"], (inner > 0) & ~fine["known"] & (fine["soft"] < 1),
                          fine["pa"], fine["pb"], fine["phi"], cell, fine["level"])
    fill_all = total(torch.maximum(fine["soft"], hidden.to(maps.dtype)), inner) / \
        inner.sum((-1, -2)).clamp(min=1)
    flags |= (fill_all < limits["min_fill"]).long() * FLAG_FILL
    seen = (maps[:, :, CH_ALL] > 0).to(maps.dtype)
    flat = total((maps[:, :, CH_LEVEL] > 0).to(maps.dtype), inner) / \
        total(seen, inner).clamp(min=1)
    flags |= (flat < limits["min_flat"]).long() * FLAG_FLAT
    ring = (_region(cell, rect, (0.3,) * 4) & ~_region(cell, rect, (0.04,) * 4)).to(maps.dtype)
    seen_ring = total(maps[:, :, CH_ALL], ring)
    # The share of the ring's horizontal readings that lie lower: walls, a headboard and
    # things above the level (many points per cell when seen at a grazing angle) are left
    # out, or a wall behind the head end outweighs a dark floor's few readings.
    low, level_pts = total(maps[:, :, CH_LOW], ring), total(maps[:, :, CH_LEVEL], ring)
    drop = low / (low + level_pts).clamp(min=1)
    drop = torch.where(low >= 20, drop, 0.0)
    # Raised: lower surfaces around it, or a floor level below, or at least no surface of
    # its own level continuing around it where the ring is seen (a dark floor gives few
    # readings; the floor itself, or a rug on it, continues on every side).
    same = total(maps[:, :, CH_LEVEL], ring) / seen_ring.clamp(min=1)
    looked = total(fine["seen"], ring) >= 0.3 * ring.sum((-1, -2))  # not beyond the image
    raised = (drop >= 0.2) | lower_level | ((same < 0.3) & looked)
    # Surroundings that hardly read (a dark floor, one beyond the range): nothing says a
    # mattress-sized surface is not raised (a floor is always there, it just does not
    # read), so it passes, but such a fit is weak (``unread_ring``): what stands it above
    # the floor is not seen. Others (a floor or a wall seen in part, a speck) do not pass.
    (wlo, whi), (llo, lhi) = limits["width"], limits["length"]
    sized = (width >= wlo - 0.3) & (width <= whi + 0.3) & (length >= llo - 0.3) & (
        length <= lhi + 0.3)
    unread_ring = ~raised & ~looked & (same < 0.3) & sized
    raised = raised | unread_ring
    flags |= (~raised).long() * FLAG_RAISED
    # Something nearer the camera than the bed band that hides the mattress is a flat top
    # (a table): cells of high points whose heights spread little. A wall seen at a grazing
    # angle smears over several cells in the top view, with heights of a metre's range.
    box = fine["box"]
    hm = box[:, :, CH_HIGH_H] / box[:, :, CH_HIGH].clamp(min=1e-9)
    hs = (box[:, :, CH_HIGH_H2] / box[:, :, CH_HIGH].clamp(min=1e-9) - hm**2).clamp(min=0).sqrt()
    flat_high = ((maps[:, :, CH_HIGH] > 0) & (hs <= torch.clamp(
        2.5 * fine["sigma"], min=0.05)[..., None, None])).to(maps.dtype)
    # Per edge: a strip 3-20 cm outside (hidden by something nearer the camera?) and, on
    # the long sides, 20 cm inside (the raised back of a sofa?). The four edges (+u, −u's
    # order of ``_region``'s growths: u0, u1, v0, v1) at once: [B,K,4,F,F].
    side = torch.arange(4, device=maps.device)
    grown = [(side == i).to(maps.dtype) for i in range(4)]  # edge i grows component i
    cell4, rect4 = cell[..., None], rect[:, :, None, :]
    strip = (_region(cell4, rect4, tuple(0.2 * g for g in grown))
             & ~_region(cell4, rect4, tuple(0.03 * g for g in grown))).to(maps.dtype)
    seen_s = total(seen[:, :, None], strip)
    occluded = ((total(flat_high[:, :, None], strip) >= 0.7 * seen_s) & (seen_s > 0)).any(-1)
    # 20 cm inside the opposite edge: edge 0 grows component 1 by 0.2 − du, and so on.
    depth_in = torch.stack([du, du, dv, dv], -1)
    band_strip = _region(cell4, rect4, tuple((0.2 - depth_in) * grown[i ^ 1] for i in range(4))
                         ).to(maps.dtype)
    height = fine["height"][:, :, None]
    u_sides, v_sides = band_strip[:, :, :2], band_strip[:, :, 2:]  # the means across them
    mean_h = torch.cat([(height * u_sides).sum(-1) / u_sides.sum(-1).clamp(min=1),
                        (height * v_sides).sum(-2) / v_sides.sum(-2).clamp(min=1)], 2)
    present = torch.cat([u_sides.amax(-1), v_sides.amax(-2)], 2)
    share = ((mean_h >= 0.2) * present).sum(-1) / present.sum(-1).clamp(min=1)
    u_long = (du >= dv)[..., None]
    is_long = torch.where(side < 2, ~u_long, u_long)
    sofa = (is_long & (share >= 0.7)).any(-1)
    flags |= occluded.long() * FLAG_OCCLUDED
    flags |= sofa.long() * FLAG_SOFA
    return {"flags": flags, "fill": fill, "flat": flat, "drop": drop, "width": width,
            "length": length, "unread_ring": unread_ring}


def _valid_window(valid: Tensor, stride: int) -> Tensor:
    """Per frame the image window [B,4] (u_min, u_max, v_min, v_max) px inside the bands of
    the border where the sensor gives no readings in 90 % of the rows (columns): a stereo
    camera's blind left band."""
    _B, h, w = valid.shape
    any_row, any_col = valid.any(2), valid.any(1)
    first_c = valid.to(torch.int8).argmax(2).to(torch.float32)
    last_c = (w - 1 - valid.flip(2).to(torch.int8).argmax(2)).to(torch.float32)
    first_r = valid.to(torch.int8).argmax(1).to(torch.float32)
    last_r = (h - 1 - valid.flip(1).to(torch.int8).argmax(1)).to(torch.float32)

    def band(x, ok, default, q):  # where 90 % of the rows (columns) have readings
        x = torch.where(ok, x, default)
        return x.quantile(q, dim=1)

    return torch.stack([band(first_c, any_row, 0, 0.1) * stride,
                        (band(last_c, any_row, w - 1, 0.9) + 1) * stride - 1,
                        band(first_r, any_col, 0, 0.1) * stride,
                        (band(last_r, any_col, h - 1, 0.9) + 1) * stride - 1], -1)


def project(K: Tensor, p: Tensor) -> Tensor:
    """Pixels [...,2] of camera points p [B,...,3], K [B,3,3]."""
    shape = p.shape
    flat = p.reshape(shape[0], -1, 3) @ K.transpose(1, 2)
    uv = flat[..., :2] / flat[..., 2:3].clamp(min=1e-6)
    return uv.reshape(*shape[:-1], 2)


def view_flags(corners: Tensor, K: Tensor, valid: Tensor, stride: int,
               whole: Tensor | None = None) -> Tensor:
    """``FLAG_VIEW`` [B,K] where a rectangle (corners [B,K,4,3], camera frame) is not
    completely in view: its corners and a strip 3 cm beyond each edge must project inside
    the image's valid window (the blocks ``valid`` [B,h,w] of ``stride`` pixels) by 2 px;
    the ``whole`` [B,K] ones inside the image (an end beyond a time-of-flight camera's
    range, :mod:`bedfit_range`: the rows past it read nothing, yet are in view)."""
    frac = torch.linspace(0.0, 1.0, 7, device=corners.device)[:, None]
    out = 0.03
    edges = []
    for i in range(4):
        p0, p1 = corners[:, :, i], corners[:, :, (i + 1) % 4]
        mid = (corners.mean(2) - (p0 + p1) / 2)
        push = -out * mid / mid.norm(dim=-1, keepdim=True).clamp(min=1e-9)
        edges.append(p0[:, :, None] + frac * (p1 - p0)[:, :, None] + push[:, :, None])
    samples = torch.cat([corners, *edges], 2)  # [B,K,4+28,3]
    uv = project(K, samples)
    win = _valid_window(valid, stride)[:, None, None]
    if whole is not None:
        image = win.new_tensor([0.0, valid.shape[2] * stride - 1, 0.0,
                                valid.shape[1] * stride - 1])
        win = torch.where(whole[..., None, None], image, win)
    margin = 2.0
    inside = ((uv[..., 0] >= win[..., 0] + margin) & (uv[..., 0] <= win[..., 1] - margin)
              & (uv[..., 1] >= win[..., 2] + margin) & (uv[..., 1] <= win[..., 3] - margin)
              & (samples[..., 2] > 0))
    return torch.where(inside.all(-1), 0, FLAG_VIEW)


def grazing(normal: Tensor, offset: Tensor, below: Tensor, centre: Tensor, eu: Tensor,
            ev: Tensor, half: Tensor) -> Tensor:
    """How far out (m) each edge (+u, −u, +v, −v) of rectangles (centre [B,3] on the planes
    ``n·p + offset = 0``, n [B,3] toward the camera, unit axes eu, ev [B,3], half sizes
    [B,2]) may have been measured where the camera sees the mattress's side below it.

    Beyond an edge on the camera's side, a ray through a plane point s out meets the side
    face s·h/d below the plane (h: the camera's height over the plane, d: its distance
    out past the edge, across it); while that is within the mattress band ``below`` [B]
    (:func:`bedfit_edges.below_band`) the point reads as mattress, so a camera low and far
    out sees the edge up to below·d/h too far out. 0 for an edge the camera is inside of."""
    outward, dist = outward_edges(eu, ev, half)
    mid = centre[:, None] + outward * dist[..., None]
    d = -(mid * outward).sum(-1)  # the camera (origin) past the edge, across it
    return below[:, None] * d.clamp(min=0) / offset.clamp(min=0.1)[:, None]


# [choice] The share of ``grazing`` by which an edge is pulled in: over the fits within 10 cm
# of the tuning rooms 3000-3047 the fitted size exceeded the true one by 0.75-1 times the
# bound (median per bin); pulled in by 0.8 of it (at most 5 cm), right 297 -> 304 there and
# 590 -> 594 on 4000-4095, unflagged wrong 9 -> 7 and 8 -> 4, no right fit lost (1.0: the
# same on 3000-3047).
GRAZING_PULL = 0.8


def pull_in(ref: dict, grazing_m: Tensor) -> tuple[Tensor, Tensor]:
    """(centre [B,3], half sizes [B,2]) of the rectangle ``ref`` (centre, axes eu, ev, half
    sizes ``half``) with each edge (+u, −u, +v, −v) pulled in by GRAZING_PULL of its
    ``grazing_m`` [B,4] (:func:`grazing`), at most 5 cm (:func:`bedfit_boards.moved_edges`)."""
    return moved_edges(ref, -(GRAZING_PULL * grazing_m).clamp(max=0.05))


# [choice] A later twin replaces an earlier passing one only where it fills its rectangle
# this much better: twins of one bed differ by 0.01 or so (tuning rooms 3000-3047: two of
# them, where the later was the worse fit), a turned twin by 0.15.
FILL_MARGIN = 0.05


def duplicates(level: Tensor, mid: Tensor, flags: Tensor, fill: Tensor) -> Tensor:
    """[B,K] bool: candidates that are the same bed found again (levels within 3 cm, centres
    [B,K,2] within 30 cm) as a passing candidate: a failing one always, a passing one
    where the other fills its rectangle ``FILL_MARGIN`` better, or about as well and came
    earlier (the more mattress-like at the coarse stage). A region grown from a blanket
    thrown across the bed, or from a body along a diagonal, gives a rectangle turned with
    it that also passes, and it may come first (an SLP-like bed scene: fill 0.83 against
    0.98)."""
    same = ((level[:, :, None] - level[:, None]).abs() < 0.03) & (
        (mid[:, :, None] - mid[:, None]).norm(dim=-1) < 0.3)
    k = level.shape[1]
    earlier = torch.ones(k, k, dtype=torch.bool, device=level.device).tril(-1)  # [i, j]: j < i
    gain = fill[:, None, :] - fill[:, :, None]  # [b, i, j]: j's fill less i's
    better = (gain > FILL_MARGIN) | ((gain >= -FILL_MARGIN) & earlier)
    other = ~torch.eye(k, dtype=torch.bool, device=level.device)
    passing = flags == 0
    beaten = better | ~passing[:, :, None]  # a failing one yields to any passing twin
    return (same & other & beaten & passing[:, None, :]).any(-1)


# [choice] m: a passing rectangle this much higher than another passing one that holds its
# centre lies on that mattress (a body under a blanket, a thick cover), not beside it; a
# bed on a floor is at least ~25 cm above it.
STACKED = (0.03, 0.25)


def stacked(good: Tensor, level: Tensor, centre: Tensor, eu: Tensor, ev: Tensor,
            half: Tensor) -> Tensor:
    """[B,K] bool: passing candidates lying on another passing one: their centre [B,K,3]
    inside its measured rectangle (``eu``, ``ev`` [B,K,3], ``half`` [B,K,2]), smaller in
    area, and ``STACKED`` higher (``level``: distance from the camera, smaller is higher).
    A person lying diagonally under a blanket makes a mattress-sized region 9 cm above the
    mattress whose edges show better than the mattress's own (an SLP-like bed scene)."""
    rel = centre[:, :, None] - centre[:, None]  # [B,i,j]: i's centre from j's
    u = (rel * eu[:, None]).sum(-1).abs()
    v = (rel * ev[:, None]).sum(-1).abs()
    inside = (u <= half[:, None, :, 0]) & (v <= half[:, None, :, 1])
    area = half.prod(-1)
    rise = level[:, None, :] - level[:, :, None]  # j's distance less i's: i above j
    on = inside & (area[:, :, None] < area[:, None, :]) & (rise >= STACKED[0]) & (
        rise <= STACKED[1])
    return good & (on & good[:, None, :]).any(-1)


# [choice] An edge whose last 5 cm inside read nothing (under 30 % of the points) on this
# share of its lines lies somewhere in that blind strip: the step the ray test found is the
# strip's far side (a wall or a board beyond it, an Azure Kinect's invalidated pixels at a
# depth edge). Benchmark rooms (seed 500, 240 fits): 5 fits reach it, all 5-14 cm off but
# one, and the one unflagged wrong fit (Azure NFOV, the head end 5.8 cm out, 0.84).
BLIND_EDGE = 0.5


def blind_edges(s: Tensor, h: Tensor) -> Tensor:
    """[B] bool: a fitted rectangle has an edge whose 0.5-5.5 cm inside read under 30 % of
    its points on ``BLIND_EDGE`` of its lines or more; from the offsets s [M] and heights
    h [B,4,N,M] (nan unknown) on lines across its edges, 1 cm apart
    (``bedfit_cover.profiles``)."""
    strip = (s >= -0.055) & (s <= -0.005)
    read = torch.isfinite(h[..., strip]).to(h.dtype).mean(-1)  # [B,4,N]
    return ((read < 0.3).to(h.dtype).mean(-1) >= BLIND_EDGE).any(-1)


def reason(flags: Tensor, ok: Tensor, found: Tensor, enough: Tensor) -> Tensor:
    """The :data:`bedfit_result.REASONS` key [B] of fits whose chosen candidate failed
    ``flags`` [B] (``ok``: passed; ``found``: a horizontal plane was; ``enough``: valid
    readings were)."""
    mattress_like = (flags & (FLAG_SIZE | FLAG_EMPTY | FLAG_RAISED)) == 0
    raised = (flags & (FLAG_EMPTY | FLAG_RAISED)) == 0
    out = torch.full_like(flags, NO_MATTRESS, dtype=torch.int64)
    out = torch.where(mattress_like & ((flags & FLAG_OCCLUDED) > 0), HIDDEN, out)
    # A raised surface running out of the image (cut short, it need not look mattress-sized).
    out = torch.where(raised & ((flags & FLAG_VIEW) > 0), PARTIAL, out)
    out = torch.where(found, out, NO_PLANE)
    out = torch.where(enough, out, NO_DEPTH)
    return torch.where(ok, OK, out)


SEAM_LINES, SEAM_POINTS = 24, 81  # lines across the mattress looking for a seam, points


def seam(depth_m: Tensor, K: Tensor, n: Tensor, offset: Tensor, sigma: Tensor,
         centre: Tensor, eu: Tensor, ev: Tensor, half: Tensor, lines: int = SEAM_LINES,
         points: int = SEAM_POINTS) -> Tensor:
    """The largest share [B] of ``lines`` lines across rectangles (centre [B,3] on the
    planes ``n·p + offset = 0``, axes eu, ev [B,3], half sizes [B,2]; over the inner 80 % of
    the length) that see free space deep below the plane (by 10 cm, or 3σ of the level's
    noise sigma [B]) at one and the same place across (±1 of ``points`` points spread over
    the width less 10 cm at each side): the gap between two surfaces of one height that a
    rectangle took for one (a bed pushed against a bench or a sofa's seat). A mattress,
    also under a body, has no such line of holes; a body hides its own dent."""
    B = centre.shape[0]
    long_u = (half[:, 0] >= half[:, 1])[:, None]
    along, across = torch.where(long_u, eu, ev), torch.where(long_u, ev, eu)
    hl, hw = half.amax(-1), half.amin(-1)
    t = torch.linspace(-0.8, 0.8, lines, device=centre.device)[None] * hl[:, None]
    w = torch.linspace(-1.0, 1.0, points, device=centre.device)[None] * (hw - 0.1).clamp(
        min=0.05)[:, None]
    pts = (centre[:, None, None] + along[:, None, None] * t[:, :, None, None]
           + across[:, None, None] * w[:, None, :, None])  # [B,N,M,3]
    d, rays = _depth_at(depth_m, K, pts.reshape(B, -1, 3))
    h = ((rays * d[..., None]) @ n[:, :, None])[..., 0] + offset[:, None]
    deep = (h < -torch.clamp(3 * sigma, min=0.1)[:, None]).to(h.dtype).reshape(B * lines, 1, -1)
    near = torch.nn.functional.max_pool1d(deep, 3, 1, 1).reshape(B, lines, points)
    return near.mean(1).amax(-1)
