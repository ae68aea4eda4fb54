"""disrt-replay: a bag written with rosbags is published through rclpy with its timing.

The replay runs as a subprocess (the console script's ``main``), the subscriber in this
process; both use the localhost-only discovery and random domain set by test/conftest.py.
Topic names get a random prefix so that parallel test runs cannot cross-talk.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import numpy as np
import pytest

from disrt_ros import bag_msgs
from disrt_ros.bags import IMAGE, STRING, BagReader, BagWriter

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip("rclpy")

from .rosutil import wait_until  # noqa: E402 (needs rclpy)

T0 = 1_700_000_000_000_000_000
IMAGE_AT = (0.0, 0.3, 0.8)  # seconds after the first message
TEXT_AT = (0.1, 0.9)
#: s; generous: the 2-core machine may be shared with a CPU hog. Pacing errors that matter
#: (no pacing, the wrong rate) move messages by 0.3 s or more.
TOLERANCE = 0.25


@pytest.fixture
def topics():
    prefix = f"/replay_{uuid.uuid4().hex[:8]}"
    return f"{prefix}/depth", f"{prefix}/text"


@pytest.fixture
def bag(tmp_path, topics):
    image_topic, text_topic = topics
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 4000, size=(24, 32), dtype=np.uint16) for _ in IMAGE_AT]
    path = tmp_path / "bag"
    with BagWriter(path) as out:
        out.add_topic(image_topic, IMAGE)
        out.add_topic(text_topic, STRING)
        events = [(t, image_topic, f) for t, f in zip(IMAGE_AT, frames)]
        events += [(t, text_topic, f"text {i}") for i, t in enumerate(TEXT_AT)]
        for t, topic, payload in sorted(events, key=lambda e: e[0]):
            stamp = T0 + int(t * 1e9)
            msg = (bag_msgs.depth_image(payload, stamp, "cam") if topic == image_topic
                   else bag_msgs.string(payload))
            out.write(topic, stamp, msg)
    return path, frames


class Listener:
    """Subscribes to the two topics in its own context and executor thread."""

    def __init__(self, image_topic, text_topic):
        from sensor_msgs.msg import Image
        from std_msgs.msg import String

        self.context = rclpy.context.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(f"listener_{uuid.uuid4().hex[:6]}", context=self.context)
        self.received: list[tuple[float, str, object]] = []
        self.node.create_subscription(
            Image, image_topic, lambda m: self._got(image_topic, m), 10)
        self.node.create_subscription(
            String, text_topic, lambda m: self._got(text_topic, m), 10)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _got(self, topic, msg):
        self.received.append((time.monotonic(), topic, msg))

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
        self.thread.join(timeout=5)


@pytest.fixture
def listener(topics):
    lis = Listener(*topics)
    yield lis
    lis.close()


def _replay(bag_path, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "disrt_ros.tools.replay", str(bag_path),
         "--wait-for-subscribers", "15", "--quiet", *args],
        env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _offsets(received, topic):
    first = received[0][0]
    return [t - first for t, name, _ in received if name == topic]


def test_replay_timing_and_content(bag, topics, listener):
    path, frames = bag
    image_topic, text_topic = topics
    proc = _replay(path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert wait_until(lambda: len(listener.received) >= 5)  # 3 images and 2 strings
    got = list(listener.received)
    assert [name for _, name, _ in got].count(image_topic) == 3
    np.testing.assert_allclose(_offsets(got, image_topic), IMAGE_AT, atol=TOLERANCE)
    np.testing.assert_allclose(_offsets(got, text_topic), TEXT_AT, atol=TOLERANCE)
    images = [m for _, name, m in got if name == image_topic]
    for msg, frame, at in zip(images, frames, IMAGE_AT):
        np.testing.assert_array_equal(bag_msgs.image_to_array(msg), frame)
        assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == T0 + int(at * 1e9)
    assert [m.data for _, name, m in got if name == text_topic] == ["text 0", "text 1"]


def test_replay_rate_loop_and_topic_filter(bag, topics, listener):
    path, _ = bag
    image_topic, _ = topics
    proc = _replay(path, "--rate", "2", "--loop", "--topics", image_topic)
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and len(listener.received) < 7:
            assert proc.poll() is None, proc.communicate()[1]
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    got = list(listener.received)
    assert len(got) >= 7 and {name for _, name, _ in got} == {image_topic}
    offsets = np.array(_offsets(got, image_topic)[:6])
    # the second pass starts right when the first one ends (0.8 s / 2)
    expected = np.array(IMAGE_AT + tuple(0.8 + t for t in IMAGE_AT)) / 2
    np.testing.assert_allclose(offsets, expected, atol=TOLERANCE)


def test_replay_errors(tmp_path, bag):
    path, _ = bag
    proc = _replay(path, "--topics", "/not_there")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "has no topic /not_there" in err
    proc = _replay(tmp_path / "missing")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "does not exist" in err
    proc = _replay(path, "--rate", "0")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "--rate must be > 0" in err
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    for f in path.iterdir():
        data = f.read_bytes()
        (truncated / f.name).write_bytes(data if f.name == "metadata.yaml" else data[:-100])
    proc = _replay(truncated)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "ends early" in err


def _record(out, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "disrt_ros.tools.record", "--out", str(out), *args],
        env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_replay_into_record_keeps_every_message(bag, topics, tmp_path):
    """disrt-replay -> disrt-record: the recorded bag holds the same CDR bytes."""
    path, _ = bag
    out = tmp_path / "recorded"
    recorder = _record(out, *topics, "--max-messages", "5", "--duration", "60")
    player = _replay(path)
    assert player.wait(timeout=60) == 0, player.communicate()[1]
    _, err = recorder.communicate(timeout=60)
    assert recorder.returncode == 0, err
    with BagReader(path) as original, BagReader(out) as recorded:
        # compare decoded messages: rclpy hands over CDR with trailing alignment padding
        def decoded(reader):
            out = []
            for m in reader.messages():
                msg = reader.decode(m)
                if m.msgtype == IMAGE:
                    out.append((m.topic, bag_msgs.stamp_ns(msg.header),
                                bag_msgs.image_to_array(msg).tobytes()))
                else:
                    out.append((m.topic, msg.data))
            return sorted(out)

        assert decoded(recorded) == decoded(original)
        assert recorded.topics[topics[0]].msgtype == IMAGE
        assert recorded.topics[topics[0]].qos[0].reliability.name == "RELIABLE"


def test_record_ctrl_c_keeps_a_complete_bag(bag, topics, tmp_path, listener):
    path, _ = bag
    out = tmp_path / "recorded"
    recorder = _record(out, topics[0])
    player = _replay(path, "--loop", "--rate", "4", "--topics", topics[0])
    try:
        for line in recorder.stderr:  # rclpy logs to stderr
            if "recording" in line:
                break
        seen = len(listener.received)  # a second subscriber: messages are flowing
        assert wait_until(lambda: len(listener.received) >= seen + 10)
        recorder.send_signal(signal.SIGINT)
        _, err = recorder.communicate(timeout=30)
    finally:
        player.terminate()
        player.communicate(timeout=20)
    assert recorder.returncode == 0, err
    assert not list(tmp_path.glob(".recorded.partial-*"))
    with BagReader(out) as recorded:
        assert recorded.topics[topics[0]].count >= 3
