"""The demo's results, computed from the bag it recorded: the report (JSON and Markdown) and
the contact sheet. No rclpy here; :mod:`disrt_ros.demo` runs the night and calls these.

**The bag** holds what the ROS graph carried during the demo, as :class:`disrt_ros.tools.
record.Recorder` stored it: the node's outputs (``pose_json`` and the rest) and the ground
truth the camera player published beside each depth frame (``/ground_truth/pose``, one per
frame sent). Every figure of the report is taken from it, so ``disrt-score BAG BAG`` gives
the same MPJPE and PVE.

**Metrics** [choice where SPEC §6 is silent]:

- MPJPE / PVE (mm) per cover level and overall: :func:`disrt_ros.tools.score.score` (SPEC
  §6, no alignment; PVE with the checkpoint's body model on both sides), over the frames the
  node answered; a frame answered twice counts once, with its first answer.
- posture accuracy: the node's ``posture`` (``disrt_core.posture`` from the predicted root
  orientation) against the generator's posture label, over the same frames.
- latency (ms): per answered frame, the bag's log time of its ``pose_json`` (when the demo's
  recorder received it) minus its header stamp (when the camera player published the depth
  frame; both the wall clock of this machine), so it includes transport both ways;
  p50 / p99 by linear interpolation (``numpy.percentile``). The node's own figure (frame
  received -> outputs published) comes from its last ``/diagnostics`` report.
- frames: ``sent`` = ground-truth messages in the bag (one per depth frame published);
  ``answered`` = those with a result; ``dropped`` = ``sent - answered``, split by the node's
  diagnostics into frames it never received, replaced by a newer frame while it was busy
  (it keeps only the newest waiting frame) and failed.
- monitor events: every status on the node's ``~/alerts`` (turns, alerts raised and
  cleared, bed exits), with its time since the first frame.

**The contact sheet** shows answered frames (the middle of each still period first) as the
network sees them with both skeletons and, under each, the node's ``~/pressure`` map of
that frame (recorded at ``display_rate_hz``, so only frames with a map are picked).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from disrt_core.body.skeleton import SMPL_BONES
from disrt_core.geometry.bedframe import NET_SHAPE, label_to_net
from disrt_core.sim.preview import SCALE, depth_panel
from disrt_ros.bags import BagReader
from disrt_ros.pressure_view import pressure_overlay
from disrt_ros.tools.score import COVERS, POSE_SCHEMAS, read_ground_truth, score

REPORT_SCHEMA = "disrt_ros/demo_report/1"
DIAGNOSTICS_TOPIC = "/diagnostics"
DIAGNOSTICS = "diagnostic_msgs/msg/DiagnosticArray"

# Contact sheet: SHEET_ROWS x SHEET_COLS panels of the network grid x SCALE, a legend bar
# on top, GAP-pixel grey gaps between panels.
SHEET_ROWS, SHEET_COLS = 2, 6
LEGEND_H, GAP = 28, 4
PANEL_H, PANEL_W = NET_SHAPE[0] * SCALE, NET_SHAPE[1] * SCALE
GT_BGR = (80, 220, 80)  # ground truth: green
PRED_BGR = (40, 120, 255)  # prediction: orange


@dataclass
class Answer:
    """One ``pose_json`` of the bag: header stamp, log (receive) time, posture, joints."""

    stamp_ns: int
    log_ns: int
    posture: str
    joints_bed: np.ndarray  # [24,3] label frame, m


def read_answers(bag: str | Path, topic: str) -> dict[int, Answer]:
    """The node's answers on ``topic`` by header stamp; the first one of a stamp wins."""
    answers: dict[int, Answer] = {}
    with BagReader(bag) as reader:
        for log_ns, msg in reader.read(topic, "std_msgs/msg/String"):
            d = json.loads(msg.data)
            if d.get("schema") not in POSE_SCHEMAS:
                continue
            stamp = int(d["stamp"]["sec"]) * 1_000_000_000 + int(d["stamp"]["nanosec"])
            if stamp not in answers:
                answers[stamp] = Answer(stamp, log_ns, str(d["posture"]),
                                        np.asarray(d["joints_bed"], np.float64))
    return answers


