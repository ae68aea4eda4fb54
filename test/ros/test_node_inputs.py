"""The node's input side in real rclpy: input QoS and its mismatch, image_transport's
compressedDepth, and the /diagnostics levels that depend on what arrives (no CameraInfo,
frames lost in transport, a camera without publisher)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage

from disrt_ros import diagnostics as diag
from disrt_ros.conversions import compressed_depth
from disrt_ros.markers import marker_points

from .fakes import CAM_HEIGHT, K, depth_frame
from .rosutil import DRIVER_QOS, fake_monitor, header, wait_until
from .test_node import expected_camera_joints

pytestmark = pytest.mark.ros
FRAME = "camera_depth_optical_frame"


@pytest.fixture
def start(ros, request):
    """start(params, qos): a monitor of one camera with ``params`` and a camera publishing
    with ``qos``; both removed after the test."""
    started = []

    def start_(params: dict | None = None, qos=DRIVER_QOS):
        name = f"{request.node.name.split('[')[0][5:30]}_{len(started)}"
        monitor, player = fake_monitor(ros, name, params, namespace="camera", qos=qos)
        started.extend([player, monitor])
        return monitor, player

    yield start_
    for node in started:
        ros.remove(node)


def camera_status(player, pred=lambda status: True):
    """The newest camera status passing ``pred(status)``, or None."""
    return next((s for s, _ in reversed(player.history("camera camera")) if pred(s)), None)


def test_quiet_camera_without_publisher_warns(start):
    _, player = start()
    player.destroy_publisher(player.depth_pubs.pop("camera"))
    assert wait_until(lambda: camera_status(player, lambda s: "no publisher" in s.message))
    assert camera_status(player).level == DiagnosticStatus.WARN


def test_best_effort_camera_against_the_reliable_default_is_diagnosed(start):
    """realsense-ros with depth_qos:=SENSOR_DATA: a reliable subscription cannot match it.
    The node says so (log and /diagnostics) and names the parameter to set."""
    monitor, player = start(qos=qos_profile_sensor_data)
    logged = []
    log = monitor.problems.log
    monitor.problems.log = lambda level, text: (logged.append((level, text)), log(level, text))
    assert wait_until(lambda: camera_status(
        player, lambda s: "input_qos:=sensor_data" in s.message))
    status = camera_status(player, lambda s: "input_qos:=sensor_data" in s.message)
    assert status.level == DiagnosticStatus.WARN and "RELIABILITY" in status.message
    assert any(level == "warn" and "input_qos:=sensor_data" in text for level, text in logged)
    player.publish("camera", depth_frame(), 1, FRAME, K)
    assert monitor.cameras["camera"].received.total == 0  # nothing arrives


def test_input_qos_sensor_data_takes_a_best_effort_camera(start):
    monitor, player = start({"input_qos": "sensor_data"}, qos_profile_sensor_data)
    assert wait_until(lambda: (player.publish("camera", depth_frame(), 1, FRAME, K),
                               player.stamped("camera", "joints", 1))[1])
    assert not monitor.inputs["camera"].incompatible


@pytest.mark.parametrize("encoding,codec", [("16UC1", "png"), ("32FC1", "png"),
                                            ("16UC1", "rvl")])
def test_compressed_depth_input(start, encoding, codec):
    """image_transport's compressedDepth (PNG or RVL) on <depth topic>/compressedDepth gives
    the outputs the raw frame gives (32FC1: within its inverse-depth quantisation)."""
    monitor, player = start({"input_transport": "compressedDepth"})
    topic = "/camera/depth/image_rect_raw/compressedDepth"
    assert monitor.inputs["camera"].topic.endswith("camera/depth/image_rect_raw/compressedDepth")
    pub = player.create_publisher(CompressedImage, topic, DRIVER_QOS)
    depth = depth_frame(CAM_HEIGHT, body_mm=300.0)
    pixels = depth if encoding == "16UC1" else depth.astype(np.float32) / 1000.0

    def send():
        player.info_pubs["camera"].publish(_info(7))
        pub.publish(compressed_depth(pixels, encoding, header(7, FRAME), codec=codec))
        return player.stamped("camera", "joints", 7)

    assert wait_until(send)
    joints = marker_points(player.stamped("camera", "joints", 7).markers[0])
    atol = 1e-5 if encoding == "16UC1" else 1e-3
    np.testing.assert_allclose(joints, expected_camera_joints(depth), atol=atol)


def _info(stamp):
    info = CameraInfo(header=header(stamp, FRAME), height=depth_frame().shape[0],
                      width=depth_frame().shape[1])
    info.k = K.reshape(-1).tolist()
    return info


def test_no_camera_info_and_no_intrinsics_is_an_error_until_one_arrives(start):
    monitor, player = start()
    logged = []
    log = monitor.problems.log
    monitor.problems.log = lambda level, text: (logged.append((level, text)), log(level, text))
    stamp = iter(range(1, 10**6))
    assert wait_until(lambda: (player.publish("camera", depth_frame(), next(stamp), FRAME),
                               camera_status(player, lambda s: s.level == DiagnosticStatus.ERROR))
                      [1])
    assert "no frame can be used" in camera_status(player).message
    assert any(level == "error" and "no frame can be used" in text for level, text in logged)
    assert player.latest("camera", "joints") is None
    # The first CameraInfo ends it: the camera is served and reported OK.
    assert wait_until(lambda: (player.publish("camera", depth_frame(), next(stamp), FRAME, K),
                               camera_status(player, lambda s: s.level == DiagnosticStatus.OK))
                      [1])
    assert player.latest("camera", "joints") is not None


def test_frames_lost_in_transport_are_diagnosed(start):
    """The camera stamps a frame a second (stamps 1000, 1001, ...) but only pairs of
    neighbours arrive, one pair in five: 16 of the 37 it stamped, below the threshold."""
    monitor, player = start()
    stamps = [1000 + 5 * i + j for i in range(8) for j in (0, 1)]
    received = monitor.cameras["camera"].received
    for count, stamp in enumerate(stamps, start=1):  # each once the node has the last
        player.publish("camera", depth_frame(), stamp, FRAME, K)
        assert wait_until(lambda n=count: received.total >= n)
    rate, fraction = monitor.inputs["camera"].stamps.estimate()
    assert rate == pytest.approx(1.0, rel=1e-3) and fraction == pytest.approx(16 / 37)
    assert fraction < diag.MIN_RECEIVED_FRACTION
    assert wait_until(lambda: camera_status(player, lambda s: "lost in transport" in s.message))
    assert camera_status(player, lambda s: "lost in transport" in s.message).level == \
        DiagnosticStatus.WARN
