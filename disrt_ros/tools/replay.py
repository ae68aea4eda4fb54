"""``disrt-replay BAG [--rate 1.0] [--loop] [--topics ...]``: publish a rosbag2 bag with its
original timing through rclpy, for machines without the ros2 CLI (``ros2 bag play`` does the
same where ROS is installed).

Messages go out as stored (CDR bytes, no decoding), in log-time order, each at
``start + (t - t_first) / rate`` on the monotonic clock; header stamps stay as recorded. Each
topic is published with the QoS ``ros2 bag play`` would pick from the recorded offered
profiles: reliable unless some recorded publisher was best-effort, transient-local only if
all were. ``--loop`` starts over right after the last message. Remap topics with the usual
``--ros-args -r /old:=/new``. Topics whose message package is not installed in this Python
are refused by name (leave them out with ``--topics``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rosbags.interfaces import QosDurability, QosReliability

from disrt_ros.bags import BagError, BagReader, TopicInfo

QUEUE_DEPTH = 10  # keep-last depth of each publisher
LINGER_S = 0.5  # time left for the last messages to leave before the publishers go


def message_class(msgtype: str):
    """The rclpy message class of "pkg/msg/Name" (e.g. sensor_msgs.msg.Image)."""
    package, kind, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ImportError, AttributeError):
        raise BagError(f"message type {msgtype} is not installed in this Python (source a ROS "
                       f"install, or pip install ros-jazzy-{package.replace('_', '-')}); "
                       "leave its topic out with --topics") from None


def replay_qos(info: TopicInfo):
    """QoS of the replay publisher of a topic, from its recorded offered profiles."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    best_effort = any(q.reliability == QosReliability.BEST_EFFORT for q in info.qos)
    latched = bool(info.qos) and all(
        q.durability == QosDurability.TRANSIENT_LOCAL for q in info.qos)
    return QoSProfile(
        depth=QUEUE_DEPTH,
        reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


@dataclass
class ReplayStats:
    """What a replay did."""

    published: dict[str, int] = field(default_factory=dict)
    passes: int = 0
    max_late_s: float = 0.0  # worst delay of a publish behind its scheduled time
    wall_s: float = 0.0


def _wait_for_subscribers(node, publishers: dict, timeout: float) -> bool:
    """Block until every publisher has a subscriber (or ``timeout`` s); True if all did."""
    import rclpy

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and rclpy.ok(context=node.context):
        if all(p.get_subscription_count() > 0 for p in publishers.values()):
            time.sleep(0.5)  # let the subscribers' side of discovery finish too
            return True
        time.sleep(0.05)
    lonely = [t for t, p in publishers.items() if p.get_subscription_count() == 0]
    node.get_logger().warning(f"no subscriber after {timeout:.1f} s on: {', '.join(lonely)}")
    return not lonely


def replay(node, bag: str | Path, *, rate: float = 1.0, loop: bool = False,
           topics: Iterable[str] | None = None, wait_for_subscribers: float = 0.0,
           delay: float = 0.0, should_stop: Callable[[], bool] = lambda: False,
           progress: bool = False) -> ReplayStats:
    """Publish ``bag`` from ``node`` with the original timing divided by ``rate``.

    Returns after one pass (or, with ``loop``, when ``should_stop()`` turns true or the
    context shuts down). ``wait_for_subscribers``: seconds to wait for a subscriber on every
    topic before starting; ``delay``: extra seconds before the first message.
    """
    import rclpy
    from rclpy.duration import Duration
    from tqdm import tqdm

    if not rate > 0:
        raise BagError(f"--rate must be > 0, got {rate}")
    with BagReader(bag) as reader:
        names = sorted(reader.topics) if topics is None else list(dict.fromkeys(topics))
        for name in names:
            if name not in reader.topics:
                raise BagError(f"bag {bag} has no topic {name} (it has: "
                               f"{', '.join(sorted(reader.topics))})")
        infos = {name: reader.topics[name] for name in names}
        total = sum(info.count for info in infos.values())
    publishers = {name: node.create_publisher(message_class(info.msgtype), name,
                                              replay_qos(info))
                  for name, info in infos.items()}
    if wait_for_subscribers > 0:
        _wait_for_subscribers(node, publishers, wait_for_subscribers)
    if delay > 0:
        time.sleep(delay)

    stats = ReplayStats(published={name: 0 for name in names})
    began = time.monotonic()
    bar = tqdm(total=None if loop else total, unit="msg", disable=not progress,
               desc=Path(bag).name)
    try:
        while True:
            with BagReader(bag) as reader:
                first = start = None
                for message in reader.messages(names):
                    if first is None:  # the clock starts at the first message read, so
                        # the time to open the bag does not delay the whole pass
                        first, start = message.timestamp_ns, time.monotonic()
                    target = start + (message.timestamp_ns - first) / 1e9 / rate
                    while (wait := target - time.monotonic()) > 0:
                        if should_stop() or not rclpy.ok(context=node.context):
                            return stats
                        time.sleep(min(wait, 0.05))
                    stats.max_late_s = max(stats.max_late_s, time.monotonic() - target)
                    publishers[message.topic].publish(message.data)
                    stats.published[message.topic] += 1
                    bar.update()
            stats.passes += 1
            if not loop or should_stop() or not rclpy.ok(context=node.context):
                return stats
    finally:
        if rclpy.ok(context=node.context):  # deliver the last messages before leaving:
            for publisher in publishers.values():  # reliable readers acknowledge them;
                publisher.wait_for_all_acked(Duration(seconds=2))
            time.sleep(LINGER_S)  # best-effort ones cannot, and a large image goes out in
            # fragments that a publisher destroyed at once would never finish sending
        stats.wall_s = time.monotonic() - began
        bar.close()
        for publisher in publishers.values():
            node.destroy_publisher(publisher)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="disrt-replay", description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        epilog="ROS arguments go after --ros-args, e.g. --ros-args -r /a:=/b")
    parser.add_argument("bag", type=Path, help="rosbag2 bag (directory, .mcap or .db3)")
    parser.add_argument("--rate", type=float, default=1.0, help="speed factor (default 1.0)")
    parser.add_argument("--loop", action="store_true", help="start over at the end, forever")
    parser.add_argument("--topics", nargs="+", metavar="TOPIC",
                        help="publish only these topics (default: all)")
    parser.add_argument("--delay", type=float, default=0.0,
                        help="seconds to wait before the first message")
    parser.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="SECONDS",
                        help="wait up to SECONDS for a subscriber on every topic first")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    return parser


def main(argv: list[str] | None = None) -> int:
    import rclpy
    from rclpy.utilities import remove_ros_args

    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(remove_ros_args(argv))
    rclpy.init(args=["disrt-replay", *argv])
    node = None
    try:
        node = rclpy.create_node("disrt_replay")
        stats = replay(node, args.bag, rate=args.rate, loop=args.loop, topics=args.topics,
                       wait_for_subscribers=args.wait_for_subscribers, delay=args.delay,
                       progress=not args.quiet)
        if not args.quiet:
            counts = ", ".join(f"{t} {n}" for t, n in stats.published.items())
            print(f"[disrt-replay] {sum(stats.published.values())} messages in "
                  f"{stats.wall_s:.2f} s ({counts}); worst lateness "
                  f"{1000 * stats.max_late_s:.1f} ms")
        return 0
    except BagError as err:
        print(f"disrt-replay: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    raise SystemExit(main())
