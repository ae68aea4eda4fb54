"""The bed monitor's topics: output publishers and input subscriptions, with their QoS.

Outputs, under ``~/`` with one camera and ``~/<camera>/`` with several, stamped with the
input image's header and in its frame (the camera optical frame):

================ =============================== ===============================================
topic            type                            content
================ =============================== ===============================================
joints           visualization_msgs/MarkerArray  24 joint spheres + bones, coloured by spread
mesh             visualization_msgs/Marker       TRIANGLE_LIST of the body mesh
mesh_cloud       sensor_msgs/PointCloud2         mesh vertices, float32 x y z
pose             geometry_msgs/PoseArray         24 joints, SMPL order; pose 0 has the root
                                                 orientation, the others the identity
pose_json        std_msgs/String                 JSON: schema, stamp, frame_id, camera,
                                                 model_id, posture, hypotheses, joint_names,
                                                 joints (camera frame, m), joints_bed (bed
                                                 frame), joint_spread (m), params (body model,
                                                 bed frame), T_cam_bed; schema 2 adds
                                                 pressure (max_kpa, contact_cm2, regions:
                                                 peak_kpa / mean_kpa each; null with
                                                 ``pressure`` off) and monitor (the
                                                 repositioning monitor's state), and
                                                 joint_interval (m, per joint: the radius
                                                 that holds the true joint with probability
                                                 joint_interval_level, from the weights'
                                                 calibration; null without one for this
                                                 hypotheses / ddim_steps)
posture          diagnostic_msgs/DiagnosticArray the frame's header; one OK status named
                                                 "posture": message (and value "posture") =
                                                 supine | left | right | prone, hardware_id =
                                                 the camera name (latched)
posture_text     std_msgs/String                 the same label alone, for rqt / dashboards
                                                 (latched)
occupancy        diagnostic_msgs/DiagnosticArray the frame's header; one OK status named
                                                 "occupancy": message (and value "occupancy")
                                                 = in_bed | empty | sitting_on_edge, value
                                                 "present_prob"; every answered frame
                                                 (latched). Only in_bed frames get joints,
                                                 mesh, pose, pose_json and posture; the others
                                                 clear the markers
occupancy_text   std_msgs/String                 the same label alone (latched)
overlay          sensor_msgs/Image               bgr8 network input with the skeleton
pressure         sensor_msgs/Image               32FC1 kPa under the predicted body on
                                                 SLP's 192x84 pressure-mat grid (bed frame:
                                                 row 0 at the head end, column 0 at the
                                                 bed's smallest x, 1 cm cells; the header is
                                                 the frame's); with ``pressure`` on
pressure_overlay sensor_msgs/Image               bgr8 colour map of it (0-12 kPa, legend,
                                                 the highest region), for rqt / RViz
alerts           diagnostic_msgs/DiagnosticArray the repositioning monitor's events, one per
                                                 message (:mod:`disrt_ros.monitoring`): the
                                                 frame's header that decided it; one status
                                                 named by the event (turn, out_of_bed,
                                                 sitting_on_edge, back_in_bed, alert,
                                                 alert_cleared, reset), level WARN for
                                                 alerts raised and bed exits, else OK;
                                                 message = the sentence; values kind, time
                                                 (when it began, s), posture, minutes ...
alerts_text      std_msgs/String                 the same sentence alone
/diagnostics     diagnostic_msgs/DiagnosticArray see :mod:`disrt_ros.diagnostics`
================ =============================== ===============================================

Output QoS [choice]: reliable (RViz, rqt and ``ros2 topic echo`` subscribe reliably by
default and a best-effort publisher would not reach them), volatile; keep last 1 for the big
display topics (mesh, mesh_cloud, overlay: only the newest matters), 5 for ``joints`` (small;
a slow reader still gets every skeleton) and 10 for ``pose``/``pose_json`` (downstream logic
should not miss results). States of a frame (:func:`state_publishers`: ``posture``, and the
same way any later one such as ``occupancy``) are transient-local, keep last 1: latched, so a
dashboard that starts later gets the current state at once. ``alerts`` and ``alerts_text``
are transient-local, keep last 20: a dashboard that starts later gets the recent events.
``pressure`` and ``pressure_overlay`` are display topics (keep last 1, at most
``display_rate_hz``). The publishers carry no QoS-event handlers (:func:`publisher`).

Inputs (:func:`subscribe_inputs`): the depth image (``sensor_msgs/Image`` on the depth topic,
or image_transport's ``sensor_msgs/CompressedImage`` on ``<depth topic>/compressedDepth``)
and its ``CameraInfo``, with the camera's ``input_qos`` (:data:`INPUT_QOS`,
:mod:`disrt_ros.params`), each with an incompatible-QoS handler: a driver publishing with a
QoS the subscription cannot match is reported, not silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import (
    DurabilityPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
    qos_profile_system_default,
)
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import String
from visualization_msgs.msg import Marker, MarkerArray

from disrt_ros.params import CameraConfig

_RELIABLE = dict(reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
DISPLAY_QOS = QoSProfile(depth=1, **_RELIABLE)
JOINTS_QOS = QoSProfile(depth=5, **_RELIABLE)
RESULT_QOS = QoSProfile(depth=10, **_RELIABLE)
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
EVENTS_QOS = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)
NO_EVENT_HANDLERS = PublisherEventCallbacks(use_default_callbacks=False)  # see publisher()
#: ``input_qos`` -> QoS of the depth and CameraInfo subscriptions.
INPUT_QOS = {
    "reliable": QoSProfile(depth=5, **_RELIABLE),
    "sensor_data": qos_profile_sensor_data,
    "system_default": qos_profile_system_default,
}


def publisher(node: Node, msg_type, topic: str, qos):
    """A publisher without rclpy's default QoS-event handlers (incompatible QoS, type).
    Each handler is a waitable that the executor re-adds to its wait set, in Python, for
    every message it takes: 7 publishers per camera made that the executor's main cost
    with 8 cameras. A subscriber with an incompatible QoS still reports it on its side
    (RViz, ros2 topic echo); the input subscriptions have theirs (a driver mismatch)."""
    return node.create_publisher(msg_type, topic, qos, event_callbacks=NO_EVENT_HANDLERS)


def state_publishers(node: Node, out: str, state: str) -> dict:
    """``<out><state>`` (stamped DiagnosticArray) and ``<out><state>_text`` (String), both
    latched (see the node's ``_publish_state``)."""
    return {state: publisher(node, DiagnosticArray, out + state, LATCHED_QOS),
            state + "_text": publisher(node, String, out + state + "_text", LATCHED_QOS)}


def output_publishers(node: Node, out: str) -> dict:
    """A camera's output publishers (module docstring) under the prefix ``out``, by name."""
    return {
        "joints": publisher(node, MarkerArray, out + "joints", JOINTS_QOS),
        "mesh": publisher(node, Marker, out + "mesh", DISPLAY_QOS),
        "mesh_cloud": publisher(node, PointCloud2, out + "mesh_cloud", DISPLAY_QOS),
        "overlay": publisher(node, Image, out + "overlay", DISPLAY_QOS),
        "pose": publisher(node, PoseArray, out + "pose", RESULT_QOS),
        "pose_json": publisher(node, String, out + "pose_json", RESULT_QOS),
        **state_publishers(node, out, "posture"),
        **state_publishers(node, out, "occupancy"),
        "pressure": publisher(node, Image, out + "pressure", DISPLAY_QOS),
        "pressure_overlay": publisher(node, Image, out + "pressure_overlay", DISPLAY_QOS),
        "alerts": publisher(node, DiagnosticArray, out + "alerts", EVENTS_QOS),
        "alerts_text": publisher(node, String, out + "alerts_text", EVENTS_QOS),
    }


def subscribe_inputs(node: Node, cfg: CameraConfig, on_depth: Callable, on_info: Callable,
                     on_incompatible: Callable[[str, object], None]) -> str:
    """Subscribe a camera's depth (raw or compressedDepth, by ``cfg.input_transport``) and
    CameraInfo topics with ``cfg.input_qos``; ``on_incompatible(topic, event)`` gets their
    incompatible-QoS events. Returns the depth topic subscribed."""
    qos = INPUT_QOS[cfg.input_qos]
    kind, topic = Image, cfg.depth_topic
    if cfg.input_transport == "compressedDepth":
        kind, topic = CompressedImage, cfg.depth_topic.rstrip("/") + "/compressedDepth"
    for msg_type, sub_topic, callback in ((kind, topic, on_depth),
                                          (CameraInfo, cfg.info_topic, on_info)):
        events = SubscriptionEventCallbacks(
            incompatible_qos=lambda event, t=sub_topic: on_incompatible(t, event))
        node.create_subscription(msg_type, sub_topic, callback, qos, event_callbacks=events)
    return topic
