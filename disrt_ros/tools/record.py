"""``disrt-record --out BAG TOPIC ...``: record topics of a running ROS graph into a rosbag2
bag through rclpy, for machines without the ros2 CLI (``ros2 bag record`` elsewhere).

Messages are stored as received (CDR bytes, no decoding) at their receive time, like
``ros2 bag record``. A topic is subscribed as soon as it appears in the graph, with the QoS
``ros2 bag record`` would choose: reliable only if every publisher offers reliable,
transient-local only if every publisher offers it; the bag's metadata records what the
publishers offered. Recording ends on Ctrl-C, after ``--duration`` seconds or after
``--max-messages``; the bag is then closed properly (and only a complete bag appears under
the name given, see :class:`disrt_ros.bags.BagWriter`).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from disrt_ros.bags import STORAGES, TYPESTORE, BagError, BagWriter, recorded_qos
from disrt_ros.tools.replay import message_class

QUEUE_DEPTH = 100


class Recorder:
    """Subscribe to ``topics`` on ``node`` and write what arrives to ``writer`` (an entered
    :class:`BagWriter`). Call :meth:`poll` periodically (it subscribes to topics that have
    appeared); callbacks may run on any executor thread."""

    def __init__(self, node, writer: BagWriter, topics: list[str]) -> None:
        self.node = node
        self.writer = writer
        self.topics = [node.resolve_topic_name(t) for t in topics]
        self.counts: dict[str, int] = dict.fromkeys(self.topics, 0)
        self._subscriptions: dict[str, object] = {}
        self._lock = threading.Lock()

    def _qos(self, topic: str):
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

        offered = [info.qos_profile for info in self.node.get_publishers_info_by_topic(topic)]
        reliable = bool(offered) and all(
            q.reliability == ReliabilityPolicy.RELIABLE for q in offered)
        latched = bool(offered) and all(
            q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in offered)
        profile = QoSProfile(
            depth=QUEUE_DEPTH,
            reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
            durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)
        recorded = [recorded_qos(reliable=q.reliability == ReliabilityPolicy.RELIABLE,
                                 transient_local=q.durability == DurabilityPolicy.TRANSIENT_LOCAL)
                    for q in offered]
        return profile, recorded

    def poll(self) -> list[str]:
        """Subscribe to the wanted topics that now have publishers; returns those still absent."""
        types = dict(self.node.get_topic_names_and_types())
        for topic in self.topics:
            if topic in self._subscriptions or topic not in types:
                continue
            if not self.node.get_publishers_info_by_topic(topic):
                continue
            msgtype = types[topic][0]
            if msgtype not in TYPESTORE.fielddefs:
                self.node.get_logger().error(f"{topic}: type {msgtype} is unknown to the bag "
                                             "writer; not recorded")
                self._subscriptions[topic] = None
                continue
            profile, recorded = self._qos(topic)
            with self._lock:
                self.writer.add_topic(topic, msgtype, recorded)
            self._subscriptions[topic] = self.node.create_subscription(
                message_class(msgtype), topic, lambda data, t=topic: self._store(t, data),
                profile, raw=True)
            self.node.get_logger().info(f"recording {topic} ({msgtype})")
        return [t for t in self.topics if t not in self._subscriptions]

    def _store(self, topic: str, data: bytes) -> None:
        stamp = self.node.get_clock().now().nanoseconds
        with self._lock:
            self.writer.write(topic, stamp, data)
            self.counts[topic] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def stop(self) -> None:
        """Unsubscribe (call before the writer is closed)."""
        with self._lock:
            for sub in self._subscriptions.values():
                if sub is not None:
                    self.node.destroy_subscription(sub)
            self._subscriptions = {t: None for t in self._subscriptions}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="disrt-record", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    parser.add_argument("topics", nargs="+", metavar="TOPIC", help="topics to record")
    parser.add_argument("--out", "-o", type=Path, required=True, help="bag to write")
    parser.add_argument("--storage", choices=STORAGES, default="mcap")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bag")
    parser.add_argument("--duration", type=float, default=0.0,
                        help="stop after this many seconds (0 = until Ctrl-C)")
    parser.add_argument("--max-messages", type=int, default=0,
                        help="stop after this many messages in all (0 = no limit)")
    parser.add_argument("--quiet", action="store_true", help="no summary")
    return parser


def main(argv: list[str] | None = None) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.utilities import remove_ros_args

    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(remove_ros_args(argv))
    rclpy.init(args=["disrt-record", *argv])
    node = None
    try:
        node = rclpy.create_node("disrt_record")
        started = time.monotonic()
        with BagWriter(args.out, storage=args.storage, overwrite=args.overwrite) as writer:
            recorder = Recorder(node, writer, args.topics)
            try:
                while rclpy.ok(context=node.context):
                    recorder.poll()
                    rclpy.spin_once(node, timeout_sec=0.05)
                    if args.duration and time.monotonic() - started >= args.duration:
                        break
                    if args.max_messages and recorder.total >= args.max_messages:
                        break
            except (KeyboardInterrupt, ExternalShutdownException):
                pass  # Ctrl-C ends a recording normally: the bag is closed and kept
            recorder.stop()
        if not args.quiet:
            counts = ", ".join(f"{t} {n}" for t, n in recorder.counts.items())
            print(f"[disrt-record] wrote {args.out}: {recorder.total} messages ({counts})")
        return 0
    except BagError as err:
        print(f"disrt-record: error: {err}", file=sys.stderr)
        return 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    raise SystemExit(main())
