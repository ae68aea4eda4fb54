"""Repositioning monitor: how long someone has lain in one posture, turns, load, alerts.

Pure logic, no ROS (the node feeds it and publishes what it says). :class:`Monitor` is fed
one answered frame at a time (:meth:`Monitor.update`) with its stamp (seconds, the sensor's
clock), the bed's state (``disrt_core.occupancy.STATES``: in_bed | empty |
sitting_on_edge), the posture (``disrt_core.posture.POSTURES``, or None without a body)
and the peak pressure per body region (kPa, ``disrt_core.pressure.REGIONS``, or None
without a pressure map), and keeps:

* the **timeline**: segments (start, end, label) of the confirmed state: a posture while
  someone lies in bed (``unknown`` until one is confirmed), ``out_of_bed`` (empty bed),
  ``sitting_on_edge``; seconds per label; the number of **turns** (a confirmed change from
  one posture to another);
* **time in the current posture** and **time since the last turn** (or since the person
  lay down, or since the monitor began);
* **accumulated load** per region: ∫ max(0, peak − ``load_kpa``) dt in kPa·min while in bed
  (frame gaps count up to ``max_gap_s``);
* **alerts** (:class:`Alert`): ``turn_due`` while someone has lain in bed
  ``turn_interval_s`` or longer without a turn; ``pressure`` per region while its peak has
  stayed above ``pressure_alert_kpa`` for ``pressure_alert_s`` or longer.

It answers each frame with :class:`Event` s: ``turn``, ``out_of_bed``,
``sitting_on_edge``, ``back_in_bed``, ``alert`` / ``alert_cleared``, and ``reset``
(``level`` info or warn).

**Hysteresis** [choice] (:class:`Debounce`): every state (the bed's, the posture, each
region above the alert threshold) changes only when a new value has been seen ``hold_s``
seconds longer than it was contradicted since it was first seen (frame time: each frame
counts the seconds since the previous one, at most ``max_gap_s``). A single wrong frame
among right ones adds one frame period and is taken back by the next right one, so it
never changes anything; a real turn shows after ``hold_s``, and is dated to when its
posture was first seen. At the start nothing is known: the bed's state is confirmed after
``hold_s`` like any change (no event for it), and the posture ``hold_s`` after that (its
frames count only once the person is known to lie in bed; ``unknown`` on the timeline until
then). Lying down, and getting back into bed, restart the turn clock (the skin was
unloaded), dated to the first in-bed frame; they are no turn.

**Gaps and clocks**: no frame for ``reset_gap_s`` (default: the turn interval; also after a
restart that resumed a state file) or a stamp more than a minute before the previous one (a
clock jump): the live state (bed, posture, turn clock, alerts) starts again, with a
``reset`` event; the timeline and the totals are kept across a gap, dropped at a jump.
Frames older than the previous one by less than that are ignored (out of order).

**State file** (:meth:`Monitor.save` / :meth:`Monitor.load`): the whole state as JSON,
written to a temporary file and renamed over the old one, so a crash never leaves half a
file; a node restarted with the same file continues the timeline.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from disrt_core.atomic import atomic_write

STATE_SCHEMA = "disrt_core/repositioning/1"
MAX_SEGMENTS = 2000  # the timeline keeps this many latest segments (the totals keep all)
CLOCK_JUMP_S = 60.0
OUT_OF_BED = {"empty": "out_of_bed", "sitting_on_edge": "sitting_on_edge"}


@dataclass(frozen=True)
class Settings:
    """What the monitor alerts on and how it filters (module docstring); seconds, kPa."""

    turn_interval_s: float = 7200.0  # 120 min
    #: 9.3 kPa = 70 mmHg, the pressure Kosiak (1961) found to damage tissue within 2 h
    pressure_alert_kpa: float = 9.3
    pressure_alert_s: float = 3600.0
    #: load counted above 4.3 kPa = 32 mmHg, the capillary closing pressure (Landis 1930)
    load_kpa: float = 4.3
    hold_s: float = 10.0
    max_gap_s: float = 60.0
    reset_gap_s: float | None = None  # None: turn_interval_s

    def __post_init__(self) -> None:
        for name in ("turn_interval_s", "pressure_alert_s", "hold_s", "max_gap_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")

    @property
    def gap_s(self) -> float:
        return self.turn_interval_s if self.reset_gap_s is None else self.reset_gap_s


@dataclass
class Event:
    """Something that happened at ``stamp`` (s): ``kind`` (module docstring), ``level``
    info | warn, a sentence, and details (posture, region, alert, minutes ...)."""

    stamp: float
    kind: str
    level: str
    message: str
    data: dict = field(default_factory=dict)


@dataclass
class Alert:
    """An active alert: ``turn_due`` or ``pressure`` (of ``region``), raised at ``since``."""

    kind: str
    since: float
    message: str
    region: str | None = None

    @property
    def key(self) -> str:
        return self.kind if self.region is None else f"{self.kind}:{self.region}"


@dataclass
class Debounce:
    """A value that changes only after a new one has been seen ``hold`` seconds longer
    than it was contradicted (module docstring). ``value`` None = not known yet."""

    value: str | bool | None = None
    candidate: str | bool | None = None
    evidence: float = 0.0
    since: float = 0.0  # when the candidate was first seen

    def update(self, seen, dt: float, stamp: float, hold: float) -> bool:
        """One observation ``seen`` (None: no evidence) ``dt`` s after the previous frame;
        True when ``value`` changed (to the candidate first seen at ``since``)."""
        if seen is None:
            return False
        if seen == self.value:
            self.evidence = max(0.0, self.evidence - dt)
            if self.evidence == 0.0:
                self.candidate = None
        elif seen == self.candidate:
            self.evidence += dt
        elif self.candidate is None or self.evidence <= dt:
            self.candidate, self.evidence, self.since = seen, 0.0, stamp
        else:
            self.evidence -= dt
        if self.candidate is not None and self.evidence >= hold:
            self.value, self.candidate, self.evidence = self.candidate, None, 0.0
            return True
        return False


def _minutes(seconds: float) -> str:
    if seconds < 120:  # short settings (tests, the demo's compressed time)
        return f"{seconds:.0f} s"
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"


class Monitor:
    """The repositioning monitor of one bed (module docstring)."""

    def __init__(self, settings: Settings | None = None, regions: tuple[str, ...] = ()):
        self.settings = settings or Settings()
        self.regions = tuple(regions)
        self.last_stamp: float | None = None
        self.timeline: list[list] = []  # [start, end, label]
        self.totals: dict[str, float] = {}  # seconds per timeline label
        self.turns = 0
        self.load = {r: 0.0 for r in self.regions}  # kPa·min
        self.ignored = 0  # frames out of order
        self._live()

    def _live(self) -> None:
        """The live state that a gap or clock jump resets."""
        self.bed = Debounce()
        self.posture = Debounce()
        self.above = {r: Debounce(False) for r in self.regions}
        self.above_since: dict[str, float] = {}
        self.last_turn: float | None = None  # or when the person lay down
        self.alerts: dict[str, Alert] = {}

    # ------------------------------------------------------------------ the frame
    def update(self, stamp: float, occupancy: str, posture: str | None = None,
               peaks: dict[str, float] | None = None) -> list[Event]:
        """One answered frame (module docstring); returns what happened."""
        s, events = self.settings, []
        if self.last_stamp is not None and stamp <= self.last_stamp:
            if stamp >= self.last_stamp - CLOCK_JUMP_S:
                self.ignored += 1
                return []
            events.append(self._reset(stamp, f"the clock went back {self.last_stamp - stamp:.0f}"
                                      " s: the monitor starts again", history=True))
        elif self.last_stamp is not None and stamp - self.last_stamp >= s.gap_s:
            events.append(self._reset(stamp, f"no frame for {_minutes(stamp - self.last_stamp)}"
                                      ": the posture and the turn clock start again"))
        if self.last_stamp is None:
            dt = 0.0
        else:
            dt = min(stamp - self.last_stamp, s.max_gap_s)
            self._extend(stamp)
        self.last_stamp = stamp
        was = self.bed.value
        if self.bed.update(occupancy, dt, stamp, s.hold_s):
            events += self._bed_changed(was, self.bed.value, self.bed.since)
        in_bed = self.bed.value == "in_bed"
        if in_bed:
            before = self.posture.value
            if self.posture.update(posture if occupancy == "in_bed" else None, dt, stamp,
                                   s.hold_s):
                events += self._posture_changed(before, self.posture.value, self.posture.since)
            if peaks is not None and occupancy == "in_bed":
                for region in self.regions:
                    peak = float(peaks.get(region, 0.0))
                    self.load[region] += max(0.0, peak - s.load_kpa) * dt / 60.0
                    above = self.above[region]
                    if above.update(peak > s.pressure_alert_kpa, dt, stamp, s.hold_s):
                        if above.value:
                            self.above_since[region] = above.since
                        else:
                            self.above_since.pop(region, None)
        events += self._alerts(stamp, in_bed)
        return events

    def _extend(self, stamp: float) -> None:
        """The current segment (and its label's total) up to ``stamp``."""
        if self.timeline:
            seg = self.timeline[-1]
            if stamp > seg[1]:
                self.totals[seg[2]] = self.totals.get(seg[2], 0.0) + stamp - seg[1]
                seg[1] = stamp

    def _segment(self, start: float, label: str) -> None:
        """A new segment from ``start`` (the change's first sighting: the frames since then
        move from the old label to the new one)."""
        if self.timeline:
            seg = self.timeline[-1]
            start = max(start, seg[0])
            if seg[1] > start:
                self.totals[seg[2]] -= seg[1] - start
                seg[1] = start
        end = max(start, self.last_stamp if self.last_stamp is not None else start)
        self.totals[label] = self.totals.get(label, 0.0) + end - start
        self.timeline.append([start, end, label])
        del self.timeline[:-MAX_SEGMENTS]

    def _bed_changed(self, old: str | None, new: str, since: float) -> list[Event]:
        self.posture = Debounce()
        self.above = {r: Debounce(False) for r in self.regions}
        self.above_since = {}
        if new == "in_bed":
            self.last_turn = since
            self._segment(since, "unknown")
            if old is None:
                return []
            return [Event(since, "back_in_bed", "info", "back in bed")]
        self.last_turn = None
        self._segment(since, OUT_OF_BED[new])
        if old is None:
            return []
        if new == "empty":  # got up (from lying or from sitting on the edge)
            return [Event(since, "out_of_bed", "warn", "out of bed")]
        # sitting up from lying is the warning before a bed exit; sitting down on the edge
        # of an empty bed is none
        return [Event(since, "sitting_on_edge", "warn" if old == "in_bed" else "info",
                      "sitting on the edge of the bed")]

    def _posture_changed(self, old: str | None, new: str, since: float) -> list[Event]:
        self._segment(since, new)
        if old is None:
            if self.last_turn is None:
                self.last_turn = since
            return []
        self.turns += 1
        self.last_turn = since
        return [Event(since, "turn", "info", f"turned: {old} -> {new}",
                      {"from": old, "to": new, "turns": self.turns})]

    def _alerts(self, stamp: float, in_bed: bool) -> list[Event]:
        """Raise and clear the alerts (module docstring)."""
        s, want = self.settings, {}
        if in_bed and self.last_turn is not None and stamp - self.last_turn >= s.turn_interval_s:
            lying = _minutes(stamp - self.last_turn)
            where = f" in {self.posture.value}" if self.posture.value else ""
            want["turn_due"] = Alert("turn_due", stamp, f"turn due: {lying}{where} without a "
                                     "turn")
        for region, since in self.above_since.items():
            if in_bed and stamp - since >= s.pressure_alert_s:
                alert = Alert("pressure", stamp, f"{region.replace('_', ' ')} above "
                              f"{s.pressure_alert_kpa:g} kPa for {_minutes(stamp - since)}",
                              region)
                want[alert.key] = alert
        events = []
        for key, alert in want.items():
            if key not in self.alerts:
                self.alerts[key] = alert
                events.append(Event(stamp, "alert", "warn", alert.message,
                                    {"alert": alert.kind, "region": alert.region}))
            else:
                self.alerts[key].message = alert.message  # the duration grows
        for key in [k for k in self.alerts if k not in want]:
            alert = self.alerts.pop(key)
            events.append(Event(stamp, "alert_cleared", "info", f"cleared: {alert.message}",
                                {"alert": alert.kind, "region": alert.region,
                                 "raised": alert.since}))
        return events

    def _reset(self, stamp: float, why: str, history: bool = False) -> Event:
        cleared = sorted(self.alerts)
        self._live()
        if history:
            self.timeline, self.totals, self.turns = [], {}, 0
            self.load = {r: 0.0 for r in self.regions}
        elif self.timeline:
            self.timeline[-1][1] = max(self.timeline[-1][0], self.last_stamp or stamp)
        self.last_stamp = None
        return Event(stamp, "reset", "warn", why, {"cleared": cleared})

    # ------------------------------------------------------------------ reading it
    def summary(self, stamp: float | None = None) -> dict:
        """What the node publishes per frame (JSON-ready; minutes)."""
        stamp = self.last_stamp if stamp is None else stamp
        in_bed = self.bed.value == "in_bed"
        seg = self.timeline[-1] if self.timeline else None
        posture_known = in_bed and self.posture.value is not None and seg is not None
        return {
            "bed": self.bed.value, "posture": self.posture.value if in_bed else None,
            "in_posture_min": round((stamp - seg[0]) / 60, 2) if posture_known else None,
            "since_turn_min": round((stamp - self.last_turn) / 60, 2)
            if in_bed and self.last_turn is not None and stamp is not None else None,
            "turns": self.turns,
            "load_kpa_min": {r: round(v, 2) for r, v in self.load.items()},
            "above_alert_min": {r: round((stamp - t) / 60, 2)
                                for r, t in self.above_since.items()},
            "alerts": [{"kind": a.kind, "region": a.region, "since": a.since,
                        "message": a.message} for a in self.alerts.values()],
        }

    # ------------------------------------------------------------------ state file
    def to_dict(self) -> dict:
        return {"schema": STATE_SCHEMA, "regions": list(self.regions),
                "last_stamp": self.last_stamp, "timeline": self.timeline,
                "totals": self.totals, "turns": self.turns, "load": self.load,
                "bed": asdict(self.bed), "posture": asdict(self.posture),
                "above": {r: asdict(d) for r, d in self.above.items()},
                "above_since": self.above_since, "last_turn": self.last_turn,
                "alerts": [asdict(a) for a in self.alerts.values()]}

    @classmethod
    def from_dict(cls, data: dict, settings: Settings | None = None) -> Monitor:
        if data.get("schema") != STATE_SCHEMA:
            raise ValueError(f"not a repositioning state ({STATE_SCHEMA}): schema "
                             f"{data.get('schema')!r}")
        monitor = cls(settings, tuple(data["regions"]))
        monitor.last_stamp, monitor.turns = data["last_stamp"], int(data["turns"])
        monitor.timeline = [list(seg) for seg in data["timeline"]]
        monitor.totals = {k: float(v) for k, v in data["totals"].items()}
        monitor.load.update({k: float(v) for k, v in data["load"].items()})
        monitor.bed, monitor.posture = Debounce(**data["bed"]), Debounce(**data["posture"])
        monitor.above.update({r: Debounce(**d) for r, d in data["above"].items()})
        monitor.above_since = {k: float(v) for k, v in data["above_since"].items()}
        monitor.last_turn = data["last_turn"]
        monitor.alerts = {a.key: a for a in (Alert(**d) for d in data["alerts"])}
        return monitor


def save_states(path: str | Path, monitors: dict[str, Monitor]) -> None:
    """Write the monitors of several cameras to ``path`` as one JSON (atomically:
    :func:`disrt_core.atomic.atomic_write`)."""
    payload = json.dumps({name: m.to_dict() for name, m in monitors.items()})
    atomic_write(path, lambda f: f.write(payload.encode()))


def load_states(path: str | Path, settings: Settings | None = None) -> dict[str, Monitor]:
    """The monitors saved by :func:`save_states` (none if the file does not exist); a file
    that cannot be read raises ValueError naming it."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        return {name: Monitor.from_dict(d, settings) for name, d in data.items()}
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"repositioning state file {path} cannot be read ({error}); delete "
                         "it to start afresh") from error
