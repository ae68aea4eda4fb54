"""A batched z-buffer triangle rasteriser in plain PyTorch (CPU or GPU, no OpenGL).

Two uses in the generator:

* **perspective depth** (:func:`render_depth`): triangles given in the camera optical frame
  (x right, y down, z forward, metres) are projected with ``K``; each pixel keeps the nearest
  surface (z-buffer). ``1/z`` is affine in screen space for a planar triangle, so it is
  interpolated there and reduced with a max: the result is the exact depth along the optical
  axis of the nearest triangle at each pixel centre;
* **orthographic height maps** (:func:`rasterize` with grid coordinates): the top (max z)
  and underside (min z) of the body on the 1 cm bed grid, for contact and the blanket drape.

Conventions: pixel centres lie at integer coordinates (OpenCV, ``u`` = column, ``v`` = row);
a pixel is covered when its centre lies inside the triangle or on its edge, so triangles that
share an edge leave no cracks (the shared pixels are written twice; the z-buffer does not
care).

How it stays batched without per-triangle Python loops: every triangle's pixel bounding box
is rounded up to a power of two in each direction and triangles are grouped by that size
class; within a class all ``w × h`` candidate pixels of all triangles of all samples are
tested at once and written with one ``scatter_reduce``. A mesh of small triangles (the body:
about 2 px per edge at 2 m) costs a few candidates per triangle; the few large or elongated
ones (walls, boxes) get their own classes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import Tensor

from disrt_core.constants import const

_FILL = {"amax": float("-inf"), "amin": float("inf")}
#: Box sizes of the size classes (about ×1.5 apart, so that little of a box is wasted).
_SIZES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024,
          1536, 2048, 3072, 4096)


def rasterize(uv: Tensor, values: Tensor, faces: Tensor, size: tuple[int, int],
              reduce: Sequence[str] = ("amax",), *, face_mask: Tensor | None = None,
              facing: int = 0, max_candidates: int | None = None) -> Tensor:
    """Rasterise triangles and reduce a linearly interpolated value per pixel.

    uv: [B,V,2] vertex positions in pixels (column, row), pixel centres at integers.
    values: [B,V,C] per-vertex values, interpolated linearly in screen space.
    faces: [F,3] vertex indices (long), shared by the batch.
    size: (H, W) of the image.
    reduce: one of ``"amax"`` / ``"amin"`` per channel.
    face_mask: optional bool [B,F], False = skip that triangle.
    facing: 0 draws every triangle whatever its winding; −1 (+1) only those whose signed
    area ``(x1−x0)(y2−y0) − (x2−x0)(y1−y0)`` in pixels is negative (positive), which is
    back-face culling for projected meshes (:func:`render_depth`).
    max_candidates: candidate pixels tested at once (memory bound); default 2²⁰ on the CPU
    (temporaries small enough for the C allocator to reuse), 2²⁶ on a GPU.
    Returns [B,C,H,W]; pixels no triangle covers hold -inf (amax) or +inf (amin).
    """
    verts = torch.cat([uv, values], -1)  # [B,V,2+C]
    batch, _, k = verts.shape
    channels = k - 2
    if len(reduce) != channels:
        raise ValueError(f"reduce has {len(reduce)} entries for {channels} value channels")
    if any(r not in _FILL for r in reduce):
        raise ValueError(f"reduce entries must be 'amax' or 'amin', got {reduce}")
    height, width = size
    # Which triangles to draw, from the corners' pixel positions alone: the per-vertex
    # values are gathered for the kept triangles only (a body's far side and the triangles
    # off the image never become [B,F,3,2+C] tensors).
    *_, area, keep = _boxes(verts[..., 0][:, faces], verts[..., 1][:, faces], size)
    if facing:
        keep &= area * facing > 0
    if face_mask is not None:
        keep &= face_mask
    b_idx, f_idx = keep.nonzero(as_tuple=True)
    if b_idx.numel() == 0:
        return torch.stack([torch.full((batch, height, width), _FILL[r], dtype=verts.dtype,
                                       device=verts.device) for r in reduce], 1)
    tri = verts[b_idx[:, None], faces[f_idx]]  # [T,3,2+C]
    return _draw(tri, b_idx, batch, size, reduce, max_candidates)


def _draw(tri: Tensor, b_idx: Tensor, batch: int, size: tuple[int, int],
          reduce: Sequence[str], max_candidates: int | None) -> Tensor:
    """[B,C,H,W]: the T triangles tri [T,3,2+C] (each of sample ``b_idx`` [T], covering a
    pixel centre) z-buffered by size class (module docstring)."""
    k = tri.shape[-1]
    channels = k - 2
    height, width = size
    dtype, device = tri.dtype, tri.device
    if max_candidates is None:
        max_candidates = 1 << (20 if device.type == "cpu" else 26)
    x, y, val = tri[..., 0], tri[..., 1], tri[..., 2:]
    # The boxes again, of the drawn triangles only (cheaper than gathering the [B,F] ones).
    x0, y0, x1, y1, area, _ = _boxes(x, y, size)
    bw = (x1 - x0).long() + 1
    bh = (y1 - y0).long() + 1
    coef = _coefficients(x, y, val, x0, y0, area)  # [T, 2+C, 3]
    # Size class: the smallest listed box size that holds the extent, per direction.
    sizes = const(_SIZES, device)
    cw = torch.searchsorted(sizes, bw)
    ch = torch.searchsorted(sizes, bh)
    largest = int(torch.maximum(cw, ch).max())
    if largest >= len(_SIZES):
        raise ValueError(f"a triangle's bounding box exceeds {_SIZES[-1]} px; subdivide the mesh")
    # Write into a buffer padded by the largest box size on the right and bottom, so that
    # candidates past the image border land in the padding instead of needing a test.
    pad = _SIZES[largest]
    hp, wp = height + pad, width + pad
    buffer = _z_buffer(reduce, batch * hp * wp, dtype, device)
    corner = b_idx * (hp * wp) + y0.long() * wp + x0.long()
    n_sizes = len(_SIZES)
    key = cw * n_sizes + ch
    order = torch.argsort(key)
    counts = torch.bincount(key, minlength=n_sizes * n_sizes).tolist()
    coef, corner = coef[order], corner[order]
    start = 0
    for k, n in enumerate(counts):
        if n == 0:
            continue
        sw, sh = _SIZES[k // n_sizes], _SIZES[k % n_sizes]
        offsets = _offsets(sw, sh, wp, device, dtype)
        per_chunk = max(1, max_candidates // (sw * sh))
        for s in range(start, start + n, per_chunk):
            e = min(s + per_chunk, start + n)
            _splat(buffer, reduce, coef[s:e], corner[s:e], offsets)
        start += n
    image = buffer.view(channels, batch, hp, wp)[:, :, :height, :width]
    return _from_key(image.transpose(0, 1).contiguous(), dtype)


def _boxes(x: Tensor, y: Tensor, size: tuple[int, int]) -> tuple[Tensor, ...]:
    """Per triangle (corners' columns x and rows y, [...,3]) its pixel-centre bounding box
    clipped to the image (x0, y0, x1, y1, integers as floats), its signed double area, and
    whether it covers a pixel centre at all (a box, a non-zero finite area), each [...]."""
    height, width = size
    x0 = x.amin(-1).ceil().clamp(min=0)
    x1 = x.amax(-1).floor().clamp(max=width - 1)
    y0 = y.amin(-1).ceil().clamp(min=0)
    y1 = y.amax(-1).floor().clamp(max=height - 1)
    area = (x[..., 1] - x[..., 0]) * (y[..., 2] - y[..., 0]) - (
        x[..., 2] - x[..., 0]) * (y[..., 1] - y[..., 0])
    keep = (x1 >= x0) & (y1 >= y0) & (area.abs() > 1e-12) & torch.isfinite(area)
    return x0, y0, x1, y1, area, keep


def _coefficients(x: Tensor, y: Tensor, val: Tensor, x0: Tensor, y0: Tensor,
                  area: Tensor) -> Tensor:
    """[T, 2+C, 3]: the barycentric coordinates l0, l1 and the C interpolated values of T
    triangles (corners x, y [T,3], values val [T,3,C], signed double area [T]) as affine
    functions a·ox + b·oy + c of the pixel offset (ox, oy) from the box corner (x0, y0)."""
    inv_area = (1.0 / area)[:, None]
    # l0 from the edge (1, 2) and l1 from the edge (2, 0): the corners j and k of each [T,2].
    xj, yj = x[:, 1:3], y[:, 1:3]
    xk, yk = x.roll(-2, 1)[:, :2], y.roll(-2, 1)[:, :2]
    a = (yj - yk) * inv_area
    b = (xk - xj) * inv_area
    c = (xj * yk - xk * yj) * inv_area + a * x0[:, None] + b * y0[:, None]
    bary = torch.stack([a, b, c], -1)  # [T,2,3]: l0 and l1
    # The interpolated value is affine too: v = v2 + l0·(v0 − v2) + l1·(v1 − v2).
    d = val[:, :2] - val[:, 2:3]  # [T,2,C]
    values = (d[..., None] * bary[:, :, None]).sum(1)  # [T,C,3]
    values[..., 2] += val[:, 2]
    return torch.cat([bary, values], 1)


def rasterize_fixed(uv: Tensor, values: Tensor, faces: Tensor, size: tuple[int, int],
                    reduce: Sequence[str], box: int) -> Tensor:
    """:func:`rasterize` with fixed shapes and no host synchronisation, so that it can run
    inside a CUDA graph: every triangle of every sample is tested on the same ``box`` ×
    ``box`` pixels from its bounding box's corner (no selection of the triangles to draw,
    no size classes). Equal to :func:`rasterize` for triangles whose pixel bounding box
    fits in the box; a larger one is drawn only within it, so ``box`` must bound the mesh's
    triangles at the grid's scale (a body on the 1 cm bed grid: a few cells). Costs B·F·box²
    candidates whatever the mesh covers."""
    tri = torch.cat([uv, values], -1)[:, faces]  # [B,F,3,2+C]
    batch, n_faces, _, k = tri.shape
    height, width = size
    x0, y0, _, _, area, keep = _boxes(tri[..., 0], tri[..., 1], size)
    keep = keep.flatten()
    # a triangle not drawn: its corner inside the image and an area of 1, then every
    # candidate made outside (l0 = −1)
    x0, y0 = x0.clamp(max=width - 1).flatten(), y0.clamp(max=height - 1).flatten()
    area = torch.where(keep, area.flatten(), torch.ones_like(x0))
    corners = torch.where(keep[:, None, None], tri.flatten(0, 1), torch.zeros_like(
        tri.flatten(0, 1)))
    coef = _coefficients(corners[..., 0], corners[..., 1], corners[..., 2:], x0, y0, area)
    never = const((0.0, 0.0, -1.0), coef.device, coef.dtype)  # no host copy in a graph
    coef[:, 0] = torch.where(keep[:, None], coef[:, 0], never)
    hp, wp = height + box, width + box  # candidates past the border land in the padding
    buffer = _z_buffer(reduce, batch * hp * wp, tri.dtype, tri.device)
    sample = torch.arange(batch, device=tri.device).repeat_interleave(n_faces)
    corner = sample * (hp * wp) + y0.long() * wp + x0.long()
    offsets = _offsets(box, box, wp, tri.device, tri.dtype)
    per_chunk = max(1, (1 << 26) // (box * box))
    for s in range(0, len(coef), per_chunk):
        _splat(buffer, reduce, coef[s:s + per_chunk], corner[s:s + per_chunk], offsets)
    image = buffer.view(k - 2, batch, hp, wp)[:, :, :height, :width]
    return _from_key(image.transpose(0, 1).contiguous(), tri.dtype)


#: The z-buffer holds each float as the signed integer of the same order (:func:`_key`), so
#: that the GPU reduces with an integer atomic max/min instead of a compare-and-swap loop.
_INT = {torch.float32: torch.int32, torch.float64: torch.int64}


def _key(values: Tensor) -> Tensor:
    """Signed integers ordered as the floats ``values`` are, bit for bit reversible: a
    non-negative IEEE 754 float's bits, read as an integer, grow with it; a negative one's
    grow with its magnitude, so its magnitude bits are flipped. Its own inverse on the bits."""
    bits = values.view(_INT[values.dtype])
    return torch.where(bits < 0, bits ^ torch.iinfo(bits.dtype).max, bits)


def _from_key(keys: Tensor, dtype: torch.dtype) -> Tensor:
    """The floats of :func:`_key`'s integers."""
    return torch.where(keys < 0, keys ^ torch.iinfo(keys.dtype).max, keys).view(dtype)


