"""Helpers for the node tests: an rclpy context spun on a background thread, a test node
that plays cameras and collects the monitor's outputs."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseArray
from rclpy.context import Context
from rclpy.exceptions import InvalidHandle
from rclpy.executors import ExternalShutdownException, ShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header, String
from visualization_msgs.msg import Marker, MarkerArray

from disrt_ros.conversions import array_to_image

#: Generous: the CPU may be shared with other jobs (a CPU hog beside the suite on 2 cores);
#: the tests finish as soon as their condition holds.
TIMEOUT = 60.0
OUTPUTS = {"joints": MarkerArray, "mesh": Marker, "mesh_cloud": PointCloud2, "pose": PoseArray,
           "pose_json": String, "posture": DiagnosticArray, "posture_text": String,
           "occupancy": DiagnosticArray, "occupancy_text": String, "overlay": Image}
LATCHED_OUTPUTS = ("posture", "posture_text", "occupancy", "occupancy_text")
#: What camera drivers publish with by default (realsense-ros, Azure Kinect, Orbbec): the
#: node's default input_qos.
DRIVER_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


def wait_until(predicate: Callable[[], object], timeout: float = TIMEOUT) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


class Ros:
    """An initialised context with an executor spinning in the background (as rclpy.spin)."""

    def __init__(self):
        self.context = Context()
        rclpy.init(context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        """``executor.spin()``, except that a node destroyed by :meth:`remove` while the
        executor was collecting its entities (InvalidHandle) ends that one wait, not the
        thread: a dead spin thread would leave every later test of the session without
        messages (seen with a short GIL switch interval, i.e. on a loaded machine)."""
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.1)
            except InvalidHandle:
                continue
            except (ShutdownException, ExternalShutdownException):
                return

    def add(self, node: Node) -> Node:
        self.executor.add_node(node)
        return node

    def remove(self, node: Node) -> None:
        self.executor.remove_node(node)
        node.destroy_node()

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=5.0)
        rclpy.try_shutdown(context=self.context)
        self._thread.join(5.0)


def header(stamp_sec: int, frame_id: str) -> Header:
    h = Header(frame_id=frame_id)
    h.stamp.sec, h.stamp.nanosec = stamp_sec, 1000 * stamp_sec
    return h


class Player(Node):
    """Publishes depth + CameraInfo for some cameras, subscribes to a monitor's outputs."""

    def __init__(self, context: Context, cameras: dict[str, str], outputs: dict[str, str],
                 qos: QoSProfile = DRIVER_QOS, node_name: str = "tester"):
        """cameras: name -> namespace of its topics; outputs: name -> output prefix; qos: of
        the depth and CameraInfo publishers."""
        super().__init__(node_name, context=context)
        self.depth_pubs = {n: self.create_publisher(Image, f"/{ns}/depth/image_rect_raw", qos)
                           for n, ns in cameras.items()}
        self.info_pubs = {n: self.create_publisher(CameraInfo, f"/{ns}/depth/camera_info", qos)
                          for n, ns in cameras.items()}
        # The newest messages per (camera, topic): bounded, so that floods do not grow memory.
        self.received: dict[tuple[str, str], deque] = defaultdict(lambda: deque(maxlen=30))
        self.diagnostics: list[DiagnosticArray] = []
        self._lock = threading.Lock()
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        for name, prefix in outputs.items():
            for topic, kind in OUTPUTS.items():
                self.create_subscription(kind, prefix + topic,
                                         lambda m, k=(name, topic): self._store(k, m),
                                         latched if topic in LATCHED_OUTPUTS else reliable)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)

    def _store(self, key, msg) -> None:
        with self._lock:
            self.received[key].append(msg)

    def _on_diag(self, msg) -> None:
        with self._lock:
            self.diagnostics.append(msg)
            del self.diagnostics[:-100]

    def publish(self, camera: str, depth: np.ndarray, stamp_sec: int, frame_id: str,
                K: np.ndarray | None = None, encoding: str = "16UC1",
                image: Image | None = None, info_shape: tuple[int, int] | None = None) -> None:
        """One depth frame (and its CameraInfo when K is given, of ``info_shape`` (H, W),
        default the frame's)."""
        h = header(stamp_sec, frame_id)
        if K is not None:
            rows, cols = info_shape or depth.shape[:2]
            info = CameraInfo(header=h, height=rows, width=cols)
            info.k = K.reshape(-1).astype(float).tolist()
            self.info_pubs[camera].publish(info)
        self.depth_pubs[camera].publish(image if image is not None else
                                        array_to_image(depth, encoding, h))

    def stamped(self, camera: str, topic: str, stamp_sec: int):
        """The message of ``topic`` whose header has ``stamp_sec``, or None."""
        with self._lock:
            for msg in self.received[(camera, topic)]:
                if isinstance(msg, String):  # pose_json carries its stamp in the JSON
                    sec = json.loads(msg.data)["stamp"]["sec"] if topic == "pose_json" else None
                else:
                    sec = (msg.markers[0].header if isinstance(msg, MarkerArray)
                           else msg.header).stamp.sec
                if sec == stamp_sec:
                    return msg
        return None

    def latest(self, camera: str, topic: str):
        with self._lock:
            msgs = self.received[(camera, topic)]
            return msgs[-1] if msgs else None

    def history(self, suffix: str) -> list[tuple[DiagnosticStatus, dict]]:
        """The kept statuses whose name ends with ``suffix``, oldest first, with values."""
        with self._lock:
            arrays = list(self.diagnostics)
        return [(s, {kv.key: kv.value for kv in s.values})
                for array in arrays for s in array.status if s.name.endswith(suffix)]

    def status(self, suffix: str, pred: Callable[[dict], bool] = lambda v: True):
        """Newest diagnostics status whose name ends with ``suffix`` and whose values pass."""
        with self._lock:
            arrays = list(self.diagnostics)
        for array in reversed(arrays):
            for status in array.status:
                values = {kv.key: kv.value for kv in status.values}
                try:
                    passed = status.name.endswith(suffix) and pred(values)
                except KeyError:  # an older report without that key
                    passed = False
                if passed:
                    return status, values
        return None


