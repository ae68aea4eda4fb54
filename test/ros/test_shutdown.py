"""SIGINT / SIGTERM end the node process at any moment within 3 s, with exit code 0, no
traceback and no ERROR line: while its modules import, during a long warm-up, in the middle
of a long predict, and while frames stream through it.

The node runs as its own process (busy_monitor.py: the console script's ``main()`` with an
estimator that keeps torch busy, as a real network does); every wait is for a line of its
output or a message, never for a time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy")

from .fakes import K, depth_frame
from .rosutil import TIMEOUT, Player, Ros, wait_until

pytestmark = pytest.mark.ros
HERE = Path(__file__).resolve().parent
STOP_WITHIN_S = 3.0  # the goal, from the signal to the process's end
START_TIMEOUT = 180.0  # a first start may import torch from a cold disk
FRAME = "camera_depth_optical_frame"


class Monitor:
    """A node process whose output (stdout and stderr) is collected line by line."""

    def __init__(self, args: list[str]):
        self.popen = subprocess.Popen(args, env=dict(os.environ, PYTHONUNBUFFERED="1"),
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @classmethod
    def busy(cls, warmup_s: float, predict_s: float, *params: str) -> Monitor:
        args = [sys.executable, str(HERE / "busy_monitor.py"), str(warmup_s), str(predict_s),
                "--ros-args", "-p", "device:=cpu", "-p", "cpu_threads:=1",
                # the fake frames are a bare plane under a camera 2 m up: no mattress to find
                "-p", "camera.bed_region:=pose", "-p", "camera.camera_height_m:=2.0"]
        for param in params:
            args += ["-p", param]
        return cls(args)

    def _read(self) -> None:
        for line in self.popen.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def count(self, text: str) -> int:
        with self._changed:
            return sum(text in line for line in self.lines)

    def wait_for(self, text: str, times: int = 1, timeout: float = START_TIMEOUT) -> None:
        with self._changed:
            ok = self._changed.wait_for(
                lambda: sum(text in line for line in self.lines) >= times
                or self.popen.poll() is not None, timeout)
        assert ok and self.count(text) >= times, f"no {text!r} (x{times}):\n{self.output}"

    def stop(self, sig: int) -> tuple[int, float]:
        """Send ``sig``; the exit code and the seconds until the process ended."""
        sent = time.monotonic()
        self.popen.send_signal(sig)
        try:
            code = self.popen.wait(STOP_WITHIN_S + 60)  # generous; the time is asserted
        except subprocess.TimeoutExpired:
            self.popen.kill()
            code = self.popen.wait(60)
        seconds = time.monotonic() - sent
        self._reader.join(10)
        return code, seconds

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(60)


def assert_clean_exit(monitor: Monitor, code: int, seconds: float) -> None:
    output = monitor.output
    print(f"exit code {code}, {seconds:.2f} s after the signal")
    assert code == 0, f"exit code {code}:\n{output}"
    for bad in ("Traceback", "terminate called", "ERROR", "Error"):
        assert bad not in output, f"{bad!r} in the output:\n{output}"
    assert seconds < STOP_WITHIN_S, f"ended {seconds:.2f} s after the signal:\n{output}"


@pytest.fixture
def monitors():
    started: list[Monitor] = []
    yield started
    for monitor in started:
        monitor.kill()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_a_long_warm_up(monitors, sig):
    """As with ``compile: default``, whose warm-up takes minutes: the signal lands while the
    inference thread computes and the main thread waits for it."""
    monitor = Monitor.busy(600, 0)
    monitors.append(monitor)
    monitor.wait_for("busy predict started")
    assert_clean_exit(monitor, *monitor.stop(sig))
    assert "bed monitor ready" not in monitor.output


def test_signal_while_its_modules_import(monitors):
    """The console script itself, signalled as soon as torch is being loaded."""
    script = Path(sys.executable).with_name("disrt-bed-monitor")
    monitor = Monitor([str(script), "--ros-args", "-p", "device:=cpu"])
    monitors.append(monitor)
    maps = Path(f"/proc/{monitor.popen.pid}/maps")

    def torch_loading() -> bool:
        try:
            return "libtorch" in maps.read_text()
        except OSError:  # ended, or not readable yet
            return monitor.popen.poll() is not None

    assert wait_until(torch_loading, timeout=START_TIMEOUT)
    assert_clean_exit(monitor, *monitor.stop(signal.SIGINT))


def _stream(ros: Ros, stop: threading.Event, rate_hz: float = 30.0) -> Player:
    """A camera publishing depth + CameraInfo at ``rate_hz`` until ``stop`` is set."""
    player = ros.add(Player(ros.context, {"camera": "camera"}, {"camera": "/bed_monitor/"}))
    depth = depth_frame()

    def run():
        stamp = 0
        while not stop.is_set():
            stamp += 1
            player.publish("camera", depth, stamp, FRAME, K)
            stop.wait(1 / rate_hz)

    threading.Thread(target=run, daemon=True).start()
    return player


@pytest.fixture
def ros():
    ros = Ros()
    yield ros
    ros.close()


def test_sigterm_in_the_middle_of_a_long_predict(monitors, ros):
    monitor = Monitor.busy(0, 600)
    monitors.append(monitor)
    monitor.wait_for("bed monitor ready")
    stop = threading.Event()
    try:
        _stream(ros, stop)
        monitor.wait_for("busy predict started", times=2)  # the warm-up's, then a frame's
        assert_clean_exit(monitor, *monitor.stop(signal.SIGTERM))
    finally:
        stop.set()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_while_streaming(monitors, ros, sig):
    """Frames flow and every output is subscribed: no 'processing failed' from a publisher
    whose context the signal invalidated."""
    monitor = Monitor.busy(0, 0.02, "display_rate_hz:=0.0")
    monitors.append(monitor)
    monitor.wait_for("bed monitor ready")
    stop = threading.Event()
    try:
        player = _stream(ros, stop)
        assert wait_until(lambda: player.latest("camera", "mesh_cloud") is not None
                          and monitor.count("busy predict started") > 10, timeout=TIMEOUT)
        assert_clean_exit(monitor, *monitor.stop(sig))
    finally:
        stop.set()
