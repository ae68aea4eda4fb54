"""RealSense depth input through pyrealsense2 (the optional ``realsense`` extra), without
realsense-ros.

Python API (no ROS), for scripts::

    from disrt_ros.realsense import depth_frames, estimate
    for frame in depth_frames("night.db3"):        # or depth_frames() for a live camera
        frame.depth_mm, frame.K, frame.stamp_ns   # uint16 [H,W] mm, [3,3] px, ns

    estimator = Estimator.from_checkpoint(path)   # disrt_core.infer
    for frame, prediction in estimate(depth_frames(), estimator, T_cam_bed):
        prediction.joints                         # [1,24,3] bed frame, m

:func:`estimate` runs the bed monitor's per-frame model path without ROS: ``disrt_core.
geometry.camera.raw_to_network`` with the frame's K and the bed pose ``T_cam_bed``,
``normalize_depth``, ``Estimator.predict``. ``disrt-realsense``
publishes the same frames as ROS topics in realsense-ros 4.x's layout (``/camera/camera/
depth/image_rect_raw`` 16UC1 in mm and ``.../camera_info``, frame ``camera_depth_optical_frame``),
so the bed monitor node runs unchanged on machines without realsense-ros.

Sources: a live camera (the first one, or ``serial``), or a recording made by the RealSense
SDK (``.bag`` from SDK 2.x, ``.db3`` from SDK 2.59+), every frame, paced by its recorded
timestamps (``realtime``) or as fast as it is read. Depth in the device's depth units (1 mm on
D400 cameras, 0.1 mm on D405) is converted to millimetres; 0 stays "no reading". Stamps:
the frame's own time when the device reports it in system (or global) time, else the host
time at arrival (ns since the epoch either way).

pyrealsense2 needs the system library libusb-1.0 (Debian/Ubuntu: ``apt-get install -y
libusb-1.0-0``), also for playing recordings.
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEPTH_TOPIC = "depth/image_rect_raw"  # under /<camera_namespace>/<camera_name>/, as realsense-ros
INFO_TOPIC = "depth/camera_info"
FRAME_ID = "camera_depth_optical_frame"


def import_pyrealsense2():
    """pyrealsense2, or an ImportError that says how to get it."""
    try:
        import pyrealsense2 as rs
    except ImportError as err:
        hint = ("install libusb-1.0 (apt-get install -y libusb-1.0-0)" if "libusb" in str(err)
                else "pip install -c constraints.txt 'disrt_ros[realsense]'")
        raise ImportError(f"RealSense input needs pyrealsense2 ({err}); {hint}") from err
    return rs


@dataclass
class DepthFrame:
    """One depth frame: ``depth_mm`` uint16 [H,W] (0 = no reading), intrinsics ``K`` [3,3] in
    pixels, ``distortion`` coefficients and ROS ``distortion_model``, ``stamp_ns`` (ns since
    the epoch), the device's ``frame_number`` and ``timestamp_ms`` (in its own domain)."""

    depth_mm: np.ndarray
    K: np.ndarray
    distortion: np.ndarray
    distortion_model: str
    stamp_ns: int
    frame_number: int
    timestamp_ms: float


def to_millimetres(raw: np.ndarray, depth_scale_m: float) -> np.ndarray:
    """Raw z16 depth in units of ``depth_scale_m`` metres -> uint16 millimetres (rounded half
    up, saturating at 65535; 0 stays 0)."""
    scale = float(f"{depth_scale_m * 1000.0:.6g}")  # the SDK stores units as float32
    if scale == 1.0:
        return np.array(raw, dtype=np.uint16)
    mm = np.floor(raw.astype(np.float64) * scale + 0.5)  # round half up
    return np.clip(mm, 0, 65535).astype(np.uint16)


def _intrinsics(rs, profile) -> tuple[np.ndarray, np.ndarray, str]:
    intr = profile.as_video_stream_profile().get_intrinsics()
    K = np.array([[intr.fx, 0.0, intr.ppx], [0.0, intr.fy, intr.ppy], [0.0, 0.0, 1.0]])
    fisheye = (rs.distortion.kannala_brandt4, rs.distortion.ftheta)
    model = "equidistant" if intr.model in fisheye else "plumb_bob"  # as realsense-ros maps
    return K, np.asarray(intr.coeffs, np.float64), model


def _frame(rs, depth, scale: float, camera: tuple) -> DepthFrame:
    """A DepthFrame (copied out of the SDK's buffer) of an rs.depth_frame."""
    stamp_ms = depth.get_timestamp()
    clock_domains = (rs.timestamp_domain.system_time, rs.timestamp_domain.global_time)
    stamp = (int(stamp_ms * 1e6) if depth.get_frame_timestamp_domain() in clock_domains
             else time.time_ns())
    K, coeffs, model = camera
    return DepthFrame(depth_mm=to_millimetres(np.asanyarray(depth.get_data()), scale), K=K,
                      distortion=coeffs, distortion_model=model, stamp_ns=stamp,
                      frame_number=depth.get_frame_number(), timestamp_ms=stamp_ms)


