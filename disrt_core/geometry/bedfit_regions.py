"""Bed finding, stage 2: horizontal surfaces as top-down regions (coarse), and candidates.

Batched torch, part of :func:`bedfit_batch.fit_beds`. In the plane basis (e1, e2) of the up
direction the points are rasterised into a G×G top-down grid (cells of 3–6 cm, the grid
spanning the view) keeping each cell's top (its nearest-to-the-camera distance). For each
level (stage 1), its "bed cells" are the cells whose top lies from 0.6 m above the level
down to its noise tolerance below it (mattress, blanket, body, pillows); empty cells next to
bed cells are filled (sparse sampling), then a 3×3 opening removes thin structures (walls
and headboards seen edge-on, rails, an arm), which would otherwise join the bed to the rest
of the room. The two largest connected regions of each level are the candidates; each gets
a first rectangle: its orientation from the boundary gradients of the region (their mean
direction modulo 90°, so a square works as well as a long bed), its extent where the
occupancy profile along each axis is above half its typical value (an attached bedside table
or a person's arm does not widen it).

Grid helpers shared with stage 3: dilation, erosion and box sums, the cells enclosed by a
mask along rows or columns (:func:`enclosed_cells`) and the cells with a mask cell between
them and the camera (:func:`toward_camera`, a depth shadow).

Connected components: OpenCV on the CPU (exact, fast), label propagation on a GPU (3×3
max-pool plus pointer jumping until nothing changes; the same regions).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

GRID = 160
CELL_RANGE = (0.03, 0.06)  # m
BAND_ABOVE = 0.6  # m above a level that still belongs to the bed (body, pillows, blanket)
COMPONENTS = 2  # regions kept per level


def plane_basis(n: Tensor) -> tuple[Tensor, Tensor]:
    """Two unit vectors [B,3] spanning the plane ⟂ n, e1 along the camera's x axis."""
    x = torch.zeros_like(n)
    x[:, 0] = 1.0
    e1 = x - (x * n).sum(-1, keepdim=True) * n
    e1 = e1 / e1.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    return e1, torch.linalg.cross(n, e1)


def band_tolerance(sigma: Tensor) -> Tensor:
    """How far below a level (m) its surface still counts: 2.5σ, 3–10 cm."""
    return torch.clamp(2.5 * sigma, min=0.03, max=0.1)


def _shifted(x: Tensor, k: int, dim: int, op, fill: float) -> Tensor:
    """``op``-reduction of each element's k neighbours along ``dim`` (-1 or -2), centred;
    shifted slices: much faster than the pooling kernels on small CPU tensors."""
    r, n = k // 2, x.shape[dim]
    if k == 3 and n > 1:  # the same operations in the same order, without the padded copy
        out = torch.empty_like(x)  # (fewer large allocations: fresh pages cost on the CPU)
        op(x.narrow(dim, 0, n - 1), x.narrow(dim, 1, n - 1), out=out.narrow(dim, 1, n - 1))
        out.narrow(dim, 0, 1).copy_(x.narrow(dim, 0, 1))  # op(fill, x) is x
        head = out.narrow(dim, 0, n - 1)
        op(head, x.narrow(dim, 1, n - 1), out=head)
        return out
    xp = F.pad(x, (r, r) if dim == -1 else (0, 0, r, r), value=fill)
    out = xp.narrow(dim, 0, n)
    for i in range(1, k):
        out = op(out, xp.narrow(dim, i, n))
    return out


def box_sum(x: Tensor, k: int) -> Tensor:
    """Sum over each cell's k×k neighbourhood of grids [..., R, C] (zeros outside)."""
    return _shifted(_shifted(x, k, -1, torch.add, 0.0), k, -2, torch.add, 0.0)


def dilate(mask: Tensor, k: int) -> Tensor:
    """Maximum over each cell's k×k neighbourhood of grids [..., R, C]."""
    return _shifted(_shifted(mask, k, -1, torch.maximum, float("-inf")), k, -2,
                    torch.maximum, float("-inf"))


def erode(mask: Tensor, k: int) -> Tensor:
    """Minimum over each cell's k×k neighbourhood (cells outside the grid count as +inf)."""
    return _shifted(_shifted(mask, k, -1, torch.minimum, float("inf")), k, -2,
                    torch.minimum, float("inf"))


