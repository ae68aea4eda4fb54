"""Health of the node on ``/diagnostics`` (``diagnostic_msgs/DiagnosticArray``).

One ``DiagnosticStatus`` for the inference engine (``<node>: inference``: device, model id,
DDIM steps, hypotheses, latency p50/p99 from depth received to outputs published, batches,
last error) and one per camera (``<node>: camera <name>``: input rate, the camera's rate
estimated from the header stamps, output rate, dropped frames, rate-limited frames, bad
frames by kind, last problem). Rates and shares are over the last ``WINDOW_S`` seconds.

Levels, decided once here (:func:`camera_level`; the README lists them too):

=========  =========================================================================
level      when
=========  =========================================================================
ERROR      inference: an inference (or publishing its result) failed since the last
           report.
           camera: no usable geometry — depth frames have arrived for
           ``CAMERA_INFO_GRACE_S`` without a CameraInfo and the camera has no
           ``intrinsics`` parameter, so no frame can be used; or, since the last
           report, a frame that could not be read (encoding, size, invalid
           CameraInfo, wrong frame id), the bed not found, or a failed inference.
WARN       camera: no depth frame for ``QUIET_AFTER_S`` (or none yet); a depth or
           CameraInfo publisher whose QoS the subscription cannot match (until a
           frame arrives); the node receiving less than ``MIN_RECEIVED_FRACTION`` of
           the frames the camera stamps (lost in transport); more than
           ``MAX_DROPPED_SHARE`` of the frames handed to inference replaced by newer
           ones before being processed (the node cannot keep up; rate-limited frames
           do not count); intrinsics from the parameter because no CameraInfo came;
           or, since the last report, a frame skipped for its content (too few valid
           pixels, bed not in view) or while no CameraInfo has come yet (the first
           ``CAMERA_INFO_GRACE_S``), or a bed that moved or could not be re-checked;
           or a repositioning alert is active (nobody turned for
           ``turn_interval_min``, a region above ``pressure_alert_kpa`` for
           ``pressure_alert_min``: :mod:`disrt_ros.monitoring`).
OK         otherwise.
=========  =========================================================================

:class:`ProblemLog` logs each kind of problem once per camera at its level (later
occurrences go to debug), counts all of them, and keeps the last one and the worst one
since the previous report. :class:`StampRate` estimates the camera's frame rate and the
share of its frames that arrive from the header stamps.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
WINDOW_S = 5.0  # rates, drop share and received fraction are over this many seconds
QUIET_AFTER_S = 3.0  # a camera without depth frames for this long is WARN
CAMERA_INFO_GRACE_S = 3.0  # depth without any CameraInfo (nor intrinsics) this long: ERROR
MAX_DROPPED_SHARE = 0.75  # more of the frames handed to inference dropped: WARN
MIN_RECEIVED_FRACTION = 0.5  # fewer of the camera's frames received: WARN
MIN_FRAMES = 10  # the two shares above are judged on at least this many frames
_SEVERITY = {"error": ERROR, "warn": WARN}


class RateMeter:
    """Events per second over the last ``window_s`` seconds (thread-safe).

    The rate is the number of events in the window divided by the window, or by the time
    since the meter was created while that is shorter.
    """

    def __init__(self, window_s: float = WINDOW_S, max_events: int = 10_000):
        self.window_s = window_s
        self.created = time.monotonic()
        self.total = 0
        self._times: deque[float] = deque(maxlen=max_events)
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        with self._lock:
            self._times.append(time.monotonic() if now is None else now)
            self.total += 1

    def count(self, now: float | None = None) -> int:
        """Events in the last ``window_s`` seconds."""
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._times and self._times[0] < now - self.window_s:
                self._times.popleft()
            return len(self._times)

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        return self.count(now) / max(min(self.window_s, now - self.created), 1e-3)

    def first(self, now: float | None = None) -> float | None:
        """Time of the oldest event in the window, None if none."""
        self.count(now)
        with self._lock:
            return self._times[0] if self._times else None

    def last(self) -> float | None:
        with self._lock:
            return self._times[-1] if self._times else None


class StampRate:
    """The camera's frame rate and the share of its frames that arrive, from the header
    stamps of the frames received in the last ``window_s`` seconds (thread-safe).

    Distinct stamps are sorted; the camera period is the median of the intervals between
    neighbours no longer than 1.5 × the shortest (neighbouring frames: a lost frame makes an
    interval of two periods or more), and the fraction received is the number of distinct
    stamps over the periods they span + 1. With random losses some neighbours always arrive;
    a loss that keeps exactly every n-th frame looks like a camera n times slower (stamps
    alone cannot tell them apart).
    """

    def __init__(self, window_s: float = WINDOW_S, max_frames: int = 2_000):
        self.window_s = window_s
        self._frames: deque[tuple[float, int]] = deque(maxlen=max_frames)
        self._lock = threading.Lock()

    def add(self, stamp_ns: int, now: float) -> None:
        """A frame stamped ``stamp_ns`` received at monotonic time ``now`` (cheap: the
        executor thread calls it for every frame)."""
        with self._lock:
            self._frames.append((now, stamp_ns))

    def estimate(self, now: float | None = None) -> tuple[float | None, float | None]:
        """(camera rate in Hz, fraction of its frames received) over the window; (None,
        None) with fewer than ``MIN_FRAMES`` distinct stamps or without neighbours."""
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._frames and self._frames[0][0] < now - self.window_s:
                self._frames.popleft()
            stamps = np.unique(np.fromiter((s for _, s in self._frames), dtype=np.int64))
        if stamps.size < MIN_FRAMES:
            return None, None
        gaps = np.diff(stamps)
        neighbours = gaps[gaps <= 1.5 * gaps.min()]
        period = float(np.median(neighbours))
        spanned = round((stamps[-1] - stamps[0]) / period) + 1
        return 1e9 / period, min(1.0, stamps.size / spanned)


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
        self._new: dict[str, tuple[int, str]] = {}  # camera -> worst (level, message) since
        self.last_error = ""  # the latest problem logged at error level, any camera

    def report(self, camera: str, kind: str, message: str, level: str = "warn") -> bool:
        """Count and remember a problem; log it if new for this camera. True if logged.
        ``level``: "error" and "warn" raise the camera's diagnostics level (module
        docstring) in the next report; "info" is only logged and counted."""
        with self._lock:
            self.counts.setdefault(camera, Counter())[kind] += 1
            self.last[camera] = (time.monotonic(), kind, message, level)
            if level == "error":
                self.last_error = f"[{camera}] {message}"
            severity = _SEVERITY.get(level)
            if severity is not None and severity >= self._new.get(camera, (OK, ""))[0]:
                self._new[camera] = (severity, message)
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

    def take_new(self) -> dict[str, tuple[int, str]]:
        """Per camera with an error or warn problem since the previous call, the worst one
        (level, message), the latest of equals (and reset)."""
        with self._lock:
            new, self._new = self._new, {}
        return new


@dataclass
class InputStats:
    """What the executor thread records of one camera's input, for the reports."""

    topic: str = ""  # the depth topic subscribed (raw, or .../compressedDepth)
    stamps: StampRate = field(default_factory=StampRate)
    handed: RateMeter = field(default_factory=RateMeter)  # frames handed to inference
    dropped: RateMeter = field(default_factory=RateMeter)  # of those, replaced unprocessed
    incompatible: dict[str, str] = field(default_factory=dict)  # topic -> QoS policy name


