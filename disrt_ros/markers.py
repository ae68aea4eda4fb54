"""What the node draws: skeleton and mesh markers for RViz, and the depth overlay image.

Colours encode the per-joint uncertainty, the RMS spread of the K sampled hypotheses around
their mean (``Prediction.joint_spread``): green at or below ``SPREAD_LOW_M``, yellow half
way, red at or above ``SPREAD_HIGH_M`` [choice: 2 cm and 10 cm bracket the paper's ~5 cm
mean joint error]. With a single hypothesis there is no spread to show and every joint is
drawn in ``NEUTRAL_RGBA``.

Markers are in the frame of the header passed in (the node uses the depth image's optical
frame). Ids are fixed per namespace, so each new result replaces the previous one; a
``lifetime`` makes a stale skeleton vanish when results stop coming.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from disrt_core.body.skeleton import SMPL_BONES
from disrt_core.geometry.bedframe import label_to_net

SPREAD_LOW_M = 0.02
SPREAD_HIGH_M = 0.10
NEUTRAL_RGBA = (0.2, 0.6, 1.0, 1.0)
MESH_RGBA = (0.85, 0.75, 0.65, 0.8)
JOINT_RADIUS_M = 0.04
BONE_WIDTH_M = 0.015


def spread_colours(spread_m: np.ndarray, hypotheses: int) -> np.ndarray:
    """RGBA [N,4] in [0,1] per joint: green -> yellow -> red with the spread (metres)."""
    spread_m = np.asarray(spread_m, dtype=np.float64)
    if hypotheses <= 1:
        return np.tile(np.asarray(NEUTRAL_RGBA), (spread_m.shape[0], 1))
    t = np.clip((spread_m - SPREAD_LOW_M) / (SPREAD_HIGH_M - SPREAD_LOW_M), 0.0, 1.0)
    red = np.clip(2.0 * t, 0.0, 1.0)
    green = np.clip(2.0 - 2.0 * t, 0.0, 1.0)
    return np.stack([red, green, np.zeros_like(t), np.ones_like(t)], axis=1)


def _points(xyz: np.ndarray) -> list[Point]:
    return [Point(x=x, y=y, z=z) for x, y, z in np.asarray(xyz, dtype=np.float64).tolist()]


def _colours(rgba: np.ndarray) -> list[ColorRGBA]:
    return [ColorRGBA(r=r, g=g, b=b, a=a) for r, g, b, a in np.asarray(rgba, float).tolist()]


def _marker(header: Header, ns: str, marker_id: int, kind: int, lifetime_s: float) -> Marker:
    marker = Marker(header=header, ns=ns, id=marker_id, type=kind, action=Marker.ADD)
    marker.pose.orientation.w = 1.0
    seconds = int(lifetime_s)
    marker.lifetime = Duration(sec=seconds, nanosec=round((lifetime_s - seconds) * 1e9))
    return marker


def joint_markers(joints: np.ndarray, rgba: np.ndarray, header: Header, *, ns: str = "joints",
                  bones: Sequence[tuple[int, int]] = SMPL_BONES,
                  lifetime_s: float = 1.0) -> MarkerArray:
    """24 joint spheres (one SPHERE_LIST, id 0) and the bones (one LINE_LIST, id 1).

    joints [J,3] metres in ``header.frame_id``; rgba [J,4]; each bone is drawn in the colours
    of its two joints.
    """
    spheres = _marker(header, ns, 0, Marker.SPHERE_LIST, lifetime_s)
    spheres.scale.x = spheres.scale.y = spheres.scale.z = JOINT_RADIUS_M
    spheres.points = _points(joints)
    spheres.colors = _colours(rgba)
    spheres.color = spheres.colors[0]  # used by viewers that ignore per-point colours
    lines = _marker(header, ns, 1, Marker.LINE_LIST, lifetime_s)
    lines.scale.x = BONE_WIDTH_M
    ends = np.asarray(bones, dtype=np.int64).reshape(-1)
    lines.points = _points(joints[ends])
    lines.colors = _colours(rgba[ends])
    lines.color = lines.colors[0]
    return MarkerArray(markers=[spheres, lines])


def mesh_marker(vertices: np.ndarray, faces: np.ndarray, header: Header, *, ns: str = "mesh",
                rgba: Sequence[float] = MESH_RGBA, lifetime_s: float = 1.0) -> Marker:
    """TRIANGLE_LIST of the body mesh: vertices [V,3] metres, faces [F,3] indices."""
    marker = _marker(header, ns, 0, Marker.TRIANGLE_LIST, lifetime_s)
    marker.scale.x = marker.scale.y = marker.scale.z = 1.0
    marker.color = ColorRGBA(r=rgba[0], g=rgba[1], b=rgba[2], a=rgba[3])
    marker.points = _points(np.asarray(vertices)[np.asarray(faces).reshape(-1)])
    return marker


_SENTINEL = (1.2345678901234567e-300, -9.876543210987654e299, 3.1415926535897932e-123)


def mesh_marker_bytes(vertices: np.ndarray, faces: np.ndarray, header: Header, *,
                      ns: str = "mesh", rgba: Sequence[float] = MESH_RGBA,
                      lifetime_s: float = 1.0) -> bytes:
    """The same message as :func:`mesh_marker`, already serialized (CDR), for
    ``Publisher.publish(bytes)``: the points are written by numpy instead of one Python
    ``Point`` each (a 40k-point SMPL mesh: ~1 ms instead of ~200 ms, which would also hold
    the GIL against the inference thread).

    A one-point template marker is serialized by rclpy and its point replaced by all the
    mesh's points; 24 bytes per point keep the 8-byte CDR alignment of what follows.
    """
    from rclpy.serialization import serialize_message

    template = mesh_marker(np.asarray([_SENTINEL]), np.zeros((1, 1), np.int64), header, ns=ns,
                           rgba=rgba, lifetime_s=lifetime_s)
    raw = serialize_message(template)
    little = raw[1] in (1, 3)  # CDR encapsulation: 0x0001 / 0x0003 = little endian
    fmt = "<" if little else ">"
    point = np.asarray(_SENTINEL, dtype=fmt + "f8").tobytes()
    at = raw.find(point)
    one = np.asarray([1], dtype=fmt + "u4").tobytes()
    count_at = next(c for c in (at - 4, at - 8) if raw[c:c + 4] == one)
    points = np.asarray(vertices, dtype=fmt + "f8")[np.asarray(faces).reshape(-1)]
    count = np.asarray([points.shape[0]], dtype=fmt + "u4").tobytes()
    return b"".join([raw[:count_at], count, raw[count_at + 4:at], points.tobytes(),
                     raw[at + len(point):]])


def clear_markers(header: Header) -> tuple[MarkerArray, Marker]:
    """What removes the skeleton and the mesh from RViz (an empty bed, a refused frame):
    a DELETEALL marker array for ``joints`` and a DELETE of the ``mesh`` marker."""
    wipe = Marker(header=header, action=Marker.DELETEALL)
    mesh = Marker(header=header, ns="mesh", id=0, action=Marker.DELETE)
    return MarkerArray(markers=[wipe]), mesh


def marker_points(marker: Marker) -> np.ndarray:
    """Points of a marker as [N,3] (for tests and downstream tools)."""
    return np.array([[p.x, p.y, p.z] for p in marker.points], dtype=np.float64).reshape(-1, 3)


def overlay_image(net_image: np.ndarray, joints_bed: np.ndarray, rgba: np.ndarray, *,
                  scale: int = 4, bones: Sequence[tuple[int, int]] = SMPL_BONES) -> np.ndarray:
    """bgr8 [128·scale, 54·scale, 3]: the network input (normalised depth, bed = white, body
    darker) with the skeleton projected onto the network grid.

    net_image [128,54] in [0,1]; joints_bed [J,3] label frame (metres); rgba [J,4].
    """
    gray = (np.clip(np.asarray(net_image, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
    big = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    image = cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)
    rows, cols = label_to_net(joints_bed[:, 0], joints_bed[:, 1])
    # Pixel (r, c) covers [c·s, (c+1)·s) horizontally: its centre is (c + 0.5)·s.
    px = np.stack([(cols + 0.5) * scale, (rows + 0.5) * scale], axis=1)
    px = np.clip(np.nan_to_num(px), -1e4, 1e4).round().astype(int)
    bgr = (np.asarray(rgba)[:, 2::-1] * 255).round().astype(int)
    thickness = max(1, scale // 2)
    for a, b in bones:
        cv2.line(image, tuple(px[a]), tuple(px[b]), tuple(bgr[b].tolist()), thickness,
                 cv2.LINE_AA)
    for p, colour in zip(px, bgr):
        cv2.circle(image, tuple(p), thickness + 1, tuple(colour.tolist()), -1, cv2.LINE_AA)
    return image
