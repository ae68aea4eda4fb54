"""Run every benchmark of the project on this machine, then regenerate BENCHMARKS.md.

    python benchmarks/run_all.py                  # all, with this machine's defaults
    python benchmarks/run_all.py --list           # the plan: commands, expected minutes
    python benchmarks/run_all.py --only node,e2e --note "quiet machine"
    python benchmarks/run_all.py --device cpu --skip drape,ema

Each benchmark runs as its own process (``python benchmarks/bench_*.py ...``), one after the
other, and writes its JSON to ``benchmarks/results/`` through ``benchmarks/common.py``;
``report.py`` renders them all at the end, so figures of earlier runs and other machines stay
in the table. A benchmark that fails or times out is reported and the others still run (the
exit status is then 1).

**Per-machine defaults** (the ``PLAN`` below): ``--device auto`` picks ``cuda`` when torch
sees a GPU (the H100 / H200 of the device tool), else ``cpu`` (the 2-core development
machine). On the CPU the heavy configurations are left out or shortened (paper network at
batch 1 only, short training runs); on a GPU the precisions, ``torch.compile``, CUDA graphs
and the largest batches are measured. Benchmarks that do not use an accelerator (bags, data
readers) run on both.

On the device tool (10 minutes a command) run the plan in parts, e.g.
``--only estimator`` then ``--only train,generator,generator_d435`` then the rest with
``--skip``; ``--list`` shows the expected minutes of each.

**Machine conditions**: every benchmark that takes ``--note`` gets one with the 1-minute load
average at its start (and ``--note`` given here), because CPU timings taken while other jobs
share the cores are disturbed. Every process that starts rclpy gets localhost-only discovery
and its own random ROS domain.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"


@dataclass(frozen=True)
class Bench:
    """One benchmark run: ``script`` with ``args`` per device kind (None: not run there)."""

    name: str
    script: str
    cpu: tuple[str, ...] | None
    cuda: tuple[str, ...] | None
    minutes: tuple[float, float] = (1.0, 1.0)  # rough duration on (cpu, cuda)
    note: bool = False  # takes --note
    what: str = ""


PLAN: tuple[Bench, ...] = (
    Bench("body", "bench_body.py", ("--device", "cpu"), ("--device", "cuda"), (1, 1),
          what="body model forward (SMPL-sized fixture, Anny)"),
    Bench("estimator", "bench_estimator.py",
          ("--configs", "small,paper_native,paper", "--batches", "1,64", "--repeat", "40"),
          ("--device", "cuda", "--configs", "paper,small", "--batches", "1,256",
           "--precisions", "bf16", "--compile", "none,max-autotune-no-cudagraphs",
           "--cuda-graphs", "off,on"),
          (10, 12), note=True, what="inference latency and throughput per network preset"),
    Bench("estimator_compile", "bench_estimator.py",
          ("--configs", "small", "--batches", "1", "--compile", "none,default", "--repeat",
           "60", "--tag", "compile"), None, (4, 0), note=True,
          what="torch.compile vs eager on the CPU (small, batch 1)"),
    Bench("node", "bench_node.py", ("--preset", "small", "--seconds", "8", "--cameras", "2"),
          ("--device", "cuda", "--preset", "small", "--seconds", "8", "--cameras", "2"),
          (2, 2), what="bed monitor node end to end (depth published -> markers received)"),
    Bench("node_t1", "bench_node.py", ("--preset", "small", "--threads", "1", "--seconds",
                                       "8", "--cameras", "2"), None, (2, 0),
          what="the node with one torch thread"),
    Bench("node_overhead", "bench_node.py", ("--fake-ms", "0", "--threads", "1", "--seconds",
                                             "8", "--cameras", "2"),
          ("--device", "cuda", "--fake-ms", "0", "--threads", "1", "--seconds", "8",
           "--cameras", "2"), (2, 2),
          what="the node around a 0 ms estimator (ROS and message overhead)"),
    Bench("node_paper_graphs", "bench_node.py", None,
          ("--device", "cuda", "--preset", "paper", "--cuda-graphs", "--seconds", "8",
           "--cameras", "2"), (0, 3), what="the paper network in the node, CUDA graphs"),
    Bench("executor", "bench_executor.py", (), None, (1, 1),
          what="rclpy executor CPU per received depth message, 8 cameras x 30 Hz"),
    Bench("e2e", "bench_e2e.py", ("--frames", "300"), ("--device", "cuda", "--frames", "300"),
          (4, 3), note=True, what="synthetic night -> replay 30 Hz -> node -> record -> score"),
    Bench("bags", "bench_bags.py", (), (), (2, 2), what="bag write/read and replay timing"),
    Bench("data", "bench_data.py", ("--repeat", "5", "--threads", "1"),
          ("--device", "cuda", "--repeat", "5"), (5, 5), note=True,
          what="SLP preprocessing, readers, data pipeline, augmentation"),
    Bench("bedfit", "bench_bedfit.py", ("--scenes", "64", "--sensors", "all", "--batch", "8"),
          ("--device", "cuda", "--scenes", "1000", "--batch", "125"), (8, 3), note=True,
          what="finding the mattress in generated rooms (share right, wrong fits, CPU time)"),
    Bench("generator", "bench_generator.py", ("--batches", "4"),
          ("--device", "cuda", "--batch", "1024"), (4, 2), note=True,
          what="synthetic generator samples/s (Kinect v2)"),
    Bench("generator_d435", "bench_generator.py", ("--batches", "3", "--sensor", "d435"),
          ("--device", "cuda", "--batch", "1024", "--sensor", "d435"), (4, 2), note=True,
          what="synthetic generator samples/s (RealSense D435)"),
    Bench("occupancy", "bench_occupancy.py", ("--n", "96", "--batch", "8"),
          ("--device", "cuda", "--n", "2000", "--batch", "128", "--fit"), (25, 3),
          what="occupancy state (in bed, empty, sitting) accuracy of the default model"),
    Bench("room_node", "bench_room_node.py", ("--seeds", "4-7"),
          ("--device", "cuda", "--seeds", "4-7"), (12, 8),
          what="the node end to end in generated bedrooms: bed found, MPJPE, posture"),
    Bench("pressure", "bench_pressure.py", ("--n", "256", "--train-n", "512"),
          ("--device", "cuda", "--n", "2000", "--train-n", "4000", "--batch", "256"), (20, 3),
          note=True, what="pressure under the predicted body against the generator's maps"),
    Bench("rest", "bench_rest.py", ("--n", "1000"),
          ("--device", "cuda", "--n", "4000", "--batch", "1000"), (3, 2), note=True,
          what="generated bodies at rest: gaps, contact area, load per posture"),
    Bench("train", "bench_train.py", ("--steps", "50"),
          ("--device", "cuda", "--configs", "small,paper", "--batches", "32,max",
           "--precisions", "bf16", "--compile", "none", "--steps", "20"),
          (10, 8), note=True, what="training samples/s per preset, batch, precision"),
    Bench("ema", "bench_ema.py", (), ("--device", "cuda", "--preset", "small", "--steps",
                                      "5000", "--batch", "256"), (8, 6), note=True,
          what="does an EMA of the weights help (accuracy study)"),
    Bench("drape", "bench_drape_cloth.py", ("--scenes", "4"), ("--scenes", "4", "--device",
                                                               "cuda"), (6, 3),
          what="blanket drape vs a cloth simulation (accuracy study)"),
)


def plan_for(kind: str, only: list[str] | None = None, skip: list[str] | None = None
             ) -> list[tuple[Bench, tuple[str, ...]]]:
    """(benchmark, arguments) to run on a ``kind`` ("cpu" or "cuda") machine, in order;
    ``only`` / ``skip`` select by name (unknown names are refused)."""
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"device kind must be cpu or cuda, got {kind!r}")
    names = {b.name for b in PLAN}
    for given in (only or []) + (skip or []):
        if given not in names:
            raise ValueError(f"unknown benchmark {given!r}; known: {', '.join(sorted(names))}")
    chosen = []
    for bench in PLAN:
        args = bench.cpu if kind == "cpu" else bench.cuda
        if args is None or (only and bench.name not in only) or bench.name in (skip or []):
            continue
        chosen.append((bench, args))
    return chosen


def load_note(user_note: str) -> str:
    """The note for one benchmark: the load average now and the user's note."""
    try:
        load = os.getloadavg()[0]
        text = f"run_all: 1-minute load average {load:.2f} at the start ({os.cpu_count()} cores)"
    except OSError:
        text = "run_all"
    return f"{text}; {user_note}" if user_note else text


