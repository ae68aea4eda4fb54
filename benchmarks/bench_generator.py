"""Synthetic generator throughput: labelled samples per second and each stage's share.

    python benchmarks/bench_generator.py [--device cpu|cuda] [--batch 64] [--batches 4]
        [--workers 2] [--threads 1] [--sensor kinect2|d435] [--body-model anny|smpl]
        [--scene bed|room] [--bed-pose true|fit] [--profile]

Every sample has a blanket or not (covers 0, 1, 2 drawn uniformly), sensor noise and the
network-grid preprocessing, as ``disrt-generate`` makes them (without writing shards).
One warm-up batch, then ``--batches`` timed batches; stage times are synchronised on CUDA.
On the CPU, ``--workers`` processes (default: one per core) run one torch thread each and
start together, as ``disrt-generate`` does; the rate is all their samples over the longest
worker's time. ``--scene room --bed-pose fit`` times the room scenes of the rooms training
(the bed found on every raw frame; its time is in "preprocessing"). ``--profile`` (one
worker) records one more batch with the torch profiler and writes its operator table, by
device time, next to the result (``<name>_profile.txt``). Goals (issue 5): ≥ 20 samples/s
on the 2-core development CPU, ≥ 2000 on one H100/H200.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Result, Row, command_line, machine_info, save

from disrt_core.sim import STAGES, SceneGenerator, SimConfig


def run_batches(args, worker: int = 0, barrier=None) -> dict:
    """Build a generator, warm up, then time ``args.batches`` batches (seeds per worker)."""
    from disrt_core.body import load_body_model

    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        body = load_body_model(args.body_model, args.smpl_dir, device=args.device)
    config = SimConfig(sensor=args.sensor, scene=args.scene, bed_pose=args.bed_pose)
    generator = SceneGenerator(config, body, args.device)
    generator.sample(args.batch, 1000 + worker)  # warm-up (allocator, kernels)
    if barrier is not None:
        barrier.wait()
    timings: dict[str, float] = {}
    cpu_start = time.process_time()
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(args.batches):
        generator.sample(args.batch, 100 * worker + i, timings=timings)
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    table = profile_batch(generator, args.batch, cuda) if args.profile else None
    return {"wall": wall, "cpu": cpu, "samples": args.batch * args.batches,
            "timings": timings, "threads": torch.get_num_threads(), "model": body.model_id,
            "profile": table}


def _device_us(event) -> float:
    """An averaged profiler event's device time in µs (the name changed in torch 2.4)."""
    total = getattr(event, "device_time_total", None)
    return total if total is not None else getattr(event, "cuda_time_total", 0.0)


