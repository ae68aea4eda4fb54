"""disrt_ros.realsense: depth frames from a RealSense recording, made here by pyrealsense2's own
software device from synthetic frames; skipped where pyrealsense2 (or libusb) is missing."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid

import numpy as np
import pytest

from disrt_ros.realsense import to_millimetres

W, H, N = 64, 48, 6
K = np.array([[60.0, 0.0, 31.5], [0.0, 61.0, 23.25], [0.0, 0.0, 1.0]])
T_MS = 1_700_000_000_000.0  # first frame, system-time domain (ms since the epoch)


def test_to_millimetres():
    raw = np.array([[0, 1, 15, 65535]], dtype=np.uint16)
    np.testing.assert_array_equal(to_millimetres(raw, 0.001), raw)  # D400: 1 mm units
    np.testing.assert_array_equal(to_millimetres(raw, 0.0001), [[0, 0, 2, 6554]])  # D405
    # the SDK hands the units over as float32: 0.0001 -> 9.99999974e-05, still exact here
    np.testing.assert_array_equal(
        to_millimetres(np.array([[2495]]), float(np.float32(0.0001))), [[250]])
    np.testing.assert_array_equal(to_millimetres(np.array([[40000]]), 0.002), [[65535]])


def _pyrealsense2():
    try:
        import pyrealsense2
    except ImportError as err:  # not installed, or libusb-1.0 missing
        pytest.skip(f"pyrealsense2 unavailable: {err}")
    return pyrealsense2


def _record(path, frames, depth_units=0.001, K=K):
    """A RealSense recording of ``frames`` (uint16 [H,W], device units) at 30 fps."""
    rs = _pyrealsense2()
    device = rs.software_device()
    sensor = device.add_sensor("Stereo Module")
    intr = rs.intrinsics()
    intr.width, intr.height = W, H
    intr.fx, intr.fy, intr.ppx, intr.ppy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    intr.model, intr.coeffs = rs.distortion.brown_conrady, [0.0] * 5
    stream = rs.video_stream()
    stream.type, stream.index, stream.uid = rs.stream.depth, 0, 0
    stream.width, stream.height, stream.fps, stream.bpp = W, H, 30, 2
    stream.fmt, stream.intrinsics = rs.format.z16, intr
    profile = sensor.add_video_stream(stream).as_video_stream_profile()
    sensor.add_read_only_option(rs.option.depth_units, depth_units)
    recorder = rs.recorder(str(path), device)
    sensor.open(profile)
    sensor.start(rs.syncer())
    for i, pixels in enumerate(frames):
        frame = rs.software_video_frame()
        frame.pixels, frame.bpp, frame.stride = pixels, 2, 2 * W
        frame.timestamp = T_MS + i * 1000.0 / 30
        frame.domain = rs.timestamp_domain.system_time
        frame.frame_number, frame.profile = i, profile
        sensor.on_video_frame(frame)
    sensor.stop()
    sensor.close()
    recorder.pause()
    del recorder  # closes the file
    return path


@pytest.fixture
def frames():
    rng = np.random.default_rng(0)
    out = [rng.integers(300, 3000, size=(H, W), dtype=np.uint16) for _ in range(N)]
    out[0][:5, :5] = 0  # holes stay 0
    return out


@pytest.fixture
def recording(tmp_path, frames):
    return _record(tmp_path / "night.db3", frames)


def test_frames_from_recording(recording, frames):
    from disrt_ros.realsense import depth_frames

    got = list(depth_frames(recording, realtime=False))
    assert [f.frame_number for f in got] == list(range(N))
    for frame, want in zip(got, frames):
        assert frame.depth_mm.dtype == np.uint16 and frame.depth_mm.shape == (H, W)
        np.testing.assert_array_equal(frame.depth_mm, want)
        np.testing.assert_allclose(frame.K, K)
        assert frame.distortion_model == "plumb_bob"
    stamps = np.array([f.stamp_ns for f in got], dtype=np.int64)
    np.testing.assert_allclose(stamps - stamps[0], np.arange(N) * 1e9 / 30, atol=2e3)
    assert abs(stamps[0] - T_MS * 1e6) < 2e3


def test_depth_units_become_millimetres(tmp_path, frames):
    from disrt_ros.realsense import depth_frames

    path = _record(tmp_path / "d405.db3", frames, depth_units=0.0001)  # 0.1 mm units
    got = next(depth_frames(path, realtime=False))
    np.testing.assert_array_equal(got.depth_mm, (frames[0] + 5) // 10)  # round half up


def test_missing_recording_is_a_clear_error(tmp_path):
    from disrt_ros.realsense import depth_frames

    _pyrealsense2()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        next(depth_frames(tmp_path / "none.db3"))
    proc = subprocess.run([sys.executable, "-m", "disrt_ros.realsense", "--file",
                           str(tmp_path / "none.db3")], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ))
    assert proc.returncode == 1 and "does not exist" in proc.stderr


@pytest.mark.ros
def test_cli_publishes_realsense_layout(recording, frames):
    rclpy = pytest.importorskip("rclpy")
    from sensor_msgs.msg import CameraInfo, Image

    from disrt_ros.bag_msgs import image_to_array

    namespace = f"rs_{uuid.uuid4().hex[:8]}"
    context = rclpy.context.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("rs_listener", context=context)
    images, infos = [], []
    node.create_subscription(Image, f"/{namespace}/camera/depth/image_rect_raw",
                             images.append, 10)
    node.create_subscription(CameraInfo, f"/{namespace}/camera/depth/camera_info",
                             infos.append, 10)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "disrt_ros.realsense", "--file", str(recording),
             "--camera-namespace", namespace, "--wait-for-subscribers", "15"],
            capture_output=True, text=True, timeout=90, env=dict(os.environ))
        assert proc.returncode == 0, proc.stderr
        from .rosutil import wait_until  # needs rclpy

        wait_until(lambda: len(images) >= N and len(infos) >= N)  # generous deadline
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        thread.join(timeout=5)
    assert len(images) == N and len(infos) == N
    for image, info, want in zip(images, infos, frames):
        assert image.encoding == "16UC1"
        assert image.header.frame_id == "camera_depth_optical_frame"
        np.testing.assert_array_equal(image_to_array(image), want)
        np.testing.assert_allclose(np.reshape(info.k, (3, 3)), K)
        assert info.header.stamp == image.header.stamp


def test_realtime_playback_keeps_the_recorded_pace(recording):
    from disrt_ros.realsense import depth_frames

    start = time.monotonic()
    got = [time.monotonic() - start for _ in depth_frames(recording, realtime=True)]
    assert len(got) == N
    assert got[-1] - got[0] >= (N - 1) / 30 - 0.01


def test_estimate_feeds_the_model_the_bed_image(tmp_path):
    """A flat bed 2 m under a camera that sees all of it: every network pixel is the bed
    (normalised depth exactly 1), frames stay paired with their predictions, in order."""
    from disrt_core.geometry.bedframe import BED_CENTRE_LABEL
    from disrt_core.geometry.camera import overhead_camera_pose
    from disrt_ros.realsense import depth_frames, estimate

    wide = np.array([[12.0, 0.0, 31.5], [0.0, 12.0, 23.5], [0.0, 0.0, 1.0]])  # ~140° view
    flat = [np.full((H, W), 2000, np.uint16) for _ in range(3)]
    path = _record(tmp_path / "flat.db3", flat, K=wide)

    class Recorder:  # stands in for disrt_core.infer.Estimator
        device = "cpu"

        def __init__(self):
            self.inputs = []

        def predict(self, depth):
            self.inputs.append(depth)
            return len(self.inputs)

    estimator = Recorder()
    T = overhead_camera_pose(2.0, BED_CENTRE_LABEL).numpy()
    out = list(estimate(depth_frames(path, realtime=False), estimator, T))
    assert [(f.frame_number, p) for f, p in out] == [(0, 1), (1, 2), (2, 3)]
    for net in estimator.inputs:
        assert tuple(net.shape) == (1, 1, 128, 54)
        np.testing.assert_allclose(net.numpy(), 1.0, atol=1e-5)


def test_loop_repeats_the_recording(recording):
    import itertools

    from disrt_ros.realsense import depth_frames

    got = list(itertools.islice(depth_frames(recording, realtime=False, loop=True), 2 * N + 1))
    assert [f.frame_number for f in got] == [*range(N), *range(N), 0]
