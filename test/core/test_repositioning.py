"""The repositioning monitor: turns, flicker, alerts, an empty bed, exits, restarts."""

from __future__ import annotations

import json

import pytest

from disrt_core.repositioning import Monitor, Settings, load_states, save_states

REGIONS = ("occiput", "sacrum", "heel_left")
SETTINGS = Settings(turn_interval_s=600.0, pressure_alert_kpa=9.3, pressure_alert_s=300.0,
                    load_kpa=4.3, hold_s=5.0, max_gap_s=60.0)


def feed(monitor: Monitor, start: float, seconds: float, occupancy: str = "in_bed",
         posture: str | None = "supine", peaks: dict | None = None, step: float = 1.0):
    """Frames every ``step`` s from ``start`` for ``seconds``; all events, and the next
    stamp."""
    events, t = [], start
    while t < start + seconds - 1e-9:
        events += monitor.update(t, occupancy, posture if occupancy == "in_bed" else None,
                                 peaks)
        t += step
    return events, t


def kinds(events) -> list[str]:
    return [e.kind for e in events]


def test_a_turn_is_dated_when_the_new_posture_began():
    m = Monitor(SETTINGS, REGIONS)
    events, t = feed(m, 0.0, 120.0, posture="supine")
    assert events == [] and m.summary()["posture"] == "supine"
    # in bed confirmed at 5 s, dated to its first frame (0 s); the posture 5 s later
    assert m.summary()["since_turn_min"] == pytest.approx(119 / 60, abs=0.006)
    events, t = feed(m, t, 60.0, posture="left")
    assert kinds(events) == ["turn"]
    turn = events[0]
    assert turn.stamp == 120.0 and turn.data == {"from": "supine", "to": "left", "turns": 1}
    s = m.summary(t - 1)
    assert s["turns"] == 1 and s["posture"] == "left"
    assert s["since_turn_min"] == pytest.approx((179 - 120) / 60, abs=0.006)
    assert s["in_posture_min"] == pytest.approx((179 - 120) / 60, abs=0.006)
    # the timeline: unknown 0..5 s (in bed, posture not yet confirmed), supine from 5 s
    # (first seen once in bed) until the turn, left since
    labels = [(seg[2], seg[0], seg[1]) for seg in m.timeline]
    assert labels == [("unknown", 0.0, 5.0), ("supine", 5.0, 120.0), ("left", 120.0, 179.0)]
    assert m.totals == pytest.approx({"unknown": 5.0, "supine": 115.0, "left": 59.0})


def test_single_frame_flicker_changes_nothing():
    m = Monitor(SETTINGS, REGIONS)
    events, t = feed(m, 0.0, 30.0)
    for k in range(200):  # every fourth frame wrong: another posture or an empty bed
        wrong = k % 4 == 3
        occupancy = "empty" if wrong and k % 8 == 7 else "in_bed"
        posture = ("prone" if wrong else "supine") if occupancy == "in_bed" else None
        events += m.update(t, occupancy, posture)
        t += 1.0
    assert events == [] and m.turns == 0
    assert [seg[2] for seg in m.timeline] == ["unknown", "supine"]
    # a real change still shows, after the hold
    events, _ = feed(m, t, 10.0, posture="right")
    assert kinds(events) == ["turn"] and events[0].stamp == t


def test_turn_due_alert_raised_and_cleared_by_a_turn():
    m = Monitor(SETTINGS, REGIONS)
    events, t = feed(m, 0.0, 600.0)
    assert events == []  # lying since 0 s: 599 s < 600 s
    events, t = feed(m, t, 20.0)
    assert kinds(events) == ["alert"] and events[0].data["alert"] == "turn_due"
    assert events[0].stamp == 600.0 and events[0].level == "warn"
    assert "supine" in events[0].message
    assert [a["kind"] for a in m.summary()["alerts"]] == ["turn_due"]
    events, t = feed(m, t, 10.0, posture="left")
    # the turn is dated to its first frame, which clears the alert on the frame confirming it
    assert kinds(events) == ["turn", "alert_cleared"]
    assert m.summary()["alerts"] == []


def test_pressure_alert_after_the_region_stays_high():
    m = Monitor(SETTINGS, REGIONS)
    high = {"occiput": 2.0, "sacrum": 12.0, "heel_left": 5.0}
    events, t = feed(m, 0.0, 290.0, peaks=high)
    assert events == []
    events, t = feed(m, t, 40.0, peaks=high)
    assert kinds(events) == ["alert"] and events[0].data == {"alert": "pressure",
                                                            "region": "sacrum"}
    # above since the first high frame once in bed (5 s), alert 300 s later
    assert events[0].stamp == pytest.approx(305.0)
    low = dict(high, sacrum=6.0)
    events, t = feed(m, t, 20.0, peaks=low)
    assert kinds(events) == ["alert_cleared"]
    assert events[0].stamp == pytest.approx(330.0 + 5.0)  # after the hold


