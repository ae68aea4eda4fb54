"""ROS message <-> numpy conversions, without cv_bridge or sensor_msgs_py.

* :func:`image_to_array` reads any ``sensor_msgs/Image`` of the encodings in ``ENCODINGS``
  with any row padding (``step``) and either byte order (``is_bigendian``), and returns a
  native-order array [H,W] or [H,W,C].
* :func:`depth_to_mm` turns a depth image into float32 millimetres along the optical axis,
  with 0 wherever there is no reading: ``16UC1`` / ``mono16`` hold mm (0 = no reading, the
  REP-118 convention), ``32FC1`` holds metres (NaN, ±inf or ≤ 0 = no reading). It also
  reads image_transport's ``compressedDepth`` messages (``sensor_msgs/CompressedImage``,
  :func:`decode_compressed_depth`; :func:`compressed_depth` writes them).
* :func:`array_to_image`, :func:`camera_info_to_K`, :func:`intrinsics_to_K`,
  :func:`points_to_cloud` / :func:`cloud_to_points` (x, y, z float32 PointCloud2).
* :class:`FrameResult` (one frame's estimate) -> :func:`pose_array` and :func:`pose_json`;
  :func:`state_message` for stamped states such as ``~/posture``.

Malformed input raises :class:`ImageFormatError`, whose message names the problem and what
to change; the node reports it and keeps running.
"""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Pose, PoseArray
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import Header, String

from disrt_core.geometry.lens import pinhole_K
from disrt_ros import rvl

#: encoding -> (numpy dtype kind+size, channels).
ENCODINGS: dict[str, tuple[str, int]] = {
    "16UC1": ("u2", 1),
    "mono16": ("u2", 1),
    "32FC1": ("f4", 1),
    "mono8": ("u1", 1),
    "8UC1": ("u1", 1),
    "bgr8": ("u1", 3),
    "rgb8": ("u1", 3),
}
DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")
_NATIVE_BIG = sys.byteorder == "big"
#: image_transport compressedDepth's ``ConfigHeader`` before the PNG (compression_common.h):
#: int32 format (0 = INV_DEPTH, always written), float32 depthQuantA, float32 depthQuantB,
#: copied from memory, so in the publisher's byte order: little-endian on x86 and ARM. The
#: floats are only meaningful for 32FC1 (left uninitialised for 16-bit images).
COMPRESSED_DEPTH_HEADER = struct.Struct("<iff")