def coarse_grid(a: Tensor, b: Tensor, d: Tensor, valid: Tensor, levels: dict) -> dict:
    """Top-down grid of the points (plane coordinates a, b [B,N], distance d [B,N])."""
    deepest = torch.where(levels["ok"], levels["d"], 0.0).amax(1)
    use = valid & (d <= deepest[:, None] + 0.2)
    lo_a = torch.where(use, a, float("inf")).amin(1)
    hi_a = torch.where(use, a, float("-inf")).amax(1)
    lo_b = torch.where(use, b, float("inf")).amin(1)
    hi_b = torch.where(use, b, float("-inf")).amax(1)
    any_use = use.any(1)
    zero = torch.zeros_like(lo_a)
    ca = torch.where(any_use, (lo_a + hi_a) / 2, zero)
    cb = torch.where(any_use, (lo_b + hi_b) / 2, zero)
    extent = torch.where(any_use, torch.maximum(hi_a - lo_a, hi_b - lo_b), zero)
    cell = (extent / GRID).clamp(*CELL_RANGE)
    ia = torch.floor((a - ca[:, None]) / cell[:, None] + GRID / 2)
    ib = torch.floor((b - cb[:, None]) / cell[:, None] + GRID / 2)
    inside = use & (ia >= 0) & (ia < GRID) & (ib >= 0) & (ib < GRID)
    index = (ib.clamp(0, GRID - 1) * GRID + ia.clamp(0, GRID - 1)).long()
    top = torch.full((a.shape[0], GRID * GRID), float("inf"), device=a.device)
    top.scatter_reduce_(1, index, torch.where(inside, d, float("inf")), "amin")
    return {"top": top.reshape(-1, GRID, GRID), "centre": torch.stack([ca, cb], -1),
            "cell": cell}


def level_masks(grid: dict, levels: dict) -> Tensor:
    """Bed cells of each level, filled and opened: float [B,L,G,G] (0/1)."""
    top = grid["top"][:, None]
    level = levels["d"][..., None, None]
    tol = band_tolerance(levels["sigma"])[..., None, None]
    band = ((top >= level - BAND_ABOVE) & (top <= level + tol) & levels["ok"][..., None, None])
    band = band.to(torch.float32)
    _B, _L = band.shape[:2]
    unknown = torch.isinf(grid["top"]).to(torch.float32)[:, None]
    band = torch.maximum(band, unknown * dilate(band, 3))
    return dilate(erode(band, 3), 3)


def _components_cv2(masks: Tensor, keep: int) -> Tensor:
    import cv2
    import numpy as np

    flat = masks.reshape(-1, GRID, GRID).to(torch.uint8).numpy()
    out = np.zeros((flat.shape[0], keep, GRID, GRID), bool)
    for i, mask in enumerate(flat):
        _count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        areas = stats[1:, cv2.CC_STAT_AREA]
        order = np.argsort(-areas, kind="stable")[:keep]
        for j, label in enumerate(order):
            out[i, j] = labels == label + 1
    return torch.from_numpy(out).reshape(*masks.shape[:-2], keep, GRID, GRID)


def _components_torch(masks: Tensor, keep: int) -> Tensor:
    """Label propagation (8-connected): each cell ends with the largest index + 1 of its
    region; regions ranked by area (ties: the smaller label first, as OpenCV's raster
    order gives the one whose last cell comes first... close enough: ties are rare)."""
    shape = masks.shape
    flat = masks.reshape(-1, 1, GRID, GRID) > 0
    n = flat.shape[0]
    ids = torch.arange(1, GRID * GRID + 1, device=masks.device, dtype=torch.float32)
    labels = torch.where(flat, ids.reshape(1, 1, GRID, GRID), torch.zeros(()).to(ids))
    while True:
        before = labels
        for _ in range(8):
            labels = torch.where(flat, F.max_pool2d(labels, 3, 1, 1), labels)
            jump = torch.gather(labels.reshape(n, -1), 1,
                                (labels.reshape(n, -1).long() - 1).clamp(min=0))
            labels = torch.where(flat, jump.reshape_as(labels), labels)
        if torch.equal(before, labels):
            break
    lab = labels.reshape(n, -1).long()
    area = torch.zeros(n, GRID * GRID + 1, device=masks.device).scatter_add_(
        1, lab, torch.ones_like(lab, dtype=torch.float32))
    area[:, 0] = 0
    top_area, top_label = area.topk(keep, dim=1)
    out = (lab[:, None] == top_label[..., None]) & (top_area[..., None] > 0)
    return out.reshape(*shape[:-2], keep, GRID, GRID)


