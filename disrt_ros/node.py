"""``disrt-bed-monitor``: live in-bed body mesh recovery from overhead depth cameras.

Inputs, per camera named in the ``cameras`` parameter (see :mod:`disrt_ros.params`): a depth
``sensor_msgs/Image`` (16UC1 / mono16 in mm or 32FC1 in m) and its ``CameraInfo``, with the
sensor-data QoS (best effort, keep last 5), as realsense-ros and Kinect drivers publish them.

Outputs, under ``~/`` with one camera and ``~/<camera>/`` with several, stamped with the
input image's header and in its frame (the camera optical frame):

============== ============================== ================================================
topic          type                           content
============== ============================== ================================================
joints         visualization_msgs/MarkerArray 24 joint spheres + bones, coloured by spread
mesh           visualization_msgs/Marker      TRIANGLE_LIST of the body mesh
mesh_cloud     sensor_msgs/PointCloud2        mesh vertices, float32 x y z
pose           geometry_msgs/PoseArray        24 joints, SMPL order; pose 0 has the root
                                              orientation, the others the identity
pose_json      std_msgs/String                JSON: schema, stamp, frame_id, camera, model_id,
                                              posture, hypotheses, joint_names, joints (camera
                                              frame, m), joints_bed (bed frame), joint_spread
                                              (m), params (body model, bed frame), T_cam_bed
posture        std_msgs/String                supine | left | right | prone (latched)
overlay        sensor_msgs/Image              bgr8 network input with the skeleton
/diagnostics   diagnostic_msgs/DiagnosticArray see :mod:`disrt_ros.diagnostics`
============== ============================== ================================================

Output QoS [choice]: reliable (RViz, rqt and ``ros2 topic echo`` subscribe reliably by
default and a best-effort publisher would not reach them), volatile; keep last 1 for the big
display topics (mesh, mesh_cloud, overlay: only the newest matters), 5 for ``joints`` (small;
a slow reader still gets every skeleton) and 10 for ``pose``/``pose_json`` (downstream logic
should not miss results); ``posture`` is transient-local so a dashboard that starts later
gets the current posture at once. A message nobody subscribes to is not built (``posture``,
a few bytes, is always sent so that it stays latched).

Each frame: the executor thread only counts it, checks its frame id and the rate limit, and
puts it in its camera's newest-frame slot; an inference thread decodes and checks the
waiting frames (encoding, size, intrinsics, valid pixels) and runs them through
:class:`disrt_ros.pipeline.Pipeline` as one batch (:mod:`disrt_ros.worker`); mesh, cloud and
overlay are built on a third thread, at most ``display_rate_hz`` per camera. Bad input is
logged once, counted in /diagnostics, and the node keeps serving.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

import numpy as np
import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import PublisherEventCallbacks
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.utilities import remove_ros_args
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import String
from visualization_msgs.msg import Marker, MarkerArray

from disrt_core.geometry.bedframe import NET_SHAPE
from disrt_core.threads import cpu_threads
from disrt_ros import diagnostics as diag
from disrt_ros.conversions import (
    FrameResult,
    array_to_image,
    camera_info_to_K,
    points_to_cloud,
    pose_array,
    pose_json,
)
from disrt_ros.markers import joint_markers, mesh_marker_bytes, overlay_image, spread_colours
from disrt_ros.params import DYNAMIC, MonitorConfig, ParameterError, declare_and_load
from disrt_ros.pipeline import CameraState, Failure, Pipeline
from disrt_ros.worker import BatchWorker, Job

_RELIABLE = dict(reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
DISPLAY_QOS = QoSProfile(depth=1, **_RELIABLE)
JOINTS_QOS = QoSProfile(depth=5, **_RELIABLE)
RESULT_QOS = QoSProfile(depth=10, **_RELIABLE)
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
NO_EVENT_HANDLERS = PublisherEventCallbacks(use_default_callbacks=False)  # see _publisher
QUIET_AFTER_S = 3.0  # a camera without frames for this long is reported (WARN)


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
        self._threads = self.config.cpu_threads or torch.get_num_threads()
        if estimator is None:
            with cpu_threads("cpu", 1):
                self.estimator = load_estimator(self.config)
        else:  # the parameters rule the sampler of an injected one too
            self.estimator = estimator
            estimator.set_sampling(steps=self.config.ddim_steps,
                                   hypotheses=self.config.hypotheses, eta=self.config.eta)
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
        prefix = "~/" if len(self.cameras) == 1 else None
        for name, cam in self.cameras.items():
            out = prefix or f"~/{name}/"
            cam.pubs = {
                "joints": self._publisher(MarkerArray, out + "joints", JOINTS_QOS),
                "mesh": self._publisher(Marker, out + "mesh", DISPLAY_QOS),
                "mesh_cloud": self._publisher(PointCloud2, out + "mesh_cloud", DISPLAY_QOS),
                "overlay": self._publisher(Image, out + "overlay", DISPLAY_QOS),
                "pose": self._publisher(PoseArray, out + "pose", RESULT_QOS),
                "pose_json": self._publisher(String, out + "pose_json", RESULT_QOS),
                "posture": self._publisher(String, out + "posture", LATCHED_QOS),
            }
            self.create_subscription(Image, cam.cfg.depth_topic,
                                     lambda msg, n=name: self._guarded(n, self._on_depth, msg),
                                     qos_profile_sensor_data)
            self.create_subscription(CameraInfo, cam.cfg.info_topic,
                                     lambda msg, n=name: self._guarded(n, self._on_info, msg),
                                     qos_profile_sensor_data)
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
            + ", ".join(f"{c.name} <- {c.depth_topic}" for c in self.config.cameras))

    def _init_inference(self) -> None:
        """On the inference thread, before the first frame: its torch CPU threads, then one
        predict per batch size the cameras can form (the first call allocates, and with
        compile / cuda_graphs compiles or captures, which would otherwise land on the first
        frames' latency)."""
        torch.set_num_threads(self._threads)
        start, device = time.perf_counter(), torch.device(self.estimator.device)
        with torch.no_grad():
            for batch in range(1, min(self.config.max_batch, len(self.cameras)) + 1):
                self.estimator.predict(torch.ones(batch, 1, *NET_SHAPE, device=device))
        self._log("info", f"warm-up done in {time.perf_counter() - start:.2f} s")

    def _publisher(self, msg_type, topic: str, qos):
        """A publisher without rclpy's default QoS-event handlers (incompatible QoS, type).
        Each handler is a waitable that the executor re-adds to its wait set, in Python, for
        every message it takes: 7 publishers per camera made that the executor's main cost
        with 8 cameras. A subscriber with an incompatible QoS still reports it on its side
        (RViz, ros2 topic echo); the depth subscriptions keep theirs (a driver mismatch)."""
        return self.create_publisher(msg_type, topic, qos, event_callbacks=NO_EVENT_HANDLERS)

    # ---------------------------------------------------------------- executor thread
    def _log(self, level: str, message: str) -> None:
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
        try:
            K = camera_info_to_K(msg)
        except ValueError as error:
            self.problems.report(name, "camera_info", str(error), "error")
            return
        if cam.intrinsics is None and cam.cfg.K_fallback is not None:
            self._log("info", f"[{name}] CameraInfo received; using it instead of the "
                              "configured intrinsics")
        cam.intrinsics = (K, (int(msg.width), int(msg.height)))

    def _on_depth(self, name: str, msg: Image) -> None:
        """Cheap checks only: decoding waits for the worker, so dropped frames cost nothing."""
        cam, now = self.cameras[name], time.monotonic()
        cam.received.tick(now)
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
        self.worker.submit(Job(name, msg, now))

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
        if isinstance(result, Failure):
            self.problems.report(job.key, result.kind, result.message, result.level)
            return
        pubs, cfg = cam.pubs, self.config
        if pubs["joints"].get_subscription_count():
            rgba = spread_colours(result.joint_spread, result.hypotheses)
            pubs["joints"].publish(joint_markers(result.joints_cam, rgba, result.header,
                                                 lifetime_s=cfg.marker_lifetime_s))
        if pubs["pose"].get_subscription_count():
            pubs["pose"].publish(pose_array(result))
        if pubs["pose_json"].get_subscription_count():
            pubs["pose_json"].publish(pose_json(result, self._joint_names,
                                                self.estimator.model_id))
        pubs["posture"].publish(String(data=result.posture))
        cam.published.tick()
        now = time.monotonic()
        wanted = any(pubs[t].get_subscription_count() for t in ("mesh", "mesh_cloud", "overlay"))
        period = 1 / cfg.display_rate_hz if cfg.display_rate_hz > 0 else 0.0
        if wanted and now - cam.last_display >= period:
            cam.last_display = now
            self.display.submit(Job(job.key, result, job.received))

    def _on_failed(self, jobs: list[Job], error: BaseException) -> None:
        self._engine_failed = True
        for job in jobs:
            self.problems.report(job.key, "inference", f"processing failed: {error!r}", "error")

    # ---------------------------------------------------------------- display thread
    def _publish_display(self, result: FrameResult) -> None:
        pubs, cfg = self.cameras[result.camera].pubs, self.config
        if pubs["mesh"].get_subscription_count():
            pubs["mesh"].publish(mesh_marker_bytes(result.vertices_cam, self._faces,
                                                   result.header,
                                                   lifetime_s=cfg.marker_lifetime_s))
        if pubs["mesh_cloud"].get_subscription_count():
            pubs["mesh_cloud"].publish(points_to_cloud(result.vertices_cam, result.header))
        if pubs["overlay"].get_subscription_count():
            rgba = spread_colours(result.joint_spread, result.hypotheses)
            image = overlay_image(result.net_image, result.joints_bed, rgba,
                                  scale=cfg.overlay_scale)
            pubs["overlay"].publish(array_to_image(image, "bgr8", result.header))

    # ---------------------------------------------------------------- diagnostics
    def diagnostics(self) -> DiagnosticArray:
        """The current report (what the timer publishes on /diagnostics)."""
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
            stats, shown = self.worker.stats[name], self.display.stats[name]
            counts, last = self.problems.snapshot(name)
            levels = []
            if name in new_problems and last is not None:
                levels.append((diag.ERROR if last[3] == "error" else diag.WARN, last[2]))
            seen = cam.received.last()
            if seen is None or now - seen > QUIET_AFTER_S:
                levels.append((diag.WARN, f"no depth frames on {cam.cfg.depth_topic}"))
            level, message = diag.worst(levels)
            values = {
                "depth_topic": cam.cfg.depth_topic, "frame_id": cam.last_frame_id,
                "input_rate_hz": cam.received.rate(now), "output_rate_hz": cam.published.rate(now),
                "frames_received": cam.received.total, "frames_published": cam.published.total,
                "dropped_frames": stats.dropped, "rate_limited_frames": cam.rate_limited,
                "display_dropped": shown.dropped, "failed_frames": stats.failed,
                "problems": sum(counts.values()),
                **{f"problems_{kind}": n for kind, n in sorted(counts.items())},
                "intrinsics": "camera_info" if cam.intrinsics is not None else (
                    "parameter" if cam.cfg.K_fallback is not None else "none"),
                "bed_region": cam.cfg.bed_region,
                "last_problem": last[2] if last else "",
            }
            statuses.append(diag.status(f"{base}: camera {name}", level, message, values,
                                        hardware_id=cam.last_frame_id))
        msg = DiagnosticArray(status=statuses)
        msg.header.stamp = self.get_clock().now().to_msg()
        return msg

    def _publish_diagnostics(self) -> None:
        self._diagnostics.publish(self.diagnostics())

    def destroy_node(self) -> None:
        self.worker.stop()
        self.display.stop()
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    """Console script: ``disrt-bed-monitor [--ros-args --params-file config/bed_monitor.yaml
    -p name:=value ...]``."""
    argv = list(sys.argv if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="disrt-bed-monitor", description=__doc__.splitlines()[0],
        epilog="Parameters come as ROS arguments, e.g. --ros-args --params-file "
               "config/bed_monitor.yaml -p device:=cpu (see disrt_ros.params).")
    parser.parse_args(remove_ros_args(args=argv)[1:])
    # Jazzy's rclpy.init is not a context manager yet: shut down explicitly.
    rclpy.init(args=argv)
    node = None
    try:
        node = BedMonitorNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ParameterError, FileNotFoundError) as error:
        print(f"[disrt-bed-monitor] {error}", file=sys.stderr)
        return 2
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
