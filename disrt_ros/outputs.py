"""What the bed monitor publishes for one camera's frame (topics and QoS in
:mod:`disrt_ros.topics`).

Every answered frame gets its bed state on ``~/occupancy`` (stamped) and
``~/occupancy_text``, and the repositioning monitor's events of that frame on ``~/alerts``
(:mod:`disrt_ros.monitoring`). A frame with someone lying in bed also gets the light
outputs at once (``joints``, ``pose``, ``pose_json``, ``posture``; each built only when
subscribed, the states always so that they stay latched) and, at most ``display_rate_hz``,
the display outputs (``mesh``, ``mesh_cloud``, ``overlay``, ``pressure``,
``pressure_overlay``) on the display thread. An empty bed,
someone sitting on its edge, or a refused frame (no bed, nonsense depth) publishes no body
and removes the skeleton and mesh from RViz once (:func:`disrt_ros.markers.clear_markers`),
so that nothing confident stays on screen; the overlay still shows what the camera sees.
"""

from __future__ import annotations

import numpy as np
from std_msgs.msg import Header, String

from disrt_ros.conversions import (
    FrameResult,
    array_to_image,
    points_to_cloud,
    pose_array,
    pose_json,
    state_message,
)
from disrt_ros.markers import (
    clear_markers,
    joint_markers,
    mesh_marker_bytes,
    overlay_image,
    spread_colours,
)
from disrt_ros.monitoring import publish_events
from disrt_ros.pressure_view import highest_region, pressure_overlay
from disrt_ros.topics import output_publishers

DISPLAY = ("mesh", "mesh_cloud", "overlay", "pressure", "pressure_overlay")


class CameraOutputs:
    """One camera's publishers and how a frame's answer goes out on them."""

    def __init__(self, node, prefix: str, camera: str, joint_names: list[str],
                 faces: np.ndarray, model_id: str, config) -> None:
        self.pubs = output_publishers(node, prefix)
        self.camera, self.joint_names, self.faces = camera, joint_names, faces
        self.model_id, self.config = model_id, config
        self.showing = False  # a skeleton or mesh is on display (cleared once when it ends)

    def state(self, state: str, header: Header, label: str,
              values: dict | None = None) -> None:
        """A state of a frame (``posture``, ``occupancy``): stamped with the frame's header on
        ``~/<state>`` and the bare label on ``~/<state>_text``."""
        self.pubs[state].publish(state_message(header, state, label, self.camera, values))
        self.pubs[state + "_text"].publish(String(data=label))

    def answer(self, result: FrameResult, events: list | None = None) -> bool:
        """Publish a frame's light outputs and the monitor's ``events`` of it; True when the
        display outputs are wanted too (someone in bed and a display topic subscribed)."""
        self.state("occupancy", result.header, result.occupancy,
                   {"present_prob": f"{result.present_prob:.3f}"})
        if events:
            publish_events(self.pubs, result.header, self.camera, events)
        if result.occupancy != "in_bed":
            self.clear(result.header)
            return bool(self.pubs["overlay"].get_subscription_count())
        pubs, lifetime = self.pubs, self.config.marker_lifetime_s
        if pubs["joints"].get_subscription_count():
            rgba = spread_colours(result.joint_spread, result.hypotheses)
            pubs["joints"].publish(joint_markers(result.joints_cam, rgba, result.header,
                                                 lifetime_s=lifetime))
        if pubs["pose"].get_subscription_count():
            pubs["pose"].publish(pose_array(result))
        if pubs["pose_json"].get_subscription_count():
            pubs["pose_json"].publish(pose_json(result, self.joint_names, self.model_id))
        self.state("posture", result.header, result.posture)
        self.showing = True
        return any(pubs[t].get_subscription_count() for t in DISPLAY)

    def clear(self, header: Header) -> None:
        """Remove the skeleton and mesh from RViz, once after they were shown."""
        if not self.showing:
            return
        joints, mesh = clear_markers(header)
        self.pubs["joints"].publish(joints)
        self.pubs["mesh"].publish(mesh)
        self.showing = False

    def display(self, result: FrameResult) -> None:
        """The display outputs of a frame (on the display thread); without a body only the
        overlay, without a skeleton."""
        pubs, cfg = self.pubs, self.config
        body = result.occupancy == "in_bed"
        if body and pubs["mesh"].get_subscription_count():
            pubs["mesh"].publish(mesh_marker_bytes(result.vertices_cam, self.faces,
                                                   result.header,
                                                   lifetime_s=cfg.marker_lifetime_s))
        if body and pubs["mesh_cloud"].get_subscription_count():
            pubs["mesh_cloud"].publish(points_to_cloud(result.vertices_cam, result.header))
        if pubs["overlay"].get_subscription_count():
            rgba = spread_colours(result.joint_spread, result.hypotheses)
            if body:
                image = overlay_image(result.net_image, result.joints_bed, rgba,
                                      scale=cfg.overlay_scale)
            else:  # what the camera sees, without a skeleton
                image = overlay_image(result.net_image, result.joints_bed[:0], rgba[:0],
                                      scale=cfg.overlay_scale, bones=())
            pubs["overlay"].publish(array_to_image(image, "bgr8", result.header))
        if body and result.pressure is not None:
            if pubs["pressure"].get_subscription_count():
                pubs["pressure"].publish(array_to_image(result.pressure, "32FC1",
                                                        result.header))
            if pubs["pressure_overlay"].get_subscription_count():
                image = pressure_overlay(result.pressure, caption=highest_region(
                    result.region_pressure))
                pubs["pressure_overlay"].publish(array_to_image(image, "bgr8", result.header))
