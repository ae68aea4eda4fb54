"""End-to-end speed of the bed monitor node: depth message published -> joint markers
received, in two processes (a camera player and the node), as in a deployment.

    python benchmarks/bench_node.py [--preset small|paper_native|paper] [--device cpu|cuda]
        [--checkpoint PATH] [--fake-ms MS] [--cameras N] [--rate HZ] [--seconds S]
        [--cuda-graphs] [--compile MODE] [--all-outputs] [--body anny|smpl-fixture]
        [--gil-switch-ms MS] [--tag NAME]

The node runs the real Estimator: from ``--checkpoint``, else a randomly initialised network
of ``--preset`` with the default body model or ``--body smpl-fixture`` (SMPL's sizes, the
paper's body model; same speed as trained weights, laid out as ``from_checkpoint`` does);
``--fake-ms``
replaces it by a stand-in that takes that long (node overhead alone). Frames are 424×512
16UC1 (SLP's Kinect), the camera 2 m over the bed.

Phases (each after the node answered its first frames):
1. one camera at ``--rate`` Hz: latency p50 / p99, and the output rate, which is the most
   the node sustains when it is below the camera rate (newer frames replace waiting ones);
2. one camera flooding at 100 Hz: output rate and latency under overload;
3. ``--cameras`` cameras at ``--rate`` Hz each (frames batched): slowest camera's rate.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
# Every rclpy process: localhost discovery, its own domain (inherited by the node process).
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 101)))
os.environ.pop("ROS_LOCALHOST_ONLY", None)

import numpy as np  # noqa: E402

# SLP's Kinect depth frame (portrait, SPEC §7.2): 434 KB per 16UC1 frame, which fits Fast
# DDS's default 512 KB shared-memory segment (bigger frames go over UDP fragments, where a
# best-effort stream loses many under load).
WIDTH, HEIGHT = 424, 512
K = np.array([[367.8, 0.0, 208.1], [0.0, 367.8, 259.7], [0.0, 0.0, 1.0]])
CAMERA_HEIGHT_M = 2.0
FLOOD_HZ = 100.0


def depth_frame() -> np.ndarray:
    """The bed 2 m below the camera with a 25 cm high body-sized box on it (mm)."""
    depth = np.full((HEIGHT, WIDTH), 2000, np.uint16)
    depth[100:420, 150:270] = 1750
    return depth


# ------------------------------------------------------------------------------ node side
def build_estimator(args, checkpoint_layout: bool = True):
    """The node's estimator (module docstring); ``checkpoint_layout`` False leaves a random
    network as an in-memory one (profile_node.py's comparison)."""
    import torch

    if args.fake_ms is not None:
        from test.ros.fakes import FakeEstimator

        return FakeEstimator(delay_s=args.fake_ms / 1000.0, device=args.device)
    from disrt_core.infer import Estimator

    options = {"cuda_graphs": True} if args.cuda_graphs else {}
    if args.compile:
        options["compile"] = args.compile
    if args.checkpoint:
        return Estimator.from_checkpoint(args.checkpoint, device=args.device, **options)
    from common import load_body

    from disrt_core.model import Denoiser, preset

    body = load_body(args.body, args.device)
    torch.manual_seed(0)
    net = Denoiser(preset(args.preset), body.param_dim).eval()
    # laid out as from_checkpoint lays out the node's weights (channels-last, convolution
    # and Linear weights stored in the compute precision); without it every forward casts
    # each weight again (predict 8.66 against 6.35 ms, paper, H100, 2026-12-06)
    return Estimator.from_model(net, body, device=args.device, channels_last=checkpoint_layout,
                                cast_weights=checkpoint_layout, **options)


def serve(args) -> None:
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.parameter import Parameter

    from disrt_core.threads import cpu_threads
    from disrt_ros.node import BedMonitorNode

    with cpu_threads("cpu", 1):  # torch's CPU pool is the inference thread's (node.py)
        estimator = build_estimator(args)
    names = [f"cam{i}" for i in range(args.cameras)]
    # occupancy_check off: a random network's body does not lie where the box is, so the
    # node would judge the bed empty and clear the markers the probe times (since the
    # presence gate); the estimator still computes the presence probability, in its graph
    params = {"cameras": names, "max_batch": max(1, args.cameras), "diagnostics_period_s": 0.5,
              "cpu_threads": args.threads, "occupancy_check": False,
              "input_qos": "sensor_data"}  # the probe publishes best effort, as when measured
    for name in names:
        params[f"{name}.camera_height_m"] = CAMERA_HEIGHT_M
        params[f"{name}.bed_region"] = "pose"
    if args.gil_switch_ms:
        sys.setswitchinterval(args.gil_switch_ms / 1000.0)
    rclpy.init()
    node = BedMonitorNode(estimator=estimator, parameter_overrides=[
        Parameter(k, value=v) for k, v in params.items()])
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


# ---------------------------------------------------------------------------- player side
class Probe:
    """Publishes depth + CameraInfo per camera; times the joint markers coming back."""

    def __init__(self, cameras: int, all_outputs: bool):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2
        from visualization_msgs.msg import Marker, MarkerArray

        from disrt_ros.conversions import array_to_image

        rclpy.init()
        self.node = Node("bench_player")
        self.names = [f"cam{i}" for i in range(cameras)]
        prefix = "/bed_monitor/" if cameras == 1 else "/bed_monitor/{}/"
        self.depth_pubs = [self.node.create_publisher(Image, f"/{n}/depth/image_rect_raw",
                                                      qos_profile_sensor_data)
                           for n in self.names]
        self.info_pubs = [self.node.create_publisher(CameraInfo, f"/{n}/depth/camera_info",
                                                     qos_profile_sensor_data)
                          for n in self.names]
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.sent: dict[tuple[int, int], float] = {}
        self.latency: dict[int, list[tuple[float, float]]] = defaultdict(list)  # (t, lat)
        self.diagnostics: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        self.subs = []
        for i, name in enumerate(self.names):
            out = prefix.format(name)
            self.subs.append(self.node.create_subscription(
                MarkerArray, out + "joints", lambda m, i=i: self._on_joints(i, m), reliable))
            if all_outputs:
                for topic, kind in (("mesh", Marker), ("mesh_cloud", PointCloud2),
                                    ("overlay", Image)):
                    self.subs.append(self.node.create_subscription(
                        kind, out + topic, lambda m: None, reliable))
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        image = array_to_image(depth_frame(), "16UC1")
        self.image, self.info = image, CameraInfo(height=HEIGHT, width=WIDTH)
        self.info.k = K.reshape(-1).tolist()
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        threading.Thread(target=self.executor.spin, daemon=True).start()

    def _on_joints(self, camera: int, msg) -> None:
        now = time.monotonic()
        stamp = msg.markers[0].header.stamp
        with self._lock:
            sent = self.sent.pop((camera, stamp.sec * 1000 + stamp.nanosec // 1_000_000), None)
            if sent is not None:
                self.latency[camera].append((now, now - sent))

    def _on_diag(self, msg) -> None:
        for status in msg.status:
            name = "inference" if status.name.endswith(": inference") else status.name.split()[-1]
            self.diagnostics[name] = {kv.key: kv.value for kv in status.values}

    def ready(self) -> bool:
        """Connected, and the node has published diagnostics: it starts its diagnostics
        timer after the warm-up (which compiles, with ``--compile``, for minutes)."""
        return all(p.get_subscription_count() for p in self.depth_pubs) and all(
            s.get_publisher_count() for s in self.subs) and "inference" in self.diagnostics

    def publish(self, camera: int, index: int) -> None:
        self.image.header.frame_id = self.info.header.frame_id = f"{self.names[camera]}_depth"
        sec, ms = divmod(index, 1000)
        for h in (self.image.header, self.info.header):
            h.stamp.sec, h.stamp.nanosec = sec, ms * 1_000_000
        with self._lock:
            self.sent[(camera, index)] = time.monotonic()
        self.info_pubs[camera].publish(self.info)
        self.depth_pubs[camera].publish(self.image)

    def run(self, cameras: int, rate_hz: float, seconds: float, first_index: int) -> dict:
        """Publish ``cameras`` streams at ``rate_hz`` for ``seconds``; per-camera results."""
        with self._lock:
            self.latency.clear()
            self.sent.clear()
        # Cameras are not synchronised: their frames are spread over the frame period (one
        # process publishing several 434 KB frames at once also overflows Fast DDS's
        # shared-memory segment, which real cameras, each its own process, do not share).
        start, index, slots = time.monotonic(), first_index, 0
        while (now := time.monotonic()) - start < seconds:
            for camera in range(cameras):
                self.publish(camera, index)
                slots += 1
                time.sleep(max(0.0, start + slots / (rate_hz * cameras) - time.monotonic()))
            index += 1
        time.sleep(1.0)  # let the last results arrive
        with self._lock:
            out = {}
            for camera in range(cameras):
                lat = [v for t, v in self.latency[camera] if t <= now + 1.0]
                out[camera] = {"received": len(lat), "sent": index - first_index,
                               "rate": len(lat) / seconds,
                               "p50": float(np.percentile(lat, 50)) if lat else float("nan"),
                               "p99": float(np.percentile(lat, 99)) if lat else float("nan")}
        return out, index


def dropped_counts(diagnostics: dict, cameras: list[str]) -> dict[str, int]:
    """Per camera, the frames the node dropped so far (replaced in the camera's newest-frame
    slot by a newer one before inference took them)."""
    return {n: int(diagnostics[n].get("dropped_frames", 0)) for n in cameras
            if n in diagnostics}


def batch_counts(diagnostics: dict, cameras: list[str]) -> tuple[int, int]:
    """(inference batches, frames published over all cameras) in the node's diagnostics."""
    published = sum(int(d.get("frames_published", 0)) for n, d in diagnostics.items()
                    if n in cameras)
    return int(diagnostics.get("inference", {}).get("batches", 0)), published


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(args) -> None:
    import torch
    from common import Result, Row, command_line, machine_info, save

    env = dict(os.environ)
    child = subprocess.Popen([sys.executable, __file__, "--serve", *sys.argv[1:]], env=env,
                             cwd=ROOT)
    probe = Probe(args.cameras, args.all_outputs)
    try:
        deadline = time.monotonic() + 600
        while not probe.ready():
            if child.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the node process did not come up (exit {child.poll()})")
            time.sleep(0.2)
        _, index = probe.run(1, args.rate, 3.0, 0)  # warm-up
        cpu0 = cpu_seconds(child.pid)
        steady, index = probe.run(1, args.rate, args.seconds, index)
        cpu_per_frame = (cpu_seconds(child.pid) - cpu0) / max(1, steady[0]["received"])
        flood, index = probe.run(1, FLOOD_HZ, args.seconds, index)
        before = batch_counts(probe.diagnostics, probe.names)  # up to 0.5 s old
        dropped0 = dropped_counts(probe.diagnostics, probe.names)
        multi, index = probe.run(args.cameras, args.rate, args.seconds, index)
        after = batch_counts(probe.diagnostics, probe.names)
        dropped = {n: d - dropped0.get(n, 0)
                   for n, d in dropped_counts(probe.diagnostics, probe.names).items()}
        internal = dict(probe.diagnostics.get("inference", {}))
        # Share of each camera's frames that reached the node (cam0 is in every phase).
        reach = {n: int(probe.diagnostics[n]["frames_received"]) / (
                 index if n == "cam0" else multi[i]["sent"])
                 for i, n in enumerate(probe.names) if n in probe.diagnostics}
    finally:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()

    info = machine_info()
    gpu = args.device.startswith("cuda")
    what = (f"fake {args.fake_ms:g} ms" if args.fake_ms is not None else
            "checkpoint" if args.checkpoint else args.preset)
    options = "".join(("_smplfix" if args.body == "smpl-fixture" else "",
                       "_graphs" if args.cuda_graphs else "",
                       "_compiled" if args.compile else "",
                       f"_t{args.threads}" if args.threads else "",
                       f"_gil{args.gil_switch_ms:g}ms" if args.gil_switch_ms else "",
                       f"_{args.tag}" if args.tag else ""))
    result = Result(f"node_{what.replace(' ', '')}_{args.device.split(':')[0]}{options}", info,
                    command_line())
    s, f = steady[0], flood[0]
    lat_goal = "≤ 8 ms p99 (GPU, 30 Hz, 5 steps)" if gpu else ""
    real_small = args.preset == "small" and args.fake_ms is None and not args.checkpoint
    rate_goal = "≥ 10 Hz (2-core CPU, small)" if real_small and not gpu else ""
    result.rows += [
        Row(f"latency p50, 1 camera at {args.rate:g} Hz", round(1e3 * s["p50"], 2), "ms"),
        Row(f"latency p99, 1 camera at {args.rate:g} Hz", round(1e3 * s["p99"], 2), "ms",
            lat_goal, (s["p99"] <= 0.008) if gpu else None),
        Row(f"sustained output rate, 1 camera at {args.rate:g} Hz", round(s["rate"], 2), "Hz",
            rate_goal, (s["rate"] >= 10.0) if rate_goal else None),
        Row("node CPU time per published frame (all threads)", round(1e3 * cpu_per_frame, 2),
            "ms", note="includes receiving the frames it drops"),
        Row(f"output rate, 1 camera flooding at {FLOOD_HZ:g} Hz", round(f["rate"], 2), "Hz",
            note="receiving the flood costs CPU too"),
        Row(f"latency p99 under the {FLOOD_HZ:g} Hz flood", round(1e3 * f["p99"], 2), "ms"),
    ]
    rates = [m["rate"] for m in multi.values()]
    if args.cameras > 1:
        result.rows += [
            Row(f"slowest camera's rate, {args.cameras} cameras at {args.rate:g} Hz",
                round(min(rates), 2), "Hz", "every camera at 30 Hz (8 cameras, GPU)" if gpu
                else "", (min(rates) >= 0.95 * 30) if gpu and args.cameras >= 8 else None),
            Row(f"latency p99, {args.cameras} cameras", round(1e3 * max(
                m["p99"] for m in multi.values()), 2), "ms"),
            # the player's own rate: a slowest-camera rate below it is the node's doing
            Row(f"frames sent per camera, {args.cameras} cameras (slowest)", round(min(
                m["sent"] for m in multi.values()) / args.seconds, 2), "Hz",
                note="the camera player's rate; below --rate the player is the limit"),
        ]
        if dropped:
            result.rows.append(Row(
                f"frames dropped by the node, {args.cameras} cameras (worst camera)",
                max(dropped.values()), "frames", note="replaced in the newest-frame slot "
                "before inference took them (diagnostics, up to 0.5 s old)"))
    if reach:
        result.rows.append(Row("frames that reached the node (worst camera)", round(
            100 * min(reach.values()), 1), "%", note="the rest was lost in transport"))
    for key in ("latency_p50_ms", "latency_p99_ms"):
        if key in internal:
            result.rows.append(Row(f"node-internal {key.replace('_ms', '')} (received -> "
                                   "published, last 500 frames)", float(internal[key]), "ms"))
    for key in sorted(k for k in internal if k.startswith("stage_")):
        stage = key.removeprefix("stage_").removesuffix("_p50_ms")
        result.rows.append(Row(f"node-internal stage {stage}, p50 per batch (last 200)",
                               round(float(internal[key]), 2), "ms"))
    if after[0] > before[0]:
        cameras = f"{args.cameras} camera{'s' * (args.cameras > 1)}"
        result.rows.append(Row(f"mean frames per batch, {cameras}", round(
            (after[1] - before[1]) / (after[0] - before[0]), 2), "frames",
            note="from the node's diagnostics, published every 0.5 s"))
    result.notes.append(
        f"Estimator: {what} on {args.device}"
        f"{'' if args.fake_ms is not None else f', body model {args.body}'}, 5 DDIM steps, "
        f"1 hypothesis; frames {WIDTH}×{HEIGHT} "
        f"16UC1; node and camera player in separate processes; subscribers: joints"
        f"{' + mesh, mesh_cloud, overlay' if args.all_outputs else ' only'}; torch threads in "
        f"the node process: {args.threads or torch.get_num_threads()}.")
    if not gpu:
        result.notes.append("CPU figures were taken while other jobs shared the 2 cores; the "
                            "lead re-runs them on a quiet machine.")
    path = save(result)
    for row in result.rows:
        print(f"{row.metric:70s} {row.value:10.2f} {row.unit}")
    print("wrote", path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--fake-ms", type=float, default=None)
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--cuda-graphs", action="store_true")
    parser.add_argument("--compile", default=None)
    parser.add_argument("--body", choices=("anny", "smpl-fixture"), default="anny",
                        help="body model of the random-weight estimator: Anny (the default "
                             "model's) or a SMPL-sized fixture (the paper's body model's "
                             "sizes; SMPL itself needs licensed files)")
    parser.add_argument("--all-outputs", action="store_true")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads in the node process (0 = torch's default)")
    parser.add_argument("--gil-switch-ms", type=float, default=0.0,
                        help="the node process's GIL switch interval (0 = Python's 5 ms): "
                             "its executor, inference and display threads share the GIL, and "
                             "one that wants it back waits up to this long")
    parser.add_argument("--tag", default="", help="suffix of the result's name (runs with "
                        "other settings than the name tells, e.g. more cameras)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    serve(args) if args.serve else measure(args)


if __name__ == "__main__":
    main()