class ImageFormatError(ValueError):
    """A message that cannot be read: unsupported encoding, or sizes that do not add up."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind  # "encoding" or "size", for counting in diagnostics


def image_to_array(msg: Image) -> np.ndarray:
    """Pixels of ``msg`` as a new native-order array [H,W] (one channel) or [H,W,C].

    Honours ``step`` (rows may be padded) and ``is_bigendian``.
    """
    if msg.encoding not in ENCODINGS:
        raise ImageFormatError(
            "encoding",
            f"unsupported image encoding {msg.encoding!r}; expected one of "
            f"{', '.join(ENCODINGS)} (for depth: 16UC1 / mono16 in mm or 32FC1 in m; "
            "point the node at the depth stream, not the colour or infrared one)",
        )
    kind, channels = ENCODINGS[msg.encoding]
    dtype = np.dtype(kind).newbyteorder(">" if msg.is_bigendian else "<")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * channels * dtype.itemsize
    if height == 0 or width == 0:
        raise ImageFormatError("size", f"empty image ({width}x{height}); check the camera driver")
    if step < row_bytes:
        raise ImageFormatError(
            "size",
            f"image step {step} B is shorter than one row of {width} {msg.encoding} pixels "
            f"({row_bytes} B); the publisher filled the Image message wrongly",
        )
    buffer = np.frombuffer(msg.data, dtype=np.uint8)
    if buffer.size < step * (height - 1) + row_bytes:
        raise ImageFormatError(
            "size",
            f"image data holds {buffer.size} B but {width}x{height} {msg.encoding} with "
            f"step {step} needs {step * height} B; the message is truncated",
        )
    view = np.ndarray(
        shape=(height, width, channels),
        dtype=dtype,
        buffer=buffer,
        strides=(step, channels * dtype.itemsize, dtype.itemsize),
    )
    out = view.astype(dtype.newbyteorder("="), copy=True)
    return out[..., 0] if channels == 1 else out


def depth_to_mm(msg: Image | CompressedImage) -> np.ndarray:
    """Depth image -> float32 [H,W] millimetres along the optical axis, 0 = no reading.

    ``msg`` is a ``sensor_msgs/Image`` or an image_transport ``compressedDepth``
    ``CompressedImage`` (:func:`decode_compressed_depth`)."""
    if isinstance(msg, CompressedImage):
        pixels = decode_compressed_depth(msg)
    else:
        if msg.encoding not in DEPTH_ENCODINGS:
            raise ImageFormatError(
                "encoding",
                f"depth image has encoding {msg.encoding!r}; the node reads 16UC1 / mono16 "
                "(mm) or 32FC1 (m). Subscribe to the depth stream (e.g. realsense-ros "
                "depth/image_rect_raw), not colour, infrared or a colourised depth image",
            )
        pixels = image_to_array(msg)
    if pixels.dtype == np.uint16:
        return pixels.astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        mm = pixels * np.float32(1000.0)
        return np.where(np.isfinite(mm) & (mm > 0), mm, np.float32(0.0)).astype(np.float32)


def decode_compressed_depth(msg: CompressedImage) -> np.ndarray:
    """An image_transport ``compressedDepth`` message -> uint16 [H,W] (16UC1 / mono16, the
    publisher's units, mm for depth cameras) or float32 [H,W] metres (32FC1, NaN = no
    reading), as compressed_depth_image_transport's ``decodeCompressedDepthImage`` does.

    ``msg.format`` is ``"<encoding>; compressedDepth png"`` or ``"...; compressedDepth
    rvl"`` (Jazzy; older publishers write ``"<encoding>; compressedDepth"``, PNG),
    ``msg.data`` a 12-byte :data:`COMPRESSED_DEPTH_HEADER` then a 16-bit grey PNG (decoded
    with OpenCV) or an RVL image (:mod:`disrt_ros.rvl`): the depth itself for 16-bit
    images; for 32FC1 the quantised inverse depth ``q`` with ``depth = A / (q − B)`` (A, B
    from the header) and ``q = 0`` for no reading.
    """
    fmt = str(msg.format)
    encoding, _, codec = (part.strip() for part in fmt.partition(";"))
    if codec and "compressedDepth" not in codec:
        raise ImageFormatError("encoding", (
            f"CompressedImage with format {fmt!r} is not image_transport's compressedDepth "
            "(PNG depth); subscribe to the .../compressedDepth topic of a depth image"))
    if encoding not in DEPTH_ENCODINGS:
        raise ImageFormatError("encoding", (
            f"compressedDepth message of a {encoding!r} image; the node reads 16UC1 / mono16 "
            "(mm) or 32FC1 (m) depth: subscribe to the depth stream's compressedDepth topic"))
    data = np.frombuffer(msg.data, dtype=np.uint8)
    size = COMPRESSED_DEPTH_HEADER.size
    if data.size <= size:
        raise ImageFormatError("size", (
            f"compressedDepth message holds {data.size} B, no more than its {size}-byte "
            "header: the publisher sent no image"))
    _, quant_a, quant_b = COMPRESSED_DEPTH_HEADER.unpack(data[:size].tobytes())
    if "compressedDepth rvl" in codec:
        try:
            pixels = rvl.decode(data[size:])
        except rvl.RvlError as exc:
            raise ImageFormatError("size", f"compressedDepth ({fmt!r}): {exc}") from None
    else:
        pixels = cv2.imdecode(data[size:], cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.dtype != np.uint16 or pixels.ndim != 2:
        what = "is not an image" if pixels is None else \
            f"is {pixels.dtype} with shape {pixels.shape}"
        raise ImageFormatError("encoding", (
            f"compressedDepth ({fmt!r}) data after the {size}-byte header {what}; expected a "
            "16-bit grey PNG: is the publisher image_transport's compressedDepth?"))
    if encoding != "32FC1":
        return pixels
    if not (np.isfinite(quant_a) and np.isfinite(quant_b) and quant_a > 0):
        raise ImageFormatError("encoding", (
            f"compressedDepth 32FC1 message with quantisation A={quant_a}, B={quant_b}: not "
            "image_transport's inverse-depth header"))
    q = pixels.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.float32(quant_a) / (q - np.float32(quant_b))
    return np.where(pixels > 0, depth, np.float32(np.nan)).astype(np.float32)


def compressed_depth(depth: np.ndarray, encoding: str, header: Header | None = None, *,
                     depth_max: float = 10.0, depth_quantization: float = 100.0,
                     png_level: int = 3, codec: str = "png") -> CompressedImage:
    """Depth [H,W] (uint16 for 16UC1 / mono16, float32 metres for 32FC1) -> the
    ``compressedDepth`` message compressed_depth_image_transport's publisher sends, with its
    parameters' defaults: 16-bit values above ``depth_max`` m become 0; 32FC1 becomes the
    inverse depth ``q = A / depth + B`` (float32, truncated to uint16; 0 for NaN, ≤ 0 or
    ≥ ``depth_max``) with ``A = z0 (z0 + 1)``, ``B = 1 − A / depth_max``, z0 =
    ``depth_quantization``; ``codec`` ``png`` or ``rvl``."""
    if encoding not in DEPTH_ENCODINGS:
        raise ValueError(f"compressedDepth needs a depth encoding {DEPTH_ENCODINGS}, "
                         f"got {encoding!r}")
    quant_a = quant_b = 0.0
    if encoding == "32FC1":
        d = np.asarray(depth, np.float32)
        quant_a = np.float32(depth_quantization * (depth_quantization + 1.0))
        quant_b = np.float32(1.0) - quant_a / np.float32(depth_max)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            q = np.where(np.isfinite(d) & (d > 0) & (d < depth_max), quant_a / d + quant_b, 0)
        pixels = np.clip(q, 0, 65535).astype(np.float32).astype(np.uint16)
    else:
        pixels = np.asarray(depth, np.uint16).copy()
        pixels[pixels > np.uint16(depth_max * 1000.0)] = 0
    if codec == "rvl":
        body = rvl.encode(pixels)
    elif codec == "png":
        ok, png = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, png_level])
        if not ok:
            raise ValueError(f"OpenCV could not encode a {pixels.shape} PNG")
        body = png.tobytes()
    else:
        raise ValueError(f"compressedDepth codec must be png or rvl, got {codec!r}")
    msg = CompressedImage(format=f"{encoding}; compressedDepth {codec}")
    if header is not None:
        msg.header = header
    msg.data = COMPRESSED_DEPTH_HEADER.pack(0, float(quant_a), float(quant_b)) + body
    return msg


def array_to_image(array: np.ndarray, encoding: str, header: Header | None = None) -> Image:
    """Array [H,W] or [H,W,C] -> Image of ``encoding`` (row-packed, native byte order)."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unsupported encoding {encoding!r}; expected one of {list(ENCODINGS)}")
    kind, channels = ENCODINGS[encoding]
    pixels = np.ascontiguousarray(array, dtype=np.dtype(kind))
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or pixels.shape[2] != channels:
        raise ValueError(f"{encoding} needs {channels} channel(s), got an array {array.shape}")
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = pixels.shape[:2]
    msg.encoding = encoding
    msg.is_bigendian = int(_NATIVE_BIG and pixels.dtype.itemsize > 1)
    msg.step = pixels.shape[1] * channels * pixels.dtype.itemsize
    msg.data = pixels.tobytes()
    return msg


