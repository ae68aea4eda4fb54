"""CUDA paths of the trainer (bf16 autocast, fused AdamW, torch.compile, the generator pool
on the GPU, DDP over NCCL); skipped where torch sees no GPU."""

import os
import subprocess
import sys

import pytest
import torch
import yaml

from disrt_core.train.config import load_config
from disrt_core.train.monitor import read_log
from disrt_core.train.trainer import Trainer

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_two_stage_bf16_on_cuda(make_config, keep_threads, smpl_both):
    raw = make_config(device="cuda", precision="bf16", threads=None, pin_memory=True)
    trainer = Trainer(load_config(None, base=raw))
    assert trainer.amp_dtype == torch.bfloat16
    assert trainer.optimizer.defaults["fused"] is True
    trainer.fit()
    trainer.close()
    rows = read_log(trainer.out_dir / "log.csv")
    assert len(rows) == 14 and all(float(r["loss"]) < 1e3 for r in rows)
    assert next(trainer.model.parameters()).dtype == torch.float32  # master weights fp32
    from disrt_core.infer import Estimator

    est = Estimator.from_checkpoint(trainer.out_dir / "model.safetensors", device="cuda",
                                    body_model=smpl_both)
    gender = torch.tensor([[1.0, 0.0], [0.0, 1.0]], device="cuda")  # smpl-both blends genders
    assert est.predict(torch.rand(2, 1, 128, 54), gender=gender).joints.is_cuda


def test_compiled_steps_follow_eager(make_config, keep_threads, tmp_path):
    losses = {}
    for mode, with_loss in ((None, False), ("default", False), ("default", True)):
        raw = make_config(tmp_path / f"{mode}{with_loss}", device="cuda", precision="fp32",
                          threads=None, compile=mode, compile_loss=with_loss)
        raw["stages"] = raw["stages"][:1]
        raw["stages"][0]["max_steps"] = 4
        trainer = Trainer(load_config(None, base=raw))
        trainer.fit()
        trainer.close()
        losses[mode, with_loss] = [float(r["loss"])
                                   for r in read_log(trainer.out_dir / "log.csv")]
    assert losses[None, False] == pytest.approx(losses["default", False], rel=1e-3)
    assert losses[None, False] == pytest.approx(losses["default", True], rel=1e-3)


def test_generator_pool_on_cuda(tmp_path, keep_threads):
    from disrt_core.train.cli import train_main

    out = tmp_path / "smoke"
    assert train_main(["--smoke", "--out", str(out), "run.device=cuda", "run.threads=null",
                       "stages.synth.data.0.samples=64", "stages.synth.batch_size=32",
                       "stages.target.data.0.samples=64", "stages.target.batch_size=32",
                       "eval.data.samples=32", "run.progress=false"]) == 0
    assert len(read_log(out / "log.csv")) == 2 * 2 + 2


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_ddp_over_nccl_matches_one_process(make_config, keep_threads, tmp_path):
    from test.core.train.test_ddp import SCRIPT, _raw

    raw = _raw(make_config, tmp_path / "ddp")
    raw["run"].update(device="cuda", precision="fp32", threads=None)
    (tmp_path / "ddp").mkdir()
    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(raw))
    (tmp_path / "run.py").write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(tmp_path / "run.py"), str(tmp_path / "ddp.yaml"), str(tmp_path / "ddp")],
        env={**os.environ, "PYTHONPATH": os.getcwd()}, capture_output=True, text=True,
        timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / "ddp" / f"rank{r}.pt", weights_only=True,
                               map_location="cpu") for r in (0, 1))
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    single = _raw(make_config, tmp_path / "single")
    single["run"].update(device="cuda", precision="fp32", threads=None)
    trainer = Trainer(load_config(None, base=single))
    trainer.fit()
    trainer.close()
    for key, value in trainer.model.state_dict().items():
        torch.testing.assert_close(rank0[key], value.cpu(), rtol=1e-3, atol=5e-5)


def test_rng_state_restores_from_a_state_loaded_onto_the_gpu(tmp_path):
    # --resume loads the state with map_location=<training device>; the RNG setters take CPU
    # byte tensors (this failed with "RNG state must be a torch.ByteTensor" on an H200)
    import random

    import numpy as np

    from disrt_core.train import state as st

    def draws():
        return (torch.rand(3), torch.rand(3, device="cuda").cpu(), np.random.rand(),  # noqa: NPY002
                random.random())

    torch.save({"rng": st.rng_state()}, tmp_path / "s.pt")
    expected = draws()
    loaded = torch.load(tmp_path / "s.pt", map_location="cuda", weights_only=True)["rng"]
    assert loaded["torch"].is_cuda
    st.set_rng_state(loaded)
    got = draws()
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    assert got[2:] == expected[2:]


@pytest.mark.parametrize("consistent", [False, True])
def test_a_training_step_does_not_stop_the_host(make_config, keep_threads, tmp_path, consistent):
    # A host synchronisation (a copy from pageable memory) lets the GPU run dry while the
    # next step's small launches are made (disrt_core/host_copy.py); sync debug mode "error"
    # raises at the first one. Steps 1-2 warm up (caches, first allocations).
    raw = make_config(tmp_path / "run", device="cuda", precision="bf16", threads=None)
    raw["stages"] = raw["stages"][:1]
    raw["augment"] = {"overrides": {"consistent": consistent, "rotate_p": 1.0,
                                    "translate_p": 1.0, "erase_p": 1.0, "dropout_p": 1.0}}
    trainer = Trainer(load_config(None, base=raw))
    trainer.begin_stage(0)
    batch = next(iter(trainer.data[0].epoch(0)))
    batch = {k: v.cuda() if torch.is_tensor(v) and v.is_floating_point() else v
             for k, v in batch.items()}
    for _ in range(2):
        trainer.train_step(batch, 0)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        terms, _, _ = trainer.train_step(batch, 0)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(terms["total"]).item()
    trainer.close()
