"""``disrt-demo``: a simulated night streamed through the bed monitor node, on the CPU.

What it does, in order:

1. **The night** (set-up, a few seconds): the synthetic generator (``disrt_core.sim``, via
   :class:`disrt_ros.tools.synth2bag.NightRenderer`) renders one bed seen by one fixed
   Kinect v2 from above (``--scene room --sensor S``: a whole bedroom seen by that camera,
   whose bed the node must find), with a sleeper who turns now and then; every frame gets fresh
   sensor noise. All frames are made before streaming starts, so that the node has the CPU
   to itself while it runs. The body model is the checkpoint's (Anny for the default
   weights), so ground truth and predictions are meshes of one model.
2. **The node**: ``disrt-bed-monitor`` (:class:`disrt_ros.node.BedMonitorNode`) as its own
   process, as deployed, with the checkpoint (default: the embedded default weights), the
   night's camera pose as ``camera.T_cam_bed`` and ``display_rate_hz`` 2 (overlay and mesh
   cloud twice a second keep the bag small) [choice]; its parameters and log are written
   to ``demo_out/node_params.yaml`` and ``node.log``.
3. **Streaming** (``--seconds``, default 30): this process plays the camera, publishing
   each frame's 16UC1 depth image and CameraInfo (realsense-ros topics and sensor-data
   QoS) and the ground truth beside it (``/ground_truth/pose`` and ``/joints``) at
   ``--rate`` Hz, and prints every two seconds the camera and node rates, the latency and
   what the node says. Meanwhile it records the node's outputs and the ground truth into a
   bag (:class:`disrt_ros.tools.record.Recorder`) and saves the node's ``~/overlay``
   images.
4. **Results** (:mod:`disrt_ros.demo_report`): ``report.json`` / ``report.md`` (MPJPE and
   PVE per cover level, posture accuracy, latency p50/p99, frames dropped, the
   repositioning monitor's events) and ``contact_sheet.png`` (depth + predicted +
   ground-truth skeleton over the node's pressure map of the frame), all from the bag.

**Compressed time** [choice]: the repositioning monitor counts in the frames' stamps, so
the node gets its default durations divided by ``TIME_SCALE`` (720: one demo second stands
for 12 minutes, the 120 min turn interval for 10 s) and the night's second still period
lasts ``LONG_STILL`` times the others, longer than that: a "turn due" alert fires.

Outputs in ``--out`` (default ``demo_out/``): ``outputs/`` (rosbag2, mcap), ``report.json``,
``report.md``, ``contact_sheet.png``, ``overlays/<frame>.png``, ``node_params.yaml``,
``node.log``. A second run replaces them.

**The night's plan** [choice] (:func:`plan_demo_night`): one sleeper who turns every 5 s
or so (periods of equal length ±25 %, so a 30 s demo shows six postures; the next posture
drawn as ``disrt-synth2bag`` draws them), and whose bedding changes at every turn, cycling
uncovered -> thin sheet -> blanket from a seed-chosen start, so that every cover level gets
about a third of the frames in the report. (``disrt-synth2bag`` plans longer, more
realistic nights: exponential still periods, one kind of cover per night.)

**ROS isolation**: the demo is self-contained. Before rclpy starts it sets
``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and a random ``ROS_DOMAIN_ID`` (1..101; pin it
with ``--domain-id`` to watch with RViz from another shell, see the README), for itself and
the node process, so that it never talks to other ROS graphs on the machine or network.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NODE_NAME = "bed_monitor"
NODE_PREFIX = f"/{NODE_NAME}/"
RECORDED_OUTPUTS = ("pose_json", "pose", "joints", "posture", "overlay", "mesh_cloud",
                    "occupancy", "alerts", "pressure")
DISPLAY_RATE_HZ = 2.0
STATUS_EVERY_S = 2.0
BEDDING = ("uncovered", "sheet", "blanket")  # cover levels 0, 1, 2
STILL_S = 5.0  # mean seconds between turns in the demo's night
# Compressed time [choice]: the repositioning monitor runs on the frames' stamps, so the demo
# gives the node its default durations divided by TIME_SCALE: one demo second stands for
# 12 minutes, a 30 s night for 6 hours, the 120 min turn interval for 10 s.
TIME_SCALE = 720.0
LONG_STILL = 4.0  # the second still period is this many times the others: a turn is missed
MONITOR_HOLD_S = 0.5  # the monitor's hysteresis in demo seconds (6 "minutes")
NODE_START_TIMEOUT_S = 180.0  # a first run may build the body model's cache


class DemoError(RuntimeError):
    """The demo cannot run; the message says why and what to do."""


def set_ros_environment(domain_id: int | None = None) -> int:
    """Localhost-only discovery and the demo's own ROS domain (random 1..101 unless given),
    in ``os.environ``: call before rclpy starts; child processes inherit it."""
    if domain_id is None:
        domain_id = random.SystemRandom().randint(1, 101)
    if not 0 <= domain_id <= 232:
        raise DemoError(f"--domain-id must be 0..232, got {domain_id}")
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ["ROS_DOMAIN_ID"] = str(domain_id)
    os.environ.pop("ROS_LOCALHOST_ONLY", None)  # deprecated in Jazzy; the range above rules
    return domain_id


def resolve_checkpoint(path: Path | None) -> Path:
    """The checkpoint to run: ``path`` or the embedded default weights; a clear error if
    missing."""
    from disrt_ros.params import DEFAULT_CHECKPOINT

    if path is not None:
        if not path.is_file():
            raise DemoError(f"--checkpoint {path} does not exist; give a .safetensors file "
                            "written by training/train.py")
        return path
    if not DEFAULT_CHECKPOINT.is_file():
        raise DemoError(
            f"the default weights {DEFAULT_CHECKPOINT} are missing. Train them on a GPU "
            "(about 15 minutes): `python training/train.py --config config/train_default.yaml`"
            f", then copy runs/default/model.safetensors to {DEFAULT_CHECKPOINT}; or run the "
            "demo on any checkpoint with --checkpoint PATH (`python training/train.py "
            "--smoke --out runs/smoke` makes a tiny one on the CPU in a minute, with "
            "meaningless accuracy)")
    return DEFAULT_CHECKPOINT


# ------------------------------------------------------------------------------ night
@dataclass
class Night:
    """The night's frames (raw uint16 mm, made before streaming) and their ground truth."""

    periods: list  # synth2bag.Period
    scenes: list[dict]  # per period: NightRenderer.scene (joints, params, posture, ...)
    period_of: np.ndarray  # [N] period index of each frame
    frames: list[np.ndarray]  # N x [H,W] uint16
    K: np.ndarray  # [3,3]
    T_cam_bed: np.ndarray  # [4,4]
    bed_mm: float
    model_id: str
    sensor: str


