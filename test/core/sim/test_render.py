"""The z-buffer rasteriser against analytic geometry (planes, boxes, overlapping surfaces)."""

import math

import pytest
import torch

from disrt_core.geometry.camera import invert_rigid, overhead_camera_pose, transform_points
from disrt_core.sim.render import grid_faces, rasterize, render_depth, render_plane

K = torch.tensor([[[367.8, 0.0, 208.1], [0.0, 367.8, 259.7], [0.0, 0.0, 1.0]]])
SIZE = (512, 424)


def quad(x0, x1, y0, y1, z):
    """Two triangles of the rectangle [x0,x1]×[y0,y1] at depth z, facing the camera (−z)."""
    v = torch.tensor([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]])
    return v, torch.tensor([[0, 2, 1], [0, 3, 2]])


def box(x0, x1, y0, y1, z0, z1):
    """A closed box in camera coordinates with outward faces."""
    v = torch.tensor([[x, y, z] for z in (z0, z1) for y in (y0, y1) for x in (x0, x1)])
    faces = torch.tensor([[0, 2, 1], [1, 2, 3], [4, 5, 6], [5, 7, 6], [0, 1, 4], [1, 5, 4],
                          [2, 6, 3], [3, 6, 7], [0, 4, 2], [2, 4, 6], [1, 3, 5], [3, 7, 5]])
    return v, faces


def ray_plane_depth(K, T_cam_frame, height):
    """Reference: depth along the optical axis of the frame's plane z = height (float64)."""
    v, u = torch.meshgrid(torch.arange(SIZE[0], dtype=torch.float64),
                          torch.arange(SIZE[1], dtype=torch.float64), indexing="ij")
    rays = torch.stack([u, v, torch.ones_like(u)], -1) @ torch.linalg.inv(K[0].double()).T
    T = invert_rigid(T_cam_frame[0].double())
    dirs = rays @ T[:3, :3].T
    return (height - T[2, 3]) / dirs[..., 2]


def test_plane_at_known_distance_renders_to_that_depth():
    v, f = quad(-3.0, 3.0, -3.0, 3.0, 2.101)
    depth = render_depth(v[None], f, K, SIZE)[0]
    assert (depth > 0).all()  # a 6 m square at 2.1 m fills the view
    torch.testing.assert_close(depth, torch.full(SIZE, 2.101), atol=1e-5, rtol=0)


def test_tilted_plane_is_perspective_correct():
    # A bed-frame plane seen by a tilted, yawed camera, meshed coarsely (1 m cells): depth
    # is interpolated in 1/z, so it matches the exact ray-plane intersection everywhere.
    T = overhead_camera_pose(2.3, (0.3, 0.9), tilt_rad=(0.08, -0.05), yaw_rad=0.3)[None]
    xs, ys = torch.linspace(-3, 4, 8), torch.linspace(4, -3, 8)  # rows toward -y
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    points = torch.stack([xx, yy, torch.full_like(xx, 0.2)], -1).reshape(1, -1, 3)
    depth = render_depth(transform_points(T, points), grid_faces(8, 8), K, SIZE)[0]
    expected = ray_plane_depth(K, T, 0.2).float()
    torch.testing.assert_close(depth, expected, atol=2e-5, rtol=0)
    torch.testing.assert_close(render_plane(K, T, 0.2, SIZE)[0], expected, atol=2e-5, rtol=0)


def test_box_covers_the_predicted_pixel_count():
    # A box centred on the optical axis: its silhouette is its near face, whose corners
    # project to u = fx·x/z + cx, v = fy·y/z + cy. Covered pixels: integer centres inside.
    x0, x1, y0, y1, z0 = -0.2013, 0.1577, -0.3021, 0.2489, 1.7
    v, f = box(x0, x1, y0, y1, z0, z0 + 0.25)
    depth = render_depth(v[None], f, K, SIZE)[0]
    fx, cx, cy = 367.8, 208.1, 259.7
    cols = math.floor(fx * x1 / z0 + cx) - math.ceil(fx * x0 / z0 + cx) + 1
    rows = math.floor(fx * y1 / z0 + cy) - math.ceil(fx * y0 / z0 + cy) + 1
    assert int((depth > 0).sum()) == rows * cols
    torch.testing.assert_close(depth[depth > 0], torch.full((rows * cols,), z0), atol=1e-5,
                               rtol=0)
    # Back faces culled or not, a closed box looks the same.
    torch.testing.assert_close(render_depth(v[None], f, K, SIZE, cull_back=False)[0], depth)


def test_z_buffer_keeps_the_nearest_surface_in_any_order():
    near_v, near_f = quad(-0.3, 0.2, -0.2, 0.3, 1.5)
    far_v, far_f = quad(-0.1, 0.5, -0.4, 0.1, 2.0)
    for first, second in (((near_v, near_f), (far_v, far_f)), ((far_v, far_f), (near_v, near_f))):
        v = torch.cat([first[0], second[0]])
        f = torch.cat([first[1], second[1] + len(first[0])])
        depth = render_depth(v[None], f, K, SIZE)[0]
        near_only = render_depth(near_v[None], near_f, K, SIZE)[0]
        far_only = render_depth(far_v[None], far_f, K, SIZE)[0]
        both = (near_only > 0) & (far_only > 0)
        assert both.sum() > 1000
        torch.testing.assert_close(depth[both], near_only[both])
        only_far = (far_only > 0) & (near_only == 0)
        torch.testing.assert_close(depth[only_far], far_only[only_far])


