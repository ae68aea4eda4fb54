"""Estimator speed: images/s, p50/p99 latency, peak memory and FLOPs per image, per network
preset, batch size and speed option (5 DDIM steps, K = 1, Anny body model by default).

    python benchmarks/bench_estimator.py                          # CPU: small, paper_native, paper
    python benchmarks/bench_estimator.py --device cuda \\
        --configs paper,paper_native,small --batches 1,64,256 \\
        --precisions fp32,bf16 --compile none,max-autotune-no-cudagraphs --cuda-graphs off,on

Every combination of ``--configs × --batches × --precisions × --compile × --cuda-graphs`` is
one case (CUDA graphs only on CUDA). On the CPU, cases above ``--cpu-max-gflop`` of work per
call are skipped and heavy cases get fewer repeats (about 30 s each). Each case reports the
whole ``Estimator.predict`` (sampling + decoding to joints and mesh) and, separately, one
network forward, so that the decoder's and the sampler's share is visible. ``--profile``
prints the top operators of one call.

FLOPs are counted with ``torch.utils.flop_counter`` on one fp32 forward with the math
attention kernel (the fused CPU/GPU kernels are not counted by the flop counter); per image =
steps × forward − (steps − 1) × the depth-only start that the estimator runs once (the
decoder's few MFLOP are left out). The network's convolution and Linear weights are stored in
the compute precision as ``Estimator.from_checkpoint`` does (``--no-cast-weights``: cast by
autocast at every forward instead). ``--trace FILE`` keeps the profiler's Chrome trace of one
call per batch size (with ``--profile``; FILE's name gets ``_b<batch>`` before .json;
gzipped when FILE ends in .gz). On a GPU the achieved fraction of
its dense bf16 peak is reported (H100 SXM / H200: 989 TFLOP/s, H100 PCIe: 756; override with
``--peak-tflops``). Peak memory: CUDA ``max_memory_allocated`` of the case; CPU the peak
RSS of the whole process so far (Python, torch, the body model and every earlier case: an
upper bound, cases run in the order given).

Parameter counts (88-value SMPL layout / 84-value Anny layout): paper 64,243,736 /
64,240,660; paper_native 34,826,264 / 34,823,188; small 3,385,544 / 3,382,468.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    Result,
    Row,
    command_line,
    export_trace,
    load_body,
    machine_info,
    percentile,
    save,
    time_call,
)

from disrt_core.infer import Estimator
from disrt_core.model import Denoiser, count_parameters, preset

BATCHED = 64  # the throughput goal is about large batches; small ones (a few cameras) have none
GOALS = {  # (config, device type, batch) -> (metric, goal text, test)
    ("small", "cpu", 1): ("latency p50", "≤ 60 ms per image (10 Hz node)", lambda v: v <= 60.0),
    ("paper", "cuda", 1): ("latency p99", "≤ 6 ms on an H100", lambda v: v <= 6.0),
    ("paper", "cuda", "batched"): ("images/s", "≥ 1000 images/s on an H100",
                                   lambda v: v >= 1000.0),
}


def gpu_peak_tflops(name: str | None) -> float | None:
    """Dense bf16 tensor-core peak of known GPUs, TFLOP/s."""
    if not name:
        return None
    if "H100" in name:
        return 756.0 if "PCIe" in name else 989.4
    if "H200" in name:
        return 989.4
    if "A100" in name:
        return 312.0
    return None


def count_flops(config_name: str, param_dim: int) -> tuple[float, float]:
    """FLOPs of one fp32 forward at batch 1 (math attention so that it is counted), and of
    its depth-only start (``Denoiser.encode_depth``), which the estimator runs once per call
    instead of once per step."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    net = Denoiser(preset(config_name), param_dim).eval()
    x, t, d = torch.zeros(1, param_dim), torch.zeros(1, dtype=torch.long), torch.rand(1, 1, 128, 54)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as fc:
        code = net.encode_depth(d)
        encode = float(fc.get_total_flops())
        net.forward_encoded(x, t, code)
    return float(fc.get_total_flops()), encode


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_case(args, body, name, batch, precision, compile_mode, graphs, flops):
    cuda = args.device.startswith("cuda")
    torch.manual_seed(0)
    net = Denoiser(preset(name), body.param_dim).eval()  # as from_checkpoint loads it
    est = Estimator.from_model(net, body, device=args.device, steps=args.steps,
                               hypotheses=args.hypotheses, seed=0, precision=precision,
                               compile=compile_mode, cuda_graphs=graphs,
                               channels_last=not args.no_channels_last,
                               cast_weights=not args.no_cast_weights,
                               stats_group_norm={"auto": None, "on": True, "off": False}[
                                   args.gn_stats])
    depth = torch.rand(batch, 1, 128, 54, device=args.device)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    repeat, warmup = args.repeat, args.warmup
    if not cuda:  # about 30 s per case at ~60 GFLOP/s
        seconds = batch * args.hypotheses * flops[0] * args.steps / 60e9
        repeat = max(3, min(repeat, int(30 / max(seconds, 1e-3))))
        warmup = min(warmup, max(1, repeat // 5))
    times = time_call(lambda: est.predict(depth), warmup=warmup, repeat=repeat, cuda=cuda)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else _peak_rss_mb()

    rows = batch * args.hypotheses
    x = torch.zeros(rows, body.param_dim, device=args.device)
    t = torch.full((rows,), 50, device=args.device, dtype=torch.long)
    d = depth.repeat_interleave(args.hypotheses, 0) if args.hypotheses > 1 else depth
    est.model.eval()  # as inside predict (dropout off)
    with torch.inference_mode():
        fwd = time_call(lambda: est._model_fn(x, t, d), warmup=2, repeat=max(3, repeat // 2),
                        cuda=cuda)
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=acts) as prof:
            est.predict(depth)
            if cuda:
                torch.cuda.synchronize()
        key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
        print(prof.key_averages().table(sort_by=key, row_limit=15))
        if args.trace:  # one file per batch size: name_b<batch>.json[.gz]
            path = Path(args.trace)
            export_trace(prof, path.with_name(path.name.replace(".json", f"_b{batch}.json")))
    p50 = statistics.median(times)
    return {
        "p50_ms": 1e3 * p50, "p99_ms": 1e3 * percentile(times, 99), "min_ms": 1e3 * min(times),
        "images_per_s": batch / p50, "forward_ms": 1e3 * statistics.median(fwd),
        "peak_mb": peak,
        "flops_per_image": (flops[0] * args.steps - flops[1] * (args.steps - 1)) * args.hypotheses,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--configs", default="small,paper_native,paper")
    parser.add_argument("--batches", default="1,64")
    parser.add_argument("--precisions", default=None, help="default: fp32 (cpu), fp32,bf16 (cuda)")
    parser.add_argument("--compile", default="none",
                        help="comma list of torch.compile modes or none")
    parser.add_argument("--cuda-graphs", default="off", help="comma list of off,on")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--hypotheses", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--body", choices=("anny", "smpl-fixture"), default="anny")
    parser.add_argument("--cpu-max-gflop", type=float, default=500.0,
                        help="CPU only: skip cases with more GFLOP per predict call")
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--no-cudnn-benchmark", action="store_true")
    parser.add_argument("--no-channels-last", action="store_true")
    parser.add_argument("--no-cast-weights", action="store_true")
    parser.add_argument("--gn-stats", default="auto", choices=("auto", "on", "off"),
                        help="GroupNorms as StatsGroupNorm (model/blocks.py): auto = the "
                             "Estimator's default (on for a compiled network on CUDA); the "
                             "runs of 2026-12-06 named --gn-stats are 'on', those without "
                             "it 'off'")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--trace", default=None, help="with --profile: Chrome trace file")
    parser.add_argument("--tag", default="",
                        help="suffix of the result name, so that runs with different options "
                             "on one machine do not overwrite each other")
    parser.add_argument("--note", action="append", default=[],
                        help="extra note for the result (e.g. machine conditions)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    if cuda and not args.no_cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
    precisions = (args.precisions or ("fp32,bf16" if cuda else "fp32")).split(",")
    compiles = [None if c == "none" else c for c in args.compile.split(",")]
    graph_opts = [g == "on" for g in args.cuda_graphs.split(",")]
    if not cuda and any(graph_opts):
        parser.error("--cuda-graphs on needs --device cuda")
    configs = args.configs.split(",")
    batches = [int(b) for b in args.batches.split(",")]

    info = machine_info()
    body = load_body(args.body, args.device)
    result = Result("estimator" + (f"_{args.tag}" if args.tag else ""), info, command_line())
    result.notes += [
        f"{args.steps} DDIM steps, {args.hypotheses} hypothesis per image, body model "
        f"{body.model_id} ({body.num_vertices} vertices): latency = one whole "
        "Estimator.predict (sampling + decoding joints and mesh); forward = one network "
        "call at that batch.",
        *args.note,
    ]
    peak_tflops = args.peak_tflops or (gpu_peak_tflops(info["gpu"]) if cuda else None)
    print(f"paper config parameters: {count_parameters(Denoiser(preset('paper'), 88)):,} "
          "(SMPL layout, 88 outputs; the reference's 64,288,880 include an unused 88-wide "
          "variance row)")
    for name in configs:
        flops = count_flops(name, body.param_dim)
        params = count_parameters(Denoiser(preset(name), body.param_dim))
        result.rows.append(Row(f"{name}: parameters ({body.model_id})", round(params / 1e6, 3),
                               "M"))
        result.rows.append(Row(f"{name}: FLOPs per forward", round(flops[0] / 1e9, 3), "GFLOP"))
        result.rows.append(Row(f"{name}: FLOPs of the depth-only start", round(flops[1] / 1e9, 3),
                               "GFLOP", note="run once per call, not per step"))
        print(f"{name}: {params:,} parameters, {flops[0] / 1e9:.3f} GFLOP per forward, "
              f"{flops[1] / 1e9:.3f} of them depth-only")
        for batch in batches:
            call_gflop = batch * args.hypotheses * args.steps * flops[0] / 1e9
            if not cuda and call_gflop > args.cpu_max_gflop:
                print(f"  skip {name} batch {batch} on the CPU ({call_gflop:.0f} GFLOP per "
                      "call > --cpu-max-gflop)")
                result.notes.append(f"{name} batch {batch}: not run on the CPU "
                                    f"({call_gflop:.0f} GFLOP per call)")
                continue
            for precision in precisions:
                for compile_mode in compiles:
                    for graphs in graph_opts:
                        tag = (f"{name} b{batch} {args.device} {precision}"
                               f"{' ' + compile_mode if compile_mode else ' eager'}"
                               f"{' graphs' if graphs else ''}")
                        try:
                            r = run_case(args, body, name, batch, precision, compile_mode,
                                         graphs, flops)
                        except Exception as err:  # one failing option must not stop the rest
                            print(f"  {tag}: FAILED {type(err).__name__}: {err}")
                            result.notes.append(f"{tag}: failed ({type(err).__name__}: {err})")
                            continue
                        _report(result, tag, name, batch, r, cuda, peak_tflops)
                        save(result)  # a run stopped at a time limit keeps its cases
    print("wrote", save(result))


def _report(result, tag, name, batch, r, cuda, peak_tflops):
    dev = "cuda" if cuda else "cpu"
    goal_key = (name, dev, 1 if batch == 1 else "batched" if batch >= BATCHED else None)
    goal = GOALS.get(goal_key)
    values = {"latency p50": r["p50_ms"], "latency p99": r["p99_ms"],
              "latency min": r["min_ms"], "images/s": r["images_per_s"]}
    for metric, unit in (("latency p50", "ms"), ("latency p99", "ms"), ("latency min", "ms"),
                         ("images/s", "1/s")):
        row = Row(f"{tag}: {metric}", round(values[metric], 2), unit)
        if goal and goal[0] == metric:
            row.goal, row.met = goal[1], bool(goal[2](values[metric]))
        result.rows.append(row)
    result.rows.append(Row(f"{tag}: one forward", round(r["forward_ms"], 2), "ms"))
    result.rows.append(Row(f"{tag}: peak memory", round(r["peak_mb"], 1), "MiB",
                           note="max allocated" if cuda else "process peak RSS so far"))
    line = (f"  {tag}: p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
            f"min {r['min_ms']:.2f} ms, "
            f"{r['images_per_s']:.1f} images/s, forward {r['forward_ms']:.2f} ms, "
            f"peak {r['peak_mb']:.0f} MiB")
    if peak_tflops:
        frac = r["flops_per_image"] * r["images_per_s"] / (peak_tflops * 1e12)
        result.rows.append(Row(f"{tag}: fraction of bf16 peak", round(100 * frac, 2), "%"))
        line += f", {100 * frac:.1f}% of {peak_tflops:g} TFLOP/s"
    print(line)


if __name__ == "__main__":
    main()
