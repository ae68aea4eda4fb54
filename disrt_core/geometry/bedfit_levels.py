"""Bed finding, stage 1: depth -> points, the up direction and the horizontal levels.

Batched torch (CPU or GPU), [B, ...] throughout; part of :func:`bedfit_batch.fit_beds`.

* :func:`block_points`: the depth frame averaged over ``stride × stride`` blocks (mean of the
  valid readings, or of one side of a depth edge; a block with under a quarter valid is
  invalid) and back-projected: a grid of camera points [B,h,w,3] (m). Averaging instead of
  picking every s-th pixel cuts a stereo camera's noise (correlated over about 3×3 pixels)
  by ~2 at stride 4.
* :func:`up_direction`: the normal of the horizontal surfaces (floor, mattress, table tops,
  which are parallel): the most common local surface normal within ``max_tilt`` of facing
  the camera (normals over 2 or over 4 blocks, whichever cluster tighter); where there is
  none, the best of fixed point triplets far apart (the same pattern for every frame, so a
  frame's fit does not depend on its batch), scored by the probe points on its three
  largest levels. Refined by least squares on the points of those levels whose own
  surfaces face within 15°, then 5° of it (one normal, an offset per level).
* :func:`find_levels`: peaks of the 1 cm histogram of distances along the normal (smoothed):
  each horizontal surface is one; per peak its distance, its noise (from the half width at
  half maximum, so thresholds follow the sensor: a D4xx at 3 m has several cm) and mass.

Distances ``d = −n·p`` are along the normal ``n`` (unit, pointing at the camera): the
plane of a level is ``n·p + d = 0``; a larger d is lower (farther from the camera).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor

HIST_BIN = 0.01  # m
HIST_MAX = 10.0  # m: farther readings are left out of the level histogram


def choose_stride(height: int, width: int, points: int = 16000) -> int:
    """Block size that leaves about ``points`` blocks (640×480 -> 4, 1280×720 -> 7)."""
    return max(1, round(math.sqrt(height * width / points)))


# [choice] A block is valid with a reading in at least 1/BLOCK_READ of its pixels (was 1/2).
# A stereo camera loses 30-95 % of the pixels of dark bedding or a dark floor in each frame
# (``disrt_core.sim.noise``), and the node's median of 5 frames keeps a pixel read in 3 of
# them: at a 60 % loss about a third. With half needed, such a half of a mattress had no
# blocks at all and the fit kept the other half (refused as too short). Tuning rooms
# (seeds 3000-3047, median of 5): right 290 -> 293 of 379, refused 36 -> 26, unflagged
# wrong 13 -> 11; single frames (seeds 4000-4095, four sensors): right 278 -> 279 of 382,
# refused 59 -> 51, unflagged wrong 4 -> 6 (two wrong fits lost their weak flag: an
# edge's support 0.08 -> 0.10, 0.0 -> 0.19). 1/3: 295 and 11, but 280 and 8.
BLOCK_READ = 4


def block_points(depth: Tensor, K: Tensor, stride: int) -> tuple[Tensor, Tensor]:
    """Camera points [B,h,w,3] (m) of ``stride``-blocks of a depth frame [B,H,W] (float32 m,
    0 = no reading, no negative or nan) and their validity [B,h,w].

    A block's depth is the mean of its valid readings (valid: at least 1/``BLOCK_READ`` of
    them, see there), except
    across a depth edge: where the block's range exceeds max(5 cm, 3× the frame's typical
    range at that distance, which scales with z² like stereo noise), the mean of the larger
    of its near and far halves, so no phantom surface appears between two surfaces (a
    headboard and the wall behind it, a mattress edge and the floor)."""
    B, H, W = depth.shape
    rows, cols = H // stride, W // stride
    # [B, rows, cols, stride²]: each block's pixels along the last axis (one copy).
    x = depth[:, :rows * stride, :cols * stride].reshape(B, rows, stride, cols, stride).permute(
        0, 1, 3, 2, 4).reshape(B, rows, cols, stride * stride)
    # Validity and the near half as float 0/1 (x >= 0): bool masks, where and their sums
    # cost several times more over the [B,h,w,stride²] blocks than float passes.
    v = x.sign()
    count = v.sum(-1)
    ok = count * BLOCK_READ >= stride * stride
    total = x.sum(-1)
    z = total / count.clamp(min=1)
    if stride > 1:
        hi = _halving(x, torch.maximum)
        lo = _halving((1 - v).mul_(1e3).add_(x), torch.minimum)  # invalid as 1e3
        spread = hi - lo
        rel = torch.where(ok, spread / (z * z).clamp(min=1e-6), float("nan"))
        typical = rel.reshape(B, -1).nanmedian(1).values.nan_to_num(0.0)
        edge = ok & (spread > torch.clamp(3 * typical[:, None, None] * z * z, min=0.05))
        near = (((hi + lo) / 2)[..., None] - x).sign_().clamp_(min=0).mul_(v)  # valid, x < mid
        n_near = near.sum(-1)
        s_near = (x * near).sum(-1)
        pick = torch.where(n_near * 2 >= count, s_near / n_near.clamp(min=1),
                           (total - s_near) / (count - n_near).clamp(min=1))
        z = torch.where(edge, pick, z)
    z = torch.where(ok, z, 0.0)
    dev = depth.device
    v = torch.arange(rows, device=dev, dtype=torch.float32) * stride + (stride - 1) / 2
    u = torch.arange(cols, device=dev, dtype=torch.float32) * stride + (stride - 1) / 2
    kinv = torch.linalg.inv(K.to(device=dev, dtype=torch.float64)).to(torch.float32)
    uu, vv = u[None, None, :], v[None, :, None]
    rays = [kinv[:, i, 0, None, None] * uu + kinv[:, i, 1, None, None] * vv
            + kinv[:, i, 2, None, None] for i in range(3)]
    points = torch.stack([r * z for r in rays], -1)
    return points, ok


def _halving(x: Tensor, op) -> Tensor:
    """``op`` (maximum or minimum) over the last axis of x [...,2^k] by halving it: about
    half the time of amax/amin over such a short axis."""
    n = x.shape[-1]
    while n > 1 and n % 2 == 0:
        n //= 2
        x = op(x[..., :n], x[..., n:2 * n])
    return x[..., 0] if n == 1 else (x.amax(-1) if op is torch.maximum else x.amin(-1))


@functools.lru_cache(maxsize=16)
def _pattern(rows: int, cols: int, count: int) -> tuple[Tensor, Tensor]:
    """Fixed triplets [count,3] of flat grid indices (a centre and two points up to a sixth
    or a third of the grid away from it, at least 70° apart as seen from it) and 1024 probe
    indices: the same for every frame, so a frame's fit does not depend on its batch.
    Normal tensors, also when first made under the fit's inference mode."""
    with torch.inference_mode(False):
        gen = torch.Generator().manual_seed(1234)
        # Half the triplets span a sixth of the grid (likely all on one surface), half a third
        # (a more precise plane when they are).
        r = torch.where(torch.arange(count) % 2 == 0, max(2, min(rows, cols) // 6),
                        max(2, min(rows, cols) // 3))[:, None]
        centre = torch.stack([torch.randint(0, rows, (count,), generator=gen),
                              torch.randint(0, cols, (count,), generator=gen)], -1)
        angle = torch.rand(count, 2, generator=gen) * 2 * math.pi
        radius = (0.5 + 0.5 * torch.rand(count, 2, generator=gen)) * r
        angle[:, 1] = angle[:, 0] + (0.4 + 0.6 * torch.rand(count, generator=gen)) * math.pi
        off = torch.stack([radius * torch.sin(angle), radius * torch.cos(angle)], -1).round().long()
        pts = (centre[:, None] + off).clamp(min=0)
        pts[..., 0] = pts[..., 0].clamp(max=rows - 1)
        pts[..., 1] = pts[..., 1].clamp(max=cols - 1)
        flat = torch.cat([centre[:, None], pts], 1)
        probe = torch.randperm(rows * cols, generator=gen)[:1024]
        return flat[..., 0] * cols + flat[..., 1], probe


def _scatter_hist(values: Tensor, weights: Tensor, bins: int, width: float) -> Tensor:
    """Histogram [...,bins] of ``values`` [...,N] >= 0 in bins of ``width`` (weighted)."""
    idx = (values / width).clamp(0, bins - 1).long()
    out = torch.zeros(*values.shape[:-1], bins, device=values.device, dtype=torch.float32)
    return out.scatter_add_(-1, idx, weights.to(torch.float32))


def local_normals(points: Tensor, valid: Tensor, step: int = 2) -> tuple[Tensor, Tensor]:
    """Surface normals [B,h,w,3] (toward the camera) from the cross product of the
    differences ``step`` blocks apart in each image direction, and where they hold [B,h,w]:
    the five points valid and on one plane (not across an edge)."""
    p = points
    tx = p[:, step:-step, 2 * step:] - p[:, step:-step, :-2 * step]
    ty = p[:, 2 * step:, step:-step] - p[:, :-2 * step, step:-step]
    ok = (valid[:, step:-step, 2 * step:] & valid[:, step:-step, :-2 * step]
          & valid[:, 2 * step:, step:-step] & valid[:, :-2 * step, step:-step]
          & valid[:, step:-step, step:-step])
    centre = p[:, step:-step, step:-step]
    around = (p[:, step:-step, 2 * step:] + p[:, step:-step, :-2 * step]
              + p[:, 2 * step:, step:-step] + p[:, :-2 * step, step:-step]) / 4
    ok &= (centre - around).norm(dim=-1) <= 0.02 + 0.01 * centre[..., 2] ** 2
    n = _cross(tx, ty)
    n = n / n.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    n = torch.where(n[..., 2:] > 0, -n, n)  # toward the camera (the points lie at z > 0)
    pad = (0, 0, step, step, step, step)
    return F.pad(n, pad), F.pad(ok, pad[2:])


def _cross(a: Tensor, b: Tensor) -> Tensor:
    """``torch.linalg.cross(a, b)`` of [...,3] from slices: 0.31 -> 0.17 ms on the strided
    [1,116,156,3] differences (1 thread). Each component as a fused multiply-add, as the
    vectorised CPU kernel of linalg.cross computes it: bitwise equal to it on the x86 CPU
    that tuned the fit (a plain a·b − c·d is not)."""
    a0, a1, a2 = a.unbind(-1)
    b0, b1, b2 = b.unbind(-1)
    return torch.stack([torch.addcmul(-(a2 * b1), a1, b2), torch.addcmul(-(a0 * b2), a2, b0),
                        torch.addcmul(-(a1 * b0), a0, b1)], -1)


def _normal_mode(normals: Tensor, ok: Tensor, weight: Tensor, max_tilt_deg: float
                 ) -> tuple[Tensor, Tensor, Tensor]:
    """The most common surface normal [B,3] within ``max_tilt_deg`` of the optical axis
    (whether there was one [B], and the share of the weight within 5° of it [B]) of normals
    [B,N,3] where ``ok`` [B,N], weighted [B,N]
    (by the area their block covers, ∝ z²): a 2-D histogram of (n_x, n_y) with ~1° bins
    smoothed over ~5°, its peak refined by the weighted mean of the normals within 5° of it.
    Floor, mattress and table tops share it; walls (beyond the tilt limit) and slopes do
    not."""
    B = normals.shape[0]
    n = normals
    limit = math.sin(math.radians(max_tilt_deg))
    ok = ok & ((n[..., 0] ** 2 + n[..., 1] ** 2) <= limit**2)
    weight = torch.where(ok, weight, 0.0)
    bins, width = 2 * math.ceil(limit / 0.02), 0.02
    ix = ((n[..., 0] + limit) / width).long().clamp(0, bins - 1)
    iy = ((n[..., 1] + limit) / width).long().clamp(0, bins - 1)
    hist = torch.zeros(B, bins * bins, device=n.device).scatter_add_(1, iy * bins + ix, weight)
    hist = hist.reshape(B, bins, bins)
    for _ in range(2):  # two 5-bin boxes: about a 5° blur
        pad = F.pad(hist, (2, 2, 2, 2))
        hist = sum(pad[:, i:i + bins] for i in range(5))
        hist = sum(hist[:, :, i:i + bins] for i in range(5))
    peak = hist.reshape(B, -1).argmax(1)
    px = (peak % bins).to(n.dtype) * width - limit + width / 2
    py = (peak // bins).to(n.dtype) * width - limit + width / 2
    mode = torch.stack([px, py, -torch.sqrt((1 - px**2 - py**2).clamp(min=0))], -1)
    near = ((n * mode[:, None]).sum(-1) >= math.cos(math.radians(5))).to(n.dtype) * weight
    mean = (near[..., None] * n).sum(1)
    found = near.sum(1) > 0
    mean = torch.where(found[:, None], mean, mode)
    share = near.sum(1) / weight.sum(1).clamp(min=1e-9)  # how concentrated the mode is
    return mean / mean.norm(dim=-1, keepdim=True).clamp(min=1e-12), found, share


def noise_scale(points: Tensor, valid: Tensor) -> Tensor:
    """a [B] with the frame's depth noise σ(z) ≈ a·z²: from the median absolute second
    difference of z along rows of blocks (on smooth surfaces it is noise alone)."""
    z = points[..., 2]
    ok = valid[:, :, 2:] & valid[:, :, 1:-1] & valid[:, :, :-2]
    second = (z[:, :, 2:] - 2 * z[:, :, 1:-1] + z[:, :, :-2]).abs() / z[:, :, 1:-1].clamp(
        min=0.1) ** 2
    second = torch.where(ok, second, float("nan")).flatten(1)
    return second.nanmedian(1).values.nan_to_num(0.001) / (0.6745 * math.sqrt(6))


def up_direction(points: Tensor, valid: Tensor, *, max_tilt_deg: float = 40.0,
                 hypotheses: int = 64) -> tuple[Tensor, Tensor]:
    """Unit normal [B,3] of the horizontal surfaces (pointing at the camera) and whether one
    was found [B]; see the module docstring. Hypotheses: planes through fixed triplets of
    blocks far apart (within ``max_tilt_deg`` of facing the camera) and the mode of the
    surface normals (:func:`_normal_mode`; the triplets only where it finds none);
    support: the probe points, weighted by z² and only where their own surface
    faces within 30° of it, on its three largest levels (parallel planes: floor, mattress,
    table tops). Refined by least squares over the levels of the points whose surfaces face
    within 15°, then 5° of it."""
    B, rows, cols, _ = points.shape
    dev = points.device
    flat, vflat = points.reshape(B, -1, 3), valid.reshape(B, -1)
    triplets, probe = (t.to(dev) for t in _pattern(rows, cols, hypotheses))
    tri = flat[:, triplets]  # [B,R,3,3]
    tri_ok = vflat[:, triplets].all(-1)
    e1, e2 = tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0]
    normal = torch.linalg.cross(e1, e2)
    norm = normal.norm(dim=-1)
    tri_ok &= norm > 0.25 * e1.norm(dim=-1) * e2.norm(dim=-1)  # not nearly collinear
    normal = normal / norm.clamp(min=1e-12)[..., None]
    normal = torch.where((normal * tri[:, :, 0]).sum(-1, keepdim=True) > 0, -normal, normal)
    # Local normals over 2 blocks, or over 4 where they cluster tighter (the noise of a
    # stereo camera at low resolution and 3 m): per frame, so batches do not matter.
    a = noise_scale(points, valid)
    z_med = torch.where(valid, points[..., 2], float("nan")).flatten(1).nanmedian(
        1).values.nan_to_num(2.5)
    n2, ok2 = local_normals(points, valid, 2)
    n4, ok4 = local_normals(points, valid, 4)
    n2, ok2, n4, ok4 = n2.reshape(B, -1, 3), ok2.reshape(B, -1), n4.reshape(B, -1, 3), \
        ok4.reshape(B, -1)
    m2, f2, c2 = _normal_mode(n2, ok2, flat[..., 2] ** 2, max_tilt_deg)
    m4, f4, c4 = _normal_mode(n4, ok4, flat[..., 2] ** 2, max_tilt_deg)
    wide = (c4 > c2)[:, None]  # the step whose normals cluster tighter
    local, local_ok = torch.where(wide[..., None], n4, n2), torch.where(wide, ok4, ok2)
    mode, mode_ok = torch.where(wide, m4, m2), torch.where(wide[:, 0], f4, f2)
    q, q_ok = flat[:, probe], vflat[:, probe]  # [B,M,3]
    normal = torch.cat([normal, mode[:, None]], 1)
    ok = torch.cat([tri_ok & (-normal[:, :-1, 2] >= math.cos(math.radians(max_tilt_deg))),
                    mode_ok[:, None]], 1)
    # Support of a normal: the probe points on its three largest levels (histogram of the
    # distances along it in bins of the noise at the median distance, 3-bin peaks): the
    # horizontal surfaces are several parallel planes (floor, mattress, table tops), each
    # of which may be smaller than a wall or a slanted plane through the clutter.
    width = torch.clamp(2 * a * z_med**2, min=0.015)  # [B]
    dist = -(normal @ q.transpose(1, 2))  # [B,R+1,M]
    # Only points whose own surface faces the same way count (within 30°: not the walls,
    # whose lines of intersection with a slanted plane could add up to a "level"), each by
    # the area it covers (z²: near walls are dense, the floor far away is sparse).
    ql, ql_ok = local[:, probe], local_ok[:, probe] & q_ok
    agree = (normal @ ql.transpose(1, 2)) >= math.cos(math.radians(30))
    wt = (agree & ql_ok[:, None]).to(torch.float32) * (q[..., 2] ** 2)[:, None]
    bins = 256
    idx = (dist / width[:, None, None]).clamp(0, bins - 1).long()
    hist = torch.zeros(*dist.shape[:2], bins, device=dev).scatter_add_(2, idx, wt)
    hist = F.pad(hist, (1, 1))
    hist = hist[..., :-2] + hist[..., 1:-1] + hist[..., 2:]  # ±1 bin around each
    # The three largest levels, each at least 3 bins from a larger one.
    count = torch.zeros_like(hist[..., 0])
    for _ in range(3):
        top, at = hist.max(-1)
        count = count + top
        near = (torch.arange(bins, device=dev) - at[..., None]).abs() <= 2
        hist = hist.masked_fill(near, 0.0)
    count = torch.where(ok, count, -1.0)
    best = count.argmax(1)
    ar = torch.arange(B, device=dev)
    # The normals' mode is the start; the best triplet plane only where there is none.
    n = torch.where(mode_ok[:, None], mode, normal[ar, best])
    found = ok.any(1)
    # Refined on the points whose own surface faces within 15°, then 5° of it: least
    # squares over their three largest levels at once (one normal, an offset per level).
    for gate in (15.0, 5.0):
        sel = vflat & local_ok & ((local @ n[:, :, None])[..., 0] >= math.cos(math.radians(
            gate)))
        d = -(flat @ n[:, :, None])[..., 0]
        n = _pooled_normal(flat, d, sel, find_levels(d, sel, count=3), n)
    return n, found


def _pooled_normal(flat: Tensor, d: Tensor, valid: Tensor, levels: dict, n0: Tensor) -> Tensor:
    """Least-squares normal of points near several parallel levels (own offset each)."""
    band = (2.0 * levels["sigma"]).clamp(min=0.015)
    # [B,L,N], level-major: the products below need no transposed copies (the einsums over
    # [B,N,L] made them), and the covariance sums in the same order as they did.
    w = ((d[:, None] - levels["d"][..., None]).abs() <= band[..., None]) & valid[:, None]
    w = (w & levels["ok"][..., None]).to(flat.dtype)
    count = w.sum(2).clamp(min=1.0)  # [B,L]
    mean = torch.bmm(w, flat) / count[..., None]  # [B,L,3]
    centred = flat[:, None] - mean[:, :, None]  # [B,L,N,3]
    cov = torch.bmm((w[..., None] * centred).flatten(1, 2).transpose(1, 2),
                    centred.flatten(1, 2))  # [B,3,3]
    n = torch.linalg.eigh(cov.double())[1][..., 0].to(flat.dtype)
    n = torch.where((n * n0).sum(-1, keepdim=True) < 0, -n, n)
    enough = w.sum((1, 2)) >= 20
    return torch.where(enough[:, None], n, n0)


def find_levels(d: Tensor, valid: Tensor, count: int = 5, min_share: float = 0.004) -> dict:
    """The ``count`` largest peaks of the distance histogram of points [B,N]: ``d`` [B,L]
    (m), ``sigma`` [B,L] (noise, m), ``mass`` [B,L] (points within 1.5σ), ``ok`` [B,L]."""
    bins = int(HIST_MAX / HIST_BIN)
    hist = _scatter_hist(torch.where(valid, d, HIST_MAX + 1).clamp(min=0),
                         valid & (d < HIST_MAX), bins, HIST_BIN)
    t = torch.arange(-5, 6, device=d.device, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (t / 1.5) ** 2)
    smooth = F.conv1d(hist[:, None], (kernel / kernel.sum())[None, None], padding=5)[:, 0]
    smooth = smooth + 1e-6 * torch.arange(bins, device=d.device) / bins  # no flat-top twins
    peak = smooth == F.max_pool1d(smooth[:, None], 11, 1, 5)[:, 0]
    floor = (min_share * valid.sum(1, keepdim=True)).clamp(min=3.0) / 10.0
    value, pos = torch.where(peak & (smooth >= floor), smooth,
                             0.0).topk(count, dim=1)
    ok = value > 0
    # Half width at half maximum from the smoothed histogram around each peak.
    win = 30
    padded = F.pad(smooth, (win, win))
    idx = pos[..., None] + torch.arange(2 * win + 1, device=d.device)  # [B,L,61]
    window = torch.gather(padded[:, None].expand(-1, count, -1), 2, idx)
    above = window >= 0.5 * value[..., None]
    right = above[..., win:].to(torch.int32).cumprod(-1).sum(-1)
    left = above[..., : win + 1].flip(-1).to(torch.int32).cumprod(-1).sum(-1)
    hwhm = (torch.minimum(left, right).to(torch.float32) - 0.5).clamp(min=0.5) * HIST_BIN
    sigma = torch.sqrt((hwhm**2 / (2 * math.log(2)) - (1.5 * HIST_BIN) ** 2).clamp(min=0.003**2))
    sigma = sigma.clamp(max=0.12)
    level = (pos.to(torch.float32) + 0.5) * HIST_BIN
    # A broad peak (a body, a slope) is no flat surface: cap its noise at what the sharpest
    # large level predicts for its distance (stereo noise grows with z², ToF's slower).
    # The reference: of the levels at least a fifth as large (peak area) as the largest, the
    # one with the least noise for its distance (a floor or a bare mattress, not a blanket).
    area = torch.where(ok, value * sigma, 0.0)
    large = ok & (area >= 0.2 * area.amax(1, keepdim=True))
    rel = sigma / level.clamp(min=0.1) ** 2
    ref = torch.where(large, rel, float("inf")).argmin(1, keepdim=True)
    s_ref, d_ref = torch.gather(sigma, 1, ref), torch.gather(level, 1, ref)
    model = s_ref * (level / d_ref.clamp(min=0.1)) ** 2
    sigma = torch.minimum(sigma, 1.5 * model + 0.003)
    # Refine the level: mean distance of the points within 1.5σ of it.
    # [B,L,N]: the sums run along the points' contiguous axis (faster than across).
    near = ((d[:, None] - level[..., None]).abs() <= (1.5 * sigma + HIST_BIN)[..., None]) \
        & valid[:, None]
    nw = near.to(torch.float32)
    mass = nw.sum(-1)
    level = torch.where(mass > 0, (nw * d[:, None]).sum(-1) / mass.clamp(min=1), level)
    return {"d": level, "sigma": sigma, "mass": mass, "ok": ok}