def last_diagnostics(bag: str | Path) -> dict[str, str]:
    """Key/values of the last /diagnostics statuses in the bag (later reports win)."""
    out: dict[str, str] = {}
    with BagReader(bag) as reader:
        if DIAGNOSTICS_TOPIC not in reader.topics:
            return out
        for _, msg in reader.read(DIAGNOSTICS_TOPIC, DIAGNOSTICS):
            for status in msg.status:
                out.update({kv.key: kv.value for kv in status.values})
    return out


def read_events(bag: str | Path, topic: str) -> list[dict]:
    """The repositioning monitor's events on ``topic`` (``~/alerts``) in the bag: stamp (s,
    the frame's), kind, level (0 OK, 1 WARN) and sentence, in stamp order."""
    events = []
    with BagReader(bag) as reader:
        if topic not in reader.topics:
            return events
        for _, msg in reader.read(topic, DIAGNOSTICS):
            stamp = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
            events += [{"stamp_s": stamp, "kind": st.name, "level": int(st.level),
                        "message": st.message} for st in msg.status]
    return sorted(events, key=lambda e: e["stamp_s"])


def read_pressure(bag: str | Path, topic: str) -> dict[int, np.ndarray]:
    """The node's ``~/pressure`` maps (32FC1 kPa [192,84]) in the bag by header stamp (ns)."""
    maps: dict[int, np.ndarray] = {}
    with BagReader(bag) as reader:
        if topic not in reader.topics:
            return maps
        for _, msg in reader.read(topic, "sensor_msgs/msg/Image"):
            stamp = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
            maps[stamp] = np.frombuffer(bytes(msg.data), np.float32).reshape(msg.height,
                                                                             msg.width)
    return maps


def _number(values: dict[str, str], key: str, kind=float) -> float | int | None:
    try:
        return kind(float(values[key]))
    except (KeyError, ValueError):
        return None


def dropped_frames(diag: dict[str, str], sent: int, answered: int) -> dict[str, int | None]:
    """Where the frames without an answer went, from the node's last diagnostics: never
    received, replaced by a newer frame while it was busy, rate-limited, failed in
    inference, rejected (bad frame, no CameraInfo yet, ...: its problem log says which), or
    answered but not recorded. None where the node did not report."""
    received = _number(diag, "frames_received", int)
    published = _number(diag, "frames_published", int)
    counts = {k: _number(diag, key, int) for k, key in (
        ("replaced_while_busy", "dropped_frames"), ("rate_limited", "rate_limited_frames"),
        ("failed", "failed_frames"))}
    known = None not in (received, published, *counts.values())
    return {"received_by_node": received,
            "not_received_by_node": None if received is None else sent - received,
            **counts,
            "rejected": received - published - sum(counts.values()) if known else None,
            "answered_not_recorded": None if published is None else published - answered}


