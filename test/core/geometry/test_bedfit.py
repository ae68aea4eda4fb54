"""Bed pose for any camera: four corners, automatic RANSAC fit, re-check, mappings."""

import numpy as np
import pytest
import torch

from disrt_core.geometry import bedframe as bf
from disrt_core.geometry.bedfit import (
    backproject,
    bed_change,
    bed_from_corners,
    camera_to_label,
    fit_bed,
)
from disrt_core.geometry.camera import label_to_camera, overhead_camera_pose
from test.core.geometry.scene import KINECT_K, render

REALSENSE_K = np.array([[425.0, 0.0, 318.0], [0.0, 425.0, 242.0], [0.0, 0.0, 1.0]])
CX, CY = bf.BED_CENTRE_LABEL
WIDTH, LENGTH = 0.90, 2.00


def scene(extra=()):
    """A 0.9 x 2.0 m mattress (top at z = 0, centred on the PM centre) on a floor 0.55 m
    below, a body-sized box and a pillow on it."""
    mattress = ((CX - WIDTH / 2, CX + WIDTH / 2), (CY - LENGTH / 2, CY + LENGTH / 2), (-0.5, 0.0))
    floor = ((-3.0, 4.0), (-3.0, 5.0), (-0.6, -0.55))
    body = ((CX - 0.2, CX + 0.15), (CY - 0.8, CY + 0.7), (0.0, 0.22))
    pillow = ((CX - 0.3, CX + 0.3), (CY + 0.75, CY + 0.95), (0.0, 0.1))
    return [mattress, floor, body, pillow, *extra]


def tilted_camera(height=2.3, tilt=(0.12, -0.09), yaw=0.15, dx=0.1):
    return overhead_camera_pose(height, (CX + dx, CY - 0.05), tilt_rad=tilt,
                                yaw_rad=yaw).double().numpy()


def noisy(depth, seed=0, sigma_mm=2.0, dropout=0.02):
    rng = np.random.default_rng(seed)
    out = depth + rng.normal(scale=sigma_mm, size=depth.shape) * (depth > 0)
    out[rng.random(depth.shape) < dropout] = 0
    return np.round(out).clip(0, 65535).astype(np.uint16)


def angle_deg(a, b):
    return np.rad2deg(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1)))


@pytest.mark.parametrize("K,shape,height", [(KINECT_K, (512, 424), 2.3),
                                            (REALSENSE_K, (480, 640), 2.8)])
def test_automatic_fit_recovers_a_tilted_bed(K, shape, height):
    T = tilted_camera(height=height)  # the whole mattress in view (2.3 m: not for 640x480)
    depth = noisy(render(K, T, scene(), shape))
    fit = fit_bed(depth, K, head="top")
    # The plane's tilt within 1°, its distance within 5 mm.
    assert angle_deg(fit.normal, T[:3, 2]) < 1.0
    assert fit.offset == pytest.approx(-T[:3, 2] @ T[:3, 3], abs=0.005)
    # Extent and frame: same bed centre, axes and size as the truth (within 4 cm / 1°; the
    # strip behind the pillow is hidden from the tilted camera).
    assert fit.size_m == pytest.approx((WIDTH, LENGTH), abs=0.04)
    assert angle_deg(fit.T_cam_bed[:3, 1], T[:3, 1]) < 1.0
    np.testing.assert_allclose(fit.T_cam_bed[:3, 3], T[:3, 3], atol=0.02)
    assert fit.inlier_fraction > 0.05 and fit.rms_m < 0.004  # share of the view on the mattress


def test_head_side_decides_the_direction_and_is_checked():
    T = tilted_camera()
    depth = noisy(render(KINECT_K, T, scene()))
    up = fit_bed(depth, KINECT_K, head="top")
    down = fit_bed(depth, KINECT_K, head="bottom")
    assert angle_deg(up.T_cam_bed[:3, 1], -down.T_cam_bed[:3, 1]) < 1e-4  # float32 core
    assert angle_deg(up.normal, down.normal) < 1e-4
    with pytest.raises(ValueError, match="does not run toward the image left"):
        fit_bed(depth, KINECT_K, head="left")
    with pytest.raises(ValueError, match="head must be one of"):
        fit_bed(depth, KINECT_K, head="north")


