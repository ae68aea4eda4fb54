"""What rclpy's executor costs per received depth frame (issue 23's 8 cameras: the node's
Python work per frame shares one GIL): a subscriber process takes ``--cameras`` streams of
SLP-sized 16UC1 depth images (434 KB) and their CameraInfo at ``--rate`` Hz each from a
publisher process, with empty callbacks, under rclpy's SingleThreadedExecutor (what the
node spins) and its experimental EventsExecutor, alternated ``--rounds`` times.

    python benchmarks/bench_executor.py [--cameras 8] [--rate 30] [--seconds 8] [--rounds 2]

Reported: the subscriber's process CPU time per received message (depth or info; all its
threads, DDS's included) and the share of depth messages that arrived. Not the node: a
lower bound on the executor's part of it.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 101)))
os.environ.pop("ROS_LOCALHOST_ONLY", None)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Result, Row, command_line, machine_info, save

EXECUTORS = ("single", "events")


def subscribe(kind: str, cameras: int, seconds: float) -> None:
    """Count messages for ``seconds`` after the first; print 'messages depth cpu_s'."""
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    rclpy.init()
    node = rclpy.create_node("executor_bench_sub")
    count = {"all": 0, "depth": 0}

    def on_depth(_msg) -> None:
        count["all"] += 1
        count["depth"] += 1

    def on_info(_msg) -> None:
        count["all"] += 1

    for i in range(cameras):
        node.create_subscription(Image, f"/c{i}/depth", on_depth, qos_profile_sensor_data)
        node.create_subscription(CameraInfo, f"/c{i}/info", on_info, qos_profile_sensor_data)
    if kind == "events":
        from rclpy.experimental import EventsExecutor
        executor = EventsExecutor()
    else:
        executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(node)
    start = None
    while start is None or time.monotonic() < start[0] + seconds:
        executor.spin_once(timeout_sec=0.1)
        if start is None and count["all"]:
            start = (time.monotonic(), time.process_time(), count["all"], count["depth"])
    print(count["all"] - start[2], count["depth"] - start[3], time.process_time() - start[1])
    rclpy.try_shutdown()


def publish(cameras: int, rate: float, seconds: float) -> None:
    import numpy as np
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    rclpy.init()
    node = rclpy.create_node("executor_bench_pub")
    depth = [node.create_publisher(Image, f"/c{i}/depth", qos_profile_sensor_data)
             for i in range(cameras)]
    info = [node.create_publisher(CameraInfo, f"/c{i}/info", qos_profile_sensor_data)
            for i in range(cameras)]
    image = Image(height=512, width=424, encoding="16UC1", step=848)
    image.data = np.full(512 * 424 * 2, 7, np.uint8).tobytes()
    camera_info = CameraInfo(height=512, width=424)
    time.sleep(2.0)  # discovery
    due, end = time.monotonic(), time.monotonic() + seconds
    while time.monotonic() < end:
        for i in range(cameras):
            depth[i].publish(image)
            info[i].publish(camera_info)
        due += 1.0 / rate
        time.sleep(max(0.0, due - time.monotonic()))
    rclpy.try_shutdown()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cameras", type=int, default=8)
    p.add_argument("--rate", type=float, default=30.0)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--role", choices=("pub", "sub"), help=argparse.SUPPRESS)
    p.add_argument("--kind", choices=EXECUTORS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.role == "pub":
        return publish(args.cameras, args.rate, args.seconds + 4.0)
    if args.role == "sub":
        return subscribe(args.kind, args.cameras, args.seconds)
    me, common = [sys.executable, __file__], ["--cameras", str(args.cameras), "--rate",
                                              str(args.rate), "--seconds", str(args.seconds)]
    per_message: dict[str, list[float]] = {k: [] for k in EXECUTORS}
    arrived: dict[str, list[float]] = {k: [] for k in EXECUTORS}
    for _ in range(args.rounds):
        for kind in EXECUTORS:
            pub = subprocess.Popen([*me, "--role", "pub", *common])
            out = subprocess.run([*me, "--role", "sub", "--kind", kind, *common],
                                 capture_output=True, text=True, check=True).stdout.split()
            pub.wait()
            messages, depth, cpu = int(out[0]), int(out[1]), float(out[2])
            per_message[kind].append(1e3 * cpu / max(1, messages))
            arrived[kind].append(100.0 * depth / (args.cameras * args.rate * args.seconds))
            print(f"{kind:6s} {messages} messages, {1e3 * cpu / max(1, messages):.3f} ms CPU "
                  f"each, {arrived[kind][-1]:.1f} % of the depth frames")
    result = Result("executor_cpu", machine_info(), command_line())
    for kind, name in (("single", "SingleThreadedExecutor"),
                       ("events", "EventsExecutor (experimental)")):
        result.rows.append(Row(f"{name}: process CPU per received message, {args.cameras} "
                               f"cameras x {args.rate:g} Hz (depth + info)",
                               round(statistics.median(per_message[kind]), 3), "ms",
                               note="runs: " + ", ".join(f"{v:.3f}" for v in per_message[kind])))
        result.rows.append(Row(f"{name}: depth frames that arrived",
                               round(statistics.median(arrived[kind]), 1), "%"))
    print("wrote", save(result))


if __name__ == "__main__":
    main()
