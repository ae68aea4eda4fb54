"""Bed finding, stage 4: the mattress edges measured on the full-resolution depth frame.

Batched torch, part of :func:`bedfit_batch.fit_beds`. The rectangle of stage 3 comes from a
top-down grid of block-averaged points (cells of 2–4 cm); here each of its four edges is
measured again on the raw pixels, by a **ray test**: on ``LINES`` lines across the edge,
points of the mattress plane from ``reach`` inside to ``reach`` outside it are projected
into the image, and the surface the camera sees along each such ray (the median of the
valid readings of the 3×3 pixels around it) is compared with the plane point:

* a surface at the plane (height within the noise band): **mattress** (``in``);
* a surface *below* the plane (farther along the ray): free space at the plane point, so
  it lies beyond the mattress (``out``): the floor, the frame's rim, the mattress's own
  side, a board's face below the mattress top;
* a surface *above* the plane (nearer along the ray): something hides the plane point
  (a body, a pillow, a board's top, an arm over the edge): unknown, as is a ray without
  readings (stereo shadows, dropout) or outside the image.

Unlike a top view, this needs no guess of what hides what: the far side of a bed seen at
an angle, the gap behind a headboard and a blanket hanging over the side all give the
right answer or none. On each line the edge is the clear step from ``in`` to ``out`` (6 cm
mostly mattress before it, free space right after it, at most 3 cm of unknown between,
little free space before it) with the most mattress minus free space before it; its
position is the middle of the step (:func:`steps`). A rectangle (a common turn about the
normal and four edge offsets) is fitted to the steps of all four edges at once by
iteratively reweighted least squares (Tukey weights): a bedside table, an arm or a pillow
at one place pulls no edge. The plane's offset is the median height of the mattress points
within 3–``reach`` cm inside the edges (the edges sag least under a body), in a band as
deep below the plane as above it. A wide pass (30 cm each way, 1 cm steps) measures every
candidate rectangle; a fine pass (8 cm, 5 mm) the chosen one.

Per edge the **support** is the share of its lines whose step lies within 1.5 cm of the
fitted edge: low support means an edge the camera does not see (hidden, cut by the image)
or not straight (no mattress), see :func:`refine`. :func:`bedfit_checks.seam` looks for a gap
running along the rectangle (two surfaces of one height taken as one).
"""

from __future__ import annotations

import torch
from torch import Tensor

from disrt_core.constants import const

LINES = 48  # lines across each edge
STEP = 0.005  # m between the points of a line
GAP = 0.03  # m of unknown points allowed inside a step
RUN = 0.06  # m before a step that are mostly mattress
SUPPORT_TOL = 0.015  # m: a step this close to the fitted edge supports it
# [choice] m the plane may rise above a level found under a blanket (``refine``'s
# min_offset): on the benchmark rooms 0-3 cm gave the same fits; D435 under a 5 cm duvet with
# the head end bare: the plane 4.0-4.5 cm high without it, 0.2-1.2 cm with it.
BLANKET_RISE = 0.015
HELD_BY = 0.01  # [choice] m: a median this far above the allowed rise holds the plane
# (reach, step, lines) of the passes: a wide one over every candidate (an edge the grid put
# up to 30 cm off), a fine one over the chosen rectangle.
WIDE_PASS, FINE_PASS = (0.3, 0.01, LINES), (0.08, STEP, LINES)


# A median-of-9 sorting network (19 compare-exchanges; the median ends at index 4).
_MEDIAN9 = ((1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8), (0, 3),
            (5, 8), (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2))


def _live(network: tuple[tuple[int, int], ...], out: int
          ) -> tuple[tuple[int, int, bool, bool], ...]:
    """The compare-exchanges of ``network`` with whether their minimum and their maximum are
    read later on the way to index ``out``: 8 of the 38 min/max ops of the median network
    feed nothing and are left out (the same values at index ``out``)."""
    live, steps = {out}, []
    for a, b in reversed(network):
        steps.append((a, b, a in live, b in live))
        if a in live or b in live:
            live |= {a, b}
    return tuple(reversed(steps))


_MEDIAN9_LIVE = _live(_MEDIAN9, 4)


