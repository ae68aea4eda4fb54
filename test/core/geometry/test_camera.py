"""raw_to_network on analytically ray-cast scenes (bed plane, a box on it, tilted cameras)."""

import numpy as np
import pytest
import torch
from scipy.ndimage import zoom

from disrt_core.geometry import bedframe as bf
from disrt_core.geometry.camera import (
    invert_rigid,
    label_to_camera,
    overhead_camera_pose,
    pm_cell_points,
    pm_to_network,
    project,
    raw_to_network,
    raw_to_pm_heights,
    transform_points,
)

KINECT_K = torch.tensor([[367.8, 0.0, 208.1], [0.0, 367.8, 259.7], [0.0, 0.0, 1.0]])
SHAPE = (512, 424)  # rows, cols (portrait, as SLP's Kinect)


def ray_cast(K, T_cam_bed, box=None):
    """Depth (mm along the optical axis) of the bed plane z=0 and an optional box
    (x0, x1, y0, y1, h) for every pixel: a tiny exact renderer for the tests."""
    v, u = torch.meshgrid(torch.arange(SHAPE[0], dtype=torch.float64),
                          torch.arange(SHAPE[1], dtype=torch.float64), indexing="ij")
    rays = torch.stack([u, v, torch.ones_like(u)], -1) @ torch.linalg.inv(K.double()).T
    T_bed_cam = invert_rigid(T_cam_bed.double())
    origin = T_bed_cam[:3, 3]
    dirs = rays @ T_bed_cam[:3, :3].T  # ray directions in the bed frame (z-component 1 in cam)
    t_bed = -origin[2] / dirs[..., 2]  # distance factor to z = 0 (= depth in metres)
    depth = t_bed
    if box is not None:
        x0, x1, y0, y1, h = box
        t_top = (h - origin[2]) / dirs[..., 2]
        hit = origin + t_top[..., None] * dirs
        inside = ((hit[..., 0] >= x0) & (hit[..., 0] <= x1)
                  & (hit[..., 1] >= y0) & (hit[..., 1] <= y1))
        depth = torch.where(inside, t_top, depth)
    return (depth * 1000.0).float()


def test_flat_bed_is_at_bed_distance_for_straight_and_tilted_cameras():
    for tilt in [(0.0, 0.0), (0.06, -0.04)]:
        T = overhead_camera_pose(2.3, bf.BED_CENTRE_LABEL, tilt_rad=tilt, yaw_rad=0.02)
        depth = ray_cast(KINECT_K, T)
        heights, valid = raw_to_pm_heights(depth[None], KINECT_K[None], T[None])
        assert valid.float().mean() > 0.95  # the bed fills the view of a 2.3 m camera
        assert heights[valid].abs().max() < 2e-4  # metres
        net = raw_to_network(depth[None], KINECT_K[None], T[None])
        inside = net[0] > 0
        torch.testing.assert_close(net[0][inside], torch.full_like(net[0][inside], 2101.0),
                                   atol=0.2, rtol=0)


def test_box_on_the_bed_lands_where_its_rays_say():
    T = overhead_camera_pose(2.2, bf.BED_CENTRE_LABEL)
    box = (0.20, 0.50, 0.60, 1.20, 0.20)
    depth = ray_cast(KINECT_K, T, box)
    heights, _ = raw_to_pm_heights(depth[None], KINECT_K[None], T[None])
    # Expected by hand: the ray through a cell's bed point meets the box top inside the box.
    cam = invert_rigid(T)[:3, 3]
    cells = pm_cell_points()
    at_top = cam + (cells - cam) * (cam[2] - box[4]) / cam[2]
    x0, x1, y0, y1, h = box
    expected = ((at_top[..., 0] >= x0) & (at_top[..., 0] <= x1)
                & (at_top[..., 1] >= y0) & (at_top[..., 1] <= y1)).float() * h
    wrong = (heights[0] - expected).abs() > 1e-3
    # Only cells on the box outline may differ (bilinear mixing of top and floor).
    edge = torch.nn.functional.max_pool2d(expected[None, None], 3, 1, 1)[0, 0] != \
        -torch.nn.functional.max_pool2d(-expected[None, None], 3, 1, 1)[0, 0]
    assert not (wrong & ~edge).any()
    # The box top reads 2101 - 200 mm in the network image, centred where the box is.
    net = raw_to_network(depth[None], KINECT_K[None], T[None])[0]
    row, col = bf.label_to_net((x0 + x1) / 2, (y0 + y1) / 2)
    assert net[round(row), round(col)] == pytest.approx(1901.0, abs=0.5)