def _live_frames(rs, serial, width, height, fps, timeout_ms) -> Iterator[DepthFrame]:
    """A camera through the SDK's pipeline (which keeps the newest frames: a slow reader
    skips frames, as with any live camera)."""
    pipeline, config = rs.pipeline(), rs.config()
    if serial:
        config.enable_device(serial)
    config.enable_stream(rs.stream.depth, width, height, rs.format.z16, fps)
    try:
        profile = pipeline.start(config)
    except RuntimeError as err:
        raise RuntimeError(f"cannot open a RealSense camera: {err}") from err
    try:
        scale = profile.get_device().first_depth_sensor().get_depth_scale()
        camera = _intrinsics(rs, profile.get_stream(rs.stream.depth))
        while True:
            ok, frames = pipeline.try_wait_for_frames(timeout_ms)
            if not ok:
                raise TimeoutError(f"no depth frame from the camera in {timeout_ms} ms")
            depth = frames.get_depth_frame()
            if depth:
                yield _frame(rs, depth, scale, camera)
    finally:
        pipeline.stop()


def _recorded_frames(rs, path: Path, realtime: bool) -> Iterator[DepthFrame]:
    """Every depth frame of a recording, in order. The SDK plays it in non-real-time mode,
    where it waits for each frame callback to return; the callback blocks on a small queue
    until this generator takes the frame, so none is dropped however slow the reader."""
    device = rs.context().load_device(str(path))
    playback = device.as_playback()
    playback.set_real_time(False)
    sensor = device.first_depth_sensor()
    profiles = [p for p in sensor.get_stream_profiles()
                if p.stream_type() == rs.stream.depth and p.format() == rs.format.z16]
    if not profiles:
        raise RuntimeError(f"recording {path} has no z16 depth stream")
    scale, camera = sensor.get_depth_scale(), _intrinsics(rs, profiles[0])
    frames: queue.Queue = queue.Queue(maxsize=2)
    closing = threading.Event()

    def on_frame(frame) -> None:
        depth = frame.as_depth_frame()
        item = _frame(rs, depth, scale, camera) if depth else None
        while item is not None and not closing.is_set():
            try:
                frames.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    played = threading.Event()  # the playback has started (its status is 'stopped' before)
    playback.set_status_changed_callback(
        lambda status: played.set() if status == rs.playback_status.playing else None)
    sensor.open(profiles[0])
    sensor.start(on_frame)
    first_ms = started = None
    try:
        while True:
            try:
                frame = frames.get(timeout=0.1)
            except queue.Empty:
                stopped = playback.current_status() == rs.playback_status.stopped
                if played.is_set() and stopped and frames.empty():
                    return  # end of the recording
                continue
            played.set()
            if realtime:  # pace by the recorded stamps
                if first_ms is None:
                    first_ms, started = frame.timestamp_ms, time.monotonic()
                wait = started + (frame.timestamp_ms - first_ms) / 1000 - time.monotonic()
                time.sleep(max(0.0, wait))
            yield frame
    finally:
        closing.set()
        sensor.stop()
        sensor.close()


def depth_frames(source: str | Path | None = None, *, serial: str | None = None,
                 width: int = 848, height: int = 480, fps: int = 30, realtime: bool = True,
                 loop: bool = False, timeout_ms: int = 5000) -> Iterator[DepthFrame]:
    """Depth frames from a live camera (``source=None``; ``serial`` picks one) or from a
    RealSense recording (``source`` = path of a ``.bag``/``.db3``: every frame, paced by its
    stamps when ``realtime``); ends when a recording ends (unless ``loop``) or when the
    caller stops iterating."""
    rs = import_pyrealsense2()
    if source is None:
        yield from _live_frames(rs, serial, width, height, fps, timeout_ms)
        return
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"RealSense recording {path} does not exist")
    while True:
        try:
            yield from _recorded_frames(rs, path, realtime)
        except RuntimeError as err:
            raise RuntimeError(f"cannot play RealSense recording {path}: {err}") from err
        if not loop:
            return


