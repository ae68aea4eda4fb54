"""``disrt-fit-bed``'s inputs: one depth view (the depth in millimetres and the intrinsics)
from a rosbag2 bag, a live RealSense, or a depth image file (see :mod:`disrt_ros.tools.fit_bed`
for the options); unusable input raises :class:`InputError` with a message that names it and
the fix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from disrt_core.geometry.camera import median_depth


class InputError(RuntimeError):
    """The input cannot be used; the message names it and the fix."""


@dataclass
class View:
    depth_mm: np.ndarray  # float32 [H,W] mm, 0 = no reading
    K: np.ndarray  # [3,3]
    source: str
    notes: list[str]


# -- inputs ------------------------------------------------------------------------------

def read_camera_info(path: Path) -> np.ndarray:
    """K [3,3] of a camera-info YAML: ROS ``camera_calibration``'s (``camera_matrix: {data:
    [...]}``) or a CameraInfo message dump (``k: [...]`` / ``K: [...]``)."""
    import yaml

    try:
        info = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise InputError(f"cannot read camera info {path}: {err}") from err
    if not isinstance(info, dict):
        raise InputError(f"camera info {path} is not a YAML mapping")
    data = None
    if isinstance(info.get("camera_matrix"), dict):
        data = info["camera_matrix"].get("data")
    for key in ("k", "K"):
        data = info.get(key, data) if data is None else data
    try:
        K = np.asarray(data, np.float64).reshape(3, 3)
    except (TypeError, ValueError):
        raise InputError(f"camera info {path} has no 3x3 camera matrix (camera_matrix.data "
                         "or k: 9 numbers)") from None
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise InputError(f"camera info {path}: focal lengths must be positive, got {K}")
    return K


def read_depth_file(path: Path) -> tuple[np.ndarray, list[str]]:
    """Depth [H,W] in mm (float32) of a 16-bit PNG (mm) or a .npy (mm or m, detected)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"depth image {path} does not exist")
    notes = []
    if path.suffix.lower() == ".npy":
        try:
            depth = np.load(path)
        except (OSError, ValueError) as err:
            raise InputError(f"cannot read {path} as a numpy array: {err}") from err
        depth = np.asarray(depth)
        if depth.ndim == 3 and depth.shape[-1] == 1:
            depth = depth[..., 0]
        valid = np.isfinite(depth) & (depth > 0)
        if depth.dtype.kind == "f" and valid.any() and np.median(depth[valid]) < 20:
            notes.append(f"{path.name}: float values with median {np.median(depth[valid]):.2f}"
                         ": read as metres")
            depth = depth * 1000.0
        else:
            notes.append(f"{path.name}: read as millimetres")
        depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0).astype(np.float32)
    else:
        import cv2

        depth = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_UNCHANGED)
        if depth is None:
            raise InputError(f"cannot read {path} as an image (16-bit PNG in mm expected)")
        if depth.dtype != np.uint16:
            raise InputError(f"{path} is {depth.dtype}, not a 16-bit depth image in mm; save "
                             "depth as a 16-bit PNG (or a .npy in mm or m)")
        notes.append(f"{path.name}: 16-bit image read as millimetres")
        depth = depth.astype(np.float32)
    if depth.ndim != 2:
        raise InputError(f"{path}: a depth image must be 2-D, got shape {depth.shape}")
    return depth, notes


def read_bag(path: Path, topic: str, info_topic: str | None, frame: int, count: int) -> View:
    from disrt_core.geometry import lens
    from disrt_ros import bag_msgs, depth_codec
    from disrt_ros.bags import CAMERA_INFO, COMPRESSED_IMAGE, IMAGE, BagError, BagReader

    # image_transport's compressedDepth sub-topic: the image's own topic names the
    # CameraInfo beside it and whether it is rectified
    image_topic = topic.rstrip("/").removesuffix("/compressedDepth")
    info_topic = info_topic or image_topic.rsplit("/", 1)[0] + "/camera_info"
    frames, K, undistort, rectified = [], None, None, lens.is_rectified(image_topic)
    try:
        with BagReader(path) as bag:
            compressed = getattr(bag.topics.get(topic), "msgtype", "") == COMPRESSED_IMAGE
            kind = COMPRESSED_IMAGE if compressed else IMAGE
            bag.require(topic, kind)
            bag.require(info_topic, CAMERA_INFO)
            for _, msg in bag.read(info_topic, CAMERA_INFO):
                # as the node: a raw topic's frames moved onto the pinhole of K
                K = bag_msgs.camera_info_K(msg, rectified)
                try:
                    undistort = None if rectified else lens.undistortion(
                        K, msg.distortion_model, msg.d, (int(msg.width), int(msg.height)))
                except ValueError as err:
                    raise InputError(f"bag {path}: {err}") from err
                break
            for i, (_, msg) in enumerate(bag.read(topic, kind)):
                if i < frame:
                    continue
                try:
                    image = (depth_codec.decode(msg.format, msg.data) if compressed
                             else bag_msgs.image_to_array(msg))
                except depth_codec.ImageFormatError as err:
                    raise InputError(f"bag {path}, {topic} #{i}: {err}") from err
                image = depth_codec.pixels_to_mm(image)  # as the node reads them
                frames.append(image if undistort is None else undistort(image))
                if len(frames) >= count:
                    break
    except BagError as err:
        raise InputError(str(err)) from err
    if K is None:
        raise InputError(f"bag {path}: no CameraInfo on {info_topic}; give --info-topic")
    if not frames:
        raise InputError(f"bag {path} has fewer than {frame + 1} frames on {topic}")
    notes = [f"{len(frames)} frame(s) from #{frame} of {topic}"
             + (" (per-pixel median)" if len(frames) > 1 else "")
             + ("" if undistort is None else f", undistorted ({undistort.model}, pixels "
                f"moved up to {undistort.max_shift_px:.1f} px)")]
    return View(median_depth(frames), K, f"bag {path}", notes)


def read_realsense(serial: str | None, count: int) -> View:
    from disrt_ros.realsense import depth_frames

    frames, K = [], None
    try:
        stream = depth_frames(serial=serial or None)
        for i, frame in enumerate(stream):
            if i < 30:
                continue  # auto-exposure settles
            frames.append(frame.depth_mm.astype(np.float32))
            K = frame.K
            if len(frames) >= count:
                break
        stream.close()
    except ImportError as err:
        raise InputError(str(err)) from err
    except (RuntimeError, TimeoutError) as err:
        raise InputError(f"RealSense: {err} (is a camera connected and free? --realsense "
                         "SERIAL picks one)") from err
    if not frames:
        raise InputError("RealSense: no depth frames")
    return View(median_depth(frames), K, f"RealSense {serial or '(first found)'}",
                [f"median of {len(frames)} live frames"])
