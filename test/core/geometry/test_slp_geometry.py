"""SLP's raw -> 128x54 pipeline (SPEC §7.3) on rendered scenes, and its homography maths."""

import numpy as np
import pytest
import torch

from disrt_core.geometry import bedframe as bf
from disrt_core.geometry.camera import label_to_camera, overhead_camera_pose
from disrt_core.geometry.slp import (
    clean_depth_bodypressure,
    homography_a_to_b,
    pm_to_raw_pixels,
    raw_pixels_to_pm,
    slp_camera_pose,
    slp_homography,
    slp_raw_to_network,
    slp_raw_to_network_torch,
)
from test.core.geometry.scene import KINECT_K, render

BED = ((-1.0, 1.5), (-0.5, 2.5), (-0.6, 0.0))  # mattress top at z = 0, larger than the view


def straight_camera(yaw=0.03):
    """SLP-like: 2.101 m above the PM centre, looking straight down, slightly turned."""
    return overhead_camera_pose(2.101, bf.BED_CENTRE_LABEL, yaw_rad=yaw).double().numpy()


def test_box_on_the_bed_lands_on_the_expected_pixels_and_depths():
    T = straight_camera()
    H = slp_homography(T, KINECT_K)
    x0, x1, y0, y1, h = 0.15, 0.45, 0.70, 1.30, 0.20
    depth = render(KINECT_K, T, [BED, ((x0, x1), (y0, y1), (0.0, h))])
    net = slp_raw_to_network(depth, H)
    assert net.shape == (128, 54) and net.dtype == np.float32
    # By hand: a straight camera at height D above the bed point c sees the box top (height h)
    # where the ray meets the bed at c + (p - c)·D/(D - h) (the homography is the bed's).
    cam = np.linalg.inv(T)[:3, 3]
    scale = cam[2] / (cam[2] - h)
    rows, cols = np.mgrid[0:128, 0:54].astype(np.float64)
    xl, yl = bf.net_to_label(rows, cols)
    xt = cam[0] + (xl - cam[0]) / scale  # where the pixel's ray crosses the box-top height
    yt = cam[1] + (yl - cam[1]) / scale
    margin = 1.0 * max(bf.NET_PITCH_X, bf.NET_PITCH_Y) / scale  # one network pixel
    inside = (xt > x0 + margin) & (xt < x1 - margin) & (yt > y0 + margin) & (yt < y1 - margin)
    outside = (xt < x0 - margin) | (xt > x1 + margin) | (yt < y0 - margin) | (yt > y1 + margin)
    assert inside.sum() > 250 and outside.sum() > 5000
    # Depths: the box top and the bed lie at 2101 - 200 mm and 2101 mm from the camera.
    np.testing.assert_allclose(net[inside], 1901.0, atol=1.0)
    np.testing.assert_allclose(net[outside], 2101.0, atol=1.0)


def test_torch_batched_matches_opencv_scipy_reference():
    rng = np.random.default_rng(0)
    frames, homographies, expected = [], [], []
    for tilt in [(0.0, 0.0), (0.05, -0.03)]:
        T = overhead_camera_pose(2.1, bf.BED_CENTRE_LABEL, tilt_rad=tilt, yaw_rad=0.1)
        T = T.double().numpy()
        box = ((0.1 + rng.uniform(0, 0.2), 0.6), (0.4, 1.4), (0.0, 0.25))
        depth = render(KINECT_K, T, [BED, box]).astype(np.uint16)
        depth[100:110, 200:230] = 0  # a hole
        H = slp_homography(T, KINECT_K)
        frames.append(depth)
        homographies.append(H)
        expected.append([slp_raw_to_network(depth, H), slp_raw_to_network(depth, H, simlab=True)])
    depth_t = torch.from_numpy(np.stack(frames).astype(np.int32))
    H_t = torch.from_numpy(np.stack(homographies))
    for k, simlab in enumerate([False, True]):
        got = slp_raw_to_network_torch(depth_t, H_t, simlab=simlab).numpy()
        want = np.stack([e[k] for e in expected])
        # OpenCV rounds sample positions to 1/32 pixel; edges differ by that much of a step.
        assert np.median(np.abs(got - want)) < 0.05
        assert np.mean(np.abs(got - want) < 1.0) > 0.97
    assert np.all(expected[0][1][-2:] == 0)  # simLab: bottom rows padded with zeros


