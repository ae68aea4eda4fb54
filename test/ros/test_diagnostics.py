"""Rate meter, stamp-based camera rate, once-per-kind problem log, the camera levels (each
row of the table in disrt_ros.diagnostics), DiagnosticStatus building."""

from __future__ import annotations

import pytest

pytest.importorskip("rclpy")

import numpy as np

from disrt_ros import diagnostics as diag


def test_rate_meter_counts_the_window():
    meter = diag.RateMeter(window_s=2.0)
    start = meter.created
    for i in range(40):  # 20 Hz for 2 s
        meter.tick(start + 0.05 * i)
    assert meter.rate(start + 2.0) == pytest.approx(20.0, rel=0.03)
    assert meter.total == 40 and meter.last() == pytest.approx(start + 1.95)
    assert meter.rate(start + 10.0) == 0.0  # quiet for longer than the window
    # Within the first window the rate divides by the time elapsed since creation.
    young = diag.RateMeter(window_s=5.0)
    for i in range(10):
        young.tick(young.created + 0.1 * i)
    assert young.rate(young.created + 1.0) == pytest.approx(10.0)


def test_problem_log_logs_each_kind_once_per_camera_and_counts_all():
    lines = []
    log = diag.ProblemLog(lambda level, text: lines.append((level, text)))
    assert log.report("bed1", "encoding", "bad encoding", "error") is True
    assert log.report("bed1", "encoding", "bad encoding", "error") is False
    assert log.report("bed2", "encoding", "bad encoding", "error") is True
    assert log.report("bed1", "empty", "empty frame", "warn") is True
    assert [level for level, _ in lines] == ["error", "debug", "error", "warn"]
    assert lines[0][1].startswith("[bed1] bad encoding")
    counts, last = log.snapshot("bed1")
    assert counts == {"encoding": 2, "empty": 1} and last[1:] == ("empty", "empty frame", "warn")
    # The worst new problem per camera since the last call: bed1's error outranks its warn.
    assert log.take_new() == {"bed1": (diag.ERROR, "bad encoding"),
                              "bed2": (diag.ERROR, "bad encoding")}
    assert log.take_new() == {}
    assert log.report("bed1", "waiting", "no CameraInfo yet", "info") is True
    assert log.take_new() == {}  # info: logged and counted, no level
    log.report("bed1", "empty", "empty again", "warn")
    assert log.take_new() == {"bed1": (diag.WARN, "empty again")}


def test_status_and_worst():
    status = diag.status("n: camera a", diag.WARN, "late", {"rate": 29.97123, "n": 3})
    assert status.level == diag.WARN and status.name == "n: camera a"
    assert [(v.key, v.value) for v in status.values] == [("rate", "29.97"), ("n", "3")]
    assert diag.worst([]) == (diag.OK, "ok")
    assert diag.worst([(diag.WARN, "a"), (diag.ERROR, "b"), (diag.ERROR, "c")]) == \
        (diag.ERROR, "b; c")


def test_rate_meter_count_is_over_the_window():
    meter = diag.RateMeter(window_s=1.0)
    t = meter.created
    for i in range(10):
        meter.tick(t + 0.3 * i)  # 0 .. 2.7 s
    assert meter.count(t + 2.75) == 4  # 1.8, 2.1, 2.4, 2.7 within the last second
    assert meter.first(t + 2.75) == pytest.approx(t + 1.8)
    assert meter.count(t + 10) == 0 and meter.first(t + 10) is None


def _stamps_received(keep: np.ndarray, period_ns: int = 33_333_333, jitter_ns: int = 0,
                     seed: int = 0) -> diag.StampRate:
    """A 30 Hz camera whose frames ``keep`` (bool per frame) reached the node."""
    rng = np.random.default_rng(seed)
    rate = diag.StampRate(window_s=5.0)
    for i in np.flatnonzero(keep):
        stamp = 1_700_000_000_000_000_000 + i * period_ns + int(rng.integers(-jitter_ns,
                                                                             jitter_ns + 1))
        rate.add(stamp, now=100.0 + i / 30)
    return rate