def _z_buffer(reduce: Sequence[str], size: int, dtype: torch.dtype, device) -> Tensor:
    """[C, size] z-buffer of keys (:func:`_key`), each channel at its empty value."""
    buffer = torch.empty(len(reduce), size, dtype=_INT[dtype], device=device)
    for c, mode in enumerate(reduce):
        buffer[c].fill_(_empty_key(mode, dtype))
    return buffer


@functools.lru_cache(maxsize=8)
def _empty_key(mode: str, dtype: torch.dtype) -> int:
    """:func:`_key` of a channel's empty value (made once, on the CPU)."""
    return int(_key(torch.tensor([_FILL[mode]], dtype=dtype)))


@functools.lru_cache(maxsize=256)
def _offsets(sw: int, sh: int, row_stride: int, device, dtype) -> tuple[Tensor, Tensor]:
    """Candidate offsets of an sw×sh box: design [3,S] rows (ox, oy, 1), flat offset [S]
    (made once per size, image width, device and dtype; read only)."""
    with torch.inference_mode(False):
        ox = torch.arange(sw, device=device).repeat(sh)
        oy = torch.arange(sh, device=device).repeat_interleave(sw)
        return torch.stack([ox, oy, torch.ones_like(ox)]).to(dtype), oy * row_stride + ox