def test_missing_readings_stay_zero():
    T = overhead_camera_pose(2.3, bf.BED_CENTRE_LABEL)
    depth = ray_cast(KINECT_K, T)
    depth[200:260, 150:250] = 0
    net = raw_to_network(depth[None], KINECT_K[None], T[None])[0]
    assert (net == 0).sum() > 20 and set(net.unique().round().tolist()) <= {0.0, 2101.0}


def test_pm_to_network_equals_scipy_zoom_and_crop():
    pm = torch.rand(2, 192, 84, dtype=torch.float64)
    expected = np.stack([zoom(p.numpy(), bf.PM_ZOOM, order=1)[:, 1:-1] for p in pm])
    np.testing.assert_allclose(pm_to_network(pm).numpy(), expected, atol=1e-9)


def test_rigid_helpers_round_trip_and_projection():
    T = overhead_camera_pose(2.0, (0.3, 0.9), tilt_rad=(0.1, 0.05), yaw_rad=0.3)
    pts = torch.randn(1, 50, 3)
    back = transform_points(invert_rigid(T)[None], label_to_camera(pts, T[None]))
    torch.testing.assert_close(back, pts, atol=1e-5, rtol=0)
    # A straight camera sees the bed point under it at the principal point, head end on top.
    T0 = overhead_camera_pose(2.0, (0.3, 0.9))
    uv = project(KINECT_K[None], label_to_camera(torch.tensor([[[0.3, 0.9, 0.0],
                                                                [0.3, 1.4, 0.0]]]), T0[None]))
    torch.testing.assert_close(uv[0, 0], KINECT_K[:2, 2], atol=1e-4, rtol=0)
    assert uv[0, 1, 1] < uv[0, 0, 1]  # +y (head end) is up in the image


def test_pixel_rays_are_the_inverse_intrinsics():
    """``pixel_rays`` writes K⁻¹·(u, v, 1) out (no matrix inverse in the frame path): the
    same rays as torch.linalg.inv, with a skewed and a plain camera."""
    from disrt_core.geometry.camera import pixel_rays

    K = torch.tensor([[[365.0, 0.7, 260.3], [0.0, 367.1, 205.2], [0.0, 0.0, 1.0]],
                      [[610.0, 0.0, 320.0], [0.0, 612.0, 240.0], [0.0, 0.0, 1.0]]],
                     dtype=torch.float64)
    uv = torch.rand(2, 50, 2, generator=torch.Generator().manual_seed(0),
                    dtype=torch.float64) * 500
    expected = torch.cat([uv, torch.ones_like(uv[..., :1])], -1) @ torch.linalg.inv(
        K).transpose(-1, -2)
    torch.testing.assert_close(pixel_rays(K, uv), expected, rtol=0, atol=1e-12)


def test_median_depth_of_frames_against_numpy():
    """Per pixel: the median of the readings where at least half the frames read it (0 or
    nan = none), else 0; checked against a per-pixel loop with numpy's median."""
    import numpy as np

    from disrt_core.geometry.camera import median_depth

    rng = np.random.default_rng(3)
    frames = [rng.uniform(1800, 2200, (6, 7)).astype(np.float32) for _ in range(5)]
    for k, f in enumerate(frames):
        f[rng.random((6, 7)) < 0.35] = 0.0 if k % 2 else np.nan
    got = median_depth(frames)
    stack = np.stack(frames)
    for r in range(6):
        for c in range(7):
            read = [v for v in stack[:, r, c] if np.isfinite(v) and v > 0]
            want = np.median(read) if 2 * len(read) >= len(frames) else 0.0
            assert got[r, c] == np.float32(want), (r, c, read)
    assert got.dtype == np.float32 and got.shape == (6, 7)
    assert (median_depth(frames[:1]) == np.nan_to_num(frames[0])).all()  # one frame: itself
