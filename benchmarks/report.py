"""Render every result in benchmarks/results/ into BENCHMARKS.md.

    python benchmarks/report.py [--out BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
NOTES = ROOT / "benchmarks" / "NOTES.md"  # hand-written: why the missed goals are missed

HEADER = """# Benchmarks

Speed and memory figures of disrt_ros, one section per benchmark and machine. Each comes
from a JSON in `benchmarks/results/` written by the benchmark named in its command; this
file is generated from them by `python benchmarks/report.py`. Goals from the issues stand
beside the figures, with whether they were met; the first table gathers them, and the notes
after it (`benchmarks/NOTES.md`) say what limits the missed ones.
"""


def _machine(m: dict) -> str:
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU"
    return (f"{m['cpu']} ({m['cores']} cores, {m['torch_threads']} torch threads){gpu}; "
            f"torch {m['torch']}, Python {m['python']}")


def goals(results: list[dict]) -> list[str]:
    """One table of every figure that has a goal, missed goals first."""
    rows = [(row.get("met") is not False, r["benchmark"], r["machine"].get("gpu") or "CPU", row)
            for r in results for row in r["rows"] if row.get("goal")]
    out = ["\n## Goals at a glance\n", "| benchmark | machine | metric | value | goal | met |",
           "|---|---|---|---|---|---|"]
    for _, bench, machine, row in sorted(rows, key=lambda x: (x[0], x[1], x[2])):
        met = {True: "yes", False: "**no**", None: "–"}[row.get("met")]
        out.append(f"| {bench} | {machine} | {row['metric']} | {row['value']:g} {row['unit']} "
                   f"| {row['goal']} | {met} |")
    return out


def render(results: list[dict], notes: str = "") -> str:
    out = [HEADER, *goals(results)]
    if notes:
        out.append("\n" + notes.strip())
    for r in sorted(results, key=lambda r: (r["benchmark"], r["machine"].get("gpu") or "")):
        out.append(f"\n## {r['benchmark']} — {r['machine'].get('gpu') or 'CPU'}\n")
        out.append(f"- machine: {_machine(r['machine'])}")
        out.append(f"- date: {r['date']}")
        out.append(f"- command: `{r['command']}`\n")
        out.append("| metric | value | goal | met |")
        out.append("|---|---|---|---|")
        for row in r["rows"]:
            met = {True: "yes", False: "**no**", None: ""}[row.get("met")]
            value = f"{row['value']:g} {row['unit']}"
            if row.get("note"):
                value += f" ({row['note']})"
            out.append(f"| {row['metric']} | {value} | {row.get('goal', '')} | {met} |")
        for note in r.get("notes", []):
            out.append(f"\n{note}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    results = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    notes = NOTES.read_text() if NOTES.is_file() else ""
    args.out.write_text(render(results, notes))
    print(f"wrote {args.out} ({len(results)} results)")


if __name__ == "__main__":
    main()