def summarize(bag: str | Path, pose_topic: str, *, streaming_s: float,
              settings: dict) -> dict:
    """The report (module docstring) of the demo bag ``bag``; ``settings`` is stored as is."""
    truths = read_ground_truth(bag)
    answers = read_answers(bag, pose_topic)
    scored = score(bag, bag, pose_topic=pose_topic)
    matched = sorted(s for s in answers if s in truths)
    latency = np.array([(answers[s].log_ns - s) / 1e6 for s in matched])
    right = {s: answers[s].posture == truths[s].posture for s in matched}
    per_cover: dict[str, dict] = {}
    for name in (*COVERS, "all"):
        stamps = [s for s in matched if name == "all" or truths[s].cover == name]
        sent = sum(1 for gt in truths.values() if name == "all" or gt.cover == name)
        if not sent:
            continue
        per_cover[name] = {
            "frames_sent": sent, "frames_answered": len(stamps),
            "mpjpe_mm": scored.mpjpe.get(name), "pve_mm": scored.pve.get(name),
            "posture_accuracy": (sum(right[s] for s in stamps) / len(stamps)) if stamps
            else None}
    confusion: dict[str, dict[str, int]] = {}
    for s in matched:
        row = confusion.setdefault(str(truths[s].posture), {})
        row[answers[s].posture] = row.get(answers[s].posture, 0) + 1
    diag = last_diagnostics(bag)
    sent = len(truths)
    start_s = min(truths) / 1e9 if truths else 0.0
    events = [{**e, "t_s": round(e["stamp_s"] - start_s, 3)}
              for e in read_events(bag, pose_topic.rsplit("/", 1)[0] + "/alerts")]
    return {
        "schema": REPORT_SCHEMA,
        "settings": settings,
        "streaming_s": round(streaming_s, 3),
        "frames": {"sent": sent, "answered": len(matched), "dropped": sent - len(matched),
                   **dropped_frames(diag, sent, len(matched)),
                   "duplicate_answers": scored.duplicates,
                   "unmatched_answers": scored.unmatched},
        "rates_hz": {"input": sent / streaming_s if streaming_s > 0 else None,
                     "output": len(matched) / streaming_s if streaming_s > 0 else None},
        "latency_ms": {
            "p50": float(np.percentile(latency, 50)) if len(latency) else None,
            "p99": float(np.percentile(latency, 99)) if len(latency) else None,
            "max": float(latency.max()) if len(latency) else None,
            "node_p50": _number(diag, "latency_p50_ms"),
            "node_p99": _number(diag, "latency_p99_ms")},
        "per_cover": per_cover,
        "posture_confusion": confusion,
        "pve_note": scored.pve_note,
        "monitor_events": events,
    }


def _fmt(value, digits: int = 1, scale: float = 1.0, unit: str = "") -> str:
    return "n/a" if value is None else f"{value * scale:.{digits}f}{unit}"


def report_markdown(report: dict) -> str:
    """The report as a short Markdown page."""
    s, f, lat, rates = (report["settings"], report["frames"], report["latency_ms"],
                        report["rates_hz"])
    lines = [
        "# disrt-demo report", "",
        f"A simulated night of {report['streaming_s']:.1f} s streamed at "
        f"{s.get('rate_hz')} Hz as ROS 2 depth messages into the bed monitor node "
        f"(`{s.get('checkpoint')}`, body model {s.get('model_id')}, {s.get('ddim_steps')} "
        f"DDIM steps, device {s.get('device')}).", "",
        "| cover | frames sent | answered | MPJPE (mm) | PVE (mm) | posture accuracy |",
        "|---|---|---|---|---|---|"]
    for name, row in report["per_cover"].items():
        lines.append(f"| {name} | {row['frames_sent']} | {row['frames_answered']} | "
                     f"{_fmt(row['mpjpe_mm'])} | {_fmt(row['pve_mm'])} | "
                     f"{_fmt(row['posture_accuracy'], 0, 100, ' %')} |")
    lines += [
        "", f"- rates: camera {_fmt(rates['input'])} Hz, answers {_fmt(rates['output'])} Hz",
        f"- latency (depth published -> pose received): p50 {_fmt(lat['p50'])} ms, "
        f"p99 {_fmt(lat['p99'])} ms, max {_fmt(lat['max'])} ms; inside the node "
        f"p50 {_fmt(lat['node_p50'])} ms, p99 {_fmt(lat['node_p99'])} ms",
        f"- frames: {f['sent']} sent, {f['answered']} answered, {f['dropped']} dropped "
        f"({_fmt(f['not_received_by_node'], 0)} never reached the node, "
        f"{_fmt(f['replaced_while_busy'], 0)} replaced by a newer frame while the node was "
        f"busy, {_fmt(f['rejected'], 0)} rejected, {_fmt(f['failed'], 0)} failed, "
        f"{_fmt(f['answered_not_recorded'], 0)} answered but not recorded)",
    ]
    if report.get("pve_note"):
        lines.append(f"- {report['pve_note']}")
    scale = s.get("time_scale") or 1.0
    lines += ["", f"Repositioning monitor (compressed time: one second of the demo stands for "
              f"{scale / 60:g} min; the node's durations are divided by {scale:g}):", ""]
    lines += [f"- {e['t_s']:5.1f} s ({e['t_s'] * scale / 3600:4.1f} h) {e['kind']}"
              f"{' (WARN)' if e['level'] else ''}: {e['message']}"
              for e in report.get("monitor_events", [])] or ["- no events"]
    lines += [
        "", "Synthetic-domain numbers: the generator's bodies (open Anny body model unless "
        "the checkpoint is an SMPL one) under its simulated sensor noise, scored against its "
        "own labels; not comparable with the paper's SLP numbers.", ""]
    return "\n".join(lines)


