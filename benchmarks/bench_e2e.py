"""The bag chain at camera rate: a synthetic night -> disrt-replay (30 Hz) -> bed monitor
node -> disrt-record -> disrt-score. How many frames the node answers, and why not all.

    python benchmarks/bench_e2e.py [--frames 300] [--device cpu|cuda] [--preset small]
        [--checkpoint PATH] [--cpu-threads N]

The night comes from ``disrt-synth2bag`` (Anny, Kinect v2 frames, 30 Hz); the node runs the
real Estimator: ``--checkpoint``, by default the shipped weights (``small``), or with
``--preset`` a randomly initialised network of that preset (same speed as trained weights;
but such a network sees nobody in bed, and the node publishes no pose for an empty bed, so
the chain then only counts what the node received). The node keeps only the newest waiting frame,
so at a camera rate above its inference rate it answers every k-th frame; the benchmark
reports answered and missed frames, and the node's own counts from /diagnostics (received,
published, dropped, mean latency), which explain the misses.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 101)))
os.environ.pop("ROS_LOCALHOST_ONLY", None)

from common import Result, Row, command_line, machine_info, save  # noqa: E402

from disrt_ros.bags import DEPTH_INFO_TOPIC, DEPTH_TOPIC, BagReader  # noqa: E402

NODE_NS = "/bench_e2e"
DEFAULT_WEIGHTS = ROOT / "disrt_core" / "weights" / "default.safetensors"


def make_night(path: Path, frames: int, device: str):
    from disrt_core.body import load_body_model
    from disrt_core.sim import SimConfig
    from disrt_ros.tools.synth2bag import NightRenderer, plan_night, write_night

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        body = load_body_model("anny", device=device)
    renderer = NightRenderer(body, SimConfig(), device, seed=0)
    write_night(path, renderer, plan_night(frames, seed=0), start_ns=1_700_000_000 * 10**9)
    return body


def make_checkpoint(path: Path, body, preset: str) -> Path:
    import torch

    from disrt_core.checkpoint import save_checkpoint
    from disrt_core.decoder import MeshDecoder
    from disrt_core.model import Denoiser
    from disrt_core.model.config import preset as network_preset

    torch.manual_seed(0)
    net = Denoiser(network_preset(preset).replace(dropout=0.0), body.param_dim)
    return save_checkpoint(path, net, body.model_id, body.param_layout,
                           MeshDecoder(body).config)


def last_diagnostics(bag: Path) -> dict[str, str]:
    """Key/values of the node's last inference and camera statuses on /diagnostics."""
    out: dict[str, str] = {}
    with BagReader(bag) as reader:
        if "/diagnostics" not in reader.topics:
            return out
        for _, msg in reader.read("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray"):
            for status in msg.status:
                out.update({kv.key: kv.value for kv in status.values})
    return out


def run(log: Path, name: str, *args: str) -> subprocess.Popen:
    """A module as a subprocess, its output (stdout and stderr) to ``log``."""
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", name, *args], env=dict(os.environ),
                                stdout=out, stderr=subprocess.STDOUT, text=True)


def wait_for(proc: subprocess.Popen, log: Path, text: str, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if text in log.read_text():
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[2]} ended before {text!r}:\n{log.read_text()}")
        time.sleep(0.1)
    raise TimeoutError(f"no {text!r} from {proc.args[2]} in {timeout} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--preset", default=None,
                        help="a randomly initialised network of this preset instead")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--cpu-threads", type=int, default=0)
    parser.add_argument("--note", default="", help="machine conditions, added to the result")
    args = parser.parse_args(argv)
    from disrt_core.checkpoint import read_header
    from disrt_ros.tools.score import format_score, score

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        body = make_night(tmp / "night", args.frames, args.device)
        print(f"night of {args.frames} frames written in {time.perf_counter() - started:.0f} s")
        ckpt = args.checkpoint or (make_checkpoint(tmp / "net.safetensors", body, args.preset)
                                   if args.preset else DEFAULT_WEIGHTS)
        preset = read_header(ckpt).network.name
        with BagReader(tmp / "night") as reader:
            from disrt_ros.bags import GT_POSE_TOPIC, STRING, GroundTruth

            first = GroundTruth.from_json(next(reader.read(GT_POSE_TOPIC, STRING))[1].data)
            info = next(reader.read(DEPTH_INFO_TOPIC, "sensor_msgs/msg/CameraInfo"))[1]
        K = [float(v) for v in info.k]
        params = {"/**": {"ros__parameters": {
            "checkpoint": str(ckpt), "device": args.device, "cpu_threads": args.cpu_threads,
            "cameras": ["camera"], "camera": {
                "namespace": "/camera/camera",
                "T_cam_bed": [float(v) for v in first.T_cam_bed.reshape(-1)],
                "intrinsics": [K[0], K[4], K[2], K[5]]}}}}
        import yaml

        (tmp / "params.yaml").write_text(yaml.safe_dump(params))
        node = run(tmp / "node.log", "disrt_ros.node", "--ros-args", "-r",
                   f"__ns:={NODE_NS}", "--params-file", str(tmp / "params.yaml"))
        recorder = run(tmp / "record.log", "disrt_ros.tools.record", "--out",
                       str(tmp / "out"), f"{NODE_NS}/bed_monitor/pose_json", "/diagnostics")
        try:
            wait_for(node, tmp / "node.log", "bed monitor ready", 300)
            wait_for(recorder, tmp / "record.log", f"recording {NODE_NS}", 60)
            time.sleep(1.0)
            subprocess.run([sys.executable, "-m", "disrt_ros.tools.replay", str(tmp / "night"),
                            "--topics", DEPTH_INFO_TOPIC, DEPTH_TOPIC, "--quiet",
                            "--wait-for-subscribers", "60"], env=dict(os.environ), check=True)
            time.sleep(3.0)  # last answers and one more diagnostics report
        finally:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(60)
            node.send_signal(signal.SIGINT)
            node.wait(60)
        result = score(tmp / "night", tmp / "out", pve=False)
        diag = last_diagnostics(tmp / "out")
    print(format_score(result))
    print("node diagnostics:", json.dumps(diag, indent=1))

    bench = Result(f"bag_chain_{preset}_{args.device}", machine_info(), command_line())
    if args.note:
        bench.notes.append(args.note)
    share = result.matched / result.frames
    bench.rows.append(Row(f"frames answered at 30 Hz ({preset}, {args.device})",
                          round(100 * share, 1), "%", "100 % (no frame lost)", share == 1.0,
                          f"{result.matched} of {result.frames}; {result.missed} missed"))
    for key, unit in (("frames_received", "frames"), ("dropped_frames", "frames"),
                      ("latency_p50_ms", "ms"), ("latency_p99_ms", "ms")):
        if key in diag:
            bench.rows.append(Row(f"node {key.replace('_', ' ')}", float(diag[key]), unit))
    bench.notes.append(
        "Missed frames are frames the node replaced by a newer one while inferring (it keeps "
        "only the newest waiting frame, so latency stays bounded): at 30 Hz a node needing "
        "more than 33 ms per frame answers about 1000/latency frames per second.")
    print("wrote", save(bench))


if __name__ == "__main__":
    main()
