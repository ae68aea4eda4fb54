"""benchmarks/report.py: the goals table and the notes in BENCHMARKS.md."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import report


def result(name, gpu, rows):
    machine = {"cpu": "x", "cores": 2, "torch_threads": 2, "gpu": gpu, "torch": "t",
               "python": "p"}
    return {"benchmark": name, "machine": machine, "command": "c", "date": "d",
            "rows": [{"metric": m, "value": v, "unit": "ms", "goal": g, "met": ok, "note": ""}
                     for m, v, g, ok in rows], "notes": []}


def test_goals_table_lists_missed_goals_first_and_skips_rows_without_goal():
    results = [result("a", None, [("fast", 5.0, "≤ 10 ms", True), ("plain", 1.0, "", None)]),
               result("b", "H100", [("slow", 30.0, "≤ 6 ms", False)])]
    text = report.render(results, notes="## Why\n\nlaunch-bound")
    table = text.split("## Goals at a glance")[1].split("## Why")[0]
    lines = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert lines[1:] == ["| b | H100 | slow | 30 ms | ≤ 6 ms | **no** |",
                         "| a | CPU | fast | 5 ms | ≤ 10 ms | yes |"]
    assert "launch-bound" in text and text.index("## Why") < text.index("## a — CPU")
