"""The sim-to-real benchmark without real data (SIM2REAL.md), in one command.

    python training/sim2real.py [--device cuda] [--out runs/sim2real] [--jobs 16]

The paper's Table 1 protocol (:mod:`disrt_core.train.sweep`, SPEC §5) with the generator's
source domain as the synthetic data and its target domain (``disrt-generate --domain
target``, :mod:`disrt_core.sim.target`) standing in for the real data:

1. **data** (``disrt-generate``; a finished set is kept): source shards from the Kinect v2
   and the D435 models, a target training pool of ``pool`` samples in shards of
   ``pool_shard`` (the sweep's fractions take whole shards, as the paper takes whole SLP
   subjects) and a held-out target test set, each with its own seed (:data:`SCALES`);
2. **training and evaluation** through ``training/evaluate.py --sweep-fractions`` with
   ``config/sim2real.yaml``, split into processes that share the device [choice]: the
   ``small`` network leaves a GPU mostly idle from one process, so phase A trains the
   synthetic stage of every seed side by side, and phase B runs one process per (seed,
   method) and one per fraction for ``joint``. Each run's folder is the sweep's own
   (:func:`~disrt_core.train.sweep.run_dir`), so a re-run redoes only what is missing;
3. **report**: :func:`~disrt_core.train.sweep.collect` merges the runs into
   ``<out>/table1.json`` / ``table1.md``, :func:`plot` draws MPJPE against the target
   fraction per method (``sim2real.png``), and :func:`ordering` says, fraction by fraction,
   how far each other method is from the paper's (``finetune:linear``): ``summary.md``.

Methods (:data:`METHODS`): the paper's fine-tune with the linear decay, with cosine decay
and with no schedule (its supplementary ablation), training on the target pool alone, and
joint training on source + target. ``joint`` repeats the whole synthetic stage for every
fraction, so it runs for the first seed only [choice]; the others run for every seed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from disrt_core.train.sweep import PAPER_FRACTIONS, collect, column, markdown, parse_method

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "sim2real.yaml"
METHODS = ("finetune:linear", "finetune:cosine", "finetune:none", "target_only:linear",
           "joint")
PAPER_ROW = "finetune:linear"
SMALL = (0.11, 0.24)  # fractions that get every seed ("three seeds for the small fractions")


@dataclass(frozen=True)
class Scale:
    """Data set sizes, and config overrides for the training (empty: the config's own)."""

    source: int  # per source sensor (Kinect v2, D435)
    pool: int
    pool_shard: int
    test: int
    overrides: tuple[str, ...] = ()


SCALES = {
    # One GPU (not run to the end yet, SIM2REAL.md).
    "full": Scale(source=10_000, pool=500, pool_shard=5, test=500),
    # Two CPU cores, 32 minutes (the table of SIM2REAL.md).
    "cpu": Scale(source=1_500, pool=300, pool_shard=3, test=300,
                 overrides=("stages.synth.batch_size=64",)),
    # A complete pass on a CPU in about a minute (the test of this module).
    "tiny": Scale(source=32, pool=16, pool_shard=2, test=8, overrides=(
        "stages.synth.epochs=1", "stages.synth.batch_size=16", "stages.finetune.epochs=1",
        "stages.finetune.batch_size=4", "eval.batch_size=8", "loss.normaliser_samples=32")),
}
SEEDS = {"source_kinect2": 0, "source_d435": 1, "target_pool": 100, "target_test": 200}


def data_commands(data: Path, scale: Scale, device: str) -> list[tuple[str, list[str]]]:
    """(name, argv) of the ``disrt-generate`` runs that make the three data sets.

    The target pool is made on the CPU, one worker per core, on every machine [choice]: its
    many small shards are one cloth simulation each, which a GPU runs no faster for a few
    samples than for a thousand (more than 2.5 s per shard on an H200), while CPU workers
    take the shards in parallel. It is then also the same data wherever the sweep runs."""
    gen = [sys.executable, "-m", "disrt_core.sim.cli", "--quiet"]
    on = ["--device", device] + (["--workers", "1"] if device == "cpu" else [])
    big = ["--batch-size", "1024"] if device.startswith("cuda") else []
    cores = ["--device", "cpu", "--workers",
             "1" if device == "cpu" else str(len(os.sched_getaffinity(0)))]
    out = []
    for sensor in ("kinect2", "d435"):
        name = f"source_{sensor}"
        out.append((name, [*gen, *on, "--n", str(scale.source), "--sensor", sensor, *big,
                           "--seed", str(SEEDS[name]), "--out", str(data / name)]))
    out.append(("target_pool", [*gen, *cores, "--domain", "target", "--n", str(scale.pool),
                                "--shard-size", str(scale.pool_shard),
                                "--seed", str(SEEDS["target_pool"]),
                                "--out", str(data / "target_pool")]))
    out.append(("target_test", [*gen, *on, "--domain", "target", "--n", str(scale.test),
                                "--seed", str(SEEDS["target_test"]),
                                "--out", str(data / "target_test")]))
    return out


def plan(methods: Sequence[str], fractions: Sequence[float], seeds: Sequence[int]
         ) -> list[tuple[str, int, float]]:
    """The runs (method, seed, fraction) of the table: every method with the first seed at
    every fraction; the other seeds at ``Sim`` and the small fractions (:data:`SMALL`), except
    for ``joint``, which repeats the whole synthetic stage per fraction [choice]."""
    runs = []
    for method in methods:
        joint = parse_method(method)[0] == "joint"
        for i, seed in enumerate(seeds):
            if i and joint:
                break
            runs += [(method, seed, f) for f in fractions if i == 0 or f == 0 or f in SMALL]
    return runs


def sweep_commands(out: Path, data: Path, scale: Scale, device: str,
                   runs: Sequence[tuple[str, int, float]]) -> tuple[list, list]:
    """(name, argv) of the sweep processes of ``runs``: phase A trains and evaluates the
    synthetic stage of each seed; phase B one process per (method, seed), and for ``joint``
    one per fraction; the longest first."""
    paths = [f"init.checkpoint={ROOT / 'disrt_core' / 'weights' / 'default.safetensors'}",
             f"stages.synth.data.0.path={data / 'source_kinect2'}",
             f"stages.synth.data.1.path={data / 'source_d435'}",
             f"stages.finetune.data.0.path={data / 'target_pool'}",
             f"eval.data.path={data / 'target_test'}"]
    # One torch CPU thread per process: many run side by side, and the GPU does the maths.
    base = [sys.executable, str(ROOT / "training" / "evaluate.py"), "--sweep-fractions",
            "--config", str(CONFIG), "--device", device, "--out", str(out),
            "--set", *paths, "run.threads=1", *scale.overrides]

    def job(fracs, method, seed):
        return [*base, "--fractions", ",".join(f"{f:g}" for f in fracs),
                "--methods", method, "--seeds", str(seed)]

    seeds = sorted({seed for _, seed, _ in runs})
    phase_a = [(f"synth-seed{s}", job([0.0], PAPER_ROW, s)) for s in seeds]
    groups: dict[tuple[str, int], list[float]] = {}
    for method, seed, fraction in runs:
        if fraction > 0:
            groups.setdefault((method, seed), []).append(fraction)
    phase_b = []
    for (method, seed), fracs in groups.items():
        if parse_method(method)[0] == "joint":
            phase_b += [(10 + f, f"joint-f{round(100 * f):03d}",
                         job([f], method, seed)) for f in fracs]
        else:
            phase_b.append((sum(fracs), f"{method.replace(':', '-')}-seed{seed}",
                            job(fracs, method, seed)))
    phase_b.sort(key=lambda j: -j[0])
    return phase_a, [(name, argv) for _, name, argv in phase_b]


def run_jobs(jobs: list[tuple[str, list[str]]], logs: Path, parallel: int) -> None:
    """Run the commands, ``parallel`` at a time, each logging to ``logs/<name>.log``;
    raises naming every job that failed."""
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}

    def one(job):
        name, argv = job
        start = time.perf_counter()
        with open(logs / f"{name}.log", "w") as log:
            code = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                  cwd=ROOT).returncode
        print(f"[sim2real] {name}: {'done' if code == 0 else f'FAILED ({code})'} in "
              f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
        return name, code

    with ThreadPoolExecutor(max(1, parallel)) as pool:
        failed = [name for name, code in pool.map(one, jobs) if code != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} job(s) failed: {', '.join(failed)}; see "
                           f"{logs}/<job>.log (a re-run redoes only what is missing)")