def test_corners_give_the_bed_frame():
    T = tilted_camera(tilt=(0.2, 0.1), yaw=-0.3)
    depth = noisy(render(KINECT_K, T, scene()), seed=3)
    corners = np.array([[CX - WIDTH / 2, CY + LENGTH / 2, 0], [CX + WIDTH / 2, CY + LENGTH / 2, 0],
                        [CX + WIDTH / 2, CY - LENGTH / 2, 0], [CX - WIDTH / 2, CY - LENGTH / 2, 0]])
    cam = corners @ T[:3, :3].T + T[:3, 3]
    uv = (cam @ KINECT_K.T)[:, :2] / cam[:, 2:3]
    fit = bed_from_corners(depth, KINECT_K, uv)
    np.testing.assert_allclose(fit.T_cam_bed, T, atol=3e-3)
    np.testing.assert_allclose(fit.corners, cam, atol=5e-3)
    assert fit.size_m == pytest.approx((WIDTH, LENGTH), abs=0.005)
    with pytest.raises(ValueError, match="mirrored"):
        bed_from_corners(depth, KINECT_K, uv[[1, 0, 3, 2]])
    with pytest.raises(ValueError, match=r"\[4,2\]"):
        bed_from_corners(depth, KINECT_K, uv[:3])
    with pytest.raises(ValueError, match="valid depth pixels"):
        bed_from_corners(np.zeros_like(depth), KINECT_K, uv)


def test_a_large_bed_is_cropped_not_stretched():
    """A 1.4 m wide bed keeps metric 1 cm cells: the PM grid covers its central 84 cm."""
    big = ((CX - 0.7, CX + 0.7), (CY - 1.1, CY + 1.1), (-0.5, 0.0))
    T = overhead_camera_pose(2.8, (CX, CY)).double().numpy()
    depth = noisy(render(KINECT_K, T, [big, ((-3, 4), (-3, 5), (-0.6, -0.55))]))
    fit = fit_bed(depth, KINECT_K)
    assert fit.size_m == pytest.approx((1.4, 2.2), abs=0.04)
    np.testing.assert_allclose(fit.T_cam_bed[:3, :3], T[:3, :3], atol=0.01)  # no scaling


def test_bed_change_reports_tilt_and_offset():
    T = tilted_camera()
    ref = fit_bed(noisy(render(KINECT_K, T, scene())), KINECT_K)
    same = bed_change(ref, noisy(render(KINECT_K, T, scene()), seed=5), KINECT_K, full=True)
    assert not same.moved and same.angle_deg < 0.3 and abs(same.offset_m) < 0.003
    assert same.shift_m < 0.01 and abs(same.yaw_deg) < 0.5
    # Move the bed: tilt it 2° about the label x axis, then lower it 4 cm.
    move = np.eye(4)
    a = np.deg2rad(2.0)
    move[:3, :3] = [[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]]
    move[:3, 3] = [0.0, 0.0, -0.04]
    moved_T = T @ move
    changed = bed_change(ref, noisy(render(KINECT_K, moved_T, scene())), KINECT_K)
    assert changed.moved and changed.angle_deg == pytest.approx(2.0, abs=0.3)
    # By hand: the new plane has normal Rx(2°)·z through (0, 0, -0.04); the old centre
    # (CX, CY, 0) lies n·(CX, CY, 0.04) = -sin(2°)·CY + cos(2°)·0.04 above it (≈ 9 mm).
    expected = -np.sin(a) * CY + np.cos(a) * 0.04
    assert changed.offset_m == pytest.approx(expected, abs=0.002)


def test_forward_then_inverse_mapping_within_a_millimetre():
    T = tilted_camera()
    rng = np.random.default_rng(0)
    uv = rng.uniform([0, 0], [424, 512], size=(200, 2))
    depth_m = rng.uniform(1.5, 2.6, size=200)
    cam = backproject(uv, depth_m, KINECT_K)
    label = camera_to_label(cam, T)
    back = label_to_camera(torch.from_numpy(label)[None], torch.from_numpy(T)[None])[0].numpy()
    assert np.abs(back - cam).max() < 1e-3 * 1e-3  # far below a millimetre
    reproj = (back @ KINECT_K.T)[:, :2] / back[:, 2:3]
    np.testing.assert_allclose(reproj, uv, atol=1e-3)
    np.testing.assert_allclose(camera_to_label(cam, T),
                               (np.linalg.inv(T) @ np.c_[cam, np.ones(200)].T).T[:, :3],
                               atol=1e-6)
