"""``disrt-bed-monitor``: live in-bed body mesh recovery from overhead depth cameras.

Inputs, per camera named in the ``cameras`` parameter (see :mod:`disrt_ros.params`): a depth
``sensor_msgs/Image`` (16UC1 / mono16 in mm or 32FC1 in m), or with ``input_transport:
compressedDepth`` image_transport's ``sensor_msgs/CompressedImage`` on
``<depth_topic>/compressedDepth``, and its ``CameraInfo``, both with the QoS of
``input_qos``: reliable, keep last 5 by default, as realsense-ros, Azure Kinect and Orbbec
drivers publish them (``sensor_data`` for best-effort publishers). A publisher whose QoS
the subscription cannot match is reported (incompatible-QoS event -> /diagnostics WARN).

Outputs, under ``~/`` with one camera and ``~/<camera>/`` with several, stamped with the
input image's header and in its frame: ``occupancy`` (stamped DiagnosticArray: in_bed |
empty | sitting_on_edge) + ``occupancy_text``, the repositioning monitor's events
(``alerts`` + ``alerts_text``, :mod:`disrt_ros.monitoring`) and, when someone lies in bed,
``joints``, ``mesh``, ``mesh_cloud``, ``pose``, ``pose_json``, ``posture`` (stamped) +
``posture_text``, and with ``pressure`` on ``pressure`` (32FC1 kPa) + ``pressure_overlay``;
``overlay``; and ``/diagnostics`` (types, contents and QoS in :mod:`disrt_ros.topics`; what
goes out when in :mod:`disrt_ros.outputs`; levels in :mod:`disrt_ros.diagnostics`). A
message nobody subscribes to is not built (the state topics, a few bytes, are always sent
so that they stay latched). An empty bed, or a frame refused for nonsense depth or no bed,
publishes no body and clears the markers.

Each frame: the executor thread only counts it, checks its frame id and the rate limit, and
puts it in its camera's newest-frame slot; an inference thread decodes and checks the
waiting frames (encoding, size, intrinsics, valid pixels) and runs them through
:class:`disrt_ros.pipeline.Pipeline` as one batch (:mod:`disrt_ros.worker`); mesh, cloud and
overlay are built on a third thread, at most ``display_rate_hz`` per camera. Bad input is
logged once, counted in /diagnostics, and the node keeps serving. SIGINT / SIGTERM end the
process within 3 s at any moment (:mod:`disrt_ros.process`).
"""

from __future__ import annotations

# First, before the seconds of imports below: a signal during them ends the console script
# quietly (disrt_ros.process).
from disrt_ros import process  # isort: skip

import argparse
import sys
import threading
import time
from typing import NoReturn

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.qos import qos_policy_name_from_kind
from rclpy.utilities import remove_ros_args
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from disrt_core.geometry import lens
from disrt_core.geometry.bedframe import NET_SHAPE
from disrt_core.threads import cpu_threads, inference_threads
from disrt_ros import diagnostics as diag
from disrt_ros.conversions import FrameResult, camera_info_to_K
from disrt_ros.monitoring import Monitoring
from disrt_ros.outputs import CameraOutputs
from disrt_ros.params import DYNAMIC, MonitorConfig, ParameterError, declare_and_load
from disrt_ros.pipeline import CameraState, Failure, Pipeline
from disrt_ros.topics import subscribe_inputs
from disrt_ros.worker import BatchWorker, Job


def load_estimator(config: MonitorConfig):
    """The Estimator of ``config.checkpoint`` on ``config.device``; the speed options are
    passed only when they differ from the Estimator's defaults."""
    try:
        from disrt_core.infer import Estimator
    except ImportError as error:
        raise ParameterError("disrt_core.infer.Estimator is missing from this installation; "
                             "reinstall the package (pip install -e .)") from error
    options = {}
    if config.precision != "auto":
        options["precision"] = config.precision
    if config.compile:
        options["compile"] = config.compile
        if len(config.cameras) * config.hypotheses == 1:
            # one image a batch: the plain GroupNorm is faster (paper network, H200, graphs:
            # p50 5.00 against 5.32 ms, estimator_gn_off_b1 / _on_b1); sums win on batches
            options["stats_group_norm"] = False
    if config.cuda_graphs:
        options["cuda_graphs"] = True
    try:
        return Estimator.from_checkpoint(
            config.checkpoint, device=config.device, steps=config.ddim_steps,
            hypotheses=config.hypotheses, eta=config.eta, seed=config.seed,
            model_dir=config.body_model_dir or None, **options)
    except (ValueError, FileNotFoundError) as error:  # wrong body model, missing SMPL files
        raise ParameterError(f"parameter 'checkpoint' ({config.checkpoint}): {error}") from error


