"""Image / CameraInfo / PointCloud2 conversions: encodings, byte order, row padding, NaN;
image_transport's compressedDepth; the stamped state message."""

from __future__ import annotations

import json
import struct

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticStatus
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import Header

from disrt_ros.conversions import (
    FrameResult,
    ImageFormatError,
    array_to_image,
    camera_info_to_K,
    cloud_to_points,
    compressed_depth,
    decode_compressed_depth,
    depth_to_mm,
    image_to_array,
    intrinsics_to_K,
    points_to_cloud,
    pose_array,
    pose_json,
    state_message,
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
    # a rectified image's pinhole is P's; without P, K
    np.testing.assert_array_equal(camera_info_to_K(info, rectified=True), camera_info_to_K(info))
    info.p = [290.0, 0, 161, 0, 0, 295.0, 119, 0, 0, 0, 1, 0]
    np.testing.assert_array_equal(camera_info_to_K(info, rectified=True),
                                  [[290, 0, 161], [0, 295, 119], [0, 0, 1]])
    np.testing.assert_array_equal(camera_info_to_K(info), intrinsics_to_K([300, 310, 160, 120]))
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
    assert payload["joint_interval"] is None and payload["joint_interval_level"] is None
    result.joint_interval, result.interval_level = np.linspace(0.1, 0.33, 24), 0.9
    payload = json.loads(pose_json(result, names, "m1").data)
    np.testing.assert_allclose(payload["joint_interval"], np.linspace(0.1, 0.33, 24), atol=1e-4)
    assert payload["joint_interval_level"] == 0.9


def _png16(pixels) -> bytes:
    ok, png = cv2.imencode(".png", np.asarray(pixels, np.uint16))
    assert ok
    return png.tobytes()


def test_compressed_depth_hand_made_messages():
    """Bytes laid out by hand as compressed_depth_image_transport writes them: a 12-byte
    ConfigHeader (int32 format 0 = INV_DEPTH, float32 depthQuantA, float32 depthQuantB,
    little-endian), then a 16-bit grey PNG (what cv::imencode writes)."""
    # 16UC1: the PNG holds the millimetres; the header's floats mean nothing.
    msg = CompressedImage(format="16UC1; compressedDepth png")
    msg.data = bytes(12) + _png16([[1000, 0], [2101, 40000]])
    np.testing.assert_array_equal(depth_to_mm(msg), [[1000, 0], [2101, 40000]])
    # 32FC1 with the publisher's defaults depth_quantization z0 = 100, depth_max = 10 m:
    # A = z0 (z0 + 1) = 10100, B = 1 - A / 10 = -1009, bytes 00d01d46 and 00407cc4; the PNG
    # holds q = A / d + B: 4041 -> 10100 / 5050 = 2.0 m, 19191 -> 0.5 m, 1 -> 10 m, 0 none.
    header = bytes.fromhex("00000000" "00d01d46" "00407cc4")
    assert header == struct.pack("<iff", 0, 10100.0, -1009.0)
    msg = CompressedImage(format="32FC1; compressedDepth png")
    msg.data = header + _png16([[4041, 0], [19191, 1]])
    np.testing.assert_allclose(depth_to_mm(msg), [[2000.0, 0.0], [500.0, 10000.0]], rtol=1e-6)
    metres = decode_compressed_depth(msg)
    assert metres.dtype == np.float32 and np.isnan(metres[0, 1])
    # Publishers before Jazzy wrote the format without the codec: PNG.
    msg.format = "32FC1; compressedDepth"
    np.testing.assert_allclose(depth_to_mm(msg)[0, 0], 2000.0, rtol=1e-6)


def test_compressed_depth_round_trip_within_the_quantisation():
    rng = np.random.default_rng(0)
    mm = rng.integers(0, 9000, (48, 64)).astype(np.uint16)
    h = Header(frame_id="cam")
    msg = compressed_depth(mm, "16UC1", h)
    assert msg.format == "16UC1; compressedDepth png" and msg.header.frame_id == "cam"
    np.testing.assert_array_equal(depth_to_mm(msg), mm)  # PNG is lossless
    over = mm.copy()
    over[0, 0] = 12000  # beyond depth_max (10 m): the publisher sends "no reading"
    assert depth_to_mm(compressed_depth(over, "16UC1"))[0, 0] == 0
    # 32FC1: q = floor(A / d + B), so d' = A / (q - B) >= d, short by less than one step of
    # q: d' - d < d'^2 / A (1.6 mm at 4 m with A = 10100).
    metres = rng.uniform(0.5, 4.0, (48, 64)).astype(np.float32)
    metres[0, :3] = [np.nan, 0.0, 11.0]  # no reading, no reading, beyond depth_max
    out = depth_to_mm(compressed_depth(metres, "32FC1")) / 1000.0
    assert (out[0, :3] == 0).all()
    err = out[1:] - metres[1:]
    assert (err >= -1e-6).all() and (err < out[1:] ** 2 / 10100.0 + 1e-6).all()
    assert np.abs(err).max() > 1e-5  # really quantised, not passed through


def test_compressed_depth_rvl_reads_as_png_does():
    """image_transport's ``format: rvl``: a message laid out by hand (header, size prefix,
    stream: test_rvl.py), and RVL and PNG messages of the same frames decode alike."""
    msg = CompressedImage(format="16UC1; compressedDepth rvl")
    msg.data = bytes(12) + bytes.fromhex("05000000" "01000000" "0041a122")
    np.testing.assert_array_equal(depth_to_mm(msg), [[0, 0, 5, 7, 0]])
    rng = np.random.default_rng(1)
    mm = rng.integers(0, 9000, (48, 64)).astype(np.uint16)
    metres = rng.uniform(0.5, 4.0, (48, 64)).astype(np.float32)
    metres[0, :2] = [np.nan, 11.0]
    for depth, encoding in ((mm, "16UC1"), (metres, "32FC1")):
        as_rvl = compressed_depth(depth, encoding, codec="rvl")
        assert as_rvl.format == f"{encoding}; compressedDepth rvl"
        np.testing.assert_array_equal(depth_to_mm(as_rvl),
                                      depth_to_mm(compressed_depth(depth, encoding)))
    np.testing.assert_array_equal(depth_to_mm(compressed_depth(mm, "16UC1", codec="rvl")), mm)


@pytest.mark.parametrize("fmt,data,kind,words", [
    ("16UC1; compressedDepth rvl", bytes(12) + b"rvl", "size", "no 8-byte size"),
    ("16UC1; compressedDepth rvl", bytes(12) + bytes.fromhex("0a0000000a000000" "0041a122"),
     "size", "stream ends after"),
    ("16UC1; png compressed", bytes(12) + b"x", "encoding", "not image_transport's"),
    ("bgr8; compressedDepth png", bytes(12) + b"x", "encoding", "'bgr8'"),
    ("16UC1; compressedDepth png", bytes(12), "size", "no more than its 12-byte header"),
    ("16UC1; compressedDepth png", bytes(12) + b"not a png", "encoding", "not an image"),
])
def test_compressed_depth_errors_name_the_problem(fmt, data, kind, words):
    msg = CompressedImage(format=fmt)
    msg.data = data
    with pytest.raises(ImageFormatError, match=words) as error:
        depth_to_mm(msg)
    assert error.value.kind == kind


def test_compressed_depth_refuses_a_colour_png():
    msg = CompressedImage(format="16UC1; compressedDepth png")
    _, png = cv2.imencode(".png", np.zeros((2, 2, 3), np.uint8))
    msg.data = bytes(12) + png.tobytes()
    with pytest.raises(ImageFormatError, match="expected a 16-bit grey PNG"):
        depth_to_mm(msg)


def test_state_message_is_stamped_with_the_frame():
    h = Header(frame_id="cam_optical")
    h.stamp.sec, h.stamp.nanosec = 12, 34
    msg = state_message(h, "posture", "left", "bed3", {"p_left": 0.9})
    assert msg.header.frame_id == "cam_optical" and (msg.header.stamp.sec,
                                                     msg.header.stamp.nanosec) == (12, 34)
    (status,) = msg.status
    assert (status.level, status.name, status.message, status.hardware_id) == (
        DiagnosticStatus.OK, "posture", "left", "bed3")
    assert [(kv.key, kv.value) for kv in status.values] == [("posture", "left"),
                                                             ("p_left", "0.9")]