def components(masks: Tensor, keep: int = COMPONENTS) -> Tensor:
    """The ``keep`` largest 8-connected regions of masks [...,G,G] -> bool [...,keep,G,G]."""
    if masks.device.type == "cpu":
        return _components_cv2(masks, keep)
    return _components_torch(masks, keep)


def orientation(mask: Tensor) -> Tensor:
    """Rectangle orientation (rad, in [0, π/2)) of region masks [N,G,G]: the mean direction
    of the boundary gradients modulo 90° (their angles ×4 averaged as unit vectors weighted
    by the squared gradient), after a blur of about 1.4 cells (a binary mask's
    staircase would pull small angles to 0), then again over the gradients within 10° of
    it (an attached object at another angle pulls less). About 0.5° on a clean rectangle."""
    n = mask.shape[0]
    x = mask.to(torch.float32)
    for _ in range(3):  # three 3×3 boxes: about a Gaussian of σ = 1.4 cells
        x = box_sum(x, 3)
    gx = (x[..., 1:-1, 2:] - x[..., 1:-1, :-2]).reshape(n, -1)
    gy = (x[..., 2:, 1:-1] - x[..., :-2, 1:-1]).reshape(n, -1)
    weight = gx * gx + gy * gy
    four = 4 * torch.atan2(gy, gx)
    c, s = torch.cos(four) * weight, torch.sin(four) * weight
    mean = torch.atan2(s.sum(1), c.sum(1))
    near = (torch.cos(four - mean[:, None]) >= math.cos(math.radians(40))).to(weight.dtype)
    mean = torch.atan2((s * near).sum(1), (c * near).sum(1))
    return torch.remainder(mean / 4, math.pi / 2)


def run_extent(profile: Tensor, start: Tensor, threshold: Tensor | float
               ) -> tuple[Tensor, Tensor]:
    """Extent (lo, hi, in bin units: bin i spans [i, i+1)) of the run of ``profile`` [...,n]
    values ≥ ``threshold`` that contains bin ``start`` [...], the ends interpolated linearly
    between bin centres; an empty run gives lo = hi = start + 0.5."""
    n = profile.shape[-1]
    idx = torch.arange(n, device=profile.device)
    # A number stays one (no tensor of it: the extents' 12 calls a fit pass 0.5).
    thr = threshold if isinstance(threshold, float) else threshold.to(profile.dtype)
    below = profile < (thr if isinstance(thr, float) else thr[..., None])
    s = start[..., None]
    left = torch.where(below & (idx < s), idx, -1).amax(-1)
    right = torch.where(below & (idx > s), idx, n).amin(-1)
    first, last = left + 1, right - 1
    ok = ~torch.gather(below, -1, s.clamp(0, n - 1))[..., 0]
    # The four values in one gather.
    lo_in, hi_in, lo_out, hi_out = torch.gather(profile, -1, torch.stack(
        [first, last, left, right], -1).clamp(0, n - 1)).unbind(-1)
    lo_out = torch.where(left >= 0, lo_out, 0.0)
    hi_out = torch.where(right < n, hi_out, 0.0)
    lo = first.to(profile.dtype) + 0.5 - (lo_in - thr) / (lo_in - lo_out).clamp(min=1e-6)
    hi = last.to(profile.dtype) + 0.5 + (hi_in - thr) / (hi_in - hi_out).clamp(min=1e-6)
    centre = start.to(profile.dtype) + 0.5
    return torch.where(ok, lo, centre), torch.where(ok, hi, centre)


