from pathlib import Path

import pytest

from disrt_core.train.config import (
    ConfigError,
    TrainConfig,
    apply_overrides,
    from_dict,
    load_config,
    resume_conflicts,
    smoke_config,
)

CONFIGS = Path(__file__).resolve().parents[3] / "config"


@pytest.mark.parametrize("name", ["train_synth.yaml", "train_finetune.yaml",
                                  "train_default.yaml"])
def test_shipped_configs_load(name):
    config = load_config(CONFIGS / name)
    assert config.stages and all(s.data for s in config.stages)
    # the resolved config round-trips through YAML unchanged
    again = load_config(None, base=__import__("yaml").safe_load(config.to_yaml()))
    assert again.to_dict() == config.to_dict()


def test_paper_protocol_values():
    config = load_config(CONFIGS / "train_finetune.yaml")
    synth, fine = config.stages
    assert (synth.epochs, synth.batch_size, synth.schedule.kind) == (50, 32, "constant")
    assert (fine.epochs, fine.batch_size, fine.schedule.kind) == (15, 32, "linear")
    assert fine.freeze == ["param_embed", "time_embed"]
    assert (config.optim.lr, config.optim.weight_decay, config.optim.betas,
            config.optim.eps) == (1e-4, 5e-4, (0.9, 0.999), 1e-8)
    assert fine.data[0].split == "real_1_80" and config.eval.data.split == "real_81_102"


def test_overrides_by_name_index_and_yaml_types():
    raw = smoke_config("/tmp/x").to_dict()
    apply_overrides(raw, ["stages.target.epochs=3", "stages.0.batch_size=4",
                          "optim.lr=1e-3", "optim.betas=[0.8, 0.9]", "run.compile=null",
                          "stages.synth.data.generator.samples=64", "eval.max_samples=5"])
    config = from_dict(TrainConfig, raw)
    assert config.stage("target").epochs == 3 and config.stages[0].batch_size == 4
    assert config.optim.lr == 1e-3  # "1e-3" is a string to PyYAML: accepted for a float
    assert config.optim.betas == (0.8, 0.9) and config.run.compile is None
    assert config.stages[0].data[0].samples == 64 and config.eval.max_samples == 5


@pytest.mark.parametrize("override, message", [
    ("optim.lrr=1", "unknown key 'lrr' (did you mean 'lr'?)"),
    ("stages.synth.epochs=two", "expected an integer"),
    ("stages.nope.epochs=2", "no item named 'nope'"),
    ("run.progress=3", "expected true or false"),
    ("stages.synth.schedule.kind=cosin", "must be one of"),
    ("stages.target.freeze=[param_emb]", "did you mean 'param_embed'"),
    ("model.overrides={model_chanels: 8}", "did you mean 'model_channels'"),
    ("run.streams=3", "multiple of run.num_workers"),
    ("epochs", "expected dotted.key=value"),
])
def test_bad_values_are_named(override, message):
    raw = smoke_config("/tmp/x").to_dict()
    raw["run"]["num_workers"] = 2
    raw["run"]["streams"] = 2
    with pytest.raises(ConfigError, match=__import__("re").escape(message)):
        load_config(None, [override], base=raw)


def test_unknown_key_in_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("stages:\n  - name: a\n    data: [{type: shards, path: x}]\n    epoch: 3\n")
    with pytest.raises(ConfigError, match=r"config.stages.0: unknown key 'epoch' \(did you mean "
                                          r"'epochs'\?\)"):
        load_config(path)
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_data_source_checks():
    raw = smoke_config("/tmp/x").to_dict()
    with pytest.raises(ConfigError, match="needs a path"):
        load_config(None, ["stages.synth.data=[{type: slp}]"], base=raw)
    with pytest.raises(ConfigError, match="cannot be mixed"):
        load_config(None, ["stages.synth.data=[{type: generator}, {type: shards, path: x}]"],
                    base=raw)
    config = load_config(None, ["stages.synth.data=[{type: shards, path: a}, "
                                "{type: shards, path: b}]"], base=raw)
    assert [d.name for d in config.stages[0].data] == ["shards", "shards2"]


def test_resume_conflicts_ignore_run_cadence():
    a = smoke_config("/tmp/a").to_dict()
    b = smoke_config("/tmp/b").to_dict()
    b["run"]["log_every"] = 7
    b["eval"]["steps"] = 2
    assert resume_conflicts(a, b) == []
    b["optim"]["lr"] = 3e-4
    b["stages"][0]["epochs"] = 9
    assert resume_conflicts(a, b) == ["optim.lr", "stages"]


def test_data_root_fills_dataset_paths():
    config = load_config(CONFIGS / "train_finetune.yaml", ["data_root=/data/BP"])
    specs = [d for s in config.stages for d in s.data] + [config.eval.data]
    assert {d.path for d in specs} == {"/data/BP"}
    with pytest.raises(ConfigError, match="or set data_root"):
        load_config(CONFIGS / "train_finetune.yaml", ["data_root=null"])
