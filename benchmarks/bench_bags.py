"""Bag tools: write/read throughput of SLP-sized depth bags, and disrt-replay's timing.

    python benchmarks/bench_bags.py [--frames 300] [--replay-seconds 10]

Frames are SLP-sized (uint16 512×424 depth, CameraInfo, ground-truth markers and JSON, as
``disrt-slp2bag`` writes them). Replay: a 30 Hz depth stream published by ``disrt-replay``
(a subprocess) and received by a subscriber here; the timing error of a message is its
arrival time minus its scheduled time (bag offset after the first message).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Result, Row, command_line, machine_info, percentile, save

from disrt_ros import bag_msgs
from disrt_ros.bags import (
    CAMERA_INFO,
    DEPTH_FRAME_ID,
    DEPTH_INFO_TOPIC,
    DEPTH_TOPIC,
    GT_JOINTS_TOPIC,
    GT_POSE_TOPIC,
    IMAGE,
    MARKER_ARRAY,
    STRING,
    BagReader,
    BagWriter,
    GroundTruth,
)

K = np.array([[367.8, 0.0, 208.1], [0.0, 367.8, 259.7], [0.0, 0.0, 1.0]])
T0 = 1_700_000_000 * 10**9


def write_bag(path: Path, frames: int, storage: str, rate: float = 30.0) -> float:
    """Write an SLP-like bag; returns seconds."""
    rng = np.random.default_rng(0)
    depth = rng.integers(1500, 2200, size=(512, 424), dtype=np.uint16)
    joints = rng.normal(size=(24, 3))
    start = time.perf_counter()
    with BagWriter(path, storage=storage) as bag:
        for topic, msgtype in ((DEPTH_TOPIC, IMAGE), (DEPTH_INFO_TOPIC, CAMERA_INFO),
                               (GT_JOINTS_TOPIC, MARKER_ARRAY), (GT_POSE_TOPIC, STRING)):
            bag.add_topic(topic, msgtype)
        for i in range(frames):
            t = T0 + round(i * 1e9 / rate)
            bag.write(DEPTH_TOPIC, t, bag_msgs.depth_image(depth, t, DEPTH_FRAME_ID))
            bag.write(DEPTH_INFO_TOPIC, t, bag_msgs.camera_info(K, 424, 512, t, DEPTH_FRAME_ID))
            bag.write(GT_JOINTS_TOPIC, t, bag_msgs.joint_markers(joints, t, DEPTH_FRAME_ID))
            gt = GroundTruth(stamp_ns=t, joints_bed_m=joints, cover="uncover", source="bench",
                             T_cam_bed=np.eye(4), body_params=rng.normal(size=88))
            bag.write(GT_POSE_TOPIC, t, bag_msgs.ground_truth_msg(gt))
    return time.perf_counter() - start


def read_bag(path: Path) -> float:
    """Decode every depth image; returns seconds."""
    start = time.perf_counter()
    with BagReader(path) as reader:
        for _, msg in reader.read(DEPTH_TOPIC, IMAGE):
            bag_msgs.image_to_array(msg)
    return time.perf_counter() - start


def replay_timing(path: Path, expected: int) -> list[float]:
    """Arrival minus scheduled time (s) of each depth message replayed by disrt-replay."""
    import rclpy
    from sensor_msgs.msg import Image

    context = rclpy.context.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("bench_replay_listener", context=context)
    arrivals: list[tuple[float, int]] = []
    node.create_subscription(Image, DEPTH_TOPIC, lambda m: arrivals.append(
        (time.monotonic(), m.header.stamp.sec * 10**9 + m.header.stamp.nanosec)), 10)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        subprocess.run([sys.executable, "-m", "disrt_ros.tools.replay", str(path), "--topics",
                        DEPTH_TOPIC, "--wait-for-subscribers", "20", "--quiet"],
                       check=True, env=dict(os.environ), timeout=600)
        time.sleep(0.5)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    if len(arrivals) != expected:
        print(f"warning: received {len(arrivals)} of {expected} messages")
    t_first, s_first = arrivals[0]
    return [(t - t_first) - (s - s_first) / 1e9 for t, s in arrivals]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--replay-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 101)))

    result = Result("bags", machine_info(), command_line())
    result.notes.append("CPU figures taken while other jobs shared the 2 cores; re-run on a "
                        "quiet machine for reference numbers")
    with tempfile.TemporaryDirectory() as tmp:
        for storage in ("mcap", "sqlite3"):
            path = Path(tmp) / storage
            seconds = write_bag(path, args.frames, storage)
            size_mb = sum(f.stat().st_size for f in path.iterdir()) / 1e6
            rate = args.frames / seconds
            result.rows.append(Row(f"write SLP-sized frames ({storage})", round(rate, 1),
                                   "frames/s", "≥ 30 (faster than the camera)", rate >= 30,
                                   f"{size_mb / args.frames:.2f} MB per frame"))
            rate = args.frames / read_bag(path)
            result.rows.append(Row(f"read + decode depth ({storage})", round(rate, 1),
                                   "frames/s", "≥ 30", rate >= 30))
            print(f"{storage}: write/read {result.rows[-2].value}/{rate:.1f} frames/s")
        n = int(args.replay_seconds * 30)
        path = Path(tmp) / "replay"
        write_bag(path, n, "mcap")
        errors_ms = np.abs(np.array(replay_timing(path, n))) * 1e3
        p50, p99 = percentile(list(errors_ms), 50), percentile(list(errors_ms), 99)
        result.rows.append(Row("replay 30 Hz 512×424 depth: timing error p50", round(p50, 2),
                               "ms"))
        result.rows.append(Row("replay 30 Hz 512×424 depth: timing error p99", round(p99, 2),
                               "ms", "≤ 10 ms", bool(p99 <= 10.0),
                               f"{len(errors_ms)} messages, max {errors_ms.max():.1f} ms"))
        print(f"replay timing error p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    print("wrote", save(result))


if __name__ == "__main__":
    main()