def fake_monitor(ros: Ros, name: str, params: dict | None = None, *,
                 namespace: str | None = None, qos: QoSProfile = DRIVER_QOS,
                 estimator=None) -> tuple:
    """A bed monitor ``m_<name>`` serving ``estimator`` (default a new
    :class:`~.fakes.FakeEstimator`; one CPU thread, /diagnostics every 0.2 s, no display
    outputs, its camera ``CAM_HEIGHT`` over the bed centre with ``bed_region: pose``) and a
    camera player ``p_<name>`` publishing under ``namespace`` (default ``c_<name>``) with
    ``qos``, both added to ``ros``; ``params`` override the node's. (monitor, player)."""
    from rclpy.parameter import Parameter

    from disrt_ros.node import BedMonitorNode

    from .fakes import CAM_HEIGHT, FakeEstimator

    namespace = namespace or f"c_{name}"
    values = {"cpu_threads": 1, "diagnostics_period_s": 0.2, "display_rate_hz": 0.0,
              "camera.camera_height_m": CAM_HEIGHT, "camera.bed_region": "pose",
              "camera.namespace": namespace, **(params or {})}
    monitor = BedMonitorNode(estimator=estimator or FakeEstimator(), node_name=f"m_{name}",
                             context=ros.context, parameter_overrides=[
                                 Parameter(k, value=v) for k, v in values.items()])
    player = Player(ros.context, {"camera": namespace}, {"camera": f"/m_{name}/"}, qos=qos,
                    node_name=f"p_{name}")
    ros.add(monitor)
    ros.add(player)
    return monitor, player
