"""``disrt-report BAG --out DIR``: a night report from a bag of the bed monitor's outputs.

The bag is one recorded with ``disrt-record`` (or ``ros2 bag record``) while the node ran:
its ``~/pose_json`` at least (schema ``disrt_ros/pose/1`` or 2; 2 carries the pressure per
region), and best also ``~/occupancy`` (every answered frame, so that the times out of bed
are known; without it every frame with a pose counts as in bed and the others as unseen)
and ``~/alerts`` (what the node itself raised; counted in the report). Several cameras are
told apart by the ``camera`` of their results.

The report replays the repositioning monitor (:mod:`disrt_core.repositioning`, the node's
own logic) over the recorded frames with the settings given here, which should be the
node's (``--turn-interval-min`` ...; the node's defaults by default): with the same
settings and no frame missing from the bag it finds what the node found. Written to
``--out`` per camera (``<camera>_`` before each name with several cameras):

* ``timeline.png``: the posture over the night (confirmed, as the monitor holds it), the
  turns, the alerts while active and the minutes since the last turn;
* ``regions.png``: the peak skin pressure of each body region over the night (heat map);
* ``night_report.md``: time per posture, the turns, the longest time without one, the
  alerts, bed exits and returns, and per region the 95th percentile of its peak, the time
  above the alert threshold and the load accumulated above ``--load-kpa`` (kPa·min).

Exit status 0, 1 for a bag that cannot be read or holds no results (the message says what to
record).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from disrt_core.pressure import REGIONS
from disrt_core.repositioning import Event, Monitor, Settings
from disrt_ros.bags import STRING, BagError, BagReader
from disrt_ros.tools.report_plots import regions_image, timeline_image
from disrt_ros.tools.score import POSE_SCHEMAS

DIAGNOSTIC_ARRAY = "diagnostic_msgs/msg/DiagnosticArray"


@dataclass
class Frame:
    """One answered frame: stamp (s), bed state, posture (in bed) and region peaks (kPa)."""

    stamp: float
    occupancy: str
    posture: str | None = None
    peaks: dict[str, float] | None = None


@dataclass
class AlertSpan:
    kind: str
    region: str | None
    raised: float
    cleared: float | None
    message: str


@dataclass
class Night:
    """One camera's night after the replay."""

    camera: str
    settings: Settings
    monitor: Monitor
    events: list[Event]
    stamps: np.ndarray  # [N] s
    since_turn: np.ndarray  # [N] minutes, nan out of bed / unknown
    peaks: np.ndarray  # [N, len(REGIONS)] kPa, nan without pressure
    alerts: list[AlertSpan] = field(default_factory=list)
    node_events: int = 0

    @property
    def start(self) -> float:
        return float(self.stamps[0])

    @property
    def end(self) -> float:
        return float(self.stamps[-1])


def _stamp(header_stamp) -> float:
    return header_stamp.sec + 1e-9 * header_stamp.nanosec


def read_frames(bag: str | Path) -> tuple[dict[str, list[Frame]], dict[str, int]]:
    """Per camera, the answered frames in time order (module docstring), and the number
    of ``~/alerts`` events the node published per camera."""
    poses: dict[str, dict[float, Frame]] = {}
    states: dict[str, dict[float, str]] = {}
    node_events: dict[str, int] = {}
    with BagReader(bag) as reader:
        for topic, info in reader.topics.items():
            if info.msgtype == STRING:
                for _, msg in reader.read(topic, STRING):
                    try:
                        d = json.loads(msg.data)
                    except json.JSONDecodeError:
                        continue
                    if not isinstance(d, dict) or d.get("schema") not in POSE_SCHEMAS:
                        continue
                    stamp = int(d["stamp"]["sec"]) + 1e-9 * int(d["stamp"]["nanosec"])
                    regions = ((d.get("pressure") or {}).get("regions")) or None
                    peaks = {k: float(v["peak_kpa"]) for k, v in regions.items()} \
                        if regions else None
                    poses.setdefault(str(d.get("camera", "")), {}).setdefault(
                        stamp, Frame(stamp, "in_bed", str(d["posture"]), peaks))
            elif info.msgtype == DIAGNOSTIC_ARRAY and topic.endswith("occupancy"):
                for _, msg in reader.read(topic, DIAGNOSTIC_ARRAY):
                    for status in msg.status:
                        states.setdefault(status.hardware_id, {}).setdefault(
                            _stamp(msg.header.stamp), status.message)
            elif info.msgtype == DIAGNOSTIC_ARRAY and topic.endswith("alerts"):
                for _, msg in reader.read(topic, DIAGNOSTIC_ARRAY):
                    for status in msg.status:
                        node_events[status.hardware_id] = \
                            node_events.get(status.hardware_id, 0) + 1
    if not poses:
        raise BagError(f"bag {bag} holds no bed monitor results (disrt_ros/pose JSON on a "
                       "std_msgs/String topic); record the node's ~/pose_json (and best "
                       "~/occupancy and ~/alerts) with disrt-record")
    frames = {}
    for camera, by_stamp in poses.items():
        seen = states.get(camera, {})
        if seen:  # every answered frame; the pose where someone lies in bed
            frames[camera] = [by_stamp.get(t, Frame(t, state)) if state == "in_bed" else
                              Frame(t, state) for t, state in seen.items()]
        else:
            frames[camera] = list(by_stamp.values())
        frames[camera].sort(key=lambda f: f.stamp)
    return frames, node_events