def estimate(frames: Iterable[DepthFrame], estimator, T_cam_bed,
             bed_mm: float = 2101.0) -> Iterator[tuple[DepthFrame, object]]:
    """(frame, ``disrt_core.infer.Prediction``) for each frame: the node's model path
    (``raw_to_network`` with the frame's K and ``T_cam_bed`` [4,4] (bed -> camera optical
    frame, m), ``normalize_depth`` around ``bed_mm``, ``estimator.predict``); the prediction
    is in the bed (label) frame, map it back with ``geometry.camera.label_to_camera``."""
    import torch

    from disrt_core.geometry.bedframe import normalize_depth
    from disrt_core.geometry.camera import raw_to_network

    device = torch.device(estimator.device)
    T = torch.as_tensor(np.asarray(T_cam_bed), dtype=torch.float32, device=device)
    if T.shape != (4, 4):
        raise ValueError(f"T_cam_bed must be 4x4, got {tuple(T.shape)}")
    for frame in frames:
        depth = torch.from_numpy(frame.depth_mm.astype(np.float32))[None].to(device)
        K = torch.from_numpy(frame.K).float()[None].to(device)
        net = normalize_depth(raw_to_network(depth, K, T[None], bed_mm), bed_mm)
        with torch.no_grad():
            yield frame, estimator.predict(net[:, None])


def frame_messages(frame: DepthFrame, frame_id: str = FRAME_ID):
    """(sensor_msgs/Image 16UC1, sensor_msgs/CameraInfo) rclpy messages of a frame."""
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header

    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = divmod(frame.stamp_ns, 1_000_000_000)
    height, width = frame.depth_mm.shape
    image = Image(header=header, height=height, width=width, encoding="16UC1",
                  is_bigendian=sys.byteorder == "big", step=2 * width,
                  data=frame.depth_mm.tobytes())
    projection = np.zeros((3, 4))
    projection[:, :3] = frame.K
    info = CameraInfo(header=header, height=height, width=width,
                      distortion_model=frame.distortion_model,
                      d=frame.distortion.tolist(), k=frame.K.reshape(-1).tolist(),
                      r=np.eye(3).reshape(-1).tolist(), p=projection.reshape(-1).tolist())
    return image, info


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="disrt-realsense",
        description="Publish RealSense depth + CameraInfo (live camera or SDK recording) "
                    "through pyrealsense2, in realsense-ros 4.x's topic layout.",
        epilog="ROS arguments go after --ros-args, e.g. --ros-args -r __ns:=/ward1")
    parser.add_argument("--file", type=Path, help="play this RealSense recording (.bag/.db3)")
    parser.add_argument("--serial", help="serial number of the camera to open")
    parser.add_argument("--width", type=int, default=848)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--camera-namespace", default="camera")
    parser.add_argument("--camera-name", default="camera")
    parser.add_argument("--frame-id", default=FRAME_ID)
    parser.add_argument("--loop", action="store_true", help="repeat a recording forever")
    parser.add_argument("--as-fast-as-possible", action="store_true",
                        help="play a recording without waiting for its timing")
    parser.add_argument("--max-frames", type=int, default=0, help="stop after N frames")
    parser.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="SECONDS",
                        help="wait up to SECONDS for a depth subscriber before starting")
    return parser


def main(argv: list[str] | None = None) -> int:
    import rclpy
    from rclpy.duration import Duration
    from rclpy.utilities import remove_ros_args
    from sensor_msgs.msg import CameraInfo, Image

    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(remove_ros_args(argv))
    try:  # fail early, before ROS starts
        import_pyrealsense2()
        if args.file is not None and not args.file.is_file():
            raise FileNotFoundError(f"RealSense recording {args.file} does not exist")
    except (ImportError, FileNotFoundError) as err:
        print(f"disrt-realsense: error: {err}", file=sys.stderr)
        return 1
    rclpy.init(args=["disrt-realsense", *argv])
    node = frames = None
    try:
        node = rclpy.create_node("disrt_realsense")
        base = f"/{args.camera_namespace}/{args.camera_name}".replace("//", "/")
        image_pub = node.create_publisher(Image, f"{base}/{DEPTH_TOPIC}", 5)
        info_pub = node.create_publisher(CameraInfo, f"{base}/{INFO_TOPIC}", 5)
        if args.wait_for_subscribers > 0:
            deadline = time.monotonic() + args.wait_for_subscribers
            while image_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # let the subscriber's side of discovery finish
        # opened only now: a recording plays on its own clock and would skip frames meanwhile
        frames = depth_frames(args.file, serial=args.serial, width=args.width,
                              height=args.height, fps=args.fps, loop=args.loop,
                              realtime=not args.as_fast_as_possible)
        count = 0
        for frame in frames:
            if not rclpy.ok(context=node.context):
                break
            image, info = frame_messages(frame, args.frame_id)
            image_pub.publish(image)
            info_pub.publish(info)
            count += 1
            if args.max_frames and count >= args.max_frames:
                break
        for publisher in (image_pub, info_pub):  # deliver the last frames before leaving
            publisher.wait_for_all_acked(Duration(seconds=2))  # (reliable readers)
        time.sleep(0.5)  # best-effort readers: let the last image's fragments go out
        print(f"[disrt-realsense] published {count} depth frames")
        return 0
    except (RuntimeError, TimeoutError) as err:
        print(f"disrt-realsense: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if frames is not None:
            frames.close()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    raise SystemExit(main())
