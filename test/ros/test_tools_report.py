"""disrt-report: a night of the node's outputs (built with the node's own message builders and
monitor) -> timeline, turns, alerts, bed exits and pressure per region, as the node saw them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy")

from disrt_core.pressure import REGIONS
from disrt_core.repositioning import Monitor, Settings
from disrt_ros.bags import STRING, BagWriter
from disrt_ros.tools import report

PREFIX = "/bed_monitor/"
DIAG = "diagnostic_msgs/msg/DiagnosticArray"
START = 1_700_000_000
SETTINGS = Settings(turn_interval_s=600.0, pressure_alert_kpa=9.3, pressure_alert_s=300.0,
                    load_kpa=4.3, hold_s=5.0)
#: (minutes, bed state, posture, sacrum peak kPa): 15 min supine, a turn, 15 min on the
#: left side, 3 min out of bed, 7 min supine again
PLAN = [(15, "in_bed", "supine", 10.0), (15, "in_bed", "left", 3.0),
        (3, "empty", None, None), (7, "in_bed", "supine", 6.0)]


def _night_bag(path, with_occupancy=True) -> tuple[list, Monitor]:
    """The node's outputs of the planned night at 1 Hz, and the live monitor it ran."""
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header

    from disrt_ros.conversions import FrameResult, pose_json, state_message
    from disrt_ros.monitoring import event_message

    live, events, t = Monitor(SETTINGS, REGIONS), [], 0
    with BagWriter(path) as bag:
        for topic, kind in (("pose_json", STRING), ("occupancy", DIAG), ("alerts", DIAG)):
            bag.add_topic(PREFIX + topic, kind)
        for minutes, state, posture, sacrum in PLAN:
            for _ in range(60 * minutes):
                stamp = START + t
                header = Header(frame_id="camera_depth_optical_frame")
                header.stamp.sec = stamp
                regions = None if sacrum is None else {
                    r: ((sacrum if r == "sacrum" else 2.0), 1.5) for r in REGIONS}
                result = FrameResult(
                    camera="camera", header=header, joints_bed=np.zeros((24, 3)),
                    joints_cam=np.zeros((24, 3)), vertices_cam=np.zeros((1, 3)),
                    joint_spread=np.zeros(24), params=np.zeros(84),
                    root_quat_cam=np.array([0.0, 0.0, 0.0, 1.0]), posture=posture or "supine",
                    hypotheses=1, T_cam_bed=np.eye(4), net_image=np.zeros((128, 54)),
                    occupancy=state, pressure=None if sacrum is None else
                    np.full((192, 84), 1.0), region_pressure=regions)
                new = live.update(float(stamp), state, posture,
                                  None if regions is None else {r: v[0] for r, v in
                                                                regions.items()})
                result.monitor = live.summary()
                events += new
                ns = stamp * 10**9
                if with_occupancy:
                    bag.write(PREFIX + "occupancy", ns, serialize_message(
                        state_message(header, "occupancy", state, "camera")))
                if state == "in_bed":
                    bag.write(PREFIX + "pose_json", ns, serialize_message(
                        pose_json(result, [f"j{i}" for i in range(24)], "fake")))
                for event in new:
                    bag.write(PREFIX + "alerts", ns,
                              serialize_message(event_message(header, "camera", event)))
                t += 1
    return events, live


def test_the_report_tells_the_night_as_the_node_saw_it(tmp_path):
    events, live = _night_bag(tmp_path / "night")
    out = tmp_path / "report"
    assert report.main([str(tmp_path / "night"), "--out", str(out), "--turn-interval-min", "10",
                        "--pressure-alert-min", "5", "--hold-s", "5"]) == 0
    text = (out / "night_report.md").read_text()
    kinds = [e.kind for e in events]
    # the live monitor: one turn, the turn and sacrum alerts, out of bed and back
    assert kinds.count("turn") == 1 and "out_of_bed" in kinds and "back_in_bed" in kinds
    assert "## Turns: 1" in text and "| supine | left |" in text
    raised = [e for e in events if e.kind == "alert"]
    assert {e.data["alert"] for e in raised} == {"turn_due", "pressure"}
    assert f"## Alerts: {len(raised)}" in text
    assert f"The node published {len(events)} events on ~/alerts" in text
    assert "out of bed" in text and "back in bed" in text
    # time per posture, as the live monitor counted it (minutes, one decimal)
    for label, seconds in live.totals.items():
        assert f"| {label} | {seconds / 60:.1f} min |" in text
    assert abs(live.totals["supine"] - (15 + 7) * 60) < 30  # hysteresis: seconds off
    # the sacrum: 10 kPa for 15 min, above 9.3 kPa for all of it; load above 4.3 kPa
    row = next(line for line in text.splitlines() if line.startswith("| sacrum |"))
    load = (10 - 4.3) * 15 + (6 - 4.3) * 7  # kPa·min
    assert "| 10.0 kPa |" in row and f"{load:.0f} kPa·min" in row
    assert f"{live.load['sacrum']:.0f} kPa·min" in row
    for name in ("timeline.png", "regions.png"):
        image = cv2.imread(str(out / name))
        assert image is not None and image.shape[1] == 1200 and image.std() > 10


def test_without_occupancy_the_pose_frames_count_as_in_bed(tmp_path):
    _night_bag(tmp_path / "night", with_occupancy=False)
    assert report.main([str(tmp_path / "night"), "--out", str(tmp_path / "r"),
                        "--turn-interval-min", "10", "--hold-s", "5"]) == 0
    text = (tmp_path / "r" / "night_report.md").read_text()
    # the 3 min out of bed are a gap in the frames, shorter than the turn interval: the
    # left side then supine again counts as a turn, and no bed exit is known
    assert "## Turns: 2" in text and "## Bed exits and returns: 0" in text


def test_a_bag_without_results_says_what_to_record(tmp_path, capsys):
    from rclpy.serialization import serialize_message
    from std_msgs.msg import String

    with BagWriter(tmp_path / "empty") as bag:
        bag.add_topic("/other", STRING)
        bag.write("/other", START * 10**9, serialize_message(String(data="{}")))
    assert report.main([str(tmp_path / "empty"), "--out", str(tmp_path / "r")]) == 1
    assert "record the node's ~/pose_json" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
