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
              max_candidates: int | None = None) -> Tensor:
    """Rasterise triangles and reduce a linearly interpolated value per pixel.

    uv: [B,V,2] vertex positions in pixels (column, row), pixel centres at integers.
    values: [B,V,C] per-vertex values, interpolated linearly in screen space.
    faces: [F,3] vertex indices (long), shared by the batch; winding does not matter.
    size: (H, W) of the image.
    reduce: one of ``"amax"`` / ``"amin"`` per channel.
    face_mask: optional bool [B,F], False = skip that triangle (e.g. back faces).
    max_candidates: candidate pixels tested at once (memory bound); default 2²⁰ on the CPU
    (temporaries small enough for the C allocator to reuse), 2²⁶ on a GPU.
    Returns [B,C,H,W]; pixels no triangle covers hold -inf (amax) or +inf (amin).
    """
    return rasterize_triangles(torch.cat([uv, values], -1)[:, faces], size, reduce,
                               face_mask=face_mask, max_candidates=max_candidates)


def rasterize_triangles(tri: Tensor, size: tuple[int, int], reduce: Sequence[str] = ("amax",),
                        *, face_mask: Tensor | None = None,
                        max_candidates: int | None = None) -> Tensor:
    """:func:`rasterize` on triangles given by their corners, tri [B,F,3,2+C]: pixel
    (column, row) then the C values of each corner."""
    batch, _, _, k = tri.shape
    channels = k - 2
    if len(reduce) != channels:
        raise ValueError(f"reduce has {len(reduce)} entries for {channels} value channels")
    if any(r not in _FILL for r in reduce):
        raise ValueError(f"reduce entries must be 'amax' or 'amin', got {reduce}")
    height, width = size
    dtype, device = tri.dtype, tri.device
    if max_candidates is None:
        max_candidates = 1 << (20 if device.type == "cpu" else 26)

    x0, y0, x1, y1, area, keep = _boxes(tri, size)
    if face_mask is not None:
        keep &= face_mask
    b_idx, f_idx = keep.nonzero(as_tuple=True)
    if b_idx.numel() == 0:
        return torch.stack([torch.full((batch, height, width), _FILL[r], dtype=dtype,
                                       device=device) for r in reduce], 1)
    # One gather for everything per kept triangle.
    packed = torch.cat([tri.flatten(-2), torch.stack([x0, y0, x1, y1, area], -1)], -1)
    packed = packed[b_idx, f_idx]  # [T, 3·(2+C) + 5]
    corners = packed[:, :3 * k].view(-1, 3, k)
    x, y, val = corners[..., 0], corners[..., 1], corners[..., 2:]
    x0, y0, x1, y1, area = packed[:, 3 * k:].unbind(-1)
    bw = (x1 - x0).long() + 1
    bh = (y1 - y0).long() + 1
    coef = _coefficients(x, y, val, x0, y0, area)  # [T, 2+C, 3]
    # Size class: the smallest listed box size that holds the extent, per direction.
    sizes = torch.tensor(_SIZES, device=device)
    cw = torch.searchsorted(sizes, bw)
    ch = torch.searchsorted(sizes, bh)
    largest = int(torch.maximum(cw, ch).max())
    if largest >= len(_SIZES):
        raise ValueError(f"a triangle's bounding box exceeds {_SIZES[-1]} px; subdivide the mesh")
    # Write into a buffer padded by the largest box size on the right and bottom, so that
    # candidates past the image border land in the padding instead of needing a test.
    pad = _SIZES[largest]
    hp, wp = height + pad, width + pad
    buffer = torch.stack([torch.full((batch * hp * wp,), _FILL[r], dtype=dtype, device=device)
                          for r in reduce])  # [C, B*Hp*Wp]
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
    return image.transpose(0, 1).contiguous()


