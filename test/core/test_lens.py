"""Lens distortion (disrt_core.geometry.lens): the undistorted frame against the distortion
models written out here from their formulas (OpenCV's / ROS's definitions), not OpenCV."""

from __future__ import annotations

import numpy as np
import pytest

from disrt_core.geometry.lens import LensMaps, is_rectified, pinhole_K, undistortion

W, H = 640, 576
K = np.array([[504.0, 0.0, 322.0], [0.0, 505.0, 290.0], [0.0, 0.0, 1.0]])
# Azure Kinect NFOV-like (rational_polynomial), a plumb_bob lens, a fisheye (equidistant)
LENSES = {
    "rational_polynomial": [0.52, -2.6, 2e-4, -1e-4, 1.45, 0.38, -2.42, 1.38],
    "plumb_bob": [-0.12, 0.05, 1e-3, -5e-4, -0.01],
    "equidistant": [0.08, -0.02, 0.004, -0.001],
}


def distort(u: np.ndarray, v: np.ndarray, model: str, d) -> tuple[np.ndarray, np.ndarray]:
    """Where the raw (distorted) image holds the ray of pinhole pixel (u, v)."""
    x, y = (u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1]
    r2 = x * x + y * y
    if model == "equidistant":
        r = np.sqrt(r2)
        theta = np.arctan(r)
        k1, k2, k3, k4 = d
        td = theta * (1 + k1 * theta**2 + k2 * theta**4 + k3 * theta**6 + k4 * theta**8)
        scale = np.where(r > 0, td / np.maximum(r, 1e-12), 1.0)
        xd, yd = x * scale, y * scale
    else:
        k1, k2, p1, p2, k3, *rest = list(d) + [0.0] * (8 - len(d))
        k4, k5, k6 = rest[:3]
        radial = (1 + k1 * r2 + k2 * r2**2 + k3 * r2**3) / (1 + k4 * r2 + k5 * r2**2 + k6 * r2**3)
        xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return K[0, 0] * xd + K[0, 2], K[1, 1] * yd + K[1, 2]


@pytest.mark.parametrize("model", list(LENSES))
def test_each_pinhole_pixel_gets_the_raw_reading_of_its_ray(model):
    # a raw frame whose value says where it was read: 1000 + 2·u_raw + 3·v_raw (mm)
    v_raw, u_raw = np.mgrid[0:H, 0:W].astype(np.float32)
    raw = (1000.0 + 2.0 * u_raw + 3.0 * v_raw).astype(np.float32)
    lens = undistortion(K, model, LENSES[model], (W, H))
    assert lens is not None and lens.max_shift_px > 1.0
    out = lens(raw)
    assert out.shape == raw.shape and out.dtype == np.float32
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    ud, vd = distort(u, v, model, LENSES[model])
    inside = (ud > 1) & (ud < W - 2) & (vd > 1) & (vd < H - 2)
    assert inside.mean() > 0.6
    # nearest neighbour: the reading of the raw pixel nearest the ray (±0.5 px each way)
    expected = 1000.0 + 2.0 * ud + 3.0 * vd
    assert np.abs(out[inside] - expected[inside]).max() <= 2.0 * 0.5 + 3.0 * 0.5 + 0.05
    # values are moved, never mixed: every output value is one of the raw frame's
    assert np.isin(out[inside], raw).all()
    # rays that leave the raw frame read nothing
    outside = (ud < -2) | (ud > W + 1) | (vd < -2) | (vd > H + 1)
    if outside.any():
        assert (out[outside] == 0).all()
    # the centre barely moves, the corners most
    assert abs(out[int(K[1, 2]), int(K[0, 2])] - raw[int(K[1, 2]), int(K[0, 2])]) <= 5.0


def test_a_rectified_or_ideal_lens_needs_no_map():
    assert undistortion(K, "plumb_bob", [0.0] * 5, (W, H)) is None
    assert undistortion(K, "", [], (W, H)) is None
    assert undistortion(K, "plumb_bob", [1e-9, 0, 0, 0, 0], (W, H)) is None  # < 0.05 px


@pytest.mark.parametrize("model, d, match", [
    ("fov", [0.1], "not supported"),
    ("equidistant", [0.1, 0.0, 0.0, 0.0, 0.3], "not a lens OpenCV knows"),
    ("plumb_bob", [0.1] * 15, "not a lens OpenCV knows"),
    ("plumb_bob", [float("nan"), 0.0, 0.0, 0.0, 0.0], "not finite"),
])
def test_a_lens_it_cannot_undo_is_refused_with_the_fix(model, d, match):
    with pytest.raises(ValueError, match=match) as error:
        undistortion(K, model, d, (W, H))
    assert "rectif" in str(error.value)


def test_eight_plumb_bob_coefficients_are_read_as_opencv_reads_them():
    """Some drivers publish the rational model's eight under plumb_bob (image_geometry hands
    the vector to OpenCV as it is, which reads it by its length)."""
    d = LENSES["rational_polynomial"]
    raw = np.random.default_rng(0).uniform(500, 3000, (H, W)).astype(np.float32)
    as_plumb_bob = undistortion(K, "plumb_bob", d, (W, H))
    np.testing.assert_array_equal(as_plumb_bob(raw),
                                  undistortion(K, "rational_polynomial", d, (W, H))(raw))
    six = undistortion(K, "plumb_bob", d[:6], (W, H))  # padded to the rational model's 8
    np.testing.assert_array_equal(six(raw), undistortion(K, "rational_polynomial",
                                                         [*d[:6], 0, 0], (W, H))(raw))


def test_the_map_is_made_for_its_image_size_only():
    lens = undistortion(K, "plumb_bob", LENSES["plumb_bob"], (W, H))
    with pytest.raises(ValueError, match="made for 640x576"):
        lens(np.zeros((480, 640), np.float32))


def test_rectified_topics_by_image_pipeline_naming():
    assert is_rectified("/camera/camera/depth/image_rect_raw")
    assert is_rectified("/kinect2/sd/image_depth_rect")
    assert is_rectified("image_rect/")
    assert not is_rectified("/depth/image_raw")
    assert not is_rectified("/rect/depth/image_raw")  # only the image's own name counts


def test_lens_maps_are_made_once_per_calibration():
    maps = LensMaps()
    assert maps.update(K, "plumb_bob", LENSES["plumb_bob"], (W, H)) is True
    first = maps.current
    assert first is not None and first.model == "plumb_bob"
    assert maps.update(K, "plumb_bob", list(LENSES["plumb_bob"]), (W, H)) is False
    assert maps.current is first
    assert maps.update(K, "plumb_bob", LENSES["plumb_bob"], (W, H), rectified=True) is True
    assert maps.current is None  # a rectified image's CameraInfo D is the raw image's
    with pytest.raises(ValueError):
        maps.update(K, "fov", [0.2], (W, H))
    assert maps.current is None  # kept


def test_pinhole_K_of_read_only_message_arrays_is_a_writable_copy():
    # a rosbags CameraInfo's k and p are read-only views of the message buffer
    k = np.frombuffer(K.astype(np.float64).tobytes(), np.float64)
    p = np.frombuffer(np.hstack([2 * K, np.zeros((3, 1))]).tobytes(), np.float64)
    for rectified, want in ((False, K), (True, 2 * K)):
        got = pinhole_K(k, p, rectified)
        np.testing.assert_array_equal(got, want)
        assert got.flags.writeable
