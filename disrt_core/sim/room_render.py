"""Rendering a room scene: the body and the bed's height field with the room's boxes in one
z-buffer, the floor and walls as exact planes, and the material each pixel sees.

Frames: vertices are given in the label (bed) frame and moved to the camera optical frame
with ``T_cam_bed`` (``p_cam = T_cam_bed @ p_bed``); depths are metres along the optical axis,
0 where nothing is seen. Materials per pixel: :data:`disrt_core.sim.room.MATTE`, ``DARK``,
``SHINY`` (the body, the bed's top surfaces and the walls are matte).
"""

from __future__ import annotations

import torch
from torch import Tensor

from disrt_core.geometry.camera import transform_points
from disrt_core.sim.render import project_points, rasterize
from disrt_core.sim.room import DARK, MATTE, SHINY, Room

#: Unit cube corners and its 12 triangles, wound so that normals point outward.
_CUBE = torch.tensor([[x, y, z] for z in (-1.0, 1.0) for y in (-1.0, 1.0) for x in (-1.0, 1.0)])
_CUBE_FACES = torch.tensor([
    [0, 2, 1], [1, 2, 3],  # bottom (z = -1), normal -z
    [4, 5, 6], [5, 7, 6],  # top, +z
    [0, 1, 4], [1, 5, 4],  # y = -1, normal -y
    [2, 6, 3], [3, 6, 7],  # y = +1
    [0, 4, 2], [2, 4, 6],  # x = -1
    [1, 3, 5], [3, 7, 5],  # x = +1
])  # fmt: skip


def room_mesh(room: Room) -> tuple[Tensor, Tensor, Tensor]:
    """The room's boxes as a mesh: vertices [B, 8·N, 3] (label frame), faces [12·N, 3]
    (outward normals) and each vertex's box index [8·N] (for materials)."""
    boxes = room.boxes
    n, count, _ = boxes.shape
    centre, half, yaw = boxes[..., :3], boxes[..., 3:6], boxes[..., 6]
    local = _CUBE.to(boxes)[None, None] * half[:, :, None]  # [B,N,8,3]
    c, s = torch.cos(yaw)[..., None], torch.sin(yaw)[..., None]
    x = c * local[..., 0] - s * local[..., 1]
    y = s * local[..., 0] + c * local[..., 1]
    vertices = torch.stack([x, y, local[..., 2]], -1) + centre[:, :, None]
    offsets = 8 * torch.arange(count, device=boxes.device)
    faces = (_CUBE_FACES.to(boxes.device)[None] + offsets[:, None, None]).reshape(-1, 3)
    owner = torch.arange(count, device=boxes.device).repeat_interleave(8)
    return vertices.reshape(n, count * 8, 3), faces, owner


def render_room_planes(K: Tensor, T_cam_bed: Tensor, room: Room,
                       size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Depth (m along the optical axis) of the floor and walls per pixel, and which plane
    each pixel sees (0 floor, 1..4 the left, right, head and foot wall). The camera is inside
    the room (a convex box open at the top), so the surface a ray meets is where it leaves
    the room: the nearest plane it crosses outward. A ray that leaves upward (through the
    open top; none for cameras looking down) gets depth 0."""
    rows, cols = size
    device, dtype = K.device, K.dtype
    fx, fy = K[:, 0, 0, None, None], K[:, 1, 1, None, None]
    cx, cy = K[:, 0, 2, None, None], K[:, 1, 2, None, None]
    ray_x = ((torch.arange(cols, device=device, dtype=dtype) - cx) / fx).expand(-1, rows, -1)
    ray_y = ((torch.arange(rows, device=device, dtype=dtype)[:, None] - cy) / fy).expand(
        -1, -1, cols)
    rot = T_cam_bed[:, :3, :3].transpose(-1, -2)  # camera -> bed
    origin = -(rot @ T_cam_bed[:, :3, 3:4])[..., 0]  # camera centre in the bed frame [B,3]
    # Camera rays (x, y, 1) in the bed frame: the ray parameter is the optical-axis depth.
    d = [rot[:, i, 0, None, None] * ray_x + rot[:, i, 1, None, None] * ray_y
         + rot[:, i, 2, None, None] for i in range(3)]
    big = torch.full_like(ray_x, float("inf"))
    # (direction component, plane level, camera coordinate, outward sign)
    planes = [(d[2], room.floor_z, origin[:, 2], -1.0),
              (d[0], room.walls[:, 0], origin[:, 0], -1.0),
              (d[0], room.walls[:, 1], origin[:, 0], 1.0),
              (d[1], room.walls[:, 2], origin[:, 1], 1.0),
              (d[1], room.walls[:, 3], origin[:, 1], -1.0)]
    depths = []
    for slope, level, start, sign in planes:
        t = (level - start)[:, None, None] / slope
        outward = sign * slope > 1e-9
        depths.append(torch.where(outward & (t > 0), t, big))
    depth, which = torch.stack(depths, 1).min(1)
    return torch.where(torch.isfinite(depth), depth, torch.zeros_like(depth)), which


def render_room(points_bed: Tensor, faces: Tensor, room: Room, K: Tensor, T_cam_bed: Tensor,
                size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Depth [B,H,W] (m, 0 = nothing) and material [B,H,W] (long) of a room scene.

    points_bed [B,V,3] and faces [F,3]: the body and the bed's height-field mesh (label
    frame), drawn with the room's boxes in one z-buffer; then the floor and walls where they
    are nearer (or nothing else is seen)."""
    box_vertices, box_faces, owner = room_mesh(room)
    count = points_bed.shape[1]
    points = transform_points(T_cam_bed, torch.cat([points_bed, box_vertices], 1))
    all_faces = torch.cat([faces, box_faces + count])
    screen, ahead = project_points(points, K)
    mask = ahead[:, all_faces].all(-1)
    # Channel 0: 1/z of every surface; 1 and 2: 1/z of dark and of shiny boxes, else 0 (a
    # box's faces have its vertices only, so per-vertex values are per-face). A pixel sees
    # a dark (shiny) surface when that channel's nearest surface is the nearest.
    material = room.box_material[:, owner]  # [B, 8·N]
    body = torch.zeros(screen.shape[0], count, device=screen.device, dtype=torch.bool)
    is_dark = torch.cat([body, material == DARK], 1)
    is_shiny = torch.cat([body, material == SHINY], 1)
    inv = screen[..., 2]
    values = torch.stack([inv, torch.where(is_dark, inv, 0.0),
                          torch.where(is_shiny, inv, 0.0)], -1)
    out = rasterize(screen[..., :2], values, all_faces, size, ("amax", "amax", "amax"),
                    face_mask=mask, facing=-1)
    inv, inv_dark, inv_shiny = out.unbind(1)
    depth = torch.where(inv > 0, 1.0 / inv.clamp(min=1e-9), torch.zeros_like(inv))
    mat = torch.full_like(depth, MATTE, dtype=torch.long)
    mat = torch.where((inv_dark > 0) & (inv_dark >= inv * (1 - 1e-6)), DARK, mat)
    mat = torch.where((inv_shiny > 0) & (inv_shiny >= inv * (1 - 1e-6)), SHINY, mat)
    planes, which = render_room_planes(K, T_cam_bed, room, size)
    use_plane = (planes > 0) & ((depth <= 0) | (planes < depth))
    floor_mat = room.floor_material[:, None, None].expand_as(mat)
    plane_mat = torch.where(which == 0, floor_mat, torch.full_like(mat, MATTE))
    return torch.where(use_plane, planes, depth), torch.where(use_plane, plane_mat, mat)