class BedMonitorNode(Node):
    """The bed monitor (see the module docstring). ``estimator`` overrides the checkpoint
    (tests, benchmarks); other keyword arguments go to ``rclpy.node.Node``."""

    def __init__(self, *, estimator=None, node_name: str = "bed_monitor", **node_kwargs):
        super().__init__(node_name, **node_kwargs)
        self.config = declare_and_load(self, check_files=estimator is None)
        # torch's CPU threads belong to the inference thread alone: libgomp stops its threads
        # spinning between parallel regions once a process holds more OpenMP threads than
        # cores, so a second thread pool made here while loading made every inference ~2.5x
        # slower on 2 cores (117 vs 45 ms per 5-step `small` image). This thread loads on
        # one CPU thread; the inference thread sets the count and warms up (_init_inference).
        self._threads = self.config.cpu_threads or inference_threads(self.config.device)
        if estimator is None:
            with cpu_threads("cpu", 1):
                self.estimator = load_estimator(self.config)
        else:  # the parameters rule the sampler of an injected one too
            self.estimator = estimator
            estimator.set_sampling(steps=self.config.ddim_steps,
                                   hypotheses=self.config.hypotheses, eta=self.config.eta)
        if hasattr(self.estimator, "set_pressure"):  # the pressure under the body
            self.estimator.set_pressure(self.config.pressure, method=self.config.pressure_method)
        self.monitoring = Monitoring(self.config, [c.name for c in self.config.cameras],
                                     self._log)
        body = self.estimator.body_model
        self._joint_names = list(body.joint_names)
        self._faces = body.faces.detach().cpu().numpy().astype(np.int64)
        self.problems = diag.ProblemLog(self._log)
        self._sampling = {"steps": self.config.ddim_steps,
                          "hypotheses": self.config.hypotheses, "eta": self.config.eta}
        self._sampling_pending: dict = {}
        self._lock = threading.Lock()
        self._engine_failed = False
        self.cameras = {c.name: CameraState(c) for c in self.config.cameras}
        self.inputs = {name: diag.InputStats() for name in self.cameras}
        prefix = "~/" if len(self.cameras) == 1 else None
        for name, cam in self.cameras.items():
            cam.outputs = CameraOutputs(self, prefix or f"~/{name}/", name, self._joint_names,
                                        self._faces, self.estimator.model_id, self.config)
            cam.pubs = cam.outputs.pubs
            self.inputs[name].topic = subscribe_inputs(
                self, cam.cfg, lambda msg, n=name: self._guarded(n, self._on_depth, msg),
                lambda msg, n=name: self._guarded(n, self._on_info, msg),
                lambda topic, event, n=name: self._guarded(n, self._on_incompatible_qos,
                                                           (topic, event)))
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.pipeline = Pipeline(self.estimator, self.config, self.cameras, self.problems)
        names = list(self.cameras)
        self.worker = BatchWorker(names, self._infer, self._deliver, name="disrt-inference",
                                  max_batch=self.config.max_batch, on_error=self._on_failed,
                                  initializer=self._init_inference)
        self.display = BatchWorker(names, lambda jobs: [None] * len(jobs),
                                   lambda job, _: self._publish_display(job.payload),
                                   name="disrt-display", max_batch=1,
                                   on_error=self._on_failed)
        self.worker.start()  # returns after _init_inference (warm-up) on its thread
        self.display.start()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.create_timer(self.config.diagnostics_period_s, self._publish_diagnostics)
        self.get_logger().info(
            f"bed monitor ready: model {self.estimator.model_id} on {self.estimator.device}, "
            f"{self._sampling['steps']} DDIM steps, cameras "
            + ", ".join(f"{c.name} <- {self.inputs[c.name].topic} ({c.input_qos})"
                        for c in self.config.cameras))

    def _init_inference(self) -> None:
        """On the inference thread, before the first frame: its torch CPU threads, then one
        predict per batch size the cameras can form (the first call allocates, and with
        compile / cuda_graphs compiles or captures, which would otherwise land on the first
        frames' latency)."""
        torch.set_num_threads(self._threads)
        start, device = time.perf_counter(), torch.device(self.estimator.device)
        sizes = min(self.config.max_batch, len(self.cameras))
        self._log("info", f"warming up: one predict per batch size 1..{sizes}"
                  + (" (with torch.compile: minutes)" if self.config.compile else ""))
        with torch.no_grad():
            for batch in range(1, sizes + 1):
                if self.worker.stopping:  # a signal during the warm-up
                    return
                self.estimator.predict(torch.ones(batch, 1, *NET_SHAPE, device=device))
        self._log("info", f"warm-up done in {time.perf_counter() - start:.2f} s")

    # ---------------------------------------------------------------- executor thread
    def _log(self, level: str, message: str) -> None:
        # After a signal the ROS context is gone and rcl would report each line's failed
        # publication to /rosout; what the threads still say then is not worth it.
        if not self.context.ok():
            return
        # One call site per severity: rclpy refuses two severities from the same line.
        logger = self.get_logger()
        if level == "debug":
            logger.debug(message)
        elif level == "info":
            logger.info(message)
        elif level == "warn":
            logger.warning(message)
        else:
            logger.error(message)

    def _guarded(self, name: str, callback, msg) -> None:
        """Run a subscription callback; an unexpected error is reported, never kills spin."""
        try:
            callback(name, msg)
        except Exception as error:
            self.problems.report(name, "internal", f"callback failed: {error!r}", "error")

    def _on_info(self, name: str, msg: CameraInfo) -> None:
        cam = self.cameras[name]
        rectified, size = lens.is_rectified(cam.cfg.depth_topic), (int(msg.width), int(msg.height))
        try:  # K (P's for a rectified image) and the lens's map, made once per calibration
            K = camera_info_to_K(msg, rectified)
            changed = cam.lens.update(K, msg.distortion_model, msg.d, size, rectified)
        except ValueError as error:
            self.problems.report(name, "camera_info", str(error), "error")
            return
        if cam.intrinsics is None and cam.cfg.K_fallback is not None:
            self._log("info", f"[{name}] CameraInfo received; using it instead of the "
                              "configured intrinsics")
        if changed and cam.lens.current is not None:
            self._log("info", f"[{name}] depth is undistorted ({msg.distortion_model}, pixels "
                              f"moved up to {cam.lens.current.max_shift_px:.1f} px)")
        cam.intrinsics = (K, size)
        self.inputs[name].incompatible.pop(cam.cfg.info_topic, None)

    def _on_incompatible_qos(self, name: str, topic_event) -> None:
        """A publisher on an input topic whose QoS the subscription cannot match: nothing
        comes from it. Reported until a message arrives on that topic."""
        topic, event = topic_event
        policy = qos_policy_name_from_kind(event.last_policy_kind)
        qos = self.cameras[name].cfg.input_qos
        self.inputs[name].incompatible[topic] = policy
        hint = ("it publishes best effort: set input_qos:=sensor_data (or make the driver "
                "publish reliably)" if policy == "RELIABILITY" else
                "compare the publisher's QoS (ros2 topic info -v) with input_qos")
        self.problems.report(name, "incompatible_qos", (
            f"a publisher on {topic} offers a QoS that this node's subscription (input_qos "
            f"{qos}) cannot match (policy {policy}): no message arrives from it; {hint}"),
            "warn")

    def _on_depth(self, name: str, msg: Image | CompressedImage) -> None:
        """Cheap checks only: decoding waits for the worker, so dropped frames cost nothing."""
        cam, stats, now = self.cameras[name], self.inputs[name], time.monotonic()
        cam.received.tick(now)
        stamp = msg.header.stamp
        stats.stamps.add(stamp.sec * 1_000_000_000 + stamp.nanosec, now)
        if stats.incompatible:
            stats.incompatible.pop(stats.topic, None)
        cam.last_frame_id = msg.header.frame_id
        if cam.cfg.frame_id and msg.header.frame_id != cam.cfg.frame_id:
            self.problems.report(name, "unknown_camera", (
                f"depth frame from frame {msg.header.frame_id!r} on {cam.cfg.depth_topic}, but "
                f"this camera is {cam.cfg.frame_id!r} ({name}.frame_id): frame dropped; fix "
                "the topic remapping or the frame_id parameter"), "error")
            return
        if self.config.rate_limit_hz > 0 and now - cam.last_submit < 1 / self.config.rate_limit_hz:
            cam.rate_limited += 1
            return
        cam.last_submit = now
        stats.handed.tick(now)
        if not self.worker.submit(Job(name, msg, now)):  # replaced a waiting frame
            stats.dropped.tick(now)

    def _on_set_parameters(self, params) -> SetParametersResult:
        # Ranges and read-only flags are enforced by rclpy from the descriptors.
        keys = {"ddim_steps": "steps", "hypotheses": "hypotheses", "eta": "eta"}
        with self._lock:
            for p in params:
                if p.name in DYNAMIC:
                    self._sampling_pending[keys[p.name]] = p.value
        return SetParametersResult(successful=True)

    # ---------------------------------------------------------------- inference thread
    def _infer(self, jobs: list[Job]) -> list[FrameResult | Failure]:
        with self._lock:
            pending, self._sampling_pending = self._sampling_pending, {}
        if pending:
            self.estimator.set_sampling(**pending)
            self._sampling.update(pending)
            self.pipeline.hypotheses = int(self._sampling["hypotheses"])
            self._log("info", f"sampling changed: {pending}")
        return self.pipeline.run(jobs)

    def _deliver(self, job: Job, result: FrameResult | Failure) -> None:
        """Publish the light outputs now and hand the display outputs to their thread."""
        cam = self.cameras[job.key]
        if not self.context.ok():  # shutting down (a signal): publishing would fail
            return
        if isinstance(result, Failure):
            self.problems.report(job.key, result.kind, result.message, result.level)
            if result.level == "error":  # no confident answer stays on screen
                cam.outputs.clear(job.payload.header)
            return
        cam.occupancy = (result.occupancy, result.present_prob)
        wanted = cam.outputs.answer(result, self.monitoring.observe(result))
        cam.published.tick()
        now, rate = time.monotonic(), self.config.display_rate_hz
        if wanted and now - cam.last_display >= (1 / rate if rate > 0 else 0.0):
            cam.last_display = now
            self.display.submit(Job(job.key, result, job.received))

    def _on_failed(self, jobs: list[Job], error: BaseException) -> None:
        if self.worker.stopping or self.display.stopping or not self.context.ok():
            self._log("debug", f"while stopping: {error!r}")  # e.g. a publisher's context gone
            return
        self._engine_failed = True
        for job in jobs:
            self.problems.report(job.key, "inference", f"processing failed: {error!r}", "error")

    # ---------------------------------------------------------------- display thread
    def _publish_display(self, result: FrameResult) -> None:
        if self.context.ok():
            self.cameras[result.camera].outputs.display(result)

    # ---------------------------------------------------------------- diagnostics
    def diagnostics(self) -> DiagnosticArray:
        """The current report (what the timer publishes on /diagnostics); levels in
        :mod:`disrt_ros.diagnostics`."""
        now, base = time.monotonic(), self.get_fully_qualified_name()
        new_problems = self.problems.take_new()
        lat = self.worker.latency
        failed, self._engine_failed = self._engine_failed, False
        engine = diag.status(
            f"{base}: inference", diag.ERROR if failed else diag.OK,
            "inference failed since the last report" if failed else "ok",
            {"device": self.estimator.device, "model_id": self.estimator.model_id,
             "ddim_steps": self._sampling["steps"], "hypotheses": self._sampling["hypotheses"],
             "eta": float(self._sampling["eta"]), "max_batch": self.config.max_batch,
             "latency_p50_ms": 1e3 * lat.percentile(50), "latency_p99_ms": 1e3 * lat.percentile(99),
             "display_latency_p99_ms": 1e3 * self.display.latency.percentile(99),
             "batches": self.worker.batches, "last_batch_size": self.worker.last_batch_size,
             **{f"stage_{stage}_p50_ms": 1e3 * times.percentile(50)
                for stage, times in self.pipeline.stage_times.items()},
             "stage_deliver_p50_ms": 1e3 * self.worker.deliver_time.percentile(50),
             "last_error": self.problems.last_error},
            hardware_id=str(self.estimator.device))
        statuses = [engine]
        for name, cam in self.cameras.items():
            statuses.append(self._camera_status(base, name, cam, now, new_problems.get(name)))
        msg = DiagnosticArray(status=statuses)
        msg.header.stamp = self.get_clock().now().to_msg()
        return msg

    def _camera_status(self, base: str, name: str, cam: CameraState, now: float,
                       problem: tuple[int, str] | None):
        """One camera's DiagnosticStatus; the level by diag.camera_level."""
        stats, shown, inputs, cfg = (self.worker.stats[name], self.display.stats[name],
                                     self.inputs[name], cam.cfg)
        counts, last = self.problems.snapshot(name)
        seen, first = cam.received.last(), cam.received.first(now)
        camera_rate, fraction = inputs.stamps.estimate(now)
        handed, dropped = inputs.handed.count(now), inputs.dropped.count(now)
        intrinsics = "camera_info" if cam.intrinsics is not None else (
            "parameter" if cfg.K_fallback is not None else "none")
        health = diag.CameraHealth(
            depth_topic=inputs.topic, info_topic=cfg.info_topic, camera=name,
            input_qos=cfg.input_qos, since_frame_s=None if seen is None else now - seen,
            receiving_s=0.0 if first is None else now - first,
            publishers=self.count_publishers(inputs.topic), intrinsics=intrinsics,
            handed=handed, dropped=dropped, received_fraction=fraction,
            camera_rate_hz=camera_rate,
            qos_incompatible=", ".join(f"{t} ({p})" for t, p in inputs.incompatible.items()),
            problem=problem, alerts="; ".join(self.monitoring.active(name)))
        level, message = diag.camera_level(health)
        if level == diag.ERROR and intrinsics == "none" and "no CameraInfo" in message:
            self.problems.report(name, "no_geometry", message, "error")  # logged once
        values = {
            "depth_topic": inputs.topic, "input_qos": cfg.input_qos,
            "input_transport": cfg.input_transport, "publishers": health.publishers,
            "frame_id": cam.last_frame_id,
            "input_rate_hz": cam.received.rate(now), "output_rate_hz": cam.published.rate(now),
            "camera_rate_hz": camera_rate if camera_rate is not None else "unknown",
            "received_fraction": fraction if fraction is not None else "unknown",
            "dropped_share": dropped / handed if handed else 0.0,
            "frames_received": cam.received.total, "frames_published": cam.published.total,
            "dropped_frames": stats.dropped, "rate_limited_frames": cam.rate_limited,
            "display_dropped": shown.dropped, "failed_frames": stats.failed,
            "problems": sum(counts.values()),
            **{f"problems_{kind}": n for kind, n in sorted(counts.items())},
            "intrinsics": intrinsics, "bed_region": cfg.bed_region,
            "undistorted": getattr(cam.lens.current, "model", "no"),
            "occupancy": cam.occupancy[0], "present_prob": cam.occupancy[1],
            "last_problem": last[2] if last else "", **self.monitoring.values(name),
        }
        return diag.status(f"{base}: camera {name}", level, message, values,
                           hardware_id=cam.last_frame_id)

    def _publish_diagnostics(self) -> None:
        self._diagnostics.publish(self.diagnostics())

    def destroy_node(self) -> None:
        self.worker.stop()
        self.display.stop()
        self.monitoring.save()
        super().destroy_node()


def main(argv: list[str] | None = None) -> NoReturn:
    """Console script: ``disrt-bed-monitor [--ros-args --params-file config/bed_monitor.yaml
    -p name:=value ...]``. Ends the process (:mod:`disrt_ros.process`) with exit code 0,
    also after SIGINT / SIGTERM, or 2 after a start-up error whose message names the
    parameter and the fix."""
    argv = list(sys.argv if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="disrt-bed-monitor", description=__doc__.splitlines()[0],
        epilog="Parameters come as ROS arguments, e.g. --ros-args --params-file "
               "config/bed_monitor.yaml -p device:=cpu (see disrt_ros.params).")
    parser.parse_args(remove_ros_args(args=argv)[1:])
    code = process.run(BedMonitorNode, argv, "disrt-bed-monitor",
                       fatal=(ParameterError, FileNotFoundError))
    process.end_process(code)


if __name__ == "__main__":
    raise SystemExit(main())