def test_stamp_rate_estimates_the_camera_rate_and_the_share_received():
    rng = np.random.default_rng(1)
    everything = _stamps_received(np.ones(120, bool))
    hz, fraction = everything.estimate(now=104.0)
    assert hz == pytest.approx(30.0, rel=1e-6) and fraction == 1.0
    # 6 frames in 10 reach the node at random (the 640x480 best-effort case): the
    # neighbours still show the camera's period, with 3 ms of stamp jitter.
    keep = rng.random(150) < 0.6
    hz, fraction = _stamps_received(keep, jitter_ns=3_000_000).estimate(now=105.0)
    assert hz == pytest.approx(30.0, rel=0.05)
    assert fraction == pytest.approx(keep.sum() / (np.ptp(np.flatnonzero(keep)) + 1), abs=0.05)
    # 1 in 10 (the reliable-publisher case): still estimated, far below the threshold.
    keep = rng.random(150) < 0.1
    hz, fraction = _stamps_received(keep).estimate(now=105.0)
    assert hz == pytest.approx(30.0, rel=0.05) and fraction < diag.MIN_RECEIVED_FRACTION
    # Too few frames to judge, repeated stamps (one frame sent twice), an old window.
    assert _stamps_received(np.arange(40) < 5).estimate(now=100.3) == (None, None)
    twice = _stamps_received(np.ones(20, bool))
    twice.add(1_700_000_000_000_000_000, now=100.5)
    assert twice.estimate(now=100.7)[1] == 1.0
    assert everything.estimate(now=200.0) == (None, None)


def health(**overrides) -> diag.CameraHealth:
    """A camera that is fine: frames arriving, CameraInfo, few drops."""
    values = dict(depth_topic="/cam/depth/image_rect_raw", info_topic="/cam/depth/camera_info",
                  camera="bed1", input_qos="reliable", since_frame_s=0.1, receiving_s=10.0,
                  publishers=1, intrinsics="camera_info", handed=30, dropped=10,
                  received_fraction=1.0, camera_rate_hz=30.0)
    return diag.CameraHealth(**{**values, **overrides})


LEVELS = [  # (what happens, overrides, level, words of the message)
    ("all well", {}, diag.OK, "ok"),
    ("half the frames dropped (a 2-core CPU answering 15 of 30 Hz)",
     {"handed": 30, "dropped": 15}, diag.OK, "ok"),
    ("94 % of the frames dropped", {"handed": 100, "dropped": 94}, diag.WARN,
     "94% of the frames dropped"),
    ("few frames: drops not judged", {"handed": 4, "dropped": 4}, diag.OK, "ok"),
    ("no frame yet, no publisher", {"since_frame_s": None, "receiving_s": 0.0,
                                     "publishers": 0}, diag.WARN, "no publisher"),
    ("camera quiet, publisher present", {"since_frame_s": 5.0}, diag.WARN,
     "does their QoS match input_qos reliable"),
    ("best-effort publisher, reliable subscription",
     {"since_frame_s": None, "qos_incompatible": "/cam/depth/image_rect_raw (RELIABILITY)"},
     diag.WARN, "set input_qos:=sensor_data"),
    ("frames lost in transport", {"received_fraction": 0.1}, diag.WARN,
     "only 10% of the camera's 30 Hz frames arrive"),
    ("intrinsics from the parameter", {"intrinsics": "parameter"}, diag.WARN,
     "using bed1.intrinsics"),
    ("no CameraInfo yet, within the grace time",
     {"intrinsics": "none", "receiving_s": diag.CAMERA_INFO_GRACE_S / 2}, diag.OK, "ok"),
    ("no CameraInfo and no intrinsics: no usable geometry",
     {"intrinsics": "none", "receiving_s": diag.CAMERA_INFO_GRACE_S}, diag.ERROR,
     "no frame can be used"),
    ("a frame skipped for its content since the last report",
     {"problem": (diag.WARN, "frame with 1% valid depth pixels")}, diag.WARN, "valid depth"),
    ("an unreadable frame, bed not found or failed inference since the last report",
     {"problem": (diag.ERROR, "bed_region auto: finding the bed failed")}, diag.ERROR,
     "finding the bed failed"),
    ("errors outrank warnings", {"intrinsics": "parameter", "problem": (diag.ERROR, "boom")},
     diag.ERROR, "boom"),
]


@pytest.mark.parametrize("case,overrides,level,words", LEVELS, ids=[c[0] for c in LEVELS])
def test_camera_levels(case, overrides, level, words):
    got, message = diag.camera_level(health(**overrides))
    assert (got, words in message) == (level, True), message
