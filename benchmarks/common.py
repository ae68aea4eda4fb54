"""Shared plumbing of the benchmarks: timing, machine description, result files.

Every benchmark writes one JSON per machine to ``benchmarks/results/`` (name, machine,
date, command, rows); ``benchmarks/report.py`` renders all of them into BENCHMARKS.md, so
figures taken on the GPU machine and on the development CPU sit in one table.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import shlex
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    """One measured figure; ``goal`` is a human-readable target, ``met`` whether it was reached."""

    metric: str
    value: float
    unit: str
    goal: str = ""
    met: bool | None = None
    note: str = ""


@dataclass
class Result:
    benchmark: str
    machine: dict
    command: str
    date: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    )
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def machine_info() -> dict:
    """CPU model, cores and threads used, GPU name, torch version."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def machine_slug(info: dict) -> str:
    name = info["gpu"] or f"cpu{info['cores']}"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def time_call(fn: Callable[[], object], *, warmup: int = 3, repeat: int = 20,
              cuda: bool = False) -> list[float]:
    """Wall-clock seconds of ``repeat`` calls after ``warmup`` calls (CUDA-synchronised)."""
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, round(q) - 1))]


def save(result: Result) -> Path:
    """Write the result JSON (one per benchmark and machine) and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{result.benchmark}--{machine_slug(result.machine)}.json"
    payload = asdict(result)
    tmp = path.with_suffix(".json.tmp")  # written whole, then renamed: never half a file
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    tmp.replace(path)
    return path


def command_line() -> str:
    args = [os.path.relpath(sys.argv[0]), *sys.argv[1:]]
    return "python " + " ".join(shlex.quote(a) for a in args)


def load_body(kind: str, device: str):
    """The body model of a benchmark: ``anny`` (the default model's) or ``smpl-fixture``
    (SMPL's sizes, 6,890 vertices and 13,776 faces, from a fixture file: SMPL itself needs
    licensed files; its faces made local, :func:`disrt_core.body.fixtures.local_faces`)."""
    from disrt_core.body import load_body_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "smpl-fixture":
            from disrt_core.body.fixtures import local_faces, write_fake_smpl_pickle

            tmp = tempfile.mkdtemp()
            write_fake_smpl_pickle(Path(tmp) / "SMPL_NEUTRAL.pkl")
            body = load_body_model("smpl", tmp, device=device)
            body.faces = local_faces(body).to(device)
            return body
        return load_body_model("anny", device=device)


def export_trace(prof, path: Path) -> None:
    """The profiler's Chrome trace at ``path`` (gzipped for a .gz name)."""
    import gzip
    import shutil

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix != ".gz":
        prof.export_chrome_trace(str(path))
        return
    raw = path.with_suffix("")
    prof.export_chrome_trace(str(raw))
    with raw.open("rb") as src, gzip.open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    raw.unlink()
    print("trace written to", path)
