import json

import pytest
import torch
from safetensors.torch import load_file

from disrt_core.data.source import DataError
from disrt_core.train.config import ConfigError, load_config
from disrt_core.train.monitor import read_log
from disrt_core.train.state import load_state, stage_path, step_files
from disrt_core.train.trainer import Trainer


@pytest.fixture(scope="module")
def two_stage(tmp_path_factory, smpl_fixture_dir, data_root, smpl_both):
    """One two-stage run on the fixture datasets: BodyPressureSD (16 samples, batch 4,
    2 epochs = 8 steps), then SLP (6 samples, batch 2, 2 epochs = 6 steps, linear decay)."""
    from test.core.train.conftest import tiny_config

    threads = torch.get_num_threads()
    out = tmp_path_factory.mktemp("two_stage")
    config = load_config(None, base=tiny_config(smpl_fixture_dir, data_root["root"], out))
    trainer = Trainer(config)
    first = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    summary = trainer.fit()
    trainer.close()
    torch.set_num_threads(threads)
    return {"out": out, "trainer": trainer, "summary": summary, "initial": first}


def test_two_stage_run_writes_everything(two_stage, smpl_both):
    out, trainer = two_stage["out"], two_stage["trainer"]
    assert trainer.position.step == 8 + 6 and trainer.position.stage == 2
    assert (out / "config.yaml").is_file() and (out / "summary.json").is_file()
    rows = read_log(out / "log.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 15))
    assert [r["stage"] for r in rows] == ["synth"] * 8 + ["finetune"] * 6
    assert all(float(r["loss"]) > 0 for r in rows)
    # resume states: the newest 2 step files, and one per stage end
    assert [s for s, _ in step_files(out)] == [12, 14]  # 12: every 3 steps, 14: the end
    assert stage_path(out, "synth").is_file() and stage_path(out, "finetune").is_file()
    assert load_state(stage_path(out, "synth"))["position"]["stage"] == 1
    # exported checkpoints load in the Estimator with the body model
    from disrt_core.infer import Estimator

    est = Estimator.from_checkpoint(out / "model.safetensors", body_model=smpl_both)
    pred = est.predict(torch.rand(2, 1, 128, 54), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert pred.joints.shape == (2, 24, 3) and torch.isfinite(pred.vertices).all()
    assert est.header.training["steps"] == 14
    for name in ("model-synth", "model-finetune", "model-ema"):
        assert (out / f"{name}.safetensors").is_file()


def test_linear_decay_is_exact_in_stage_two(two_stage):
    rows = [r for r in two_stage["trainer"].history if r["stage"] == "finetune"]
    lrs = [r["lr"] for r in rows]
    s_total = 6  # 3 batches × 2 epochs
    assert len(lrs) == s_total
    assert lrs[0] == 1e-4  # restarts at lr_init (SPEC §8.5)
    assert lrs[s_total // 2] == pytest.approx(0.5e-4, rel=1e-12)
    assert lrs[-1] == pytest.approx(1e-4 / s_total, rel=1e-12)
    assert lrs == pytest.approx([1e-4 * (1 - s / s_total) for s in range(s_total)], rel=1e-12)
    assert {r["lr"] for r in two_stage["trainer"].history if r["stage"] == "synth"} == {1e-4}


def test_stage_two_freezes_embedders_and_keeps_adamw_moments(two_stage):
    out = two_stage["out"]
    after_synth = load_file(str(out / "model-synth.safetensors"))
    final = load_file(str(out / "model-finetune.safetensors"))
    initial = two_stage["initial"]
    for name, value in final.items():
        if name.startswith(("param_embed", "time_embed")):
            assert torch.equal(value, after_synth[name]), name  # frozen in stage 2
            assert not torch.equal(value, initial[name]), name  # trained in stage 1
    changed = [n for n in final if n.startswith("head") and
               not torch.equal(final[n], after_synth[n])]
    assert changed, "stage 2 did not train the head"
    state = load_state(stage_path(out, "finetune"))
    params = dict(two_stage["trainer"].model.named_parameters())
    names = list(params)
    steps = {names[i]: int(s["step"]) for i, s in state["optimizer"]["state"].items()}
    assert steps["head.4.weight"] == 14  # moments carried over: 8 + 6 steps
    assert steps["param_embed.mlp.0.weight"] == 8  # not stepped while frozen


def test_run_is_deterministic_per_seed(two_stage, make_config, keep_threads, tmp_path):
    """The same config in another folder repeats the first stage bit for bit."""
    raw = make_config(tmp_path / "again")
    raw["stages"] = raw["stages"][:1]
    raw["stages"][0]["epochs"] = 1
    raw["stages"][0]["max_steps"] = 3
    trainer = Trainer(load_config(None, base=raw))
    trainer.fit()
    trainer.close()
    log_a = read_log(two_stage["out"] / "log.csv")[:3]
    log_b = read_log(tmp_path / "again" / "log.csv")
    assert [r["loss"] for r in log_a] == [r["loss"] for r in log_b]


def test_bad_input_fails_before_training(make_config, keep_threads, tmp_path, data_root):
    def trainer_error(raw, error, match):
        out = tmp_path / "never"
        raw["run"]["out_dir"] = str(out)
        with pytest.raises(error, match=match):
            Trainer(load_config(None, base=raw))
        assert not (out / "log.csv").exists() and not (out / "state").exists()

    raw = make_config()
    raw["stages"][0]["data"][0]["path"] = str(tmp_path / "nowhere")
    trainer_error(raw, FileNotFoundError, r"stages.synth.data.0.path: .*nowhere.*not found")

    raw = make_config()  # SMPL labels, Anny body model
    raw["body"] = {"kind": "anny"}
    trainer_error(raw, DataError, r"stages.synth.data.0: .*smpl labels .* body model is anny")

    raw = make_config()  # 16 samples cannot fill a batch of 64
    raw["stages"][0]["batch_size"] = 64
    trainer_error(raw, DataError, r"16 samples per epoch give no full batch of 64")

    raw = make_config()
    raw["stages"][1]["data"][0]["subjects"] = [3]  # one pose, three covers
    raw["stages"][1]["data"][0]["poses"] = [1]
    raw["stages"][1]["batch_size"] = 4
    trainer_error(raw, DataError, r"3 samples per epoch give no full batch of 4")

    raw = make_config()  # the fixture has pose 1 only: the fits of pose 45 are missing
    raw["stages"][1]["data"][0]["subjects"] = [3, 4]
    raw["stages"][1]["data"][0]["poses"] = [1, 45]
    trainer_error(raw, DataError, r"stages.finetune.data.0: 2 file\(s\) the slp source at "
                  r".* needs are missing or unreadable:\n  .*p003/proc_45.pkl: SMPL fit not "
                  r"found.*\n  .*p004/proc_45.pkl: SMPL fit not found")

    raw = make_config()
    raw["init"] = {"checkpoint": str(tmp_path / "missing.pt")}
    trainer_error(raw, FileNotFoundError, r"init.checkpoint: .*missing.pt not found")

    raw = make_config()
    raw["run"]["out_dir"] = str(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="--resume: no training state"):
        Trainer(load_config(None, base=raw), resume=True)

    raw = make_config()
    raw["stages"][0]["data"][0]["typo"] = 1
    with pytest.raises(ConfigError, match="unknown key 'typo'"):
        load_config(None, base=raw)


def test_init_from_stage_state_checks_network(two_stage, make_config, keep_threads, tmp_path):
    """Stage 2 alone from stage 1's end state (the sweep's fine-tune) continues its AdamW
    moments; a state of another network is refused."""
    raw = make_config(tmp_path / "ft")
    raw["stages"] = raw["stages"][1:]
    raw["stages"][0]["max_steps"] = 1
    raw["init"] = {"checkpoint": str(stage_path(two_stage["out"], "synth"))}
    trainer = Trainer(load_config(None, base=raw))
    synth = load_file(str(two_stage["out"] / "model-synth.safetensors"))
    assert all(torch.equal(v, synth[k]) for k, v in trainer.model.state_dict().items())
    trainer.fit()
    trainer.close()
    state = load_state(stage_path(tmp_path / "ft", "finetune"))
    assert max(int(s["step"]) for s in state["optimizer"]["state"].values()) == 9
    raw["model"]["overrides"]["trunk_out_dim"] = 32
    raw["run"]["out_dir"] = str(tmp_path / "other")
    with pytest.raises(ConfigError, match=r"differs from model.\* in \['trunk_out_dim'\]"):
        Trainer(load_config(None, base=raw))
    summary = json.loads((two_stage["out"] / "summary.json").read_text())
    assert summary["samples"] == 8 * 4 + 6 * 2


def test_epoch_end_state_carries_that_epochs_eval(make_config, keep_threads, tmp_path):
    """The state written at an epoch end holds the eval run there, so a resume from it (which
    does not evaluate that epoch again) keeps the whole held-out curve in summary.json."""
    raw = make_config(tmp_path / "evals", checkpoint_every=0, keep_checkpoints=10)
    slp = raw["stages"][1]["data"][0]["path"]
    raw["stages"] = raw["stages"][:1]  # 16 samples, batch 4: epoch 1 ends at step 4
    raw["eval"] = {"data": {"type": "slp", "path": slp, "subjects": [81], "poses": [1]},
                   "every_epochs": 1}
    trainer = Trainer(load_config(None, base=raw))
    trainer.fit()
    trainer.close()
    out = tmp_path / "evals"
    assert [s for s, _ in step_files(out)] == [4, 8]  # the epoch-1 end, the stage end
    evals = load_state(out / "state" / "step-00000004.pt")["summary"]["evals"]
    assert [e["tag"] for e in evals] == ["synth-epoch1"]
    assert evals[0]["mpjpe_mm"] > 0
    end = load_state(stage_path(out, "synth"))["summary"]["evals"]
    assert [e["tag"] for e in end] == ["synth-epoch1", "synth-end"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["evals"] == end


def test_stats_group_norm_is_on_where_asked_and_on_cuda_only_by_default(
        make_config, keep_threads, tmp_path):
    from disrt_core.model.blocks import StatsGroupNorm

    def count(**run) -> tuple[int, int]:
        raw = make_config(tmp_path / f"run{len(run)}", **run)
        with Trainer(load_config(None, base=raw)) as trainer:
            kinds = [type(m) for m in trainer.model.modules()]
        return kinds.count(StatsGroupNorm), kinds.count(torch.nn.GroupNorm)

    stats, plain = count()  # auto on the CPU: PyTorch's own GroupNorm
    assert stats == 0 and plain > 0
    assert count(stats_group_norm=True) == (plain, 0)


def test_compile_loss_compiles_the_decoding_and_loss_only_when_asked(
        make_config, keep_threads, tmp_path, monkeypatch):
    import disrt_core.train.trainer as trainer_module
    from disrt_core.losses import decoded_terms

    compiled, seen = [], []

    def spy(*args, **kwargs):  # the train step's decoding and loss, counted
        seen.append(1)
        return decoded_terms(*args, **kwargs)

    def fake_compile(fn, mode=None):  # records what the trainer compiles, runs it eagerly
        compiled.append((fn, mode))
        return fn

    monkeypatch.setattr(trainer_module.torch, "compile", fake_compile)
    for flag in (False, True):
        compiled.clear()
        seen.clear()
        raw = make_config(tmp_path / f"run{flag}", compile="default", compile_loss=flag)
        with Trainer(load_config(None, base=raw)) as trainer:
            trainer.begin_stage(0)
            assert [f is decoded_terms for f, _ in compiled] == [False] + [True] * flag
            assert trainer.mesh_terms is decoded_terms
            trainer.mesh_terms = spy
            batch = next(iter(trainer.data[0].epoch(0)))
            terms, _, _ = trainer.train_step(batch, 0)
            assert seen == [1] and torch.isfinite(terms["total"])