def _splat(out: Tensor, reduce: Sequence[str], coef: Tensor, corner: Tensor,
           offsets: tuple[Tensor, Tensor]) -> None:
    """Test the candidate pixels of a chunk of same-class triangles and scatter the covered."""
    design, flat = offsets
    n, k, _ = coef.shape
    lin = (coef.reshape(n * k, 3) @ design).reshape(n, k, -1)  # [n, 2+C, S], one GEMM
    l0, l1 = lin[:, 0], lin[:, 1]
    eps = 1e-5  # covers centres exactly on an edge despite rounding
    outside = (l0 < -eps) | (l1 < -eps) | (l0 + l1 > 1.0 + eps)
    index = (corner[:, None] + flat[None]).reshape(-1)
    for c, mode in enumerate(reduce):
        value = _key(lin[:, 2 + c].masked_fill_(outside, _FILL[mode]).reshape(-1))
        out[c].scatter_reduce_(0, index, value, reduce=mode, include_self=True)


def project_points(points_cam: Tensor, K: Tensor, near: float = 0.05) -> tuple[Tensor, Tensor]:
    """Vertices [B,V,3] of the camera optical frame in screen space: [B,V,3] as (u, v, 1/z)
    (z clamped to ``near``) and whether each lies farther than ``near`` [B,V] (a triangle
    is drawn only when all its corners do). K [B,3,3], a pinhole without skew."""
    z = points_cam[..., 2:3]
    k = K[:, None]  # [B,1,3,3]
    inv_z = 1.0 / z.clamp(min=near)
    uv = torch.cat([k[..., 0, 0:1] * points_cam[..., 0:1] * inv_z + k[..., 0, 2:3],
                    k[..., 1, 1:2] * points_cam[..., 1:2] * inv_z + k[..., 1, 2:3]], -1)
    return torch.cat([uv, inv_z], -1), z[..., 0] > near


