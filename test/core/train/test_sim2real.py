"""training/sim2real.py: the run plan, the job split, the report, and one tiny CPU pass."""

from __future__ import annotations

import json

import pytest

from disrt_core.data.shards import read_manifest
from disrt_core.train import sim2real
from disrt_core.train.sweep import run_dir


def test_plan_runs_joint_once_and_extra_seeds_at_small_fractions():
    fractions = (0.0, 0.11, 0.24, 0.49)
    runs = sim2real.plan(["finetune:linear", "joint"], fractions, [0, 1, 2])
    ft = sorted((s, f) for m, s, f in runs if m == "finetune:linear")
    assert ft == [(0, 0.0), (0, 0.11), (0, 0.24), (0, 0.49),
                  (1, 0.0), (1, 0.11), (1, 0.24), (2, 0.0), (2, 0.11), (2, 0.24)]
    assert sorted((s, f) for m, s, f in runs if m == "joint") == [(0, f) for f in fractions]


def test_sweep_commands_split_by_method_seed_and_joint_fraction(tmp_path):
    runs = sim2real.plan(["finetune:cosine", "target_only:linear", "joint"],
                         (0.0, 0.11, 0.49), [0, 1])
    phase_a, phase_b = sim2real.sweep_commands(tmp_path / "out", tmp_path / "data",
                                               sim2real.SCALES["tiny"], "cpu", runs)
    assert [name for name, _ in phase_a] == ["synth-seed0", "synth-seed1"]
    names = [name for name, _ in phase_b]
    assert names[:2] == ["joint-f049", "joint-f011"]  # the longest first
    assert set(names[2:]) == {"finetune-cosine-seed0", "finetune-cosine-seed1",
                              "target_only-linear-seed0", "target_only-linear-seed1"}
    argv = dict(phase_b)["finetune-cosine-seed1"]
    assert argv[argv.index("--fractions") + 1] == "0.11"  # seed 1: the small fraction only
    assert argv[argv.index("--methods") + 1] == "finetune:cosine"
    assert f"stages.finetune.data.0.path={tmp_path / 'data' / 'target_pool'}" in argv


def test_ordering_counts_where_the_papers_method_is_not_beaten():
    cell = lambda mm: {"mpjpe_mm": mm, "pve_mm": mm, "mpjpe_std": 0, "pve_std": 0,  # noqa: E731
                       "seeds": 1}
    table = {"columns": ["Sim", "+11%", "+24%"], "rows": {
        "finetune:linear": {"+11%": cell(80.0), "+24%": cell(70.0)},
        "target_only:linear": {"+11%": cell(120.0), "+24%": cell(65.0)},
        "joint": {"+11%": cell(90.0), "+24%": cell(75.5)}}}
    text = sim2real.ordering(table)
    assert "| target_only:linear | +40.0 | -5.0 |" in text
    assert "| joint | +10.0 | +5.5 |" in text
    assert "at 1 of 2 fractions (+11%)" in text


def test_tiny_pass_on_the_cpu(tmp_path, keep_threads):
    out, data = tmp_path / "out", tmp_path / "data"
    argv = ["--device", "cpu", "--scale", "tiny", "--seeds", "0", "--fractions", "0,0.24",
            "--methods", "finetune:linear,joint", "--out", str(out), "--data", str(data)]
    assert sim2real.main(argv) == 0
    pool, test = read_manifest(data / "target_pool"), read_manifest(data / "target_test")
    assert pool["settings"]["domain"] == test["settings"]["domain"] == "target"
    assert (pool["total"], len(pool["shards"])) == (16, 8)
    assert pool["settings"]["seed"] != test["settings"]["seed"]
    assert read_manifest(data / "source_d435")["settings"]["config"]["sensor"] == "d435"
    table = json.loads((out / "table1.json").read_text())
    assert table["missing"] == []
    assert set(table["rows"]) == {"finetune:linear", "joint"}
    ft = run_dir(out, 0, "finetune:linear", 0.24)
    result = json.loads((ft / "eval-test.json").read_text())["results"][0]["summary"]
    assert table["rows"]["finetune:linear"]["+24%"]["mpjpe_mm"] == pytest.approx(
        result["mpjpe_mm"]["all"])
    assert result["n"]["all"] == 8  # the whole target test set
    # stage 1 continues the shipped source-only weights; the fine-tune continues stage 1
    import yaml

    synth_cfg = yaml.safe_load((run_dir(out, 0, "", 0.0) / "config.yaml").read_text())
    assert synth_cfg["init"]["checkpoint"].endswith("disrt_core/weights/default.safetensors")
    ft_cfg = yaml.safe_load((ft / "config.yaml").read_text())
    assert ft_cfg["init"]["checkpoint"].endswith("synth/state/stage-synth.pt")
    # the Sim column of both rows is the one synthetic model
    assert table["rows"]["joint"]["Sim"] == table["rows"]["finetune:linear"]["Sim"]
    summary = (out / "summary.md").read_text()
    assert "MPJPE minus finetune:linear's" in summary and (out / "sim2real.png").is_file()
    # the report alone, from the finished runs, is the same table
    (out / "table1.json").unlink()
    assert sim2real.main([*argv, "--report-only"]) == 0
    assert json.loads((out / "table1.json").read_text())["rows"] == table["rows"]


def test_target_pool_is_made_on_the_cpu_on_every_machine(tmp_path):
    for device in ("cuda", "cpu"):
        jobs = dict(sim2real.data_commands(tmp_path, sim2real.SCALES["full"], device))
        pool, test = jobs["target_pool"], jobs["target_test"]
        assert pool[pool.index("--device") + 1] == "cpu"
        assert pool[pool.index("--shard-size") + 1] == "5"
        assert test[test.index("--device") + 1] == device
        if device == "cpu":  # the jobs already share the cores
            assert pool[pool.index("--workers") + 1] == "1"


def test_run_jobs_names_the_failed_jobs_and_keeps_their_logs(tmp_path):
    import sys

    jobs = [("ok", [sys.executable, "-c", "print('fine')"]),
            ("bad", [sys.executable, "-c", "raise SystemExit('no data here')"])]
    with pytest.raises(RuntimeError, match=r"1 job\(s\) failed: bad"):
        sim2real.run_jobs(jobs, tmp_path / "logs", parallel=2)
    assert (tmp_path / "logs" / "ok.log").read_text().strip() == "fine"
    assert "no data here" in (tmp_path / "logs" / "bad.log").read_text()