def profile_batch(generator: SceneGenerator, batch: int, cuda: bool) -> str:
    """The torch profiler's operator table of one more batch (by self device time on CUDA),
    with the count of host synchronisations (device-to-host copies and stream waits)."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=acts) as prof:
        generator.sample(batch, 999)
        if cuda:
            torch.cuda.synchronize()
    events = prof.key_averages()
    syncs = sum(e.count for e in events if e.key in (
        "cudaStreamSynchronize", "cudaDeviceSynchronize", "aten::_local_scalar_dense"))
    # A stage appears twice on CUDA: its host range (CPU time; device time of the kernels
    # it launched) and its device-timeline range (CPU time 0; device time = its span).
    stage: dict[str, dict[str, float]] = {}
    for e in events:
        if e.key.startswith("generator."):
            row = stage.setdefault(e.key, {"cpu": 0.0, "kernels": 0.0, "span": 0.0})
            if e.cpu_time_total > 0:
                row["cpu"], row["kernels"] = e.cpu_time_total, _device_us(e)
            else:
                row["span"] = _device_us(e)
    stages = "\n".join(
        f"  {k}: CPU {r['cpu'] / 1e3:.1f} ms" + (
            f", kernels {r['kernels'] / 1e3:.1f} ms, device span {r['span'] / 1e3:.1f} ms"
            if cuda else "") for k, r in stage.items())
    ops = sum(e.count for e in events if e.key.startswith("aten::"))
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    return (f"one batch of {batch}; aten calls {ops}; host synchronisations "
            f"(aten::_local_scalar_dense and stream/device waits): {syncs}\nstages:\n{stages}\n"
            + events.table(sort_by=key, row_limit=40))


def _worker(args, worker, barrier, results) -> None:
    results.put(run_batches(args, worker, barrier))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=None, help="default 64 CPU, 512 CUDA")
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--workers", type=int, default=None,
                        help="CPU: parallel single-threaded processes (default: one per core)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per process (default 1 on the CPU)")
    parser.add_argument("--sensor", default="kinect2")
    parser.add_argument("--body-model", default="anny", choices=("anny", "smpl"))
    parser.add_argument("--smpl-dir", default=None)
    parser.add_argument("--scene", default="bed", choices=("bed", "room"))
    parser.add_argument("--bed-pose", default="true", choices=("true", "fit"),
                        help="room training data uses fit (the node's bed fit per raw frame)")
    parser.add_argument("--profile", action="store_true",
                        help="profile one more batch (one worker) and save the table")
    parser.add_argument("--note", default="", help="free text stored with the result")
    args = parser.parse_args(argv)
    cuda = args.device.startswith("cuda")
    args.batch = args.batch or (512 if cuda else 64)
    workers = 1 if cuda or args.profile else (args.workers or len(os.sched_getaffinity(0)))
    if not cuda and args.threads is None:
        args.threads = 1

    if workers == 1:
        runs = [run_batches(args)]
    else:
        context = multiprocessing.get_context("spawn")
        barrier, results = context.Barrier(workers), context.Queue()
        procs = [context.Process(target=_worker, args=(args, w, barrier, results))
                 for w in range(workers)]
        for p in procs:
            p.start()
        runs = [results.get() for _ in procs]
        for p in procs:
            p.join()

    n = sum(r["samples"] for r in runs)
    wall = max(r["wall"] for r in runs)
    rate = n / wall
    timings = {s: sum(r["timings"].get(s, 0.0) for r in runs) for s in STAGES}
    staged = sum(timings.values())
    cpu_per_sample = sum(r["cpu"] for r in runs) / n

    scene = "" if args.scene == "bed" else f"room_{args.bed_pose}_"
    name = f"generator_{scene}{args.sensor}_{args.device.split(':')[0]}"
    result = Result(name, machine_info(), command_line())
    goal = ">= 2000 samples/s (H100)" if cuda else ">= 20 samples/s (2-core CPU)"
    how = f"{workers} worker{'s' if workers > 1 else ''} × {runs[0]['threads']} thread"
    result.rows.append(Row(f"throughput, {args.scene} scenes, {args.sensor}, batch "
                           f"{args.batch}, {args.device}, {how}", round(rate, 1), "samples/s", goal,
                           rate >= (2000 if cuda else 20)))
    for stage in STAGES:
        share = timings[stage] / staged
        result.rows.append(Row(f"stage share: {stage}", round(100 * share, 1), "%",
                               note=f"{1000 * timings[stage] / n:.2f} ms/sample"))
    if not cuda:
        result.rows.append(Row("CPU time per sample", round(1000 * cpu_per_sample, 1), "ms",
                               note="process CPU time over samples; with one thread per "
                                    "process it does not depend on other load"))
    load = os.getloadavg()[0]
    busy = load > workers + 0.5 and not cuda
    result.notes.append(
        f"{args.batches} batches of {args.batch} per worker after one warm-up; body "
        f"{runs[0]['model']}; 1-min load average at the end {load:.1f}"
        + (" (other jobs were running: wall-clock rates are pessimistic)" if busy else ""))
    if args.note:
        result.notes.append(args.note)
    print(f"{rate:.1f} samples/s ({n} in {wall:.1f} s, {how}); CPU "
          f"{1000 * cpu_per_sample:.1f} ms/sample; stages: " + ", ".join(
              f"{s} {100 * timings[s] / staged:.0f}%" for s in STAGES))
    path = save(result)
    print("wrote", path)
    if runs[0]["profile"]:
        table = path.with_name(path.stem + "_profile.txt")
        table.write_text(result.command + "\n" + runs[0]["profile"] + "\n")
        print(runs[0]["profile"][:3000])
        print("wrote", table)


if __name__ == "__main__":
    main()