def test_integer_mode_matches_float_within_rounding():
    T = straight_camera()
    H = slp_homography(T, KINECT_K)
    depth = render(KINECT_K, T, [BED, ((0.2, 0.5), (0.5, 1.5), (0.0, 0.15))]).astype(np.uint16)
    exact = slp_raw_to_network(depth, H, integer=True)
    assert np.all(exact == np.round(exact))
    assert np.mean(np.abs(exact - slp_raw_to_network(depth, H)) <= 1.0) > 0.99


def test_homography_and_camera_pose_round_trip():
    T = overhead_camera_pose(2.2, (0.35, 0.9), tilt_rad=(0.08, -0.05), yaw_rad=0.2)
    T = T.double().numpy()
    H = slp_homography(T, KINECT_K)
    assert np.linalg.norm(H) == pytest.approx(1.0)
    np.testing.assert_allclose(slp_camera_pose(H, KINECT_K), T, atol=1e-9)
    np.testing.assert_allclose(slp_camera_pose(5.0 * H, KINECT_K), T, atol=1e-9)  # any scale
    # Label -> camera -> raw pixel -> PM pixel -> label, and back: within a micrometre.
    pts = np.array([[0.1, 0.3, 0.0], [0.7, 1.7, 0.0], [0.35, 0.9, 0.0]])
    cam = label_to_camera(torch.from_numpy(pts)[None], torch.from_numpy(T)[None])[0].numpy()
    uv = (cam @ KINECT_K.T)[:, :2] / cam[:, 2:3]
    pm = raw_pixels_to_pm(uv, H)
    x, y = bf.pm_to_label(pm[:, 1], pm[:, 0])
    np.testing.assert_allclose(np.stack([x, y], 1), pts[:, :2], atol=1e-6)
    np.testing.assert_allclose(pm_to_raw_pixels(pm, H), uv, atol=1e-6)


def test_homography_a_to_b_composes_modalities():
    rng = np.random.default_rng(1)
    p_depth = np.eye(3) + rng.normal(scale=0.01, size=(3, 3))
    p_ir = np.eye(3) + rng.normal(scale=0.01, size=(3, 3))
    h = homography_a_to_b(p_ir, p_depth)  # IR -> depth
    pt = np.array([30.0, 40.0, 1.0])
    via_pm = np.linalg.inv(p_depth) @ (p_ir @ pt)
    np.testing.assert_allclose((h @ pt)[:2] / (h @ pt)[2], via_pm[:2] / via_pm[2])
    assert np.linalg.norm(homography_a_to_b(p_ir)) == pytest.approx(1.0)


def test_cleaning_reproduces_bodypressure_by_hand():
    frame = np.full((128, 54), 2101.0, np.float32)
    frame[-21:-1] = 2105.0  # the bottom rows' mode differs from the top's
    frame[:4, 7] = 2500.0  # 4 bad top rows in column 7
    frame[-3:, 9] = 1000.0  # 3 bad bottom rows in column 9
    frame[10, 20] = 1500.0  # "hair"
    frame[60:70, 20:30] = 1900.0  # a body: kept
    out = clean_depth_bodypressure(frame)
    expected = frame.copy()
    expected[:5, 7] = 2101.0  # 1 + its 4 bad top rows take the top rows' mode
    expected[0, :] = 2105.0  # row "-0" = row 0 then takes the bottom mode (the quirk)
    expected[-3:, 9] = 2105.0  # 1 + 3 bad bottom rows: rows 0, -1, -2, -3
    expected[10, 20] = 2101.0
    np.testing.assert_array_equal(out, expected)
    assert frame[10, 20] == 1500.0  # input untouched
    with pytest.raises(ValueError, match=r"expects \(128, 54\)"):
        clean_depth_bodypressure(frame[:100])


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="must be 2-D"):
        slp_raw_to_network(np.zeros((2, 512, 424)), np.eye(3))
    with pytest.raises(ValueError, match="finite 3x3"):
        slp_raw_to_network(np.zeros((512, 424)), np.full((3, 3), np.nan))