def test_load_is_integrated_above_the_threshold():
    m = Monitor(SETTINGS, REGIONS)
    peaks = {"occiput": 3.0, "sacrum": 6.3, "heel_left": 4.3}
    feed(m, 0.0, 20.0, peaks=peaks)  # posture known from 10 s (the load counts in bed)
    feed(m, 20.0, 600.0, peaks=peaks)
    load = m.summary()["load_kpa_min"]
    # in bed (confirmed) from the frame at 5 s on: 615 frames of 1 s, 2 kPa above 4.3
    assert load["sacrum"] == pytest.approx(2.0 * 615 / 60, rel=1e-6)
    assert load["occiput"] == 0.0 and load["heel_left"] == 0.0


def test_empty_bed_has_no_posture_nor_alerts():
    m = Monitor(SETTINGS, REGIONS)
    events, _ = feed(m, 0.0, 2000.0, occupancy="empty")
    assert events == []
    s = m.summary()
    assert s["bed"] == "empty" and s["posture"] is None and s["since_turn_min"] is None
    assert s["alerts"] == [] and s["turns"] == 0
    assert [seg[2] for seg in m.timeline] == ["out_of_bed"]


def test_bed_exit_and_return_restart_the_turn_clock():
    m = Monitor(SETTINGS, REGIONS)
    events, t = feed(m, 0.0, 640.0)
    assert kinds(events) == ["alert"]
    events, t = feed(m, t, 30.0, occupancy="sitting_on_edge")
    assert kinds(events) == ["sitting_on_edge", "alert_cleared"]
    assert events[0].level == "warn" and events[0].stamp == 640.0
    events, t = feed(m, t, 60.0, occupancy="empty")
    assert kinds(events) == ["out_of_bed"] and events[0].stamp == 670.0
    events, t = feed(m, t, 100.0, posture="right")
    assert kinds(events) == ["back_in_bed"] and events[0].stamp == 730.0
    s = m.summary(t - 1)
    assert s["turns"] == 0 and s["posture"] == "right"  # lying down again is no turn
    assert s["since_turn_min"] == pytest.approx((829 - 730) / 60, abs=0.006)
    assert [seg[2] for seg in m.timeline] == ["unknown", "supine", "sitting_on_edge",
                                              "out_of_bed", "unknown", "right"]


def test_restart_from_the_state_file_continues_as_if_uninterrupted(tmp_path):
    def night(monitor, start, stop):
        events = []
        plan = [("supine", 400.0), ("left", 700.0), ("prone", 300.0)]
        clock = 0.0
        for posture, length in plan:
            for _ in range(int(length)):
                if start <= clock < stop:
                    events += monitor.update(clock, "in_bed", posture,
                                             {"occiput": 0.0, "sacrum": 10.0,
                                              "heel_left": 5.0})
                clock += 1.0
        return events

    whole = Monitor(SETTINGS, REGIONS)
    expected = night(whole, 0.0, 1e9)
    first = Monitor(SETTINGS, REGIONS)
    events = night(first, 0.0, 650.0)
    path = tmp_path / "state" / "monitor.json"
    save_states(path, {"camera": first})
    assert json.loads(path.read_text())["camera"]["schema"] == "disrt_core/repositioning/1"
    assert [p.name for p in path.parent.iterdir()] == ["monitor.json"]  # no temporary left
    again = load_states(path, SETTINGS)["camera"]
    events += night(again, 650.0, 1e9)
    assert [(e.stamp, e.kind) for e in events] == [(e.stamp, e.kind) for e in expected]
    assert again.summary() == whole.summary()
    assert again.timeline == whole.timeline


def test_a_long_gap_resets_the_live_state():
    m = Monitor(SETTINGS, REGIONS)
    events, t = feed(m, 0.0, 640.0)
    assert kinds(events) == ["alert"]
    events, t = feed(m, t + 700.0, 3.0)
    assert kinds(events) == ["reset"] and events[0].data == {"cleared": ["turn_due"]}
    assert events[0].level == "warn" and "no frame for" in events[0].message
    assert m.summary()["bed"] is None and m.summary()["alerts"] == []
    assert [seg[2] for seg in m.timeline] == ["unknown", "supine"]  # history kept


def test_unreadable_state_file_names_the_file(tmp_path):
    path = tmp_path / "monitor.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"monitor\.json"):
        load_states(path)
    assert load_states(tmp_path / "missing.json") == {}