@dataclass
class CameraHealth:
    """What :func:`camera_level` judges, gathered by the node for one report."""

    depth_topic: str
    info_topic: str
    camera: str
    input_qos: str
    since_frame_s: float | None  # since the last depth frame; None = none yet
    receiving_s: float  # since the oldest depth frame kept (0 = none)
    publishers: int  # on the depth topic
    intrinsics: str  # "camera_info" | "parameter" | "none"
    handed: int = 0  # frames handed to inference in the window
    dropped: int = 0  # of those, replaced by newer ones unprocessed
    received_fraction: float | None = None  # StampRate, over the window
    camera_rate_hz: float | None = None
    qos_incompatible: str = ""  # "<topic> (<policy>)" while unmatched, "" = none
    problem: tuple[int, str] | None = None  # ProblemLog.take_new for this camera
    alerts: str = ""  # the repositioning monitor's active alerts, "; "-joined ("" = none)


def camera_level(h: CameraHealth) -> tuple[int, str]:
    """The camera's level and message (module docstring's table)."""
    levels: list[tuple[int, str]] = []
    if h.since_frame_s is None or h.since_frame_s > QUIET_AFTER_S:
        if h.publishers == 0:
            why = "no publisher"
        else:
            why = (f"{h.publishers} publisher(s) but nothing arrives: does their QoS match "
                   f"input_qos {h.input_qos}?")
        levels.append((WARN, f"no depth frames on {h.depth_topic} ({why})"))
    if h.qos_incompatible:
        hint = ("it publishes best effort: set input_qos:=sensor_data"
                if "RELIABILITY" in h.qos_incompatible else
                "see the publisher's QoS (ros2 topic info -v)")
        levels.append((WARN, f"publisher on {h.qos_incompatible} offers a QoS that "
                             f"input_qos {h.input_qos} cannot match; {hint}"))
    if h.intrinsics == "none" and h.since_frame_s is not None \
            and h.receiving_s >= CAMERA_INFO_GRACE_S:
        levels.append((ERROR, f"no CameraInfo on {h.info_topic} and no {h.camera}.intrinsics "
                              "parameter: no frame can be used"))
    elif h.intrinsics == "parameter" and h.since_frame_s is not None:
        levels.append((WARN, f"no CameraInfo on {h.info_topic}: using {h.camera}.intrinsics"))
    if h.received_fraction is not None and h.received_fraction < MIN_RECEIVED_FRACTION:
        levels.append((WARN, (
            f"only {h.received_fraction:.0%} of the camera's {h.camera_rate_hz:.3g} Hz frames "
            f"arrive (by their stamps): lost in transport; use input_qos reliable with a "
            "reliable publisher, or the Fast DDS profile config/fastdds_large_frames.xml")))
    if h.handed >= MIN_FRAMES and h.dropped > MAX_DROPPED_SHARE * h.handed:
        levels.append((WARN, (
            f"{h.dropped / h.handed:.0%} of the frames dropped (inference slower than the "
            "camera): set rate_limit_hz to the output rate, fewer ddim_steps, or a faster "
            "device")))
    if h.alerts:
        levels.append((WARN, f"repositioning: {h.alerts}"))
    if h.problem is not None:
        levels.append(h.problem)
    return worst(levels)


def status(name: str, level: int, message: str, values: Mapping[str, object],
           hardware_id: str = "") -> DiagnosticStatus:
    """A DiagnosticStatus with values rendered as strings (floats to 4 significant places)."""
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