def plan_demo_night(n_frames: int, rate: float, seed: int) -> list:
    """The demo's still periods (module docstring), as ``synth2bag.Period`` s: about
    ``STILL_S`` seconds each (cuts ±25 % of a period; at least three in a night of 3 s or
    more), the second ``LONG_STILL`` times as long (in a 30 s night longer than the
    compressed turn interval, so that the monitor's turn alert fires), a turn to another
    posture at every cut (drawn with synth2bag's posture weights), the bedding cycling
    uncovered -> sheet -> blanket."""
    from disrt_ros.tools.synth2bag import POSTURE_WEIGHTS, Period

    rng = np.random.default_rng(seed)
    seconds = n_frames / rate  # short nights still show up to three periods of >= 1 s
    count = max(1, min(n_frames, max(round(seconds / STILL_S), min(3, int(seconds)))))
    weights_t = np.ones(count)
    if count >= 3:  # the second period lasts longer than the turn interval: an alert fires
        weights_t[1] = LONG_STILL
    bounds = np.concatenate([[0.0], np.cumsum(weights_t)]) / weights_t.sum() * n_frames
    length = n_frames / weights_t.sum()
    cuts = [round(bounds[k] + length * rng.uniform(-0.25, 0.25)) for k in range(1, count)]
    edges = [0, *cuts, n_frames]
    names, weights = list(POSTURE_WEIGHTS), np.array(list(POSTURE_WEIGHTS.values()))
    posture, first = "supine", int(rng.integers(3))
    periods = []
    for k in range(count):
        if k:
            others = weights * np.array([name != posture for name in names])
            posture = str(rng.choice(names, p=others / others.sum()))
        periods.append(Period(edges[k], edges[k + 1], 0, posture, (first + k) % 3))
    return periods


def make_night(renderer, periods: list) -> Night:
    """Render each period's scene and its noisy frames."""
    from disrt_ros.tools.synth2bag import NOISE_BATCH

    scenes, frames, period_of = [], [], []
    for k, period in enumerate(periods):
        scene = renderer.scene(period.person, period.posture, period.cover)
        scenes.append(scene)
        for first in range(period.start, period.stop, NOISE_BATCH):
            count = min(NOISE_BATCH, period.stop - first)
            frames.extend(renderer.noisy(scene["depth"], count))
            period_of += [k] * count
    T = scenes[0]["T_cam_bed"][0].double().cpu().numpy()
    return Night(periods, scenes, np.asarray(period_of), frames,
                 renderer.K[0].double().cpu().numpy(), T, float(renderer.gen.config.bed_mm),
                 renderer.gen.body.model_id, renderer.sensor.name)


