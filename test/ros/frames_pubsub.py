"""A camera and a viewer of big depth frames, each its own process, for
test_fastdds_profile.py (Fast DDS transports are per process):

    python frames_pubsub.py pub WIDTH HEIGHT COUNT RATE_HZ   # best-effort 16UC1 frames
    python frames_pubsub.py sub COUNT                         # prints "received N"

The publisher waits for a subscriber, prints the size of its biggest Fast DDS shared-memory
segment ("segment BYTES"), sends COUNT frames at RATE_HZ (stamps 0..COUNT-1) and an "end"
message (reliable), then waits for its stdin to close. The subscriber counts distinct stamps
until it has all, or the end message came and no frame followed for 2 s.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import String

TOPIC, END = "/big/depth/image_rect_raw", "/big/end"
END_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)


def biggest_segment() -> int:
    sizes = [0]
    for line in Path("/proc/self/maps").read_text().splitlines():
        if "/dev/shm/fastrtps_" in line and "port" not in line:
            start, end = (int(v, 16) for v in line.split()[0].split("-"))
            sizes.append(end - start)
    return max(sizes)


def publish(node: Node, width: int, height: int, count: int, rate_hz: float) -> None:
    pub = node.create_publisher(Image, TOPIC, qos_profile_sensor_data)
    end = node.create_publisher(String, END, END_QOS)
    while pub.get_subscription_count() == 0 or end.get_subscription_count() == 0:
        time.sleep(0.01)
    print(f"segment {biggest_segment()}", flush=True)
    msg = Image(height=height, width=width, encoding="16UC1", step=2 * width)
    msg.data = np.random.default_rng(0).integers(0, 4000, (height, width), np.uint16).tobytes()
    start = time.monotonic()
    for i in range(count):
        msg.header.stamp.sec = i
        pub.publish(msg)
        time.sleep(max(0.0, start + (i + 1) / rate_hz - time.monotonic()))
    end.publish(String(data="end"))
    sys.stdin.read()  # until the test closes it: the last frames may still be read


def subscribe(node: Node, count: int) -> None:
    got, ended = set(), []
    node.create_subscription(Image, TOPIC, lambda m: got.add(m.header.stamp.sec),
                             qos_profile_sensor_data)
    node.create_subscription(String, END, lambda m: ended.append(m), END_QOS)
    quiet_since = time.monotonic()
    while len(got) < count:
        before = len(got)
        rclpy.spin_once(node, timeout_sec=0.1)
        if len(got) != before or not ended:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 2.0:
            break
    print(f"received {len(got)}", flush=True)


if __name__ == "__main__":
    rclpy.init()
    node = Node(f"big_{sys.argv[1]}")
    if sys.argv[1] == "pub":
        publish(node, *(int(v) for v in sys.argv[2:5]), float(sys.argv[5]))
    else:
        subscribe(node, int(sys.argv[2]))
    node.destroy_node()
    rclpy.try_shutdown()