def camera_info_to_K(msg: CameraInfo, rectified: bool = False) -> np.ndarray:
    """Intrinsic matrix K [3,3] (float64) of a CameraInfo, of its raw image or, with
    ``rectified``, of its rectified one (P's left 3×3 where P is set, else K;
    ``disrt_core.geometry.lens``); refuses an uncalibrated one."""
    K = pinhole_K(msg.k, msg.p, rectified)
    if not (K[0, 0] > 0 and K[1, 1] > 0 and np.isfinite(K).all()):
        raise ValueError(
            f"CameraInfo has no valid intrinsics (fx={K[0, 0]}, fy={K[1, 1]}): the camera is "
            "not calibrated; calibrate it or set the camera's 'intrinsics' parameter"
        )
    return K


def intrinsics_to_K(fx_fy_cx_cy: Sequence[float]) -> np.ndarray:
    """K [3,3] from ``[fx, fy, cx, cy]`` in pixels."""
    fx, fy, cx, cy = (float(v) for v in fx_fy_cx_cy)
    if fx <= 0 or fy <= 0:
        raise ValueError(f"focal lengths must be positive, got fx={fx}, fy={fy}")
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def points_to_cloud(points: np.ndarray, header: Header | None = None) -> PointCloud2:
    """Points [N,3] (metres) -> unordered PointCloud2 with float32 fields x, y, z."""
    xyz = np.ascontiguousarray(points, dtype=np.float32).reshape(-1, 3)
    msg = PointCloud2()
    if header is not None:
        msg.header = header
    msg.height, msg.width = 1, xyz.shape[0]
    msg.fields = [
        PointField(name=name, offset=4 * i, datatype=PointField.FLOAT32, count=1)
        for i, name in enumerate("xyz")
    ]
    msg.is_bigendian = _NATIVE_BIG
    msg.point_step = 12
    msg.row_step = 12 * xyz.shape[0]
    msg.is_dense = bool(np.isfinite(xyz).all())
    msg.data = xyz.tobytes()
    return msg