def _nanmedian9(x: Tensor) -> Tensor:
    """The lower median of the good values among nine, x [9,...] (a missing value is 0 and
    the good ones positive, no nan; overwritten), nan where all nine are missing: as
    ``x.nanmedian(0)`` with the missing ones set to nan but several times faster. The k
    missing values become −inf and +inf in turn (−inf first), which leaves the lower median
    of the others at the middle of the nine: the running count of missing values by eight
    row additions in int8, and each missing value as ∓1/0, in place (a where, a cumsum along
    the nine and each float temporary of the stack cost more than the passes)."""
    good = x.sign()  # 1 or 0 (missing)
    bad = good.to(torch.int8).neg_().add_(1)
    count = bad.clone()  # missing ones so far
    for i in range(1, 9):
        torch.add(count[i], count[i - 1], out=count[i])
    none = count[-1] >= 9
    # odd count -> +1, even -> −1, good -> 0: a missing value −1/0 = −inf, +1/0 = +inf,
    # a good one x/1 = x
    sign = count.bitwise_and_(1).mul_(2).sub_(1).mul_(bad)
    x = x.sub_(sign).div_(good)
    p = list(x.unbind(0))
    for a, b, need_min, need_max in _MEDIAN9_LIVE:
        lo, hi = p[a], p[b]
        if need_min:
            p[a] = torch.minimum(lo, hi)
        if need_max:
            p[b] = torch.maximum(lo, hi)
    return torch.where(none, float("nan"), p[4])


def _padded(depth: Tensor) -> Tensor:
    """The depth frame [B,H,W] for :func:`_depth_at`, flat [B,(H+4)·(W+4)]: two pixels of
    padding, a missing reading (0, negative, nan) as 0. Made once per frame tensor and kept
    on it (the fit reads its frame five times; the frame is not changed in place)."""
    got = getattr(depth, "_bedfit_padded", None)
    if got is None:
        clean = depth.nan_to_num(0.0, float("inf"), 0.0).clamp(min=0)
        got = torch.nn.functional.pad(clean, (2, 2, 2, 2)).reshape(depth.shape[0], -1)
        depth._bedfit_padded = got
    return got


def _depth_at(depth: Tensor, K: Tensor, points: Tensor) -> tuple[Tensor, Tensor]:
    """Median depth (m) of the valid readings in the 3×3 pixels around the projections of
    camera points [B,S,3] on depth frames [B,H,W] (m, 0 = none), and the ray directions
    [B,S,3] (z = 1) through the projections; nan where nothing was read."""
    B, H, W = depth.shape
    z = points[..., 2].clamp(min=1e-6)
    u = K[:, 0, 0, None] * points[..., 0] / z + K[:, 0, 2, None]
    v = K[:, 1, 1, None] * points[..., 1] / z + K[:, 1, 2, None]
    ui, vi = torch.round(u).long(), torch.round(v).long()
    # Two pixels of padding without readings: a projection up to one pixel outside the
    # image still reads its neighbours inside, and no index needs a bounds test.
    near = (ui >= -1) & (ui <= W) & (vi >= -1) & (vi <= H) & (points[..., 2] > 0)
    wp = W + 4
    flat = _padded(depth)
    base = (vi.clamp(-1, H) + 2) * wp + ui.clamp(-1, W) + 2
    # The nine neighbours in one gather from three views of the frame a pixel apart, with
    # an index of the three rows only (their offsets made once per frame width and device;
    # the order of the nine is the median's no matter).
    rows = const((-wp - 1, -1, wp - 1), depth.device)
    shifted = flat.as_strided((B, 3, flat.shape[1] - 2), (flat.stride(0), 1, 1))
    index = (base[:, None] + rows[:, None]).reshape(B, 1, -1).expand(B, 3, -1)
    d = torch.gather(shifted, 2, index).reshape(B, 9, -1).transpose(0, 1)  # [9,B,S]
    d = torch.where(near, _nanmedian9(d), float("nan"))
    rays = torch.stack([(u - K[:, 0, 2, None]) / K[:, 0, 0, None],
                        (v - K[:, 1, 2, None]) / K[:, 1, 1, None], torch.ones_like(u)], -1)
    return d, rays


def below_band(sigma: Tensor) -> Tensor:
    """How far below the plane (m) a surface still reads as mattress (``in``): 2.5σ, 3–6 cm."""
    return torch.clamp(2.5 * sigma, min=0.03, max=0.06)


