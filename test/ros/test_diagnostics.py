"""Rate meter, once-per-kind problem log, DiagnosticStatus building."""

from __future__ import annotations

import pytest

pytest.importorskip("rclpy")

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
    assert log.take_new() == {"bed1", "bed2"} and log.take_new() == set()


def test_status_and_worst():
    status = diag.status("n: camera a", diag.WARN, "late", {"rate": 29.97123, "n": 3})
    assert status.level == diag.WARN and status.name == "n: camera a"
    assert [(v.key, v.value) for v in status.values] == [("rate", "29.97"), ("n", "3")]
    assert diag.worst([]) == (diag.OK, "ok")
    assert diag.worst([(diag.WARN, "a"), (diag.ERROR, "b"), (diag.ERROR, "c")]) == \
        (diag.ERROR, "b; c")
