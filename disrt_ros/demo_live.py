"""The demo's ROS side (:mod:`disrt_ros.demo`): play the night as a depth camera, record the
bed monitor's outputs and the ground truth into a bag, save its overlay images, and print
what is happening.

All in one rclpy context of the demo process, spun on a background thread; the camera is
played from the calling thread on the monotonic clock (frame i at ``start + i / rate``).
Each frame's header stamp is the wall-clock time at which it is published, and the ground
truth published with it carries the same stamp, so the recorded answers are matched to the
ground truth by stamp (as ``disrt-score`` does) and latency is the bag's log time of an
answer minus its stamp.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.logging import LoggingSeverity
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header, String
from visualization_msgs.msg import MarkerArray

from disrt_ros.bags import (
    DEPTH_FRAME_ID,
    DEPTH_INFO_TOPIC,
    DEPTH_TOPIC,
    GT_JOINTS_TOPIC,
    GT_POSE_TOPIC,
    BagWriter,
    GroundTruth,
)
from disrt_ros.conversions import array_to_image, image_to_array
from disrt_ros.markers import joint_markers
from disrt_ros.tools.record import Recorder

COVER_NAMES = ("uncover", "cover1", "cover2")
GT_RGBA = np.tile([0.3, 0.9, 0.3, 1.0], (24, 1))
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
#: The simulated camera publishes as realsense-ros does by default (reliable, keep last 5),
#: which the node's default input_qos matches.
CAMERA_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
READY_TIMEOUT_S = 30.0
DRAIN_QUIET_S = 1.5  # after the last frame: stop once no answer came for this long
DRAIN_MAX_S = 6.0


def _header(stamp_ns: int) -> Header:
    header = Header(frame_id=DEPTH_FRAME_ID)
    header.stamp.sec, header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    return header


class Live:
    """One streaming run of ``night`` (a :class:`disrt_ros.demo.Night`) at ``rate`` Hz.

    ``prefix`` is the node's output namespace (``/bed_monitor/``), ``outputs`` the output
    topics to record under it; overlays go to ``out/overlays``; ``check_node()`` raises
    when the node process died.
    """

    def __init__(self, night, rate: float, out: Path, prefix: str, outputs: tuple[str, ...],
                 check_node: Callable[[], None]):
        self.night, self.rate, self.out, self.prefix = night, rate, out, prefix
        self.topics = [prefix + t for t in outputs] + ["/diagnostics", GT_POSE_TOPIC,
                                                       GT_JOINTS_TOPIC]
        self.check_node = check_node
        self.stamp_to_frame: dict[int, int] = {}
        self._lock = threading.Lock()
        self._answers: deque = deque(maxlen=2000)  # (monotonic, latency ms, mpjpe mm)
        self._errors: list[float] = []
        self._received: deque = deque(maxlen=4)  # (monotonic, node's frames_received)
        self._diag_count = 0
        self._last_answer: tuple[int, str] | None = None  # (frame, posture) answered last
        self._overlays = 0

    # ------------------------------------------------------------ callbacks (executor)
    def _on_pose(self, msg: String) -> None:
        now_ns, now = time.time_ns(), time.monotonic()
        d = json.loads(msg.data)
        stamp = int(d["stamp"]["sec"]) * 1_000_000_000 + int(d["stamp"]["nanosec"])
        frame = self.stamp_to_frame.get(stamp)
        if frame is None:
            return
        truth = self.night.scenes[self.night.period_of[frame]]["joints"]
        error = 1000.0 * float(np.linalg.norm(np.asarray(d["joints_bed"]) - truth, axis=1)
                               .mean())
        with self._lock:
            self._answers.append((now, (now_ns - stamp) / 1e6, error))
            self._errors.append(error)
            self._last_answer = (frame, d["posture"])

    def _on_overlay(self, msg: Image) -> None:
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        frame = self.stamp_to_frame.get(stamp)
        if frame is not None:
            cv2.imwrite(str(self.out / "overlays" / f"{frame:05d}.png"), image_to_array(msg))
            with self._lock:
                self._overlays += 1

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        values = {kv.key: kv.value for status in msg.status for kv in status.values}
        with self._lock:
            self._diag_count += 1
            if "frames_received" in values:
                self._received.append((time.monotonic(), int(values["frames_received"])))

    # ------------------------------------------------------------------- camera
    def _publish(self, node_pubs: dict, frame: int) -> None:
        night = self.night
        period = night.periods[night.period_of[frame]]
        scene = night.scenes[night.period_of[frame]]
        stamp = time.time_ns()
        self.stamp_to_frame[stamp] = frame
        header = _header(stamp)
        rows, cols = night.frames[frame].shape
        info = CameraInfo(header=header, height=rows, width=cols, distortion_model="plumb_bob")
        info.k = night.K.reshape(-1).tolist()
        info.d = [0.0] * 5
        info.r = np.eye(3).reshape(-1).tolist()
        info.p = np.hstack([night.K, np.zeros((3, 1))]).reshape(-1).tolist()
        node_pubs["info"].publish(info)
        node_pubs["depth"].publish(array_to_image(night.frames[frame], "16UC1", header))
        T = night.T_cam_bed
        joints_cam = scene["joints"] @ T[:3, :3].T + T[:3, 3]
        truth = GroundTruth(
            stamp_ns=stamp, joints_bed_m=scene["joints"], cover=COVER_NAMES[period.cover],
            source="synthetic", joints_camera_m=joints_cam, T_cam_bed=T,
            bed_distance_mm=night.bed_mm, posture=scene["posture"], subject=period.person + 1,
            pose=int(night.period_of[frame]) + 1, sample_id=f"demo/frame{frame:05d}",
            body_model=night.model_id, body_params=scene["params"],
            extra={"frame": frame, "sensor": night.sensor})
        node_pubs["gt"].publish(String(data=truth.to_json()))
        node_pubs["gt_joints"].publish(joint_markers(joints_cam, GT_RGBA, header,
                                                     ns="ground_truth"))

    def _status(self, elapsed: float, frame: int) -> str:
        now = time.monotonic()
        with self._lock:
            recent = [a for a in self._answers if now - a[0] <= 4.0]
            answered, errors = len(self._errors), list(self._errors)
            received, last = list(self._received), self._last_answer
        out_hz = sum(1 for a in recent if now - a[0] <= 2.0) / 2.0
        lat = np.array([a[1] for a in recent]) if recent else None
        latency = (f"latency p50 {np.percentile(lat, 50):4.0f} ms p99 "
                   f"{np.percentile(lat, 99):4.0f} ms" if lat is not None else "latency  -")
        # cover and true posture of the frame the node answered last, not of the frame being
        # sent: at a scene change the two differ for a latency's worth of frames
        shown, posture = last if last is not None else (frame, "-")
        index = self.night.period_of[shown]
        period, truth = self.night.periods[index], self.night.scenes[index]["posture"]
        node_in = "   -"  # frames the node received per second, over its last reports
        if len(received) >= 2 and received[-1][0] > received[0][0]:
            rate = (received[-1][1] - received[0][1]) / (received[-1][0] - received[0][0])
            node_in = f"{rate:4.1f}"
        mpjpe = f"{np.mean(errors):5.0f} mm" if errors else "    - mm"
        return (f"[demo] {elapsed:5.1f} s | in {node_in} Hz, out {out_hz:4.1f} Hz | {latency} | "
                f"{frame + 1 - answered:4d} unanswered | {COVER_NAMES[period.cover]:>7} "
                f"{truth:>6} -> {posture:<6} | MPJPE {mpjpe}")

    # ------------------------------------------------------------------- the run
    def _wait_ready(self, recorder: Recorder, pubs: dict, watched: list[str], node) -> None:
        end = time.monotonic() + READY_TIMEOUT_S
        while True:
            missing = recorder.poll()
            missing += [t for t in watched if not node.count_publishers(t)]
            missing += [f"the node's subscription to {t}" for t, p in
                        ((DEPTH_TOPIC, pubs["depth"]), (DEPTH_INFO_TOPIC, pubs["info"]))
                        if not p.get_subscription_count()]
            if not missing:
                time.sleep(0.5)  # let the other side of discovery settle too
                return
            self.check_node()
            if time.monotonic() > end:
                from disrt_ros.demo import DemoError

                raise DemoError("the ROS graph did not come together in "
                                f"{READY_TIMEOUT_S:.0f} s; missing: {', '.join(missing)}")
            time.sleep(0.1)

    def _stream(self, pubs: dict, status_every: float) -> tuple[float, bool]:
        """Publish every frame on time; returns (seconds streamed, interrupted)."""
        start = time.monotonic()
        next_status, frame = start + status_every, -1
        try:
            for frame in range(len(self.night.frames)):
                target = start + frame / self.rate
                while (wait := target - time.monotonic()) > 0:
                    time.sleep(min(wait, 0.05))
                self._publish(pubs, frame)
                if time.monotonic() >= next_status:
                    print(self._status(time.monotonic() - start, frame), flush=True)
                    next_status += status_every
                    self.check_node()
        except KeyboardInterrupt:
            print("[demo] interrupted: finishing the bag and the report with what was "
                  "streamed (Ctrl-C again to abort)", flush=True)
            return time.monotonic() - start, True
        elapsed = len(self.night.frames) / self.rate
        print(self._status(time.monotonic() - start, frame), flush=True)
        return elapsed, False

    def _drain(self) -> None:
        """Wait for the last answers, then for one more diagnostics report."""
        end = time.monotonic() + DRAIN_MAX_S
        since = time.monotonic()
        while time.monotonic() < end:
            with self._lock:
                last = self._answers[-1][0] if self._answers else since
            if time.monotonic() - max(last, since) > DRAIN_QUIET_S:
                break
            time.sleep(0.05)
        with self._lock:
            count = self._diag_count
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            with self._lock:
                if self._diag_count > count:
                    break
            time.sleep(0.05)

    def run(self, bag: Path, status_every: float) -> tuple[float, bool]:
        """Stream the night and record; returns (seconds streamed, interrupted)."""
        context = Context()
        rclpy.init(context=context)
        node = rclpy.create_node("disrt_demo", context=context)
        node.get_logger().set_level(LoggingSeverity.WARN)  # not the recorder's every topic
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        spinner = threading.Thread(target=executor.spin, name="disrt-demo-spin", daemon=True)
        spinner.start()
        try:
            pubs = {
                "depth": node.create_publisher(Image, DEPTH_TOPIC, CAMERA_QOS),
                "info": node.create_publisher(CameraInfo, DEPTH_INFO_TOPIC,
                                              CAMERA_QOS),
                "gt": node.create_publisher(String, GT_POSE_TOPIC, RELIABLE),
                "gt_joints": node.create_publisher(MarkerArray, GT_JOINTS_TOPIC, RELIABLE)}
            watched = {self.prefix + "pose_json": (String, self._on_pose),
                       self.prefix + "overlay": (Image, self._on_overlay),
                       "/diagnostics": (DiagnosticArray, self._on_diagnostics)}
            for topic, (kind, callback) in watched.items():
                node.create_subscription(kind, topic, callback, RELIABLE)
            with BagWriter(bag, overwrite=True) as writer:
                recorder = Recorder(node, writer, self.topics)
                self._wait_ready(recorder, pubs, list(watched), node)
                streamed = self._stream(pubs, status_every)
                self._drain()
                executor.shutdown(timeout_sec=5.0)  # no callback may run past this point
                recorder.stop()
            return streamed
        finally:
            executor.shutdown(timeout_sec=5.0)
            node.destroy_node()
            rclpy.try_shutdown(context=context)
            spinner.join(5.0)
