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
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Pose, PoseArray
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import Header, String

from disrt_core.geometry.lens import pinhole_K
from disrt_ros import depth_codec
from disrt_ros.depth_codec import (
    DEPTH_ENCODINGS,
    ImageFormatError,
)

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
_NATIVE_BIG = sys.byteorder == "big"


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
    return depth_codec.pixels_to_mm(pixels)


def decode_compressed_depth(msg: CompressedImage) -> np.ndarray:
    """An image_transport ``compressedDepth`` message -> uint16 [H,W] (16UC1 / mono16, mm
    for depth cameras) or float32 [H,W] metres (32FC1, NaN = no reading):
    :func:`disrt_ros.depth_codec.decode` of its ``format`` and ``data``."""
    return depth_codec.decode(msg.format, msg.data)


def compressed_depth(depth: np.ndarray, encoding: str, header: Header | None = None,
                     **options) -> CompressedImage:
    """Depth [H,W] -> the ``compressedDepth`` message compressed_depth_image_transport's
    publisher sends (:func:`disrt_ros.depth_codec.encode`, its ``options``: ``depth_max``,
    ``depth_quantization``, ``png_level``, ``codec`` png or rvl)."""
    fmt, data = depth_codec.encode(depth, encoding, **options)
    msg = CompressedImage(format=fmt)
    if header is not None:
        msg.header = header
    msg.data = data
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