def render_depth(points_cam: Tensor, faces: Tensor, K: Tensor, size: tuple[int, int],
                 near: float = 0.05, cull_back: bool = True, **kwargs) -> Tensor:
    """Depth along the optical axis (metres) of the nearest triangle per pixel; 0 = no hit.

    points_cam: [B,V,3] vertices in the camera optical frame; faces [F,3]; K [B,3,3];
    size (H, W); K must be a pinhole matrix without skew. Triangles with a vertex closer
    than ``near`` are dropped (none in a bed scene seen from 2 m). ``cull_back``: skip
    triangles whose outward normal (right-hand rule on the face's vertex order) points away
    from the camera; right for closed meshes with outward faces (SMPL, Anny) and for
    height-field meshes from :func:`grid_faces`. For corners in front of the camera a face
    turns toward it exactly when its projection winds with a negative signed area in pixels
    (det[p0, p1, p2] = z0·z1·z2·det[q0, q1, q2], qᵢ = (xᵢ/zᵢ, yᵢ/zᵢ, 1), and fx·fy > 0),
    so the test is made in screen space (:func:`rasterize`'s ``facing``).
    """
    screen, ahead = project_points(points_cam, K, near)
    mask = ahead[:, faces].all(-1)  # [B,F]
    inv = rasterize(screen[..., :2], screen[..., 2:], faces, size, ("amax",), face_mask=mask,
                    facing=-1 if cull_back else 0, **kwargs)[:, 0]
    return torch.where(inv > 0, 1.0 / inv.clamp(min=1e-9), torch.zeros_like(inv))


