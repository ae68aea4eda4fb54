"""Training speed: samples/s of the trainer's step per network preset, batch size, precision
and compile mode, and whether the data pipeline keeps up.

    python benchmarks/bench_train.py                                   # CPU figures
    python benchmarks/bench_train.py --device cuda --configs paper,small \\
        --batches 32,max --precisions bf16,fp32 --compile none,default --steps 20

A case times :meth:`Trainer.train_step` (what ``train.py`` runs per step: augmentation,
t/ε draw, the network under autocast, the mesh decoder and SPEC §4 loss, backward, AdamW,
scheduler and EMA) on batches already on the device, after warm-up steps (compilation).
``--loss network`` also times the network alone (MSE on x̂0, backward, AdamW), the figure
the reference's 313 samples/s (bf16, H100, batch 32) and 757 samples/s (compiled) are
(SPEC §11). ``max`` in ``--batches`` (CUDA) doubles the batch from 64 until the eager step
runs out of memory (per precision) and reports the largest that ran; the compiled case runs
at that batch too. Body model: Anny (default) or ``--body smpl-fixture`` (a SMPL-sized
fixture model, 6,890 vertices; timing-equivalent to SMPL, which needs licensed files).

Each compiled case compiles anew (about a minute on an H100); the command above runs 6
compiled cases per preset. ``--loss network`` cases run at the first batch size only.

Data: the generator pool's generation rate (samples/s of :class:`SceneGenerator` at the
default settings) and the shard pipeline's rate (DataPipeline over fake shards of 512
samples with 0 and ``--workers`` worker processes) are reported next to the step rates.
Goal (issue 7): ≥ 1,400 samples/s for the paper config on one H100 (50 + 15 epochs of the
paper in under one GPU-hour).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Result, Row, command_line, export_trace, machine_info, save

from disrt_core.model import count_parameters
from disrt_core.train.config import load_config

GOAL_PAPER = 1400.0  # samples/s on one H100 (issue 7)
PAPER_SCHEDULE = 50 * 97_495 + 15 * 10_665  # samples of the paper's two stages


def _config(preset: str, batch: int, precision: str, compile_mode: str | None, device: str,
            body: str, smpl_dir: str | None, out: str, channels_last: bool = True) -> dict:
    return {
        "name": "bench", "seed": 0,
        "body": {"kind": "smpl", "smpl_dir": smpl_dir, "gender": "both"}
        if body == "smpl-fixture" else {"kind": "anny"},
        "model": {"preset": preset},
        "loss": {"normalisers": "reference"},
        "stages": [{"name": "bench", "data": [{"type": "generator", "samples": batch}],
                    "batch_size": batch}],
        "run": {"out_dir": out, "device": device, "precision": precision,
                "compile": compile_mode, "num_workers": 0, "streams": 1,
                "checkpoint_every": 0, "progress": False, "channels_last": channels_last},
    }


def _batches(trainer, batch: int, n: int) -> list[dict]:
    gen = torch.Generator().manual_seed(0)
    body, dev = trainer.body, trainer.device
    out = []
    for i in range(n):
        params = body.zero_params(batch).cpu()
        params += 0.1 * torch.randn(params.shape, generator=gen)
        params[:, body.param_layout.transl] += torch.tensor([0.4, 0.9, 0.1])
        out.append({"depth": torch.rand(batch, 1, 128, 54, generator=gen).to(dev),
                    "params": params.to(dev),
                    "gender": torch.tensor([[1.0, 0.0]]).repeat(batch, 1).to(dev),
                    "epoch": 0, "index": i, "seed": i})
    return out


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_steps(trainer, batch: int, steps: int, warmup: int, loss: str,
               trace: Path | None = None) -> tuple[float, float]:
    """(samples/s, peak GiB) of ``steps`` timed steps after ``warmup`` steps; with ``trace``,
    two more steps are profiled (top operators printed, Chrome trace written there)."""
    data = _batches(trainer, batch, 2)
    if loss == "network":
        def step(b):
            x0 = b["params"]
            t = torch.randint(0, 100, (batch,), device=x0.device)
            x_t = trainer.diffusion.q_sample(x0, t)
            out = trainer._forward(x_t, t, b["depth"])
            trainer.optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.mse_loss(out, x0).backward()
            trainer.optimizer.step()
    else:
        def step(b):
            trainer.train_step(b, 0)
    for i in range(warmup):
        step(data[i % 2])
    _sync(trainer.device)
    if trainer.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for i in range(steps):
        step(data[i % 2])
    _sync(trainer.device)
    elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if trainer.device.type == "cuda" else 0.0
    if trace is not None:  # two more steps under the profiler, after the timed ones
        from torch.profiler import ProfilerActivity, profile

        cuda = trainer.device.type == "cuda"
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=acts) as prof:
            for i in range(2):
                step(data[i % 2])
            _sync(trainer.device)
        key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
        print(prof.key_averages().table(sort_by=key, row_limit=25))
        export_trace(prof, trace)
    return batch * steps / elapsed, peak


def run_case(args, preset: str, batch: int, precision: str, compile_mode: str | None,
             loss: str, smpl_dir: str | None) -> tuple[float, float, int]:
    from disrt_core.train.trainer import Trainer

    with tempfile.TemporaryDirectory() as out:
        config = load_config(None, base=_config(preset, batch, precision, compile_mode,
                                                args.device, args.body, smpl_dir, out,
                                                not args.no_channels_last))
        # the trainer's run.stats_group_norm: auto (None) = on CUDA only
        config.run.stats_group_norm = {"auto": None, "on": True, "off": False}[args.gn_stats]
        config.run.compile_loss = args.compile_loss
        trainer = Trainer(config)
        trainer.begin_stage(0)
        try:
            steps = args.steps if args.device == "cuda" else max(1, args.steps // 10)
            warmup = args.warmup + (2 if compile_mode else 0)
            trace = None
            if args.trace:  # name_<preset>_b<batch>_<compile>_<loss>.json[.gz]
                path = Path(args.trace)
                trace = path.with_name(path.name.replace(
                    ".json", f"_{preset}_b{batch}_{compile_mode or 'eager'}_{loss}.json"))
            rate, peak = time_steps(trainer, batch, steps, warmup, loss, trace)
            return rate, peak, count_parameters(trainer.model)
        finally:
            trainer.close()
            del trainer
            if args.device == "cuda":
                torch.cuda.empty_cache()


def max_batch(args, preset: str, precision: str, smpl_dir) -> tuple[int, float, float]:
    """The largest batch (doubling from 64) whose eager step runs: (batch, rate, peak)."""
    best = (0, 0.0, 0.0)
    batch = 64
    while batch <= args.max_batch:
        try:
            rate, peak, _ = run_case(args, preset, batch, precision, None, "full", smpl_dir)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            break
        best = (batch, rate, peak)
        batch *= 2
    return best


def generator_rate(device: str, n: int) -> float:
    from disrt_core.body import load_body_model
    from disrt_core.sim.generator import SceneGenerator, SimConfig

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        body = load_body_model("anny", device=device)
    gen = SceneGenerator(SimConfig(), body, device)
    gen.sample(min(n, 8), 0)  # warm-up
    _sync(torch.device(device))
    start = time.perf_counter()
    gen.sample(n, 1)
    _sync(torch.device(device))
    return n / (time.perf_counter() - start)


def shard_pipeline_rates(workers: int, batch: int = 64) -> dict[int, float]:
    """Samples/s of the training pipeline over fake (random) shards: 4 × 512 samples (worker
    processes start at each epoch, included)."""
    from disrt_core.data import shards
    from disrt_core.data.dataset import make_loader
    from disrt_core.data.synthetic import SyntheticShards

    rng = np.random.default_rng(0)
    rates = {}
    with tempfile.TemporaryDirectory() as root:
        n, p, count = 512, 84, 4
        for i in range(count):
            arrays = {k: rng.integers(0, 2, (n, *[(p if s == "P" else s) for s in shape]))
                      .astype(dtype) for k, (dtype, shape, req) in shards.SAMPLE_SCHEMA.items()
                      if req}
            arrays["depth"] = rng.integers(1500, 2300, (n, 128, 54)).astype(np.uint16)
            shards.write_shard(Path(root) / shards.shard_name(i), arrays, body_model="anny-0.6",
                               param_dim=p, shard_index=i)
        shards.write_manifest(root, {"body_model": "anny-0.6", "param_layout": {"param_dim": p},
                                     "shards": [{"file": shards.shard_name(i), "count": n}
                                                for i in range(count)], "complete": True})
        source = SyntheticShards(root)
        for w in sorted({0, workers}):
            pipe = make_loader([source], batch_size=batch, num_workers=w, streams=max(1, w))
            for _ in pipe.epoch(0):  # warm (page cache)
                pass
            start = time.perf_counter()
            count = sum(len(b["key"]) for b in pipe.epoch(1))
            rates[w] = count / (time.perf_counter() - start)
    return rates


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--configs", default=None, help="presets (default cpu: small,paper; "
                   "cuda: paper,small)")
    p.add_argument("--batches", default=None, help="e.g. 32,max (default cpu: 32 for small, "
                   "4 for paper; cuda: 32,max)")
    p.add_argument("--precisions", default=None, help="fp32,bf16 (default cpu: fp32)")
    p.add_argument("--compile", default="none", help="none and/or torch.compile modes")
    p.add_argument("--loss", default="full,network", help="full and/or network")
    p.add_argument("--body", default="anny", choices=("anny", "smpl-fixture"))
    p.add_argument("--steps", type=int, default=30, help="timed steps (CPU: a tenth)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--max-batch", type=int, default=4096)
    p.add_argument("--workers", type=int, default=2, help="pipeline workers to measure")
    p.add_argument("--no-data", action="store_true", help="skip the data-rate figures")
    p.add_argument("--no-channels-last", action="store_true",
                   help="train with the default memory format (run.channels_last false)")
    p.add_argument("--gn-stats", choices=("auto", "on", "off"), default="auto",
                   help="the network's GroupNorms as StatsGroupNorm (per-channel sums, "
                        "model/blocks.py; the trainer's run.stats_group_norm): auto = on "
                        "CUDA only (the trainer's default since 2026-12-05; before it, "
                        "'off' was what a run without this option measured)")
    p.add_argument("--compile-loss", action="store_true", help="compiled cases also compile "
                   "the body model's decoding and the mesh loss (the trainer's "
                   "run.compile_loss)")
    p.add_argument("--note", default="")
    p.add_argument("--trace", default=None, help="profile two steps of each case: Chrome "
                   "trace file (the case is added to its name; gzipped for .json.gz)")
    p.add_argument("--tag", default="", help="suffix of the result name (runs with other "
                   "options on one machine then do not overwrite each other)")
    args = p.parse_args(argv)
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        p.error("--device cuda but torch sees no CUDA GPU")
    configs = (args.configs or ("paper,small" if cuda else "small,paper")).split(",")
    precisions = (args.precisions or ("fp32,bf16" if cuda else "fp32")).split(",")
    compiles = [None if c == "none" else c for c in args.compile.split(",")]
    losses = args.loss.split(",")
    smpl_ctx = tempfile.TemporaryDirectory() if args.body == "smpl-fixture" else \
        contextlib.nullcontext(None)
    result = Result("train" + (f"_{args.tag}" if args.tag else ""), machine_info(),
                    command_line())
    with smpl_ctx as smpl_dir:
        if smpl_dir:
            from disrt_core.body.fixtures import write_fake_smpl_pickle

            for seed, name in enumerate(("SMPL_FEMALE.pkl", "SMPL_MALE.pkl")):
                write_fake_smpl_pickle(Path(smpl_dir) / name, seed=seed)
        for preset in configs:
            default = "32,max" if cuda else ("4" if preset == "paper" else "32")
            batches = (args.batches or default).split(",")
            for precision in precisions:
                sizes = [int(b) for b in batches if b != "max"]
                if "max" in batches and cuda:
                    big, rate, peak = max_batch(args, preset, precision, smpl_dir)
                    if big:
                        sizes.append(big)
                for batch in sizes:
                    for compile_mode in compiles:
                        # the network-only figure compares with the reference at batch 32
                        for loss in [x for x in losses if x == "full" or batch == sizes[0]]:
                            rate, peak, n_params = run_case(args, preset, batch, precision,
                                                            compile_mode, loss, smpl_dir)
                            name = (f"{preset} b{batch} {precision} "
                                    f"{compile_mode or 'eager'} {loss}")
                            goal, met = "", None
                            if preset == "paper" and loss == "full" and cuda:
                                goal, met = f"≥ {GOAL_PAPER:g} samples/s (H100)", \
                                    rate >= GOAL_PAPER
                            hours = PAPER_SCHEDULE / rate / 3600
                            note = (f"{n_params / 1e6:.1f} M params, {args.body}"
                                    + (f", peak {peak:.1f} GiB" if cuda else "")
                                    + (f", paper schedule {hours:.2f} h" if preset == "paper"
                                       else ""))
                            result.rows.append(Row(f"train step {name}", round(rate, 1),
                                                   "samples/s", goal, met, note))
                            print(f"{name}: {rate:.1f} samples/s ({note})", flush=True)
                            save(result)  # a run stopped at a time limit keeps its rows
    if not args.no_data:
        n = 256 if cuda else 16
        rate = generator_rate(args.device, n)
        result.rows.append(Row("generator pool (kinect2, covers 0-2, noise)", round(rate, 1),
                               "samples/s", "", None, f"batch {n}"))
        print(f"generator: {rate:.1f} samples/s", flush=True)
        for workers, rate in shard_pipeline_rates(args.workers).items():
            result.rows.append(Row(f"shard pipeline, {workers} workers", round(rate, 1),
                                   "samples/s", "", None, "batch 64, 4 fake shards of 512"))
            print(f"shards, {workers} workers: {rate:.1f} samples/s", flush=True)
    result.notes.append(
        "A step = the trainer's step (augmentation, network under autocast, mesh decoder, "
        "SPEC §4 loss, backward, AdamW, EMA); 'network' = the network alone with an MSE on "
        "x̂0 (what the reference's 313 / 757 samples/s measure). Batches already on the "
        "device.")
    if not cuda:
        result.notes.append("CPU figures taken while other jobs shared the 2 cores; the GPU "
                            "figures come from `--device cuda` on the GPU machine.")
    if args.note:
        result.notes.append(args.note)
    print(f"wrote {save(result)}")


if __name__ == "__main__":
    main()