def _boxes(tri: Tensor, size: tuple[int, int]) -> tuple[Tensor, ...]:
    """Per triangle [B,F,3,2+C] its pixel-centre bounding box clipped to the image (x0, y0,
    x1, y1, integers as floats), its signed double area, and whether it covers a pixel
    centre at all (a box, a non-zero finite area), each [B,F]."""
    height, width = size
    x, y = tri[..., 0], tri[..., 1]
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
    inv_area = 1.0 / area
    a0 = (y[:, 1] - y[:, 2]) * inv_area
    b0 = (x[:, 2] - x[:, 1]) * inv_area
    c0 = (x[:, 1] * y[:, 2] - x[:, 2] * y[:, 1]) * inv_area + a0 * x0 + b0 * y0
    a1 = (y[:, 2] - y[:, 0]) * inv_area
    b1 = (x[:, 0] - x[:, 2]) * inv_area
    c1 = (x[:, 2] * y[:, 0] - x[:, 0] * y[:, 2]) * inv_area + a1 * x0 + b1 * y0
    # The interpolated value is affine too: v = v2 + l0·(v0 − v2) + l1·(v1 − v2).
    d0, d1 = val[:, 0] - val[:, 2], val[:, 1] - val[:, 2]  # [T,C]
    rows = [torch.stack([a0, b0, c0], 1), torch.stack([a1, b1, c1], 1)]
    rows += [torch.stack([a0 * d0[:, c] + a1 * d1[:, c], b0 * d0[:, c] + b1 * d1[:, c],
                          c0 * d0[:, c] + c1 * d1[:, c] + val[:, 2, c]], 1)
             for c in range(val.shape[-1])]
    return torch.stack(rows, 1)


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
    x0, y0, _, _, area, keep = _boxes(tri, size)
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
    buffer = torch.stack([torch.full((batch * hp * wp,), _FILL[r], dtype=tri.dtype,
                                     device=tri.device) for r in reduce])
    sample = torch.arange(batch, device=tri.device).repeat_interleave(n_faces)
    corner = sample * (hp * wp) + y0.long() * wp + x0.long()
    offsets = _offsets(box, box, wp, tri.device, tri.dtype)
    per_chunk = max(1, (1 << 26) // (box * box))
    for s in range(0, len(coef), per_chunk):
        _splat(buffer, reduce, coef[s:s + per_chunk], corner[s:s + per_chunk], offsets)
    image = buffer.view(k - 2, batch, hp, wp)[:, :, :height, :width]
    return image.transpose(0, 1).contiguous()


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
        value = lin[:, 2 + c].masked_fill_(outside, _FILL[mode]).reshape(-1)
        out[c].scatter_reduce_(0, index, value, reduce=mode, include_self=True)


def project_triangles(points_cam: Tensor, faces: Tensor, K: Tensor, near: float = 0.05,
                      cull_back: bool = True) -> tuple[Tensor, Tensor]:
    """Triangles of a mesh in screen space: corners [B,F,3,3] as (u, v, 1/z) and a mask
    [B,F] of the triangles to draw (all corners nearer than ``near`` dropped; with
    ``cull_back``, the triangles facing away from the camera). See :func:`render_depth`."""
    tri = points_cam[:, faces]  # [B,F,3,3]
    z = tri[..., 2:3]
    k = K[:, None, None]  # [B,1,1,3,3]
    inv_z = 1.0 / z.clamp(min=near)
    uv = torch.cat([k[..., 0, 0:1] * tri[..., 0:1] * inv_z + k[..., 0, 2:3],
                    k[..., 1, 1:2] * tri[..., 1:2] * inv_z + k[..., 1, 2:3]], -1)
    mask = (z[..., 0] > near).all(-1)  # [B,F]
    if cull_back:
        normal = torch.linalg.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])
        mask &= (normal * tri[:, :, 0]).sum(-1) < 0  # the camera sits on the normal's side
    return torch.cat([uv, inv_z], -1), mask


def render_depth(points_cam: Tensor, faces: Tensor, K: Tensor, size: tuple[int, int],
                 near: float = 0.05, cull_back: bool = True, **kwargs) -> Tensor:
    """Depth along the optical axis (metres) of the nearest triangle per pixel; 0 = no hit.

    points_cam: [B,V,3] vertices in the camera optical frame; faces [F,3]; K [B,3,3];
    size (H, W); K must be a pinhole matrix without skew. Triangles with a vertex closer
    than ``near`` are dropped (none in a bed
    scene seen from 2 m). ``cull_back``: skip triangles whose outward normal (right-hand
    rule on the face's vertex order) points away from the camera; right for closed meshes
    with outward faces (SMPL, Anny) and for height-field meshes from :func:`grid_faces`.
    """
    tri, mask = project_triangles(points_cam, faces, K, near, cull_back)
    inv = rasterize_triangles(tri, size, ("amax",), face_mask=mask, **kwargs)[:, 0]
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