def render_plane(K: Tensor, T_cam_frame: Tensor, height: float | Tensor,
                 size: tuple[int, int]) -> Tensor:
    """Depth (m along the optical axis) of the plane z = ``height`` of a frame seen by a
    camera (``p_cam = T_cam_frame @ p``): exact ray-plane intersection per pixel centre;
    0 where the ray points away from the plane. Used for the floor. height: float or [B];
    K: [B,3,3] pinhole without skew.
    """
    rows, cols = size
    device, dtype = K.device, K.dtype
    fx, fy = K[:, 0, 0, None, None], K[:, 1, 1, None, None]
    cx, cy = K[:, 0, 2, None, None], K[:, 1, 2, None, None]
    rx = (torch.arange(cols, device=device, dtype=dtype) - cx) / fx  # [B,1,W]
    ry = (torch.arange(rows, device=device, dtype=dtype)[:, None] - cy) / fy  # [B,H,1]
    normal = T_cam_frame[:, :3, 2]  # the frame's z axis in camera coordinates, [B,3]
    origin_z = -(normal * T_cam_frame[:, :3, 3]).sum(-1)  # the camera's height in the frame
    height = torch.as_tensor(height, device=device, dtype=dtype).reshape(-1)
    # The camera point d·(rx, ry, 1) lies at frame height origin_z + d·(normal·ray).
    n = normal[:, :, None, None]
    slope = n[:, 0] * rx + n[:, 1] * ry + n[:, 2]
    depth = (height - origin_z)[:, None, None] / slope
    return torch.where(depth > 0, depth, torch.zeros_like(depth))


def grid_faces(rows: int, cols: int, device=None) -> Tensor:
    """Faces [2·(rows−1)·(cols−1), 3] of a regular grid mesh whose vertices are numbered
    row-major (vertex ``r·cols + c``); used to render height fields. With rows running
    toward −y and columns toward +x (the bed grids), the faces' normals point up (+z)."""
    r, c = torch.meshgrid(torch.arange(rows - 1, device=device),
                          torch.arange(cols - 1, device=device), indexing="ij")
    v00 = (r * cols + c).reshape(-1)
    v01, v10, v11 = v00 + 1, v00 + cols, v00 + cols + 1
    return torch.cat([torch.stack([v00, v10, v01], 1), torch.stack([v01, v10, v11], 1)])