def replay(camera: str, frames: list[Frame], settings: Settings) -> Night:
    """The monitor over the frames (module docstring), with the series the plots need."""
    regions = REGIONS if any(f.peaks for f in frames) else ()
    monitor = Monitor(settings, regions)
    events, since, peaks = [], [], []
    for f in frames:
        events += monitor.update(f.stamp, f.occupancy, f.posture, f.peaks)
        s = monitor.summary(f.stamp)["since_turn_min"]
        since.append(np.nan if s is None else s)
        peaks.append([np.nan if not f.peaks else f.peaks.get(r, np.nan) for r in REGIONS])
    spans: dict[str, AlertSpan] = {}
    alerts = []
    for e in events:
        if e.kind == "alert":
            span = AlertSpan(e.data["alert"], e.data.get("region"), e.stamp, None, e.message)
            spans[f"{span.kind}:{span.region}"] = span
            alerts.append(span)
        elif e.kind == "alert_cleared":
            span = spans.pop(f"{e.data['alert']}:{e.data.get('region')}", None)
            if span is not None:
                span.cleared = e.stamp
        elif e.kind == "reset":
            for span in spans.values():
                span.cleared = e.stamp
            spans = {}
    return Night(camera, settings, monitor, events, np.array([f.stamp for f in frames]),
                 np.asarray(since, float), np.asarray(peaks, float).reshape(-1, len(REGIONS)),
                 alerts)


def _elapsed(night: Night, t: float) -> str:
    s = round(float(t - night.start))
    return f"+{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.2f} h"


