"""benchmarks/run_all.py: the per-machine plan (without running the benchmarks)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import run_all  # noqa: E402


def test_every_script_accepts_the_planned_options():
    for bench in run_all.PLAN:
        source = (BENCHMARKS / bench.script).read_text()
        declared = set(re.findall(r'add_argument\(\s*"(--[a-z0-9-]+)"', source))
        for args in (bench.cpu, bench.cuda):
            for flag in [a for a in args or () if a.startswith("--")]:
                assert flag in declared, f"{bench.script} has no {flag}"
        assert ("--note" in declared) == bench.note, bench.name


def test_plan_per_machine_kind():
    cpu = {b.name: args for b, args in run_all.plan_for("cpu")}
    cuda = {b.name: args for b, args in run_all.plan_for("cuda")}
    assert "node_paper_graphs" in cuda and "node_paper_graphs" not in cpu
    assert "estimator_compile" in cpu and "estimator_compile" not in cuda
    for name, args in cuda.items():  # every GPU benchmark that has a device runs on it
        bench = next(b for b in run_all.PLAN if b.name == name)
        has_device = '"--device"' in (BENCHMARKS / bench.script).read_text()
        assert not has_device or ("--device" in args and "cuda" in args), name
    assert all("cuda" not in args for args in cpu.values())
    # every benchmark script of the folder is in the plan
    scripts = {p.name for p in BENCHMARKS.glob("bench_*.py")}
    assert scripts == {b.script for b in run_all.PLAN}


def test_only_and_skip_select_by_name():
    chosen = [b.name for b, _ in run_all.plan_for("cpu", only=["node", "e2e"])]
    assert chosen == ["node", "e2e"]  # in plan order
    assert "drape" not in [b.name for b, _ in run_all.plan_for("cpu", skip=["drape"])]
    with pytest.raises(ValueError, match="unknown benchmark 'nod'"):
        run_all.plan_for("cpu", only=["nod"])


def test_note_carries_the_load_and_the_users_words():
    bench = next(b for b in run_all.PLAN if b.name == "e2e")
    cmd = run_all.command(bench, bench.cpu, "quiet")
    note = cmd[cmd.index("--note") + 1]
    assert "load average" in note and note.endswith("; quiet")
    body = next(b for b in run_all.PLAN if b.name == "body")
    assert "--note" not in run_all.command(body, body.cpu, "quiet")


def test_list_prints_the_plan(capsys):
    assert run_all.main(["--device", "cpu", "--list", "--only", "bags"]) == 0
    out = capsys.readouterr().out
    assert "1 benchmarks for a cpu machine" in out and "benchmarks/bench_bags.py" in out