# ------------------------------------------------------------------------- node process
def node_parameters(checkpoint: Path, device: str, seed: int, T_cam_bed: np.ndarray | None,
                    bed_mm: float) -> dict:
    """The node's parameters (a ``--params-file`` YAML dict): the camera pose of the night
    (bed frame -> optical frame, [4,4]) and the bed distance the night was rendered for;
    without a pose (``--scene room``) the node finds the bed itself (``bed_region: auto``,
    the head end from the person lying there), as a user's node in a bedroom does."""
    camera = {"namespace": "/camera/camera", "bed_region": "auto"} if T_cam_bed is None else {
        "namespace": "/camera/camera", "bed_region": "pose",
        "T_cam_bed": [float(v) for v in np.asarray(T_cam_bed).reshape(-1)]}
    return {"/**": {"ros__parameters": {
        "checkpoint": str(checkpoint.resolve()), "device": device, "seed": seed,
        "bed_distance_mm": float(bed_mm), "display_rate_hz": DISPLAY_RATE_HZ,
        **monitor_parameters(), "cameras": ["camera"], "camera": camera}}}


def monitor_parameters() -> dict:
    """The repositioning monitor's durations in compressed time (``TIME_SCALE``): the node's
    defaults (120 min turn interval, 60 min above the pressure threshold) divided by it."""
    return {"turn_interval_min": 120.0 / TIME_SCALE, "pressure_alert_min": 60.0 / TIME_SCALE,
            "monitor_hold_s": MONITOR_HOLD_S}