def cloud_to_points(msg: PointCloud2) -> np.ndarray:
    """float32 x, y, z of any PointCloud2 (any point_step / field offsets) -> [N,3] float32."""
    fields = {f.name: f for f in msg.fields}
    for name in "xyz":
        if name not in fields or fields[name].datatype != PointField.FLOAT32:
            raise ValueError(f"PointCloud2 lacks a float32 field {name!r}")
    dtype = np.dtype(np.float32).newbyteorder(">" if msg.is_bigendian else "<")
    buffer = np.frombuffer(msg.data, dtype=np.uint8)
    height, width, step = int(msg.height), int(msg.width), int(msg.point_step)
    count = height * width
    row_step = max(int(msg.row_step), width * step)
    if buffer.size < row_step * (height - 1) + width * step:
        raise ValueError(f"PointCloud2 data holds {buffer.size} B, too few for {count} points")
    rows = np.lib.stride_tricks.as_strided(
        buffer, shape=(height, width, step), strides=(row_step, step, 1), writeable=False
    ).reshape(count, step)
    out = np.empty((count, 3), np.float32)
    for i, name in enumerate("xyz"):
        offset = fields[name].offset
        out[:, i] = rows[:, offset:offset + 4].copy().view(dtype)[:, 0]
    return out


@dataclass
class FrameResult:
    """One camera frame's estimate, ready to publish (numpy, metres).

    ``*_cam`` arrays are in the depth image's optical frame (``header.frame_id``), ``*_bed``
    in the bed (label) frame; ``root_quat_cam`` is the body's root orientation in the camera
    frame as (x, y, z, w).
    """

    camera: str
    header: Header
    joints_bed: np.ndarray  # [24,3]
    joints_cam: np.ndarray  # [24,3]
    vertices_cam: np.ndarray  # [V,3]
    joint_spread: np.ndarray  # [24] metres
    params: np.ndarray  # [P] body-model parameters, bed frame
    root_quat_cam: np.ndarray  # [4] x, y, z, w
    posture: str
    hypotheses: int
    T_cam_bed: np.ndarray  # [4,4]
    net_image: np.ndarray  # [128,54] normalised network input
    #: the bed's state (disrt_core.occupancy.STATES): in_bed | empty | sitting_on_edge; the
    #: body fields mean something only in_bed
    occupancy: str = "in_bed"
    present_prob: float = 1.0  # probability that a person lies in the bed
    #: with the node's ``pressure`` on (disrt_core.pressure, kPa): the mat map [192,84] on
    #: SLP's pressure-mat grid (bed frame, row 0 at the head end) and the skin pressure per
    #: region {name: (peak, mean)}
    pressure: np.ndarray | None = None
    region_pressure: dict[str, tuple[float, float]] | None = None
    monitor: dict | None = None  # the repositioning monitor after this frame (its summary)
    #: [24] m: the radius around each joint that holds the true joint with probability
    #: ``interval_level`` (the weights' calibration, disrt_core.uncertainty), if any
    joint_interval: np.ndarray | None = None
    interval_level: float | None = None


