"""Someone sitting on the bed's edge, seen in the raw depth frame: the trunk evidence that
:func:`disrt_core.occupancy.sitting_probability` adds to the network grid's.

Why the raw frame: the network grid (:func:`disrt_core.geometry.camera.raw_to_network`)
samples the frame where each point of the mattress plane is seen, so a surface h m above
the mattress at a horizontal distance r from the camera's foot point lands in the grid
h/(H−h)·r further out (H: the camera's height above the mattress). A sitter's head and
shoulders, 0.6-0.9 m up, are drawn 0.3-1 m away from where they are for a camera beside
the bed, mostly beyond the grid's edge, and the grid keeps only thighs and hips. In the
generated scenes of ``benchmarks/bench_occupancy.py`` the sitter's trunk itself stands
over the mattress, 6-43 cm inside its edge (the buttocks are on it).

So every reading is put back where it is in the bed frame (:func:`height_grid`: the
highest reading per 4 cm cell over the mattress and a margin around it) and the trunk is
looked for there (:func:`trunk_features`):

* cells more than 0.40 m above the mattress, opened with a 2×2 square (a lone cell or a
  one-cell line is a flying pixel at a depth edge or speckle), grouped into 8-connected
  components;
* a component is a trunk when it stays below 1.1 m (a sitter's head reaches 0.7-0.95 m;
  a standing person, a wall, a wardrobe, a floor lamp or an IV pole goes higher), lies at
  least half over the mattress (a chair, a nightstand and its lamp, a person standing
  beside the bed stand beside it) and is at most 0.8 m long along the bed (a wall, a
  rail or a board runs along it);
* the features are the areas (m²) of trunk cells more than 0.40, 0.55 and 0.70 m above
  the mattress within 0.45 m of a long edge, inside the mattress and 0.1 m or more from
  its ends (:data:`TRUNK_HEIGHTS_M`), and the share of that band in the camera's view
  (its cells in the frame at 0.6 m up).

A person standing beside the bed is not sitting on it [choice]: their body is beside the
mattress and their head higher than a sitter's, so they give no trunk area and the bed's
state comes from the rest of the evidence (a carer bending over the bed, with head and
shoulders over the mattress and below 1.1 m, would read as a trunk).

Unknown, not nobody: where under :data:`MIN_COVERAGE` of the band is in view (the band
partly outside the image), a trunk found counts, its absence does not
(:func:`disrt_core.occupancy.sitting_probability`). Cells in view without readings count as
seen [choice]: from a camera beside the bed anything tall (a standing person, a wardrobe)
hides a stretch of mattress behind it, and counting that as unseen let the grid's model
take a person standing at the edge for a sitter; a trunk hidden behind someone, or
returning no readings (dark clothes to a stereo camera), is missed.

What it still gets wrong (``benchmarks/bench_occupancy.py``, seeds 6 and 7): a sitter at
the image's border whose head and shoulders are cut off while the band at 0.6 m is in view;
a sitter against something taller than 1.1 m (a wall on the sitting side, which the
generator allows) joins its component and is dropped; knees drawn up under a blanket to
0.65 m near an edge read as a trunk.

Cost: about 1-2 ms a frame on one CPU thread (the pixels are taken about every 2 cm at
the bed, and only where the mattress and its margin up to 1.5 m can be seen).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

from disrt_core.geometry.bedframe import BED_CENTRE_LABEL
from disrt_core.geometry.camera import invert_rigid, project, transform_points

CELL_M = 0.04
MARGIN_M = (0.4, 0.3)  # the grid beyond the mattress: past the long sides, past the ends
TRUNK_HEIGHTS_M = (0.40, 0.55, 0.70)
TRUNK_TOP_M = 1.1
SEEN_UP_TO_M = 1.5  # readings this high are kept: what rises past TRUNK_TOP_M must show it
TRUNK_MAX_LENGTH_M = 0.8
TRUNK_INSIDE_SHARE = 0.5
BAND_M = 0.45  # trunk cells count within this of a long edge (inside the mattress) ...
END_M = 0.10  # ... and at least this far from its ends (head and foot boards)
SEEN_AT_M = 0.6  # a band cell is in view when this point above it is in the frame
MIN_COVERAGE = 0.7  # share of the band seen for "no trunk" to mean nobody sits
#: Mattress (width, length) m when the bed pose comes without a size (a fixed ``pose``).
DEFAULT_MATTRESS_M = (0.9, 2.0)
FEATURES = ("trunk_area_040", "trunk_area_055", "trunk_area_070", "band_seen")


def _mattress_size(size_m, batch: int, device) -> Tensor:
    if size_m is None:
        size_m = DEFAULT_MATTRESS_M
    return torch.as_tensor(size_m, dtype=torch.float32, device=device).reshape(-1, 2).expand(
        batch, 2)


def height_grid(depth_mm: Tensor, K: Tensor, T_cam_bed: Tensor,
                size_m: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The highest reading (m above the mattress) per :data:`CELL_M` cell of the bed frame
    [B,ny,nx] (−inf where none), over the mattress (width, length ``size_m`` [B,2], centred
    on ``BED_CENTRE_LABEL``) and :data:`MARGIN_M` around it, and the cells' centres x, y
    relative to the mattress centre [ny,nx] each.

    depth_mm [B,H,W] (mm along the optical axis, 0 = no reading), K [B,3,3], T_cam_bed
    [B,4,4] as in :mod:`disrt_core.geometry.camera`.
    """
    batch, height, width = depth_mm.shape
    dev = depth_mm.device
    K, T = K.to(dev, torch.float32), T_cam_bed.to(dev, torch.float32)
    half_x = float(size_m[:, 0].max()) / 2 + MARGIN_M[0]
    half_y = float(size_m[:, 1].max()) / 2 + MARGIN_M[1]
    nx, ny = math.ceil(2 * half_x / CELL_M), math.ceil(2 * half_y / CELL_M)
    x0 = BED_CENTRE_LABEL[0] - nx * CELL_M / 2
    y0 = BED_CENTRE_LABEL[1] - ny * CELL_M / 2
    # Only the pixels that can see the grid up to SEEN_UP_TO_M: the box around its corners.
    corners = torch.cartesian_prod(torch.tensor([x0, x0 + nx * CELL_M]),
                                   torch.tensor([y0, y0 + ny * CELL_M]),
                                   torch.tensor([0.0, SEEN_UP_TO_M])).to(dev)
    corners_cam = transform_points(T, corners.expand(batch, -1, -1))
    u0, v0, u1, v1 = 0, 0, width, height
    if (corners_cam[..., 2] > 0.05).all():
        uv = project(K, corners_cam)
        u0 = int(uv[..., 0].min().clamp(0, width - 1))
        u1 = int(uv[..., 0].max().clamp(0, width - 1)) + 1
        v0 = int(uv[..., 1].min().clamp(0, height - 1))
        v1 = int(uv[..., 1].max().clamp(0, height - 1)) + 1
    # About two readings a cell across: every stride-th pixel of the nearest camera's view.
    centre = torch.tensor([[*BED_CENTRE_LABEL, 0.0]], device=dev).expand(batch, 1, 3)
    distance = transform_points(T, centre).norm(dim=-1).max().clamp(min=0.3)
    stride = max(1, round(CELL_M / 2 * float(K[:, 0, 0].min()) / float(distance)))
    v, u = torch.meshgrid(torch.arange(v0, v1, stride, device=dev, dtype=torch.float32),
                          torch.arange(u0, u1, stride, device=dev, dtype=torch.float32),
                          indexing="ij")
    depth = depth_mm[:, v0:v1:stride, u0:u1:stride].to(torch.float32).reshape(batch, -1, 1)
    pixels = torch.stack([u, v, torch.ones_like(u)], -1).reshape(1, -1, 3)
    rays = pixels @ torch.linalg.inv(K).transpose(-1, -2)
    points = transform_points(invert_rigid(T), rays * (depth / 1000.0))
    ix = ((points[..., 0] - x0) / CELL_M).floor().long()
    iy = ((points[..., 1] - y0) / CELL_M).floor().long()
    ok = (depth[..., 0] > 0) & (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    z = torch.where(ok, points[..., 2], torch.full_like(points[..., 2], -math.inf))
    grid = torch.full((batch, ny * nx), -math.inf, device=dev)
    grid.scatter_reduce_(1, torch.where(ok, iy * nx + ix, 0), z, reduce="amax")
    xs = x0 + (torch.arange(nx, device=dev) + 0.5) * CELL_M - BED_CENTRE_LABEL[0]
    ys = y0 + (torch.arange(ny, device=dev) + 0.5) * CELL_M - BED_CENTRE_LABEL[1]
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return grid.view(batch, ny, nx), xx, yy


def _in_frame(grid: Tensor, xx: Tensor, yy: Tensor, K: Tensor, T_cam_bed: Tensor,
              image_size: tuple[int, int]) -> Tensor:
    """Whether each cell [B,ny,nx] is in the frame (its point SEEN_AT_M up)."""
    batch, (height, width) = grid.shape[0], image_size
    above = torch.stack([xx + BED_CENTRE_LABEL[0], yy + BED_CENTRE_LABEL[1],
                         torch.full_like(xx, SEEN_AT_M)], -1).reshape(1, -1, 3)
    cam = transform_points(T_cam_bed.to(grid), above.expand(batch, -1, -1))
    uv = project(K.to(grid), cam)
    inside = (cam[..., 2] > 0.05) & (uv[..., 0] >= 0) & (uv[..., 0] <= width - 1) & \
        (uv[..., 1] >= 0) & (uv[..., 1] <= height - 1)
    return inside.view_as(grid)


def _trunk_cells(grid: np.ndarray, on_mattress: np.ndarray) -> np.ndarray:
    """The cells of one height grid [ny,nx] (m) that belong to a trunk (module docstring)."""
    raised = ndimage.binary_opening(grid > TRUNK_HEIGHTS_M[0], structure=np.ones((2, 2)))
    labels, count = ndimage.label(raised, structure=np.ones((3, 3)))
    if count == 0:
        return raised
    index = np.arange(1, count + 1)
    top = ndimage.maximum(grid, labels, index)
    cells = ndimage.sum(raised, labels, index)
    share = ndimage.sum(on_mattress, labels, index) / cells
    length = np.array([(s[0].stop - s[0].start) * CELL_M for s in ndimage.find_objects(labels)])
    trunk = (top <= TRUNK_TOP_M) & (share >= TRUNK_INSIDE_SHARE) & \
        (length <= TRUNK_MAX_LENGTH_M + 1e-6)
    return np.concatenate([[False], trunk])[labels]


def trunk_features(depth_mm: Tensor, K: Tensor, T_cam_bed: Tensor,
                   size_m: Tensor | tuple[float, float] | None = None) -> Tensor:
    """[B, len(:data:`FEATURES`)]: the trunk areas (m²) above :data:`TRUNK_HEIGHTS_M` in
    the band along the long edges and the share of that band seen (module docstring).

    depth_mm [B,H,W] raw frames (mm, 0 = no reading), K [B,3,3], T_cam_bed [B,4,4];
    size_m: the mattress (width, length) m, [B,2] or one pair; None:
    :data:`DEFAULT_MATTRESS_M`.
    """
    batch = depth_mm.shape[0]
    size = _mattress_size(size_m, batch, depth_mm.device)
    grid, xx, yy = height_grid(depth_mm, K, T_cam_bed, size)
    half_w, half_l = size[:, 0, None, None] / 2, size[:, 1, None, None] / 2
    on_mattress = (xx.abs() <= half_w) & (yy.abs() <= half_l)
    band = on_mattress & (xx.abs() >= half_w - BAND_M) & (yy.abs() <= half_l - END_M)
    seen = _in_frame(grid, xx, yy, K, T_cam_bed, depth_mm.shape[1:])
    grid_np, mattress_np = grid.cpu().numpy(), on_mattress.cpu().numpy()
    trunk = torch.from_numpy(np.stack([_trunk_cells(grid_np[b], mattress_np[b])
                                       for b in range(batch)])).to(grid.device)
    areas = [((grid > h) & trunk & band).flatten(1).sum(1) * CELL_M**2
             for h in TRUNK_HEIGHTS_M]
    coverage = (seen & band).flatten(1).sum(1) / band.flatten(1).sum(1).clamp(min=1)
    return torch.stack([*areas, coverage], -1).float()
