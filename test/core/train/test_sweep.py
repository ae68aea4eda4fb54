import json

import pytest

from disrt_core.train.config import ConfigError, load_config
from disrt_core.train.monitor import read_log
from disrt_core.train.state import load_state, stage_path
from disrt_core.train.sweep import parse_method, run_sweep


def test_table1_protocol_on_fixtures(make_config, keep_threads, tmp_path):
    raw = make_config(tmp_path / "base")
    raw["stages"][0]["epochs"] = 1  # 16 synthetic samples, batch 4: 4 steps
    raw["stages"][1].update(epochs=1, batch_size=4)
    raw["stages"][1]["data"][0].pop("subjects")  # the sweep picks them by fraction
    raw["eval"] = {"data": {"type": "slp", "path": raw["stages"][1]["data"][0]["path"],
                            "subjects": [81], "poses": [1]}}
    config = load_config(None, base=raw)
    lines = []
    table = run_sweep(config, tmp_path / "sweep", fractions=(0.0, 0.11),
                      methods=("finetune:linear", "target_only:cosine", "joint"),
                      log=lines.append)
    assert table["columns"] == ["Sim", "+11%"]
    rows = table["rows"]
    assert set(rows) == {"finetune:linear", "target_only:cosine", "joint"}
    assert "Sim" not in rows["target_only:cosine"]
    assert rows["finetune:linear"]["Sim"] == rows["joint"]["Sim"]  # the one synthetic model
    assert all(c["mpjpe_mm"] > 0 for r in rows.values() for c in r.values())
    md = (tmp_path / "sweep" / "table1.md").read_text()
    assert "| target_only:cosine | – | " in md
    seed = tmp_path / "sweep" / "seed0"
    # +11 %: subjects 1-6 and 8-10 (9 × 1 pose × 3 covers = 27 samples -> 6 batches of 4)
    ft = seed / "finetune-linear" / "f011"
    assert len(read_log(ft / "log.csv")) == 6
    state = load_state(stage_path(ft, "finetune"))
    assert max(int(s["step"]) for s in state["optimizer"]["state"].values()) == 4 + 6
    lrs = [float(r["lr"]) for r in read_log(ft / "log.csv")]
    assert lrs[0] == 1e-4 and lrs[3] == pytest.approx(0.5e-4)
    joint = read_log(seed / "joint" / "f011" / "log.csv")
    assert len(joint) == (16 + 27) // 4 and {r["lr"] for r in joint} == {"0.0001"}
    target = read_log(seed / "target_only-cosine" / "f011" / "log.csv")
    assert len(target) == 6 and float(target[-1]["lr"]) < 1e-5
    result = json.loads((ft / "eval-test.json").read_text())
    assert result["results"][0]["summary"]["n"]["all"] == 3
    # a second call reuses every finished run
    lines.clear()
    again = run_sweep(config, tmp_path / "sweep", fractions=(0.0, 0.11),
                      methods=("finetune:linear", "target_only:cosine", "joint"),
                      log=lines.append)
    assert lines == [] and again["rows"] == rows


def test_sweep_input_checks(make_config):
    config = load_config(None, base=make_config())
    with pytest.raises(ConfigError, match=r"needs eval\.data"):
        run_sweep(config, "/tmp/never")
    with pytest.raises(ConfigError, match="unknown method 'finetuning'"):
        parse_method("finetuning")
    assert parse_method("joint") == ("joint", "constant")
    assert parse_method("finetune") == ("finetune", "linear")


def test_runs_start_where_the_protocol_says(make_config, tmp_path):
    from disrt_core.train.sweep import init_for

    raw = make_config(tmp_path / "base")
    raw["init"] = {"checkpoint": str(tmp_path / "pretrained.safetensors")}
    config = load_config(None, base=raw)
    state = tmp_path / "seed0" / "synth" / "state" / "stage-synth.pt"
    assert init_for("synth", config, None) == str(tmp_path / "pretrained.safetensors")
    assert init_for("joint", config, state) == str(tmp_path / "pretrained.safetensors")
    assert init_for("finetune", config, state) == str(state)
    assert init_for("target_only", config, state) is None
