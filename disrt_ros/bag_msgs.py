"""Messages for bags, as ``rosbags`` objects (no rclpy): depth Image, CameraInfo, ground-truth
markers and JSON; and the way back from Image/CameraInfo to numpy.

Images: ``16UC1`` (uint16 mm, 0 = no reading, as realsense-ros and Kinect drivers publish
depth) or ``32FC1`` (float32 metres). Decoding honours ``step`` and ``is_bigendian``.
The functions that read messages also accept rclpy messages (same field names).
"""

from __future__ import annotations

import numpy as np

from disrt_core.geometry.lens import pinhole_K
from disrt_ros.bags import (
    CAMERA_INFO,
    IMAGE,
    MARKER_ARRAY,
    STRING,
    TYPESTORE,
    BagError,
    GroundTruth,
)

_T = TYPESTORE.types
_NUMERIC = {"bool": np.bool_, "byte": np.uint8, "char": np.uint8, "int8": np.int8,
            "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16, "int32": np.int32,
            "uint32": np.uint32, "int64": np.int64, "uint64": np.uint64,
            "float32": np.float32, "float64": np.float64}


def new_msg(msgtype: str, **fields):
    """A ``rosbags`` message of ``msgtype`` with every field at its default (0, "", empty),
    except the ``fields`` given."""
    _, defs = TYPESTORE.fielddefs[msgtype]
    values = {}
    for name, (kind, detail) in defs:
        if name in fields:
            values[name] = fields.pop(name)
        elif kind == 1:  # base type
            base = detail[0]
            values[name] = "" if base in ("string", "wstring") else (
                False if base == "bool" else _NUMERIC[base](0).item())
        elif kind == 2:  # nested message
            values[name] = new_msg(detail)
        else:  # fixed array (3) or sequence (4)
            (sub_kind, sub), length = detail
            if sub_kind == 1 and sub[0] in _NUMERIC:
                values[name] = np.zeros(length, dtype=_NUMERIC[sub[0]])
            elif sub_kind == 1:
                values[name] = [""] * length
            else:
                values[name] = [new_msg(sub) for _ in range(length)]
    if fields:
        raise TypeError(f"{msgtype} has no field(s) {', '.join(fields)}")
    return _T[msgtype](**values)


def header(stamp_ns: int, frame_id: str):
    """std_msgs/Header from a stamp in ns since the epoch."""
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return new_msg("std_msgs/msg/Header", frame_id=frame_id,
                   stamp=new_msg("builtin_interfaces/msg/Time", sec=sec, nanosec=nanosec))


def stamp_ns(msg_header) -> int:
    """ns since the epoch of a Header."""
    return int(msg_header.stamp.sec) * 1_000_000_000 + int(msg_header.stamp.nanosec)


def depth_image(depth: np.ndarray, stamp: int, frame_id: str):
    """sensor_msgs/Image of a depth frame [H,W]: uint16 mm -> 16UC1, float32 m -> 32FC1."""
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth image must be [H, W], got shape {depth.shape}")
    encodings = {np.dtype(np.uint16): "16UC1", np.dtype(np.float32): "32FC1"}
    if depth.dtype not in encodings:
        raise ValueError(f"depth must be uint16 (mm) or float32 (m), got {depth.dtype}")
    data = np.ascontiguousarray(depth.astype(depth.dtype.newbyteorder("<"), copy=False))
    return new_msg(IMAGE, header=header(stamp, frame_id), height=depth.shape[0],
                   width=depth.shape[1], encoding=encodings[depth.dtype], is_bigendian=0,
                   step=depth.shape[1] * depth.itemsize, data=data.view(np.uint8).reshape(-1))


