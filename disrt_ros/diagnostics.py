"""Health of the node on ``/diagnostics`` (``diagnostic_msgs/DiagnosticArray``).

One ``DiagnosticStatus`` for the inference engine (``<node>: inference``: device, model id,
DDIM steps, hypotheses, latency p50/p99 from depth received to outputs published, batches,
last error) and one per camera (``<node>: camera <name>``: input rate, output rate, dropped
frames, rate-limited frames, bad frames by kind, last problem). Levels: ERROR after a failed
inference or when a camera has no usable geometry, WARN when bad input or drops happened
since the previous report or a camera went quiet, OK otherwise. Rates are over the last
``RateMeter.window_s`` seconds.

:class:`ProblemLog` logs each kind of problem once per camera at its level (later
occurrences go to debug), counts all of them, and keeps the last one for diagnostics.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


class RateMeter:
    """Events per second over the last ``window_s`` seconds (thread-safe).

    The rate is the number of events in the window divided by the window, or by the time
    since the meter was created while that is shorter.
    """

    def __init__(self, window_s: float = 5.0, max_events: int = 10_000):
        self.window_s = window_s
        self.created = time.monotonic()
        self.total = 0
        self._times: deque[float] = deque(maxlen=max_events)
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        with self._lock:
            self._times.append(time.monotonic() if now is None else now)
            self.total += 1

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._times and self._times[0] < now - self.window_s:
                self._times.popleft()
            count = len(self._times)
        return count / max(min(self.window_s, now - self.created), 1e-3)

    def last(self) -> float | None:
        with self._lock:
            return self._times[-1] if self._times else None


class ProblemLog:
    """First occurrence of each (camera, kind) logged at its level, all counted.

    log: callable(level, message) where level is "info" | "warn" | "error" | "debug".
    """

    def __init__(self, log: Callable[[str, str], None]):
        self.log = log  # also for one-off messages that are not problems
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self.counts: dict[str, Counter] = {}
        self.last: dict[str, tuple[float, str, str, str]] = {}  # (time, kind, message, level)
        self.new_since_report: set[str] = set()
        self.last_error = ""  # the latest problem logged at error level, any camera

    def report(self, camera: str, kind: str, message: str, level: str = "warn") -> bool:
        """Count and remember a problem; log it if new for this camera. True if logged."""
        with self._lock:
            self.counts.setdefault(camera, Counter())[kind] += 1
            self.last[camera] = (time.monotonic(), kind, message, level)
            if level == "error":
                self.last_error = f"[{camera}] {message}"
            self.new_since_report.add(camera)
            first = (camera, kind) not in self._seen
            self._seen.add((camera, kind))
        text = f"[{camera}] {message}"
        if first:
            self.log(level, text + " (reported once; counted in /diagnostics)")
        else:
            self.log("debug", text)
        return first

    def snapshot(self, camera: str) -> tuple[dict[str, int], tuple | None]:
        """Copies of the counts by kind and the last problem (time, kind, message, level) of a
        camera."""
        with self._lock:
            return dict(self.counts.get(camera, {})), self.last.get(camera)

    def take_new(self) -> set[str]:
        """Cameras with problems since the previous call (and reset)."""
        with self._lock:
            new, self.new_since_report = self.new_since_report, set()
        return new


def status(name: str, level: int, message: str, values: Mapping[str, object],
           hardware_id: str = "") -> DiagnosticStatus:
    """A DiagnosticStatus with values rendered as strings (floats to 3 significant places)."""
    def text(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    return DiagnosticStatus(
        level=level, name=name, message=message, hardware_id=hardware_id,
        values=[KeyValue(key=k, value=text(v)) for k, v in values.items()],
    )


def worst(levels: list[tuple[int, str]]) -> tuple[int, str]:
    """The highest level and the messages at that level, joined (OK, 'ok' if none)."""
    if not levels:
        return OK, "ok"
    top = max(level for level, _ in levels)
    return top, "; ".join(msg for level, msg in levels if level == top)