def write_report(report: dict, out_dir: Path) -> tuple[Path, Path]:
    """``report.json`` and ``report.md`` in ``out_dir``."""
    json_path, md_path = out_dir / "report.json", out_dir / "report.md"
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    md_path.write_text(report_markdown(report))
    return json_path, md_path


# ------------------------------------------------------------------------ contact sheet
def sheet_shape(rows: int = SHEET_ROWS, cols: int = SHEET_COLS) -> tuple[int, int]:
    """(height, width) in pixels of a contact sheet of ``rows`` x ``cols`` panels."""
    return (LEGEND_H + rows * PANEL_H + (rows - 1) * GAP, cols * PANEL_W + (cols - 1) * GAP)


def _skeleton(image: np.ndarray, joints_bed: np.ndarray, bgr: tuple[int, int, int]) -> None:
    rows, cols = label_to_net(joints_bed[:, 0], joints_bed[:, 1])
    px = np.stack([(cols + 0.5) * SCALE, (rows + 0.5) * SCALE], 1)
    px = np.clip(np.nan_to_num(px), -1e4, 1e4).round().astype(int)
    for a, b in SMPL_BONES:
        cv2.line(image, tuple(px[a].tolist()), tuple(px[b].tolist()), bgr, 2, cv2.LINE_AA)
    for p in px:
        cv2.circle(image, tuple(p.tolist()), 3, bgr, -1, cv2.LINE_AA)


def frame_panel(net_mm: np.ndarray, bed_mm: float, gt_joints: np.ndarray,
                pred_joints: np.ndarray | None, caption: list[str]) -> np.ndarray:
    """One panel [PANEL_H, PANEL_W, 3]: the network-grid depth (mm) as the node sees it, the
    ground-truth skeleton (green), the predicted one (orange) and caption lines."""
    import torch

    image = depth_panel(torch.as_tensor(net_mm), bed_mm)
    _skeleton(image, gt_joints, GT_BGR)
    if pred_joints is not None:
        _skeleton(image, pred_joints, PRED_BGR)
    for k, text in enumerate(caption):
        y = PANEL_H - 8 - 16 * (len(caption) - 1 - k)
        cv2.putText(image, text, (4, y), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 3,
                    cv2.LINE_AA)
        cv2.putText(image, text, (4, y), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return image


def contact_sheet(panels: list[np.ndarray], rows: int = SHEET_ROWS,
                  cols: int = SHEET_COLS) -> np.ndarray:
    """Panels (at most rows x cols, row by row; empty places stay dark) under a legend bar;
    the result has :func:`sheet_shape` ``(rows, cols)``."""
    if len(panels) > rows * cols:
        raise ValueError(f"{len(panels)} panels do not fit a {rows}x{cols} sheet")
    height, width = sheet_shape(rows, cols)
    sheet = np.full((height, width, 3), 48, np.uint8)
    sheet[:LEGEND_H] = 24
    legend = [("depth (network input)", (230, 230, 230)), ("ground truth", GT_BGR),
              ("prediction", PRED_BGR)]
    x = 8
    for text, colour in legend:
        cv2.putText(sheet, text, (x, LEGEND_H - 9), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1,
                    cv2.LINE_AA)
        x += 14 + cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)[0][0]
    for k, panel in enumerate(panels):
        r, c = divmod(k, cols)
        top, left = LEGEND_H + r * (PANEL_H + GAP), c * (PANEL_W + GAP)
        sheet[top:top + PANEL_H, left:left + PANEL_W] = panel
    return sheet