def command(bench: Bench, args: tuple[str, ...], note: str) -> list[str]:
    cmd = [sys.executable, str(HERE / bench.script), *args]
    if bench.note:
        cmd += ["--note", load_note(note)]
    return cmd


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_DOMAIN_ID"] = str(random.SystemRandom().randint(1, 101))
    env.pop("ROS_LOCALHOST_ONLY", None)
    return env


def _written_since(start: float) -> list[Path]:
    return sorted(p for p in RESULTS.glob("*.json") if p.stat().st_mtime >= start)


def unmet_goals(paths: list[Path]) -> list[str]:
    """'benchmark: metric = value unit (goal ...)' for every row whose goal was not met."""
    out = []
    for path in paths:
        result = json.loads(path.read_text())
        for row in result.get("rows", []):
            if row.get("met") is False:
                out.append(f"{result['benchmark']}: {row['metric']} = {row['value']:g} "
                           f"{row['unit']} (goal {row['goal']})")
    return out


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="which defaults: cuda when a GPU is visible (auto), or forced")
    parser.add_argument("--only", default="", help="comma list of benchmark names to run")
    parser.add_argument("--skip", default="", help="comma list of benchmark names to leave out")
    parser.add_argument("--note", default="", help="machine conditions, stored with results")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="seconds one benchmark may take (default 3600)")
    parser.add_argument("--list", action="store_true", help="print the plan and exit")
    parser.add_argument("--no-report", action="store_true", help="do not rewrite BENCHMARKS.md")
    args = parser.parse_args(argv)
    kind = args.device
    if kind == "auto":
        import torch

        kind = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        plan = plan_for(kind, _names(args.only), _names(args.skip))
    except ValueError as error:
        parser.error(str(error))
    column = 0 if kind == "cpu" else 1
    total = sum(b.minutes[column] for b, _ in plan)
    print(f"[run_all] {len(plan)} benchmarks for a {kind} machine, about {total:.0f} min")
    if args.list:
        for bench, bench_args in plan:
            shown = " ".join(["python", f"benchmarks/{bench.script}", *bench_args])
            print(f"  {bench.name:<18} ~{bench.minutes[column]:>3.0f} min  {shown}"
                  f"{'  --note ...' if bench.note else ''}\n  {'':<18} {bench.what}")
        return 0

    started, failures = time.time(), []
    for number, (bench, bench_args) in enumerate(plan, 1):
        cmd = command(bench, bench_args, args.note)
        print(f"\n[run_all] {number}/{len(plan)} {bench.name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.monotonic()
        try:
            code = subprocess.run(cmd, cwd=ROOT, env=_env(), timeout=args.timeout).returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
        seconds = time.monotonic() - t0
        if code != 0:
            failures.append(f"{bench.name} ({code})")
        print(f"[run_all] {bench.name}: {'ok' if code == 0 else f'FAILED ({code})'} in "
              f"{seconds / 60:.1f} min", flush=True)
    written = _written_since(started)
    print(f"\n[run_all] results written: {', '.join(p.name for p in written) or 'none'}")
    unmet = unmet_goals(written)
    if unmet:
        print("[run_all] goals not met:\n  " + "\n  ".join(unmet))
    if not args.no_report:
        subprocess.run([sys.executable, str(HERE / "report.py")], cwd=ROOT, check=True)
    if failures:
        print(f"[run_all] failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