def outward_edges(eu: Tensor, ev: Tensor, half: Tensor) -> tuple[Tensor, Tensor]:
    """The edges (+u, −u, +v, −v) of rectangles (unit axes eu, ev [B,3], half sizes [B,2]):
    their outward directions [B,4,3] and distances [B,4] from the centre."""
    outward = torch.stack([eu, -eu, ev, -ev], 1)
    dist = torch.stack([half[:, 0], half[:, 0], half[:, 1], half[:, 1]], 1)
    return outward, dist


def edge_lines(centre: Tensor, eu: Tensor, ev: Tensor, half: Tensor, reach: float,
               lines: int = LINES, step: float = STEP) -> tuple[Tensor, Tensor, Tensor]:
    """Plane points [B,4,N,M,3] on lines across the edges (+u, −u, +v, −v) of rectangles
    (centre [B,3], unit axes eu, ev [B,3], half sizes [B,2]), from ``reach`` inside to
    ``reach`` outside; their offsets s [M] (+ outward) and the lines' positions t [B,4,N]
    along the edges (over the inner 90 %)."""
    dev, dt = centre.device, centre.dtype
    m = round(2 * reach / step) + 1
    s = torch.linspace(-reach, reach, m, device=dev, dtype=dt)
    frac = torch.linspace(-0.9, 0.9, lines, device=dev, dtype=dt)
    hu, hv = half[:, 0], half[:, 1]
    normal, dist = outward_edges(eu, ev, half)
    along = torch.stack([ev, ev, eu, eu], 1)
    length = torch.stack([hv, hv, hu, hu], 1)
    t = frac * length[..., None]  # [B,4,N]
    base = centre[:, None, None] + along[:, :, None] * t[..., None]  # [B,4,N,3]
    off = dist[..., None] + s  # [B,4,M]
    pts = base[:, :, :, None] + normal[:, :, None, None] * off[:, :, None, :, None]
    return pts, s, t


