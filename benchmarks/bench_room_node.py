"""The bed monitor node end to end in generated bedrooms (issue 19): what a user's node does
where it must find the bed itself.

    python benchmarks/bench_room_node.py [--sensors d455_640x360,...] [--seeds 4-7]
        [--seconds 12] [--rate 10] [--device cpu] [--tag NAME]

Each (sensor, seed) is one ``disrt-demo --scene room`` run (:mod:`disrt_ros.demo`): the night
rendered as a whole room (floor, furniture, the bed anywhere in the frame, the camera pitched
1.4-3.2 m above the mattress), streamed as ROS 2 depth messages to ``disrt-bed-monitor`` in
its own process with ``bed_region: auto`` and no camera pose, the default weights (or
``--checkpoint``), scored by the demo's report in the node's own fitted bed frame against the
generator's labels. Per run: whether the node found the bed (its log), how the head end was
decided, the answered share, MPJPE and posture accuracy. Rows: the share of runs with a bed
found, the median MPJPE and the mean posture accuracy over the runs that answered, and one
row per run. Runs whose bed the generator's camera does not see whole are left out (the
demo refuses them).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parent.parent

SENSORS = ("d455_640x360", "d435_640x480", "d435_424x240", "azure_nfov", "kinect2")


def seeds(text: str) -> list[int]:
    """``4-7`` or ``3,5,9`` -> a list of seeds."""
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def one_run(sensor: str, seed: int, args, out: Path) -> dict:
    """One room demo; what its report and the node's log say."""
    command = [sys.executable, "-m", "disrt_ros.demo", "--scene", "room", "--sensor", sensor,
               "--seed", str(seed), "--seconds", str(args.seconds), "--rate", str(args.rate),
               "--device", args.device, "--out", str(out)]
    if args.checkpoint:
        command += ["--checkpoint", args.checkpoint]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    if "does not see the whole bed" in proc.stderr:
        return {"sensor": sensor, "seed": seed, "skipped": True}
    log = (out / "node.log").read_text(errors="replace") if (out / "node.log").exists() else ""
    report = json.loads((out / "report.json").read_text()) if proc.returncode == 0 else {}
    every = report.get("per_cover", {}).get("all", {})
    return {"sensor": sensor, "seed": seed, "skipped": False, "rc": proc.returncode,
            "bed_found": "bed found (auto)" in log,
            "head_voted": "head end decided from the person" in log,
            "bed_turned": "the bed is turned" in log,
            "sizes": re.findall(r"bed found \(auto\): ([0-9.]+ x [0-9.]+) m", log)[:1],
            "sent": every.get("frames_sent", 0), "answered": every.get("frames_answered", 0),
            "mpjpe_mm": every.get("mpjpe_mm"), "posture": every.get("posture_accuracy")}


def main(argv: list[str] | None = None) -> None:
    from common import Result, Row, command_line, machine_info, save

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sensors", default=",".join(SENSORS))
    p.add_argument("--seeds", default="4-7")
    p.add_argument("--seconds", type=float, default=12.0)
    p.add_argument("--rate", type=float, default=10.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--tag", default="")
    args = p.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for sensor in args.sensors.split(","):
            for seed in seeds(args.seeds):
                run = one_run(sensor, seed, args, Path(tmp) / f"{sensor}_{seed}")
                runs.append(run)
                print(json.dumps(run), flush=True)
    used = [r for r in runs if not r["skipped"]]
    if not used:
        raise SystemExit("no room of these seeds shows the whole bed to its camera")
    answered = [r for r in used if r.get("answered") and r.get("mpjpe_mm") is not None]
    result = Result("room_node" + (f"_{args.tag}" if args.tag else ""), machine_info(),
                    command_line())
    result.rows += [
        Row("runs whose bed the node found itself (bed_region auto)", round(100 * sum(
            r["bed_found"] for r in used) / len(used), 1), "%",
            note=f"{sum(r['bed_found'] for r in used)} of {len(used)} rooms"),
        Row("MPJPE, median over the runs that answered", round(statistics.median(
            r["mpjpe_mm"] for r in answered), 1) if answered else float("nan"), "mm",
            note=f"{len(answered)} runs; the node's fitted bed frame against the labels"),
        Row("posture accuracy, mean over the runs that answered", round(100 * statistics.mean(
            r["posture"] for r in answered), 1) if answered else float("nan"), "%"),
        Row("answered share of the frames sent", round(100 * sum(r["answered"] for r in used)
                                                       / max(1, sum(r["sent"] for r in used)),
                                                       1), "%",
            note="the CPU node drops frames it cannot keep up with by design"),
    ]
    for r in used:
        what = ("no bed found" if not r["bed_found"] else
                f"bed {r['sizes'][0] if r['sizes'] else '?'} m"
                + (", head end voted" if r["head_voted"] else "")
                + (" (turned)" if r["bed_turned"] else ""))
        result.rows.append(Row(f"MPJPE, {r['sensor']} seed {r['seed']}",
                               round(r["mpjpe_mm"], 1) if r.get("mpjpe_mm") else float("nan"),
                               "mm", note=f"{what}; posture "
                               f"{100 * (r['posture'] or 0):.0f} %, answered {r['answered']} "
                               f"of {r['sent']}"))
    skipped = [f"{r['sensor']} seed {r['seed']}" for r in runs if r["skipped"]]
    model = f"checkpoint {args.checkpoint}" if args.checkpoint else "the default weights"
    result.notes.append(
        f"disrt-demo --scene room, {args.seconds:g} s at {args.rate:g} Hz per run, device "
        f"{args.device}, {model}"
        + (f"; left out (bed not wholly in view): {', '.join(skipped)}" if skipped else ""))
    path = save(result)
    for row in result.rows[:4]:
        print(f"{row.metric:60s} {row.value:8.1f} {row.unit}")
    print("wrote", path)


if __name__ == "__main__":
    main()