class NodeProcess:
    """``disrt-bed-monitor`` as a child process, its output in a log file."""

    def __init__(self, params_file: Path, log_file: Path):
        self.log_file = log_file
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with log_file.open("w") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "disrt_ros.node", "--ros-args", "-r",
                 f"__node:={NODE_NAME}", "--params-file", str(params_file)],
                env=env, stdout=log, stderr=subprocess.STDOUT)

    def log_tail(self, lines: int = 15) -> str:
        text = self.log_file.read_text(errors="replace").strip().splitlines()
        return "\n".join(text[-lines:])

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise DemoError(f"the bed monitor node stopped (exit code {self.popen.returncode})"
                            f"; the end of {self.log_file}:\n{self.log_tail()}")

    def wait_ready(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if "bed monitor ready" in self.log_file.read_text(errors="replace"):
                return
            self.check_alive()
            time.sleep(0.1)
        raise DemoError(f"the bed monitor node was not ready after {timeout:.0f} s; see "
                        f"{self.log_file}")

    def stop(self) -> int | None:
        """Ctrl-C the node (clean shutdown), harder if it does not end."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode


# ------------------------------------------------------------------------ streaming
def _run(args, checkpoint: Path, domain_id: int) -> int:
    import torch
    import yaml

    from disrt_core.checkpoint import read_header
    from disrt_core.infer import load_body_for
    from disrt_core.sim import SimConfig
    from disrt_ros import demo_report
    from disrt_ros.bags import BagError
    from disrt_ros.demo_live import Live
    from disrt_ros.params import ParameterError, check_device
    from disrt_ros.tools.synth2bag import NightRenderer

    try:
        device = check_device(args.device)
        header = read_header(checkpoint)
    except (ParameterError, ValueError) as error:
        raise DemoError(str(error)) from error
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            body = load_body_for(header.model_id, device=device)
        except (FileNotFoundError, ValueError) as error:
            raise DemoError(f"checkpoint {checkpoint} needs body model {header.model_id}: "
                            f"{error}") from error
    try:
        config = SimConfig(scene=args.scene, sensor=args.sensor)
    except ValueError as error:
        raise DemoError(str(error)) from error
    renderer = NightRenderer(body, config, device, seed=args.seed)
    if not renderer.in_view:
        raise DemoError(f"seed {args.seed}: the {args.sensor} camera of this room does not see "
                        "the whole bed (the node would refuse every frame); try another --seed")
    n_frames = max(1, round(args.seconds * args.rate))
    periods = plan_demo_night(n_frames, args.rate, args.seed)
    out: Path = args.out
    (out / "overlays").mkdir(parents=True, exist_ok=True)
    for old in (out / "overlays").glob("*.png"):
        old.unlink()
    pose = renderer.T[0].double().cpu().numpy() if args.scene == "bed" else None
    params = node_parameters(checkpoint, device, args.seed, pose, renderer.gen.config.bed_mm)
    (out / "node_params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    print(f"[demo] ROS domain {domain_id} (localhost only); starting the bed monitor node "
          f"on {device} with {checkpoint}")
    node = NodeProcess(out / "node_params.yaml", out / "node.log")
    try:
        night = make_night(renderer, periods)
        print(f"[demo] night of {n_frames} frames ({n_frames / args.rate:.0f} s at "
              f"{args.rate:g} Hz, {night.sensor}, {night.model_id}) made in "
              f"{time.perf_counter() - started:.1f} s: " + ", ".join(
                  f"{p.start / args.rate:.0f} s {p.posture}/{BEDDING[p.cover]}" for p in periods))
        torch.set_num_threads(1)  # the cores are the node's now
        node.wait_ready(NODE_START_TIMEOUT_S)
        print(f"[demo] node ready after {time.perf_counter() - started:.1f} s; streaming")
        live = Live(night, args.rate, out, NODE_PREFIX, RECORDED_OUTPUTS, node.check_alive)
        streaming_s, interrupted = live.run(out / "outputs", STATUS_EVERY_S)
    finally:
        code = node.stop()
    if code not in (0, None, -signal.SIGINT):
        print(f"[demo] warning: the node exited with code {code}; see {node.log_file}",
              file=sys.stderr)
    torch.set_num_threads(os.cpu_count() or 1)
    settings = {
        "seconds": args.seconds, "rate_hz": args.rate, "seed": args.seed, "device": device,
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest()[:16],
        "model_id": header.model_id, "network": header.network.to_dict().get("name"),
        "ddim_steps": 5, "hypotheses": 1, "sensor": night.sensor, "ros_domain_id": domain_id,
        "interrupted": interrupted, "time_scale": TIME_SCALE,
        "night": [{"start_s": p.start / args.rate, "stop_s": p.stop / args.rate,
                   "posture": p.posture, "cover": ("uncover", "cover1", "cover2")[p.cover]}
                  for p in periods]}
    try:
        report = demo_report.summarize(out / "outputs", NODE_PREFIX + "pose_json",
                                       streaming_s=streaming_s, settings=settings)
    except BagError as error:  # nothing answered: say why instead of a traceback
        print(f"[demo] nothing to score: {error}. The node published no pose for any frame; "
              f"its log ({node.log_file}) and ~/occupancy in {out / 'outputs'} say why (an "
              "untrained checkpoint finds nobody in bed).", file=sys.stderr)
        return 1
    demo_report.write_report(report, out)
    sheet = demo_report.write_contact_sheet(out / "contact_sheet.png", night, args.rate,
                                            out / "outputs", NODE_PREFIX + "pose_json")
    print(demo_report.report_markdown(report))
    print(f"[demo] wrote {out}/: outputs/ (bag), report.json, report.md, {sheet.name}, "
          f"overlays/ ({len(list((out / 'overlays').glob('*.png')))} images), node.log "
          f"({time.perf_counter() - started:.0f} s in all)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="disrt-demo", description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        epilog="Outputs go to --out (default demo_out/); see the module docstring of "
               "disrt_ros.demo for what each file holds.")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the night "
                        "streamed (default 30)")
    parser.add_argument("--rate", type=float, default=15.0, help="camera frames per second "
                        "(default 15)")
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder")
    parser.add_argument("--device", default="cpu", help="the node's device: cpu (default), "
                        "cuda, cuda:N or auto")
    parser.add_argument("--checkpoint", type=Path, default=None, help="model to run "
                        "(default: the embedded default weights)")
    parser.add_argument("--seed", type=int, default=0, help="night and sampler seed")
    parser.add_argument("--scene", default="bed", choices=("bed", "room"), help="bed (default): "
                        "the mattress fills the view and the node is given the camera pose; "
                        "room: a whole bedroom, and the node finds the bed itself")
    parser.add_argument("--sensor", default="kinect2", help="the camera (default kinect2; "
                        "e.g. d455_640x360, d435_640x480; see disrt-synth2bag --help)")
    parser.add_argument("--domain-id", type=int, default=None, help="ROS domain id "
                        "(default: a random one, so the demo is alone on its graph)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.seconds > 0 or not args.rate > 0:
        print("disrt-demo: error: --seconds and --rate must be > 0", file=sys.stderr)
        return 2

    def on_term(signum, frame):  # `kill` ends the demo as Ctrl-C does: node stopped too
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        domain_id = set_ros_environment(args.domain_id)
        checkpoint = resolve_checkpoint(args.checkpoint)
        return _run(args, checkpoint, domain_id)
    except DemoError as error:
        print(f"disrt-demo: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("disrt-demo: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    raise SystemExit(main())
