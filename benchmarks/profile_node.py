"""Where one camera's frame goes inside the bed monitor node (issue 23): the node's own
``Pipeline.run`` called in-process on bench_node's depth frame (424×512 16UC1, the bed 2 m
away, ``bed_region: pose``, occupancy check off as in bench_node), timed with the device
synchronised around each call, then each part of the infer stage alone, and optionally a
torch profiler trace.

    python benchmarks/profile_node.py [--device cuda] [--preset paper] [--compile default]
        [--layout checkpoint|in-memory] [--eager-tail] [--runs 300] [--trace OUT.json.gz]

``--layout checkpoint`` (default) lays the random network out as ``from_checkpoint`` lays out
the node's weights (channels-last, weights stored in the compute precision);
``in-memory`` leaves them as bench_node did before 2026-12-06 (autocast casts every weight
at every forward). ``--eager-tail`` keeps the decoding, presence and learned pressure eager
when ``--compile`` is given. No DDS transport and no publishing: bench_node measures the
whole path. Needs rclpy (the node is built, not spun).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 101)))

import bench_node
import numpy as np
import torch


def percentiles(ms: list[float]) -> str:
    return f"p50 {np.median(ms):.2f} p99 {np.percentile(ms, 99):.2f} ms"


def timed(fn, sync, runs: int) -> list[float]:
    """Milliseconds of ``fn()`` with the device idle before and after each call."""
    for _ in range(max(3, runs // 10)):
        fn()
    out = []
    for _ in range(runs):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        out.append(1e3 * (time.perf_counter() - start))
    return out


def build(args):
    return bench_node.build_estimator(argparse.Namespace(
        fake_ms=None, device=args.device, checkpoint=None, body=args.body, preset=args.preset,
        cuda_graphs=args.device == "cuda", compile=args.compile),
        checkpoint_layout=args.layout == "checkpoint")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--preset", default="paper")
    p.add_argument("--body", choices=("anny", "smpl-fixture"), default="smpl-fixture")
    p.add_argument("--compile", default="default")
    p.add_argument("--layout", choices=("checkpoint", "in-memory"), default="checkpoint")
    p.add_argument("--eager-tail", action="store_true")
    p.add_argument("--runs", type=int, default=300)
    p.add_argument("--trace", type=Path, default=None, help="a .json.gz of 20 profiled runs")
    args = p.parse_args(argv)
    args.compile = args.compile or None

    import rclpy
    from rclpy.parameter import Parameter

    from disrt_ros.conversions import array_to_image
    from disrt_ros.node import BedMonitorNode
    from disrt_ros.worker import Job

    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    est = build(args)
    if args.eager_tail:
        est._tail_compiled = None
    rclpy.init()
    params = {"cameras": ["cam0"], "max_batch": 1, "occupancy_check": False,
              "cam0.camera_height_m": bench_node.CAMERA_HEIGHT_M, "cam0.bed_region": "pose"}
    node = BedMonitorNode(estimator=est, parameter_overrides=[
        Parameter(k, value=v) for k, v in params.items()])
    try:
        cam, pipe = node.cameras["cam0"], node.pipeline
        cam.intrinsics = (bench_node.K, (bench_node.WIDTH, bench_node.HEIGHT))
        msg = array_to_image(bench_node.depth_frame(), "16UC1")
        job = Job("cam0", msg)
        answer = pipe.run([job])[0]
        if not hasattr(answer, "joints_cam"):
            raise SystemExit(f"the pipeline refused the frame: {answer}")
        print(f"{args.preset} on {args.device}, layout {args.layout}, compile {args.compile}, "
              f"tail compiled {est._tail_compiled is not None}, graph scope {est.graph_scope}, "
              f"pressure {node.config.pressure} ({node.config.pressure_method})")
        print("Pipeline.run", percentiles(timed(lambda: pipe.run([job]), sync, args.runs)))
        for stage, window in pipe.stage_times.items():
            print(f"  stage {stage}: p50 {1e3 * window.percentile(50):.2f} "
                  f"p99 {1e3 * window.percentile(99):.2f} ms")
        frame = pipe.prepare(cam, msg)
        T = torch.from_numpy(pipe.bed_pose(cam, frame)[None]).float()
        depth = torch.from_numpy(frame.depth_mm[None])
        K = torch.from_numpy(frame.K[None]).float()
        bed_mm = node.config.bed_distance_mm
        part = pipe.resampler(depth, K, T, bed_mm)
        print("  decode and check", percentiles(timed(lambda: pipe.prepare(cam, msg), sync,
                                                        args.runs)))
        print("  resampling", percentiles(timed(lambda: pipe.resampler(depth, K, T, bed_mm),
                                                 sync, args.runs)))
        print("  Estimator.predict", percentiles(timed(
            lambda: est.predict(part.net[:, None], check=False), sync, args.runs)))
        if args.trace:
            from torch.profiler import ProfilerActivity, profile, record_function

            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                for _ in range(20):
                    with record_function("pipeline.run"):
                        pipe.run([job])
                    sync()
            raw = args.trace.with_suffix("")  # the profiler writes plain JSON
            prof.export_chrome_trace(str(raw))
            with gzip.open(args.trace, "wt") as out:
                json.dump(json.loads(raw.read_text()), out)
            raw.unlink()
            print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25))
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
