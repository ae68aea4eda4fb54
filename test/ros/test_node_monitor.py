"""The node's pressure outputs and repositioning monitor: ~/pressure, pose_json's pressure and
monitor, ~/alerts (turn due, pressure, bed exit), /diagnostics WARN, the state file."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import String

from disrt_ros.conversions import image_to_array
from disrt_ros.node import BedMonitorNode

from .fakes import CAM_HEIGHT, FakeEstimator, K, depth_frame
from .rosutil import fake_monitor, wait_until

pytestmark = pytest.mark.ros
FRAME = "camera_depth_optical_frame"
WATCHED = {"alerts": DiagnosticArray, "alerts_text": String, "pressure": Image,
           "pressure_overlay": Image}
#: stamps are seconds: 3 s without a turn, 2 s above 9.3 kPa, 0.5 s of hysteresis
MONITOR = {"posture_source": "pose", "turn_interval_min": 0.05,
           "pressure_alert_min": 2.0 / 60, "monitor_hold_s": 0.5, "pressure_alert_kpa": 9.3}


def start(ros, name: str, **overrides):
    fake = FakeEstimator()
    node, player = fake_monitor(ros, name, {**MONITOR, **overrides}, estimator=fake)
    qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    for topic, kind in WATCHED.items():
        player.create_subscription(kind, f"/m_{name}/{topic}",
                                   lambda m, k=("camera", topic): player._store(k, m), qos)
    assert wait_until(lambda: node.cameras["camera"].pubs["alerts"].get_subscription_count()
                      and node.cameras["camera"].pubs["pressure"].get_subscription_count()
                      and player.depth_pubs["camera"].get_subscription_count())
    return node, player, fake


def serve(player, stamp: int, body_mm: float = 250.0) -> bool:
    """Send frame ``stamp`` (s) until the node answers it (its stamped occupancy)."""
    depth = depth_frame(CAM_HEIGHT, body_mm=body_mm)
    return wait_until(lambda: (player.publish("camera", depth, stamp, FRAME, K),
                               player.stamped("camera", "occupancy", stamp))[1])


def stamped(player, topic: str, stamp: int):
    """The node's ``topic`` message for frame ``stamp``, once it has arrived (the topics of
    one frame arrive in no fixed order)."""
    assert wait_until(lambda: player.stamped("camera", topic, stamp) is not None), topic
    return player.stamped("camera", topic, stamp)


def events(player) -> list[tuple[str, str, float, int]]:
    """(kind, alert, time, level) of every ~/alerts message received, in order."""
    with player._lock:
        msgs = list(player.received[("camera", "alerts")])
    out = []
    for msg in msgs:
        (status,) = msg.status
        values = {kv.key: kv.value for kv in status.values}
        out.append((status.name, values.get("alert", ""), float(values["time"]), status.level))
    return out


def test_pressure_outputs_and_alerts(ros):
    node, player, fake = start(ros, "alerts")
    fake.sacrum_kpa = 12.0
    try:
        for stamp in range(1, 7):
            assert serve(player, stamp)
        # in bed from 1 s (confirmed at 2 s), the posture from 2 s; turn due at 1 + 3 = 4 s;
        # the sacrum above 9.3 kPa from 2 s (once in bed), its alert at 2 + 2 = 4 s
        assert wait_until(lambda: len(events(player)) >= 2)
        got = events(player)
        assert {(kind, alert) for kind, alert, _, _ in got} == {("alert", "turn_due"),
                                                                 ("alert", "pressure")}
        assert all(t == 4.0 and level == DiagnosticStatus.WARN for _, _, t, level in got)
        def texts():
            with player._lock:
                return [m.data for m in player.received[("camera", "alerts_text")]]
        assert wait_until(lambda: len(texts()) >= 2)  # published after each ~/alerts
        assert any("turn due" in t and "left" in t for t in texts())
        assert any("sacrum above 9.3 kPa" in t for t in texts())

        payload = json.loads(stamped(player, "pose_json", 6).data)
        assert payload["schema"] == "disrt_ros/pose/2"
        assert payload["pressure"]["regions"]["sacrum"]["peak_kpa"] == pytest.approx(12.0)
        assert payload["pressure"]["contact_cm2"] == 30 * 24  # the fake's 30 x 24 cell block
        monitor = payload["monitor"]
        assert monitor["posture"] == "left" and monitor["turns"] == 0
        assert monitor["since_turn_min"] == pytest.approx(5 / 60, abs=0.006)
        assert sorted(a["kind"] for a in monitor["alerts"]) == ["pressure", "turn_due"]

        image = stamped(player, "pressure", 6)
        assert image.encoding == "32FC1" and (image.height, image.width) == (192, 84)
        kpa = image_to_array(image)
        assert kpa.max() == pytest.approx(12.0) and kpa[100, 40] == pytest.approx(12.0)
        assert wait_until(lambda: player.latest("camera", "pressure_overlay") is not None)
        overlay = player.latest("camera", "pressure_overlay")
        assert overlay.encoding == "bgr8" and overlay.width == 84 * 3

        # /diagnostics: WARN while the alerts are active, naming them
        def warned():
            found = player.status("camera camera", lambda v: "turn due" in v["alerts"])
            return found and found[0].level == DiagnosticStatus.WARN and \
                "repositioning" in found[0].message
        assert wait_until(warned)

        # getting up clears them and is an event of its own
        fake.present = 0.1
        for stamp in range(7, 10):
            assert serve(player, stamp, body_mm=0.0)
        assert wait_until(lambda: any(e[0] == "out_of_bed" for e in events(player)))
        got = events(player)
        assert ("out_of_bed", "", 7.0, DiagnosticStatus.WARN) in got
        assert sorted(a for k, a, _, _ in got if k == "alert_cleared") == ["pressure",
                                                                          "turn_due"]
    finally:
        ros.remove(player)
        ros.remove(node)


def test_pressure_off_and_the_state_survives_a_restart(ros, tmp_path):
    path = tmp_path / "monitor.json"
    node, player, fake = start(ros, "restart1", pressure=False,
                               monitor_state_file=str(path), turn_interval_min=0.1)
    try:
        assert fake.pressure is False
        for stamp in range(1, 5):
            assert serve(player, stamp)
        payload = json.loads(stamped(player, "pose_json", 4).data)
        assert payload["pressure"] is None and payload["monitor"]["posture"] == "left"
        assert player.latest("camera", "pressure") is None
    finally:
        ros.remove(player)
        ros.remove(node)  # saves the state
    saved = json.loads(path.read_text())["camera"]
    assert saved["last_stamp"] == pytest.approx(4.0, abs=1e-3)
    assert saved["timeline"][-1][2] == "left"

    node, player, fake = start(ros, "restart2", monitor_state_file=str(path),
                               turn_interval_min=0.1)
    try:
        # lying since 1 s (before the restart): at 7 s the 6 s turn interval is over
        for stamp in range(5, 8):
            assert serve(player, stamp)
        assert wait_until(lambda: [e[:3] for e in events(player)] == [
            ("alert", "turn_due", 7.0)])
        monitor = json.loads(stamped(player, "pose_json", 7).data)["monitor"]
        assert monitor["since_turn_min"] == pytest.approx(6 / 60, abs=0.006)
    finally:
        ros.remove(player)
        ros.remove(node)
    assert json.loads(path.read_text())["camera"]["last_stamp"] == pytest.approx(7.0, abs=1e-3)
    assert not [p for p in tmp_path.iterdir() if p.name != "monitor.json"]


def test_an_unreadable_state_file_is_refused_naming_the_parameter(ros, tmp_path):
    from disrt_ros.params import ParameterError

    path = tmp_path / "monitor.json"
    path.write_text("{")
    with pytest.raises(ParameterError, match="monitor_state_file"):
        BedMonitorNode(estimator=FakeEstimator(), node_name="m_unreadable",
                       context=ros.context,
                       parameter_overrides=[Parameter("monitor_state_file", value=str(path))])
    assert path.read_text() == "{"  # left as it was