def classify(depth: Tensor, K: Tensor, points: Tensor, n: Tensor, offset: Tensor,
             below: Tensor, above: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """For plane points [B,...,3]: mattress (in), free space (out) and the height (m, nan
    where unknown) of the surface seen along their rays, relative to the plane
    ``n·p + offset = 0`` (n toward the camera); ``below``/``above`` [B]: the noise band."""
    B = points.shape[0]
    shape = points.shape[:-1]
    flat = points.reshape(B, -1, 3)
    d, rays = _depth_at(depth, K, flat)
    seen = rays * d[..., None]
    h = (seen @ n[:, :, None])[..., 0] + offset[:, None]
    known = torch.isfinite(h)
    inside = known & (h >= -below[:, None]) & (h <= above[:, None])
    out = known & (h < -below[:, None])
    return inside.reshape(shape), out.reshape(shape), h.reshape(shape)


def steps(inside: Tensor, out: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
    """Edge position [...] (m, in the units of the evenly spaced point offsets s [M]) and
    whether it is a clear step [...] on lines of classified points [...,M] (see the module
    docstring).

    Every boundary between two points is a possible step: the last mattress point before
    it and the first free-space point after it, with only unknown points between them (at
    most ``GAP``). It is clear when, besides 2 cm of each side in all, the ``RUN`` before
    it is mostly mattress and the 2 cm after it mostly free space (so the few in-band
    readings that a board's far edge or a wall's foot give beyond the mattress make no
    step), and few points lie on the wrong side. The clear boundary with the most
    mattress minus free space before it wins."""
    step = float(s[1] - s[0])
    m = s.shape[-1]
    need = max(2, round(0.02 / step))
    run = max(need, round(RUN / step))
    zero = torch.zeros_like(inside[..., :1], dtype=torch.int64)
    # [...,M+1]: inside (out) before b, counted in int32 (half the bytes of the indices)
    zero32 = torch.zeros_like(inside[..., :1], dtype=torch.int32)
    ci = torch.cat([zero32, inside.to(torch.int32).cumsum(-1, dtype=torch.int32)], -1)
    co = torch.cat([zero32, out.to(torch.int32).cumsum(-1, dtype=torch.int32)], -1)
    idx = torch.arange(m, device=s.device).expand_as(inside)
    last_in = torch.cat([zero - 1, torch.where(inside, idx, -1).cummax(-1).values], -1)
    first_out = torch.where(out, idx, m).flip(-1).cummin(-1).values.flip(-1)
    first_out = torch.cat([first_out, zero + m], -1)  # [...,M+1]: first out at or after b
    b = torch.arange(m + 1, device=s.device).expand_as(ci)
    li, fo = last_in.clamp(min=0), first_out.clamp(max=m - 1)

    def count(c: Tensor, lo: Tensor, hi: Tensor) -> Tensor:  # points in [lo, hi), 0 <= lo, hi <= m
        return torch.gather(c, -1, hi) - torch.gather(c, -1, lo)

    # (c gathered at b is c itself)
    n_in, n_out = ci, co[..., -1:] - co
    hi_out = (fo + need).clamp(max=m)
    # Free space before the step contradicts it; mattress-level readings after the free
    # space do not (a wall's foot, a neighbour of the same height beyond a gap).
    wrong = co + (torch.gather(ci, -1, hi_out) - ci)
    lo_run = (li + 1 - run).clamp(min=0)
    run_in = count(ci, lo_run, li + 1) / (li + 1 - lo_run).clamp(min=1)
    after_out = count(co, fo, hi_out) / (hi_out - fo).clamp(min=1)
    valid = ((last_in >= 0) & (first_out < m) & ((first_out - last_in) * step <= GAP + 1e-6)
             & (co == torch.gather(co, -1, li + 1)) & (torch.gather(ci, -1, fo) == ci)
             & (n_in >= need) & (n_out >= need) & (wrong <= 0.25 * (n_in + n_out))
             & (run_in >= 0.75) & (after_out >= 0.75))
    score = torch.where(valid, ci - co, -10 * m)
    best = torch.where(score >= score.amax(-1, keepdim=True), b, m + 1).amin(-1, keepdim=True)
    pos = (s[torch.gather(li, -1, best)[..., 0]] + s[torch.gather(fo, -1, best)[..., 0]]) / 2
    return pos, torch.gather(valid, -1, best)[..., 0]


def _tukey(r: Tensor, c: float) -> Tensor:
    return ((1 - (r / c) ** 2).clamp(min=0)) ** 2


def fit_rectangle(pos: Tensor, t: Tensor, weight: Tensor, half: Tensor,
                  iterations: int = 5) -> tuple[Tensor, Tensor, Tensor]:
    """Rectangle of step positions pos [B,4,N] (m from the centre, outward), at t [B,4,N]
    along the edges, weights [B,4,N]: edge offsets [B,4] (+u, −u, +v, −v as signed
    coordinates U1, U0, V1, V0), the turn δ [B] (rad, about the normal, from u toward v)
    and the final weights [B,4,N]. Edges without steps keep ``half`` [B,2]."""
    B = pos.shape[0]
    dev, dt = pos.device, pos.dtype
    sign = pos.new_tensor([1.0, -1.0, 1.0, -1.0])
    value = sign[:, None] * pos  # signed coordinate of each step
    slope = pos.new_tensor([-1.0, -1.0, 1.0, 1.0])  # x = U - δ·t ; y = V + δ·t
    eye = torch.eye(4, device=dev, dtype=dt)
    design = torch.cat([eye[None, :, None, :].expand(B, 4, t.shape[-1], 4),
                        (slope[:, None] * t)[..., None]], -1)  # [B,4,N,5]
    prior = torch.stack([half[:, 0], -half[:, 0], half[:, 1], -half[:, 1]], -1)
    # A weak prior (about one line) keeps an edge without steps where it was, δ near 0.
    prior_w = 0.5
    w = weight
    # Start from the median of each edge's steps (robust), then reweight.
    med = torch.where(weight > 0, value, float("nan")).nanmedian(
        -1).values
    start = torch.where(torch.isfinite(med), med, prior)
    theta = torch.cat([start, torch.zeros(B, 1, device=dev, dtype=dt)], -1)
    # The prior's terms and the flat design, made once for all iterations.
    reg = torch.full((5,), prior_w, device=dev, dtype=dt)
    reg_lhs = torch.diag_embed(reg.expand(B, 5))
    reg_rhs = reg * torch.cat([prior, torch.zeros(B, 1, device=dev, dtype=dt)], -1)
    A, flat_value = design.reshape(B, -1, 5), value.reshape(B, -1)
    for it in range(iterations):
        resid = value - (design @ theta[:, None, :, None])[..., 0]
        c = (0.06, 0.04, 0.03, 0.025, 0.02)[min(it, 4)]
        w = weight * _tukey(resid, c)
        # the einsums bn,bni,bnj->bij and bn,bni,bn->bi as they contract (the same sums),
        # the weighted design made once for both
        wa = (w.reshape(B, -1)[..., None] * A).transpose(1, 2)
        lhs = torch.bmm(wa, A) + reg_lhs
        rhs = torch.bmm(wa, flat_value[..., None])[..., 0] + reg_rhs
        theta = torch.linalg.solve(lhs, rhs)
    resid = value - (design @ theta[:, None, :, None])[..., 0]
    return theta[:, :4], theta[:, 4], weight * (resid.abs() <= SUPPORT_TOL)


def refine(depth_m: Tensor, K: Tensor, n: Tensor, offset: Tensor, sigma: Tensor,
           centre: Tensor, eu: Tensor, ev: Tensor, half: Tensor,
           passes: tuple[tuple[float, float, int], ...] = (WIDE_PASS, FINE_PASS),
           min_offset: Tensor | None = None) -> dict:
    """Rectangles of C candidates per frame (centre [B,C,3] on their planes, axes eu, ev
    [B,C,3], half sizes [B,C,2]; planes ``n·p + offset = 0`` with n [B,3], offset and level
    noise sigma [B,C]) and their plane offsets measured again on the raw frames depth_m
    [B,H,W] (m, 0 = none), one pass per ``(reach, step, lines)`` (m, m, count; see the
    module docstring). Returns
    centre, eu, ev, half, offset and per edge [B,C,4] (+u, −u, +v, −v) the ``support``
    (share of lines with a step within 1.5 cm of the fitted edge) and the ``seen`` share
    of lines with a clear step. ``min_offset`` [B,C] (m): the plane moves toward the camera
    no further than ``n·p + min_offset = 0`` (a level found under a blanket,
    :func:`bedfit_rect.lower_level`, less ``BLANKET_RISE``: near the edges, which the
    blanket covers, the median would climb back to its top); ``held`` [B,C]: the last
    pass's median lay ``HELD_BY`` or more above that (the edges were measured on a cover:
    they may be some cm off)."""
    B, C = offset.shape
    below = below_band(sigma).reshape(B * C)
    above = torch.clamp(2.5 * sigma, min=0.035, max=0.08).reshape(B * C)
    nn_ = n[:, None].expand(B, C, 3).reshape(B * C, 3)
    centre, eu, ev = centre.reshape(B * C, 3), eu.reshape(B * C, 3), ev.reshape(B * C, 3)
    half, offset = half.reshape(B * C, 2), offset.reshape(B * C)
    floor = None if min_offset is None else min_offset.reshape(B * C)
    held = torch.zeros_like(offset, dtype=torch.bool)
    support = seen = torch.zeros(B * C, 4, device=centre.device)
    for reach, step, lines in passes:
        pts, s, t = edge_lines(centre, eu, ev, half, reach, lines, step)
        inside, out, h = _classify_candidates(depth_m, K, pts.reshape(B, C, -1, 3), nn_,
                                              offset, below, above)
        inside, out, h = (x.reshape(pts.shape[:-1]) for x in (inside, out, h))
        pos, clear = steps(inside, out, s)
        dist = outward_edges(eu, ev, half)[1]
        edges, delta, support_w = fit_rectangle(dist[..., None] + pos, t,
                                                clear.to(pos.dtype), half)
        # The plane: median height of the mattress points 3 cm to ``reach`` inside, in a band
        # as deep below the plane as above it (the mattress band reaches higher above than
        # below, which would lift the median by a noisy camera's spread).
        # Iterated: the band follows the median.
        # The points 3 cm or more inside are a prefix of each line (s ascends): only it is
        # read (the same values, a third to a half as many).
        h_in = h[..., :int((s <= -0.03).sum())].contiguous()
        shift = torch.zeros_like(offset)
        for _ in range(3):
            hs = h_in - shift[:, None, None, None]
            inner = (hs >= -below[:, None, None, None]) & (hs <= below[:, None, None, None])
            hh = torch.where(inner, h_in, float("nan")).reshape(B * C, -1)
            enough = inner.reshape(B * C, -1).sum(-1) >= 50
            shift = torch.where(enough, hh.nanmedian(-1).values, torch.zeros_like(shift))
            if floor is not None:  # offset - shift >= floor
                held = shift > offset - floor + HELD_BY
                shift = torch.minimum(shift, offset - floor)
        offset = offset - shift
        # New frame: turned by δ about the normal, centred between the edges ((xc, yc) are
        # coordinates along the turned axes from the old centre).
        cos, sin = torch.cos(delta)[:, None], torch.sin(delta)[:, None]
        eu, ev = cos * eu + sin * ev, -sin * eu + cos * ev
        U1, U0, V1, V0 = edges.unbind(-1)
        centre = centre + ((U1 + U0) / 2)[:, None] * eu + ((V1 + V0) / 2)[:, None] * ev
        centre = centre - ((centre * nn_).sum(-1) + offset)[:, None] * nn_
        half = torch.stack([(U1 - U0) / 2, (V1 - V0) / 2], -1).clamp(min=0.05)
        support = support_w.sum(-1) / support_w.shape[-1]
        seen = clear.sum(-1).to(pos.dtype) / clear.shape[-1]
    out = {"centre": centre, "eu": eu, "ev": ev, "half": half, "offset": offset,
           "support": support, "seen": seen, "held": held}
    return {k: v.reshape(B, C, *v.shape[1:]) for k, v in out.items()}


def take(x: Tensor, index: Tensor) -> Tensor:
    """x [B,C,...] at index [B,K] -> [B,K,...]."""
    idx = index.reshape(*index.shape, *([1] * (x.ndim - 2))).expand(index.shape + x.shape[2:])
    return torch.gather(x, 1, idx)


def refine_some(need: Tensor, depth_m: Tensor, K: Tensor, n: Tensor, offset: Tensor,
                 sigma: Tensor, centre: Tensor, eu: Tensor, ev: Tensor, half: Tensor,
                 min_offset: Tensor | None = None) -> dict:
    """The wide pass of :func:`refine` over the candidates ``need`` [B,C] only (as many
    per frame as the frame of the batch that needs most); the others keep their rectangle
    and plane, with no support (whatever the batch: a frame's fit does not depend on it)."""
    B, C = need.shape
    count = max(1, int(need.sum(1).max()))
    idx = torch.argsort((~need).to(torch.int8), dim=1, stable=True)[:, :count]
    given = {"centre": centre, "eu": eu, "ev": ev, "half": half, "offset": offset,
             "support": centre.new_zeros(B, C, 4), "seen": centre.new_zeros(B, C, 4),
             "held": need.new_zeros(B, C)}
    ref = refine(depth_m, K, n, *(take(x, idx) for x in (offset, sigma, centre, eu, ev,
                                                         half)), passes=(WIDE_PASS,),
                 min_offset=None if min_offset is None else take(min_offset, idx))
    use = take(need, idx)
    out = {}
    for key, value in given.items():
        mask = use.reshape(*use.shape, *([1] * (value.ndim - 2)))
        picked = torch.where(mask, ref[key], take(value, idx))
        index = idx.reshape(*idx.shape, *([1] * (value.ndim - 2))).expand_as(picked)
        out[key] = value.clone().scatter_(1, index, picked)
    return out


def _classify_candidates(depth: Tensor, K: Tensor, points: Tensor, n: Tensor, offset: Tensor,
                         below: Tensor, above: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`classify` for points [B,C,S,3] of C candidates with their own planes (n,
    offset, below, above [B·C,...]): the frame is read once per frame."""
    B, C, S, _ = points.shape
    d, rays = _depth_at(depth, K, points.reshape(B, C * S, 3))
    seen = (rays * d[..., None]).reshape(B * C, S, 3)
    h = (seen @ n[:, :, None])[..., 0] + offset[:, None]
    known = torch.isfinite(h)
    inside = known & (h >= -below[:, None]) & (h <= above[:, None])
    out = known & (h < -below[:, None])
    return inside, out, h