def merge(out: Path, runs: Sequence[tuple[str, int, float]], fractions: Sequence[float],
          seeds: Sequence[int]) -> dict:
    """One table of ``runs`` (:func:`disrt_core.train.sweep.collect`)."""
    table = collect(out, runs, fractions, seeds)
    many = [column(f) for f in fractions if f == 0 or f in SMALL]
    footnote = (f"MPJPE / PVE in mm on the held-out target test set (all covers, 5 DDIM steps, "
                f"1 hypothesis). Mean ± std over seeds {list(seeds)} in the columns "
                f"{', '.join(many)} (joint: seed {seeds[0]} only), seed {seeds[0]} elsewhere. "
                "Sim = source domain only; +N% = with N% of the target pool.")
    table["markdown"] = markdown(table["rows"], table["columns"], footnote)
    return table


def ordering(table: dict) -> str:
    """How each method compares with the paper's fine-tune (linear decay), per fraction:
    the MPJPE difference (positive = the paper's method is better) and where it ranks."""
    rows, cols = table["rows"], [c for c in table["columns"] if c != "Sim"]
    paper = rows.get(PAPER_ROW, {})
    lines = [f"| MPJPE minus {PAPER_ROW}'s (mm) | " + " | ".join(cols) + " |",
             "|---|" + "---|" * len(cols)]
    wins = {c: 0 for c in cols}
    for row, cells in rows.items():
        if row == PAPER_ROW:
            continue
        diffs = []
        for col in cols:
            if col in cells and col in paper:
                d = cells[col]["mpjpe_mm"] - paper[col]["mpjpe_mm"]
                wins[col] += d >= 0
                diffs.append(f"{d:+.1f}")
            else:
                diffs.append("–")
        lines.append(f"| {row} | " + " | ".join(diffs) + " |")
    others = len(rows) - (PAPER_ROW in rows)
    best = [c for c in cols if c in paper and wins[c] == others]
    lines += ["", f"Positive: the method's MPJPE is that much higher than the paper's "
              f"fine-tune's. No other method beats the paper's at {len(best)} of {len(cols)} "
              f"fractions ({', '.join(best) or 'none'})."]
    return "\n".join(lines) + "\n"


