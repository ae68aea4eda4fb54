"""Image / CameraInfo / PointCloud2 conversions: encodings, byte order, row padding, NaN."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("rclpy")

from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from disrt_ros.conversions import (
    FrameResult,
    ImageFormatError,
    array_to_image,
    camera_info_to_K,
    cloud_to_points,
    depth_to_mm,
    image_to_array,
    intrinsics_to_K,
    points_to_cloud,
    pose_array,
    pose_json,
)


def raw_image(pixels: np.ndarray, encoding: str, *, big: bool, pad: int = 0) -> Image:
    """An Image built by hand: explicit byte order and ``pad`` junk bytes after each row."""
    dtype = pixels.dtype.newbyteorder(">" if big else "<")
    rows = [np.ascontiguousarray(r, dtype=dtype).tobytes() + b"\xab" * pad for r in pixels]
    msg = Image(height=pixels.shape[0], width=pixels.shape[1], encoding=encoding,
                is_bigendian=int(big), step=len(rows[0]))
    msg.data = b"".join(rows)
    return msg


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("encoding", ["16UC1", "mono16"])
def test_uint16_depth_any_byte_order_and_padding(big, encoding):
    pixels = np.array([[0, 1, 258], [2101, 65535, 513]], np.uint16)  # 258 = 0x0102
    msg = raw_image(pixels, encoding, big=big, pad=6)
    assert msg.step == 3 * 2 + 6
    np.testing.assert_array_equal(image_to_array(msg), pixels)
    mm = depth_to_mm(msg)
    assert mm.dtype == np.float32
    np.testing.assert_array_equal(mm, pixels.astype(np.float32))


def test_byte_order_is_honoured_not_guessed():
    # The same bytes read as little- and big-endian give byte-swapped values.
    msg = raw_image(np.array([[258]], np.uint16), "16UC1", big=False)
    assert image_to_array(msg)[0, 0] == 258
    msg.is_bigendian = 1
    assert image_to_array(msg)[0, 0] == 513


@pytest.mark.parametrize("big", [False, True])
def test_float_depth_metres_nan_and_invalid_become_zero(big):
    pixels = np.array([[2.101, np.nan, np.inf], [-1.0, 0.0, 0.5]], np.float32)
    mm = depth_to_mm(raw_image(pixels, "32FC1", big=big, pad=4))
    expected = np.array([[2101.0, 0, 0], [0, 0, 500.0]], np.float32)
    np.testing.assert_allclose(mm, expected, rtol=1e-6)
    assert np.isfinite(mm).all()


def test_wrong_encoding_names_the_fix():
    msg = raw_image(np.zeros((2, 2, 3), np.uint8).reshape(2, 6), "rgb8", big=False)
    msg.width = 2
    with pytest.raises(ImageFormatError, match="16UC1") as info:
        depth_to_mm(msg)
    assert info.value.kind == "encoding"
    msg.encoding = "yuv422"
    with pytest.raises(ImageFormatError, match="unsupported image encoding") as info:
        image_to_array(msg)
    assert info.value.kind == "encoding"


def test_step_and_truncation_errors():
    msg = raw_image(np.zeros((4, 5), np.uint16), "16UC1", big=False)
    msg.step = 8  # shorter than 5 pixels of 2 bytes
    with pytest.raises(ImageFormatError, match="shorter than one row") as info:
        depth_to_mm(msg)
    assert info.value.kind == "size"
    msg = raw_image(np.zeros((4, 5), np.uint16), "16UC1", big=False)
    msg.data = bytes(msg.data)[:-3]
    with pytest.raises(ImageFormatError, match="truncated"):
        depth_to_mm(msg)
    # The last row may lack its padding (some drivers send step·(H−1) + row bytes).
    msg = raw_image(np.arange(20, dtype=np.uint16).reshape(4, 5), "16UC1", big=False, pad=2)
    msg.data = bytes(msg.data)[:-2]
    np.testing.assert_array_equal(depth_to_mm(msg)[3], [15, 16, 17, 18, 19])


@pytest.mark.parametrize("encoding,shape,dtype", [
    ("bgr8", (3, 4, 3), np.uint8), ("mono8", (3, 4), np.uint8), ("32FC1", (3, 4), np.float32),
    ("16UC1", (3, 4), np.uint16)])
def test_array_to_image_round_trip(encoding, shape, dtype):
    rng = np.random.default_rng(0)
    array = (rng.random(shape) * 200).astype(dtype)
    header = Header(frame_id="cam")
    msg = array_to_image(array, encoding, header)
    assert msg.header.frame_id == "cam" and msg.encoding == encoding
    assert msg.step == shape[1] * np.dtype(dtype).itemsize * (3 if len(shape) == 3 else 1)
    np.testing.assert_array_equal(image_to_array(msg), array)
    with pytest.raises(ValueError, match="channel"):
        array_to_image(np.zeros((3, 4)), "bgr8")


def test_camera_info_and_intrinsics():
    info = CameraInfo(k=[300.0, 0, 160, 0, 310.0, 120, 0, 0, 1])
    np.testing.assert_array_equal(camera_info_to_K(info),
                                  [[300, 0, 160], [0, 310, 120], [0, 0, 1]])
    with pytest.raises(ValueError, match="not calibrated"):
        camera_info_to_K(CameraInfo())
    np.testing.assert_array_equal(intrinsics_to_K([300, 310, 160, 120]), camera_info_to_K(info))
    with pytest.raises(ValueError, match="positive"):
        intrinsics_to_K([0, 1, 2, 3])


def test_point_cloud_round_trip_and_foreign_layout():
    points = np.array([[0.1, -0.2, 2.0], [1.5, 0.0, -0.25]], np.float32)
    msg = points_to_cloud(points, Header(frame_id="cam"))
    assert (msg.width, msg.height, msg.point_step, msg.row_step) == (2, 1, 12, 24)
    assert [f.name for f in msg.fields] == ["x", "y", "z"]
    np.testing.assert_array_equal(cloud_to_points(msg), points)
    # A cloud from another source: big-endian, 16-byte points with an intensity first.
    foreign = PointCloud2(height=1, width=2, is_bigendian=True, point_step=16, row_step=32)
    foreign.fields = [PointField(name=n, offset=o, datatype=PointField.FLOAT32, count=1)
                      for n, o in (("intensity", 0), ("x", 4), ("y", 8), ("z", 12))]
    rows = np.concatenate([np.full((2, 1), 7.0), points], axis=1).astype(">f4")
    foreign.data = rows.tobytes()
    np.testing.assert_array_equal(cloud_to_points(foreign), points)


def test_pose_array_and_json():
    joints_cam = np.arange(72, dtype=np.float32).reshape(24, 3) / 100
    header = Header(frame_id="cam")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    result = FrameResult(
        camera="bed1", header=header, joints_bed=joints_cam + 1, joints_cam=joints_cam,
        vertices_cam=np.zeros((4, 3)), joint_spread=np.full(24, 0.01), params=np.zeros(84),
        root_quat_cam=np.array([0.0, 0.0, 0.7071068, 0.7071068]), posture="left",
        hypotheses=4, T_cam_bed=np.eye(4), net_image=np.zeros((128, 54)))
    poses = pose_array(result)
    assert poses.header.frame_id == "cam" and len(poses.poses) == 24
    assert poses.poses[5].position.y == pytest.approx(0.16)
    assert poses.poses[0].orientation.z == pytest.approx(0.7071068)
    assert poses.poses[3].orientation.w == 1.0
    names = [f"j{i}" for i in range(24)]
    payload = json.loads(pose_json(result, names, "m1").data)
    assert payload["stamp"] == {"sec": 12, "nanosec": 345} and payload["frame_id"] == "cam"
    assert payload["posture"] == "left" and payload["model_id"] == "m1"
    assert payload["joint_names"] == names and payload["hypotheses"] == 4
    np.testing.assert_allclose(payload["joints"], joints_cam, atol=1e-5)
    np.testing.assert_allclose(payload["joints_bed"], joints_cam + 1, atol=1e-5)
    assert len(payload["params"]) == 84 and len(payload["T_cam_bed"]) == 16