def markdown(night: Night, images: dict[str, str]) -> str:
    """The night's report as Markdown (module docstring)."""
    s, m = night.settings, night.monitor
    utc = dt.datetime.fromtimestamp(night.start, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    span = night.end - night.start
    rate = (len(night.stamps) - 1) / span if span > 0 else 0.0
    lines = [f"# Night report: camera {night.camera or '(unnamed)'}", "",
             f"From {utc} (frame stamps) for {_minutes(span)}: {len(night.stamps)} answered "
             f"frames ({rate:.2g} Hz). Monitor settings: turn interval "
             f"{s.turn_interval_s / 60:g} min, pressure alert above {s.pressure_alert_kpa:g} "
             f"kPa for {s.pressure_alert_s / 60:g} min, load above {s.load_kpa:g} kPa, "
             f"hysteresis {s.hold_s:g} s.", "", f"![timeline]({images['timeline']})", "",
             "## Time per posture", "", "| state | time | share |", "|---|---|---|"]
    total = sum(m.totals.values()) or 1.0
    for label, seconds in sorted(m.totals.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {label} | {_minutes(seconds)} | {100 * seconds / total:.0f} % |")
    turns = [e for e in night.events if e.kind == "turn"]
    lines += ["", f"## Turns: {len(turns)}", ""]
    if turns:
        lines += ["| time | from | to |", "|---|---|---|"]
        lines += [f"| {_elapsed(night, e.stamp)} | {e.data['from']} | {e.data['to']} |"
                  for e in turns]
    if np.isfinite(night.since_turn).any():
        longest = float(np.nanmax(night.since_turn))
        lines.append(f"\nLongest time in bed without a turn: {_minutes(60 * longest)}.")
    lines += ["", f"## Alerts: {len(night.alerts)}", ""]
    if night.alerts:
        lines += ["| raised | cleared | alert | message |", "|---|---|---|---|"]
        for a in night.alerts:
            cleared = _elapsed(night, a.cleared) if a.cleared is not None else "(active)"
            what = a.kind if a.region is None else f"{a.kind} ({a.region})"
            lines.append(f"| {_elapsed(night, a.raised)} | {cleared} | {what} | {a.message} |")
    lines.append(f"\nThe node published {night.node_events} events on ~/alerts in this bag."
                 if night.node_events else "\n(No ~/alerts recorded in this bag.)")
    exits = [e for e in night.events if e.kind in ("out_of_bed", "sitting_on_edge",
                                                   "back_in_bed", "reset")]
    lines += ["", f"## Bed exits and returns: {len(exits)}", ""]
    lines += [f"- {_elapsed(night, e.stamp)} {e.message}" for e in exits]
    lines += ["", "## Pressure per region", ""]
    if not np.isfinite(night.peaks).any():
        lines.append("No pressure in this bag (the node's `pressure` was off, or pose_json "
                     "of schema 1).")
    else:
        dt_s = np.diff(night.stamps, append=night.stamps[-1]).clip(0, s.max_gap_s)
        lines += [f"| region | peak, 95th percentile | time above {s.pressure_alert_kpa:g} "
                  f"kPa | load above {s.load_kpa:g} kPa |", "|---|---|---|---|"]
        for r, name in enumerate(REGIONS):
            p = night.peaks[:, r]
            ok = np.isfinite(p)
            above = float(dt_s[ok & (np.nan_to_num(p) > s.pressure_alert_kpa)].sum())
            lines.append(f"| {name} | {np.percentile(p[ok], 95):.1f} kPa | {_minutes(above)} | "
                         f"{m.load.get(name, 0.0):.0f} kPa·min |")
        lines += ["", f"![pressure per region]({images['regions']})"]
    return "\n".join(lines) + "\n"


def write_report(bag: str | Path, out: str | Path, settings: Settings) -> list[Path]:
    """Replay and write the report files of every camera; returns the Markdown paths."""
    frames, node_events = read_frames(bag)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for camera, camera_frames in sorted(frames.items()):
        night = replay(camera, camera_frames, settings)
        night.node_events = node_events.get(camera, 0)
        prefix = f"{camera}_" if len(frames) > 1 else ""
        images = {"timeline": f"{prefix}timeline.png", "regions": f"{prefix}regions.png"}
        name = camera or "camera"
        for key, image in (("timeline", timeline_image(night, f"{name}: posture, turns, "
                                                               "alerts")),
                           ("regions", regions_image(night, REGIONS, f"{name}: pressure per "
                                                                     "region"))):
            if not cv2.imwrite(str(out / images[key]), image):
                raise OSError(f"could not write {out / images[key]}")
        path = out / f"{prefix}night_report.md"
        path.write_text(markdown(night, images))
        written.append(path)
    return written


def build_parser() -> argparse.ArgumentParser:
    defaults = Settings()
    parser = argparse.ArgumentParser(prog="disrt-report",
                                     description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    parser.add_argument("bag", type=Path, help="bag of the node's outputs (disrt-record)")
    parser.add_argument("--out", "-o", type=Path, default=Path("night_report"),
                        help="folder for the report (default night_report/)")
    parser.add_argument("--turn-interval-min", type=float,
                        default=defaults.turn_interval_s / 60)
    parser.add_argument("--pressure-alert-kpa", type=float, default=defaults.pressure_alert_kpa)
    parser.add_argument("--pressure-alert-min", type=float,
                        default=defaults.pressure_alert_s / 60)
    parser.add_argument("--load-kpa", type=float, default=defaults.load_kpa)
    parser.add_argument("--hold-s", type=float, default=defaults.hold_s,
                        help="the node's monitor_hold_s")
    return parser


def settings_from(args) -> Settings:
    return Settings(turn_interval_s=60 * args.turn_interval_min,
                    pressure_alert_kpa=args.pressure_alert_kpa,
                    pressure_alert_s=60 * args.pressure_alert_min, load_kpa=args.load_kpa,
                    hold_s=max(args.hold_s, 1e-6))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        paths = write_report(args.bag, args.out, settings_from(args))
    except (BagError, ValueError, OSError) as error:
        print(f"disrt-report: error: {error}", file=sys.stderr)
        return 1
    print(f"[disrt-report] wrote {', '.join(str(p) for p in paths)} and their PNGs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