def plot(table: dict, fractions: Sequence[float], path: Path) -> Path:
    """MPJPE against the target fraction per method (error bars: std over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for row, cells in table["rows"].items():
        xs, ys, es = [], [], []
        for f in fractions:
            c = cells.get(column(f))
            if c is not None:
                xs.append(100 * f)
                ys.append(c["mpjpe_mm"])
                es.append(c["mpjpe_std"])
        ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=row,
                    linewidth=2.5 if row == PAPER_ROW else 1.2)
    ax.set_xlabel("target pool used for training (%; 0 = source domain only)")
    ax.set_ylabel("MPJPE on the target test set (mm)")
    ax.set_title("Sim-to-real without real data: Table 1 protocol, target domain")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="training/sim2real.py",
                                description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cuda | cpu (default: cuda)")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "sim2real")
    p.add_argument("--data", type=Path, default=ROOT / "data" / "sim2real",
                   help="folder of the generated data sets")
    p.add_argument("--scale", choices=sorted(SCALES), default="full")
    p.add_argument("--jobs", type=int, default=None,
                   help="processes side by side (default: 16 on cuda, 2 on cpu)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--fractions", default=",".join(f"{f:g}" for f in (0, *PAPER_FRACTIONS)))
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--report-only", action="store_true",
                   help="merge and plot the finished runs, train nothing")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    fractions = [float(f) for f in args.fractions.split(",")]
    methods = args.methods.split(",")
    for method in methods:
        parse_method(method)
    if 0.0 not in fractions:
        fractions.insert(0, 0.0)
    if args.device.startswith("cuda") and not args.report_only:
        import torch

        if not torch.cuda.is_available():
            build_parser().error("--device cuda but torch sees no CUDA device (use --device "
                                 "cpu --scale cpu on a machine without a GPU)")
    scale = SCALES[args.scale]
    runs = plan(methods, fractions, seeds)
    jobs = args.jobs or (16 if args.device.startswith("cuda") else 2)
    out, logs = args.out, args.out / "logs"
    started = time.perf_counter()
    if not args.report_only:
        phase_a, phase_b = sweep_commands(out, args.data, scale, args.device, runs)
        # The body model's cache first, so that the parallel jobs find it built.
        cache = [("body-model", [sys.executable, "-c", "import warnings; from disrt_core.body "
                                 "import load_body_model; warnings.simplefilter('ignore'); "
                                 "load_body_model('anny')"])]
        try:
            for jobs_of_phase, parallel in ((cache, 1), (data_commands(
                    args.data, scale, args.device), jobs), (phase_a, jobs), (phase_b, jobs)):
                run_jobs(jobs_of_phase, logs, parallel)
        except RuntimeError as error:
            print(f"[sim2real] {error}", file=sys.stderr)
            return 1
    table = merge(out, runs, fractions, seeds)
    (out / "table1.json").write_text(json.dumps(table, indent=1))
    (out / "table1.md").write_text(table["markdown"])
    summary = table["markdown"] + "\n" + ordering(table)
    try:
        picture = plot(table, fractions, out / "sim2real.png")
        summary += f"\n![MPJPE against target fraction]({picture.name})\n"
    except ImportError:
        print("[sim2real] matplotlib is not installed: no plot", file=sys.stderr)
    (out / "summary.md").write_text(summary)
    print(summary)
    if table["missing"]:
        print(f"[sim2real] {len(table['missing'])} run(s) missing: {table['missing']}",
              file=sys.stderr)
    print(f"[sim2real] {out} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 1 if table["missing"] else 0
