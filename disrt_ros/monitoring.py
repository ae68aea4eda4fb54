"""The node's repositioning monitor: one :class:`disrt_core.repositioning.Monitor` per camera,
fed with every answered frame, its events published on ``~/alerts``.

:meth:`Monitoring.observe` runs on the inference thread after each frame (before its outputs
go out, so that ``~/pose_json`` carries the monitor's state after that frame): the frame's
header stamp (seconds of the sensor's clock), its bed state (``occupancy``), its posture
(in bed) and the skin pressure's peak per region (with ``pressure`` on). The monitor's
settings are the node's parameters (:mod:`disrt_ros.params`): ``turn_interval_min``,
``pressure_alert_kpa``, ``pressure_alert_min``, ``pressure_load_kpa``, ``monitor_hold_s``.

``~/alerts`` [choice]: one stamped DiagnosticArray per event, like ``~/posture`` and
``~/occupancy`` (the frame's header, one status, ``hardware_id`` the camera) so that rqt's
monitor and ``ros2 topic echo`` show it as they show the states, and ``~/alerts_text`` with
the sentence alone. The status is named by the event's kind; its level is WARN for an alert
raised, a bed exit and a reset, OK otherwise; its values are ``kind``, ``time`` (when it
began: a turn is dated to its new posture's first frame, seconds of the sensor clock), the
event's details and, for alerts, ``alert`` and ``region``. While an alert is active the
camera's ``/diagnostics`` status is WARN (:mod:`disrt_ros.diagnostics`).

``monitor_state_file``: the monitors are written there (:func:`disrt_core.repositioning.
save_states`, atomically) on every event and at most every ``SAVE_EVERY_S`` seconds
otherwise, and when the node stops; a node started with the file continues the timeline
(after a gap of ``turn_interval_min`` or more the live state starts again, see
:mod:`disrt_core.repositioning`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header, String

from disrt_core.pressure import REGIONS
from disrt_core.repositioning import Event, Monitor, Settings, load_states, save_states
from disrt_ros.conversions import FrameResult
from disrt_ros.params import MonitorConfig, ParameterError

SAVE_EVERY_S = 30.0  # wall-clock seconds between state-file writes without events
_LEVEL = {"warn": DiagnosticStatus.WARN, "info": DiagnosticStatus.OK}


def settings_of(config: MonitorConfig) -> Settings:
    """The monitor's settings from the node's parameters (minutes -> seconds)."""
    return Settings(turn_interval_s=60.0 * config.turn_interval_min,
                    pressure_alert_kpa=config.pressure_alert_kpa,
                    pressure_alert_s=60.0 * config.pressure_alert_min,
                    load_kpa=config.pressure_load_kpa,
                    hold_s=max(config.monitor_hold_s, 1e-6))


def event_message(header: Header, camera: str, event: Event) -> DiagnosticArray:
    """An event as ``~/alerts`` carries it (module docstring)."""
    values = {"kind": event.kind, "time": f"{event.stamp:.3f}",
              **{k: "" if v is None else str(v) for k, v in event.data.items()}}
    status = DiagnosticStatus(level=_LEVEL.get(event.level, DiagnosticStatus.OK),
                              name=event.kind, message=event.message, hardware_id=camera,
                              values=[KeyValue(key=k, value=v) for k, v in values.items()])
    return DiagnosticArray(header=header, status=[status])


class Monitoring:
    """The monitors of the node's cameras (module docstring). ``log(level, message)``."""

    def __init__(self, config: MonitorConfig, cameras: list[str],
                 log: Callable[[str, str], None]) -> None:
        self.settings = settings_of(config)
        self.regions = REGIONS if config.pressure else ()
        self.path = config.monitor_state_file or None
        self.log = log
        loaded = {}
        if self.path is not None:
            try:
                loaded = load_states(self.path, self.settings)
            except ValueError as error:
                raise ParameterError(f"parameter 'monitor_state_file': {error}") from error
            if loaded:
                log("info", f"repositioning monitor: continuing {', '.join(sorted(loaded))} "
                            f"from {self.path}")
        self.monitors = {name: loaded.get(name) or Monitor(self.settings, self.regions)
                         for name in cameras}
        self._lock = threading.Lock()
        self._saved = time.monotonic()
        self._save_failed = False

    def observe(self, result: FrameResult) -> list[Event]:
        """Feed one answered frame; sets ``result.monitor`` and returns the events."""
        stamp = result.header.stamp.sec + 1e-9 * result.header.stamp.nanosec
        in_bed = result.occupancy == "in_bed"
        peaks = None
        if in_bed and result.region_pressure is not None:
            peaks = {name: peak for name, (peak, _) in result.region_pressure.items()}
        with self._lock:
            monitor = self.monitors[result.camera]
            events = monitor.update(stamp, result.occupancy, result.posture if in_bed else None,
                                    peaks)
            result.monitor = monitor.summary()
        if self.path is not None and (events or time.monotonic() - self._saved >= SAVE_EVERY_S):
            self.save()
        return events

    def active(self, camera: str) -> list[str]:
        """The active alerts' sentences of a camera (for /diagnostics)."""
        with self._lock:
            return [alert.message for alert in self.monitors[camera].alerts.values()]

    def values(self, camera: str) -> dict[str, object]:
        """The camera's monitor state for its /diagnostics status."""
        with self._lock:
            s = self.monitors[camera].summary()
        return {"monitor_posture": s["posture"] or "", "turns": s["turns"],
                "since_turn_min": "" if s["since_turn_min"] is None else s["since_turn_min"],
                "in_posture_min": "" if s["in_posture_min"] is None else s["in_posture_min"],
                "alerts": "; ".join(a["message"] for a in s["alerts"])}

    def save(self) -> None:
        """Write the state file now (a failure is logged once, not raised)."""
        if self.path is None:
            return
        with self._lock:
            try:
                save_states(self.path, self.monitors)
                self._saved, self._save_failed = time.monotonic(), False
            except OSError as error:
                if not self._save_failed:
                    self.log("error", f"repositioning monitor: cannot write "
                                      f"monitor_state_file {self.path}: {error}")
                self._save_failed = True


def publish_events(pubs: dict, header: Header, camera: str, events: list[Event]) -> None:
    """Each event on ``~/alerts`` and ``~/alerts_text``."""
    for event in events:
        pubs["alerts"].publish(event_message(header, camera, event))
        pubs["alerts_text"].publish(String(data=event.message))