def pick_frames(periods: list[int], answered: list[bool], count: int) -> list[int]:
    """Indices of up to ``count`` answered frames for the contact sheet, in time order: the
    middle answered frame of each still period first (``periods[i]`` = period of frame i),
    then evenly spread others."""
    chosen: list[int] = []
    for period in dict.fromkeys(periods):
        frames = [i for i, (p, a) in enumerate(zip(periods, answered)) if p == period and a]
        if frames and len(chosen) < count:
            chosen.append(frames[len(frames) // 2])
    rest = [i for i, a in enumerate(answered) if a and i not in chosen]
    need = count - len(chosen)
    if need > 0 and rest:
        picks = np.linspace(0, len(rest) - 1, min(need, len(rest))).round().astype(int)
        chosen += [rest[k] for k in dict.fromkeys(picks.tolist())]
    return sorted(chosen)


def pressure_panel(kpa: np.ndarray) -> np.ndarray:
    """The node's pressure map [192,84] (kPa) as a panel [PANEL_H, PANEL_W, 3] under the
    depth panel of its frame (same bed orientation, head end at the top)."""
    image = pressure_overlay(kpa, scale=1, caption="")
    image = cv2.resize(image, (PANEL_W, PANEL_H), interpolation=cv2.INTER_NEAREST)
    for colour, thickness in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(image, f"max {float(np.max(kpa)):.1f} kPa", (4, 14),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.42, colour, thickness, cv2.LINE_AA)
    return image


def write_contact_sheet(path: Path, night, rate: float, bag: str | Path,
                        pose_topic: str) -> Path:
    """The contact sheet of a demo run: frames picked by :func:`pick_frames` among those the
    node answered (among those with a recorded ``~/pressure`` map when there are any), each
    as the network sees it (``raw_to_network`` of the raw frame with the night's camera, as
    the node prepares it) with both skeletons, and under it the node's pressure map of that
    frame. ``night`` is a :class:`disrt_ros.demo.Night`."""
    import torch

    from disrt_core.geometry.camera import raw_to_network

    answers, truths = read_answers(bag, pose_topic), read_ground_truth(bag)
    maps = read_pressure(bag, pose_topic.rsplit("/", 1)[0] + "/pressure")
    answered = [False] * len(night.frames)
    pairs, pressure = {}, {}
    for stamp, truth in truths.items():
        frame = int(truth.extra["frame"])
        if stamp in answers and frame not in pairs:
            answered[frame] = True
            pairs[frame] = (truth, answers[stamp])
            if stamp in maps:
                pressure[frame] = maps[stamp]
    if pressure:  # two rows per row of frames: depth, then its pressure map
        answered = [a and i in pressure for i, a in enumerate(answered)]
    rows = SHEET_ROWS * (2 if pressure else 1)
    panels = []
    K = torch.from_numpy(night.K).float()[None]
    T = torch.from_numpy(night.T_cam_bed).float()[None]
    frames = pick_frames(night.period_of.tolist(), answered, SHEET_ROWS * SHEET_COLS)
    for frame in frames:
        truth, answer = pairs[frame]
        depth = torch.from_numpy(night.frames[frame].astype(np.float32))[None]
        net_mm = raw_to_network(depth, K, T, night.bed_mm)[0]
        error = 1000.0 * np.linalg.norm(answer.joints_bed - truth.joints_bed_m, axis=1).mean()
        caption = [f"{frame / rate:5.1f} s {truth.cover} {truth.posture}",
                   f"node: {answer.posture}, {error:.0f} mm"]
        panels.append(frame_panel(net_mm.numpy(), night.bed_mm, truth.joints_bed_m,
                                  answer.joints_bed, caption))
    if pressure:  # reorder: each row of depth panels followed by its row of pressure maps
        depth_panels, panels = panels, []
        for r in range(0, len(frames), SHEET_COLS):
            row = frames[r:r + SHEET_COLS]
            panels += depth_panels[r:r + SHEET_COLS] + [np.full_like(depth_panels[0], 48)] * (
                SHEET_COLS - len(row))
            panels += [pressure_panel(pressure[f]) for f in row]
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), contact_sheet(panels, rows=rows)):
        raise OSError(f"could not write {path}")
    return path