def bridge_reach(cell: Tensor, width: float) -> tuple[Tensor, Tensor]:
    """The windows [...,1,2r+1] of :func:`bridge_dips` for cells [...]: its bins within
    ``width`` m on the left and on the right, as 0/1 of the cells' dtype (made once where
    several profiles share the cells: the extents' six passes)."""
    r = max(1, int(torch.ceil((width / cell.clamp(min=1e-3)).amax())))
    k = torch.arange(-r, r + 1, device=cell.device)
    near = (k.abs() * cell[..., None, None]) <= width + 1e-6  # [...,1,2r+1]
    return (near & (k <= 0)).to(cell.dtype), (near & (k >= 0)).to(cell.dtype)


def bridge_dips(profile: Tensor, cell: Tensor, width: float, floor: float,
                also: Tensor | None = None,
                reach: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """Profiles [...,n] (bins of ``cell`` [...] m) with their dips bridged: a bin at ``floor``
    or more is raised to the lower of the highest values within ``width`` m on its either
    side. A dip where something is partly there (a body's steep sides lying across a
    mattress, speckled dark bedding) no longer ends a run, while a gap that reads as
    nothing (the floor between a bed and a table, below ``floor``) still does, and an end
    (nothing high beyond it) does not move. ``also`` [...,n]: more bins that may be raised;
    ``reach``: :func:`bridge_reach` of ``cell`` and ``width`` where made already."""
    on_left, on_right = bridge_reach(cell, width) if reach is None else reach
    r = on_left.shape[-1] // 2
    window = F.pad(profile, (r, r)).unfold(-1, 2 * r + 1, 1)  # [...,n,2r+1]
    # the windows as 0/1 factors (the profiles are >= 0): a product, not a where
    left = (window * on_left).amax(-1)
    right = (window * on_right).amax(-1)
    bridged = torch.maximum(profile, torch.minimum(left, right))
    may = profile >= floor if also is None else (profile >= floor) | also
    return torch.where(may, bridged, profile)


def coarse_rectangles(masks: Tensor, grid: dict) -> dict:
    """First rectangle of each candidate region masks [B,C,G,G]: orientation ``phi`` [B,C],
    centre [B,C,2] (plane coordinates a, b), size [B,C,2] along (u, v) and area [B,C] (m²)."""
    B, C = masks.shape[:2]
    flat = masks.reshape(B * C, GRID, GRID).to(torch.float32)
    phi = orientation(flat).reshape(B, C)
    cell = grid["cell"][:, None]  # [B,1]
    coords = (torch.arange(GRID, device=masks.device, dtype=torch.float32) + 0.5 - GRID / 2)
    ga, gb = coords[None, :], coords[:, None]  # cell units: columns = a, rows = b
    cos, sin = torch.cos(phi)[..., None, None], torch.sin(phi)[..., None, None]
    u = ga * cos + gb * sin
    v = -ga * sin + gb * cos
    nb = math.ceil(GRID * math.sqrt(2)) + 2
    weights = flat.reshape(B, C, -1)
    prof = []
    for coord in (u, v):
        idx = (coord.reshape(B, C, -1) + nb / 2).long().clamp(0, nb - 1)
        prof.append(torch.zeros(B, C, nb, device=masks.device).scatter_add_(2, idx, weights))
    out_c, out_s = [], []
    for p in prof:
        ranked = p.sort(-1, descending=True).values
        count = (p > 0).sum(-1)
        typical = torch.gather(ranked, -1, (0.3 * count).long()[..., None])[..., 0]
        start = (p.cumsum(-1) >= 0.5 * p.sum(-1, keepdim=True)).to(torch.int64).argmax(-1)
        lo, hi = run_extent(p, start, 0.5 * typical.clamp(min=1.0))
        out_c.append((lo + hi) / 2 - nb / 2)
        out_s.append(hi - lo)
    cu, cv = out_c
    cos, sin = torch.cos(phi), torch.sin(phi)
    a = (cu * cos - cv * sin) * cell + grid["centre"][:, None, 0]
    b = (cu * sin + cv * cos) * cell + grid["centre"][:, None, 1]
    size = torch.stack(out_s, -1) * cell[..., None]
    area = weights.sum(-1) * cell**2
    return {"phi": phi, "centre": torch.stack([a, b], -1), "size": size, "area": area}


def enclosed_cells(mask: Tensor, reach: Tensor) -> Tensor:
    """Cells of bool grids [..., R, C] with a set cell within ``reach`` [...] cells on both
    sides along their row or along their column (counts of the set cells in the windows,
    from running sums: cheaper than running maxima of their indices)."""
    reach = reach.ceil().to(torch.int64)[..., None, None]
    out = None
    for dim in (-1, -2):
        n = mask.shape[dim]
        shape = [1] * mask.ndim
        shape[dim] = n
        idx = torch.arange(n, device=mask.device).view(shape)
        # before[i]: set cells before i; upto[i]: up to and including i
        total = F.pad(mask.to(torch.int32).cumsum(dim, dtype=torch.int32),
                      (1, 0) if dim == -1 else (0, 0, 1, 0))
        before, upto = total.narrow(dim, 0, n), total.narrow(dim, 1, n)
        lo = (idx - reach).clamp(min=0).expand(mask.shape)
        hi = (idx + reach + 1).clamp(max=n).expand(mask.shape)
        both = (upto > torch.gather(total, dim, lo)) & (torch.gather(total, dim, hi) > before)
        out = both if out is None else out | both
    return out


def any_on_ray(where: Tensor, pa: Tensor, pb: Tensor, phi: Tensor, cell: Tensor,
               reach: float, hit: Callable[..., Tensor]) -> Tensor:
    """[B,K,F,F] bool: the ``where`` cells of fine grids [B,K,F,F] with a cell on the straight
    line from them toward the camera's foot point (plane coordinates (0, 0); the cells' plane
    coordinates pa, pb [B,K,F,F]; the grids turned by phi [B,K], cells [B,K] m), up to
    ``reach`` m, for which ``hit(grid, idx, s, dist)`` holds: grid [M] the ``where`` cells'
    candidate b·K + k, idx [S,M] the line's cells in their grid (flat F·F index), s [S,M] m
    back toward the camera, dist [M] m to the foot point; it returns [S,M] bool. Only the
    ``where`` cells are looked at. Shared by :func:`toward_camera` and
    :func:`bedfit_hidden.hidden_cells`."""
    out = torch.zeros(where.shape, dtype=torch.bool, device=where.device)
    F = where.shape[-1]
    sel = where.reshape(-1).nonzero()[:, 0]
    if sel.numel() == 0:
        return out
    grid = sel // (F * F)  # candidate index b·K + k
    row, col = (sel % (F * F)) // F, sel % F
    a, b = pa.reshape(-1)[sel], pb.reshape(-1)[sel]
    dist = torch.sqrt(a**2 + b**2).clamp(min=1e-6)
    da, db = -a / dist, -b / dist  # unit direction toward the camera, plane coordinates
    p = phi.reshape(-1)[grid]
    cos, sin = torch.cos(p), torch.sin(p)
    c_ = cell.reshape(-1)[grid]
    du, dv = da * cos + db * sin, -da * sin + db * cos  # cells per cell, grid axes
    # Every step along the line at once (steps [S,1] × cells: the same float products as
    # one step at a time, ~10× fewer small ops); each grid its own cell size, so that a
    # frame's result does not depend on its batch.
    steps = math.ceil(reach / float(cell.min()))
    k = torch.arange(1, max(1, steps) + 1, device=where.device, dtype=dv.dtype)[:, None]
    r = (row + torch.round(k * dv)).long()
    c = (col + torch.round(k * du)).long()
    s = k * c_  # m back toward the camera
    ok = (r >= 0) & (r < F) & (c >= 0) & (c < F) & (s <= reach)
    idx = r.clamp(0, F - 1) * F + c.clamp(0, F - 1)
    out.view(-1)[sel] = (ok & hit(grid, idx, s, dist)).any(0)
    return out


def toward_camera(mask: Tensor, where: Tensor, pa: Tensor, pb: Tensor, phi: Tensor,
                  cell: Tensor, reach: float) -> Tensor:
    """Cells ``where`` of fine grids [B,K,F,F] with a ``mask`` cell within ``reach`` m on the
    straight line from them toward the camera's foot point (:func:`any_on_ray`). Only the
    ``where`` cells are looked at (few: the holes of a bed)."""
    B, K, F, _ = mask.shape
    flat = mask.reshape(B * K, F * F)
    return any_on_ray(where, pa, pb, phi, cell, reach,
                      lambda grid, idx, _s, _dist: flat[grid, idx])