def test_orthographic_height_maps_give_top_and_underside():
    # Unit cells: a box from z 0.1 to 0.4 over cells 10..29 × 5..14 (pixel centres inside).
    v, f = box(4.5, 14.5, 9.5, 29.5, 0.1, 0.4)
    uv = v[None, :, :2]
    maps = rasterize(uv, v[None, :, 2:3].expand(-1, -1, 2), f, (40, 20), ("amax", "amin"))
    top, bottom = maps[0, 0], maps[0, 1]
    inside = torch.zeros(40, 20, dtype=torch.bool)
    inside[10:30, 5:15] = True
    assert torch.isfinite(top).eq(inside).all()
    torch.testing.assert_close(top[inside], torch.full((200,), 0.4))
    torch.testing.assert_close(bottom[inside], torch.full((200,), 0.1))


def test_batches_are_independent():
    a_v, a_f = quad(-0.3, 0.2, -0.2, 0.3, 1.5)
    b_v, _ = quad(-0.1, 0.5, -0.4, 0.1, 2.0)
    both = render_depth(torch.stack([a_v, b_v]), a_f, K.expand(2, 3, 3), SIZE)
    torch.testing.assert_close(both[0], render_depth(a_v[None], a_f, K, SIZE)[0])
    torch.testing.assert_close(both[1], render_depth(b_v[None], a_f, K, SIZE)[0])


def test_batched_camera_poses_equal_overhead_camera_pose():
    from disrt_core.sim.sensors import SENSORS, overhead_camera_poses, sample_camera_poses

    T, height = sample_camera_poses(SENSORS["d435"], 5, torch.Generator().manual_seed(0))
    assert ((height >= 1.9) & (height <= 2.5)).all()
    torch.testing.assert_close(T[:, :3, :3] @ T[:, :3, :3].transpose(1, 2),
                               torch.eye(3).expand(5, 3, 3), atol=1e-6, rtol=0)
    h = torch.tensor([2.1, 2.4])
    centre = torch.tensor([[0.3, 0.9], [0.4, 0.8]])
    tilt = torch.tensor([[0.03, -0.05], [-0.08, 0.01]])
    yaw = torch.tensor([0.02, 1.6])
    batched = overhead_camera_poses(h, centre, tilt, yaw)
    for i in range(2):
        single = overhead_camera_pose(float(h[i]), tuple(centre[i].tolist()),
                                      tilt_rad=tuple(tilt[i].tolist()), yaw_rad=float(yaw[i]))
        torch.testing.assert_close(batched[i], single, atol=1e-6, rtol=0)
    # The camera looks down at its centre point from its height.
    bed_point = torch.tensor([[0.3, 0.9, 0.0]])
    cam = transform_points(overhead_camera_poses(h[:1], centre[:1], torch.zeros(1, 2),
                                                 torch.zeros(1)), bed_point[None])
    torch.testing.assert_close(cam[0, 0], torch.tensor([0.0, 0.0, 2.1]), atol=1e-6, rtol=0)


def test_fixed_box_rasterizer_equals_the_general_one_where_triangles_fit():
    """A random mesh of small triangles (some off the grid, some degenerate), two samples:
    the same top and underside maps as rasterize; a triangle wider than the box is drawn
    only within it."""
    from disrt_core.sim.render import rasterize_fixed

    g = torch.Generator().manual_seed(3)
    centres = torch.rand(2, 300, 1, 2, generator=g) * torch.tensor([70.0, 40.0]) - 5
    corners = centres + torch.rand(2, 300, 3, 2, generator=g) * 4 - 2  # boxes ≤ 4 px
    corners[:, 7, 1] = corners[:, 7, 0]  # degenerate: two equal corners
    uv = corners.reshape(2, 900, 2)
    values = torch.rand(2, 900, 2, generator=g)
    faces = torch.arange(900).reshape(300, 3)
    want = rasterize(uv, values, faces, (60, 30), ("amax", "amin"))
    got = rasterize_fixed(uv, values, faces, (60, 30), ("amax", "amin"), box=5)
    torch.testing.assert_close(got, want)
    big = torch.tensor([[[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]]])
    one = rasterize_fixed(big, torch.ones(1, 3, 1), torch.tensor([[0, 1, 2]]), (30, 30),
                          ("amax",), box=5)[0, 0]
    assert torch.isfinite(one).sum() == 25 and torch.isfinite(one[:5, :5]).all()


def test_z_buffer_keys_keep_the_order_of_floats_and_give_them_back():
    """The z-buffer's integer keys (integer atomics on the GPU) sort as the floats do,
    negative ones, infinities and zeros included, and decode bit for bit."""
    from disrt_core.sim.render import _from_key, _key

    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(500, generator=g) * 10.0 ** torch.randint(-6, 6, (500,),
                                                                         generator=g),
                   torch.tensor([0.0, float("inf"), float("-inf"), 1e-38, -1e-38, 3.0, 3.0])])
    for values in (x, x.double()):
        keys = _key(values)
        assert torch.equal(_from_key(keys, values.dtype).view(keys.dtype), values.view(keys.dtype))
        order = values.argsort(stable=True)
        assert bool((keys[order].diff() >= 0).all())  # keys ascend where the values do


def test_negative_values_reduce_by_their_order():
    """Two overlapping triangles holding negative heights: amax keeps the higher (less
    negative), amin the lower, as on positive ones."""
    uv = torch.tensor([[[0.0, 0.0], [9.0, 0.0], [0.0, 9.0], [0.0, 0.0], [9.0, 0.0], [0.0, 9.0]]])
    values = torch.tensor([[[-0.5]] * 3 + [[-0.2]] * 3])
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    top, low = rasterize(uv, values.expand(-1, -1, 2), faces, (10, 10), ("amax", "amin"))[0]
    assert float(top[1, 1]) == pytest.approx(-0.2) and float(low[1, 1]) == pytest.approx(-0.5)
    assert float(top[9, 9]) == float("-inf") and float(low[9, 9]) == float("inf")