def pose_array(result: FrameResult) -> PoseArray:
    """The 24 joints as poses in the camera frame, SMPL joint order; pose 0 (pelvis) carries
    the body's root orientation, the others the identity."""
    msg = PoseArray(header=result.header)
    for i, (x, y, z) in enumerate(result.joints_cam.astype(np.float64).tolist()):
        pose = Pose()
        pose.position.x, pose.position.y, pose.position.z = x, y, z
        qx, qy, qz, qw = result.root_quat_cam.tolist() if i == 0 else (0.0, 0.0, 0.0, 1.0)
        pose.orientation.x, pose.orientation.y = qx, qy
        pose.orientation.z, pose.orientation.w = qz, qw
        msg.poses.append(pose)
    return msg


def pressure_summary(result: FrameResult) -> dict | None:
    """``pressure`` of ``~/pose_json`` (kPa): the mat map's maximum and contact area (cells
    above ``disrt_core.pressure.CONTACT_KPA``, cm²) and peak / mean per region; None
    without a pressure map."""
    if result.pressure is None:
        return None
    from disrt_core.pressure import CONTACT_KPA

    return {"max_kpa": round(float(np.max(result.pressure)), 3),
            "contact_cm2": int(np.count_nonzero(result.pressure > CONTACT_KPA)),
            "regions": {name: {"peak_kpa": round(float(peak), 3),
                               "mean_kpa": round(float(mean), 3)}
                        for name, (peak, mean) in (result.region_pressure or {}).items()}}


def pose_json(result: FrameResult, joint_names: Sequence[str], model_id: str) -> String:
    """``~/pose_json``: one JSON object per frame (see the node's docstring for the keys;
    schema 2 added ``pressure``, ``monitor`` and ``joint_interval`` with its level, null when
    not computed)."""
    stamp = result.header.stamp
    payload = {
        "schema": "disrt_ros/pose/2",
        "stamp": {"sec": int(stamp.sec), "nanosec": int(stamp.nanosec)},
        "frame_id": result.header.frame_id,
        "camera": result.camera,
        "model_id": model_id,
        "posture": result.posture,
        "hypotheses": result.hypotheses,
        "joint_names": list(joint_names),
        "joints": np.round(result.joints_cam, 5).tolist(),
        "joints_bed": np.round(result.joints_bed, 5).tolist(),
        "joint_spread": np.round(result.joint_spread, 5).tolist(),
        "params": np.round(result.params, 6).tolist(),
        "T_cam_bed": np.round(result.T_cam_bed, 6).reshape(-1).tolist(),
        "pressure": pressure_summary(result),
        "monitor": result.monitor,
        "joint_interval": None if result.joint_interval is None else
        np.round(result.joint_interval, 4).tolist(),
        "joint_interval_level": result.interval_level,
    }
    return String(data=json.dumps(payload, separators=(",", ":")))


def state_message(header: Header, name: str, label: str, hardware_id: str,
                  values: Mapping[str, object] | None = None) -> DiagnosticArray:
    """A stamped state of one camera's frame (``~/posture``; later ``~/occupancy``): a
    DiagnosticArray with the frame's ``header`` and one OK DiagnosticStatus named ``name``
    whose message is the state's ``label``, ``hardware_id`` the camera and values ``name:
    label`` then ``values`` (e.g. per-class probabilities), as strings."""
    pairs = {name: label, **(values or {})}
    status = DiagnosticStatus(level=DiagnosticStatus.OK, name=name, message=label,
                              hardware_id=hardware_id,
                              values=[KeyValue(key=k, value=str(v)) for k, v in pairs.items()])
    return DiagnosticArray(header=header, status=[status])