def image_to_array(msg) -> np.ndarray:
    """[H,W] numpy array of a 16UC1 (uint16 mm) or 32FC1 (float32 m) Image, any step and
    byte order (a copy in native order)."""
    dtypes = {"16UC1": np.uint16, "mono16": np.uint16, "32FC1": np.float32}
    if msg.encoding not in dtypes:
        raise BagError(f"depth image encoding {msg.encoding!r} is not supported; "
                       "expected 16UC1 (mm) or 32FC1 (m)")
    dtype = np.dtype(dtypes[msg.encoding]).newbyteorder(">" if msg.is_bigendian else "<")
    raw = np.frombuffer(memoryview(msg.data).cast("B"), dtype=np.uint8)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if step < width * dtype.itemsize or raw.size < step * height:
        raise BagError(f"image of {width}x{height} {msg.encoding} has step {step} and "
                       f"{raw.size} bytes; the message is inconsistent")
    rows = raw[: step * height].reshape(height, step)[:, : width * dtype.itemsize]
    return rows.copy().view(dtype).astype(dtype.newbyteorder("="))


def camera_info(K: np.ndarray, width: int, height: int, stamp: int, frame_id: str,
                distortion: np.ndarray | None = None, model: str = "plumb_bob"):
    """sensor_msgs/CameraInfo of a rectified (or plumb_bob) camera with intrinsics K [3,3]."""
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    P = np.zeros((3, 4))
    P[:, :3] = K
    d = np.zeros(5) if distortion is None else np.asarray(distortion, np.float64)
    return new_msg(CAMERA_INFO, header=header(stamp, frame_id), height=int(height),
                   width=int(width), distortion_model=model, d=d, k=K.reshape(-1),
                   r=np.eye(3).reshape(-1), p=P.reshape(-1))


def camera_info_K(msg, rectified: bool = False) -> np.ndarray:
    """Intrinsics [3,3] of a CameraInfo: of its raw image, or with ``rectified`` of its
    rectified one (P's left 3×3 where P is set; ``disrt_core.geometry.lens``)."""
    return pinhole_K(msg.k, msg.p, rectified)


def _point(p):
    return new_msg("geometry_msgs/msg/Point", x=float(p[0]), y=float(p[1]), z=float(p[2]))


def joint_markers(joints: np.ndarray, stamp: int, frame_id: str, *,
                  ns: str = "ground_truth", rgba=(0.1, 0.9, 0.2, 1.0),
                  radius: float = 0.04):
    """visualization_msgs/MarkerArray: 24 joints as one SPHERE_LIST (id 0) and SMPL's bones
    as one LINE_LIST (id 1), joints [24,3] in metres in ``frame_id``."""
    from disrt_core.body.skeleton import SMPL_BONES

    joints = np.asarray(joints, dtype=np.float64)
    if joints.shape != (24, 3):
        raise ValueError(f"joints must be [24, 3], got {joints.shape}")
    color = new_msg("std_msgs/msg/ColorRGBA", r=rgba[0], g=rgba[1], b=rgba[2], a=rgba[3])
    identity = new_msg("geometry_msgs/msg/Pose",
                       orientation=new_msg("geometry_msgs/msg/Quaternion", w=1.0))
    Marker = _T["visualization_msgs/msg/Marker"]
    common = dict(header=header(stamp, frame_id), ns=ns, action=Marker.ADD, pose=identity,
                  color=color)
    spheres = new_msg("visualization_msgs/msg/Marker", id=0, type=Marker.SPHERE_LIST,
                      scale=new_msg("geometry_msgs/msg/Vector3", x=radius, y=radius, z=radius),
                      points=[_point(p) for p in joints], **common)
    bones = new_msg("visualization_msgs/msg/Marker", id=1, type=Marker.LINE_LIST,
                    scale=new_msg("geometry_msgs/msg/Vector3", x=radius / 3),
                    points=[_point(joints[i]) for pair in SMPL_BONES for i in pair], **common)
    return new_msg(MARKER_ARRAY, markers=[spheres, bones])


def string(text: str):
    """std_msgs/String."""
    return new_msg(STRING, data=text)


def ground_truth_msg(gt: GroundTruth):
    """std_msgs/String carrying ``gt`` as JSON (see :class:`disrt_ros.bags.GroundTruth`)."""
    return string(gt.to_json())
