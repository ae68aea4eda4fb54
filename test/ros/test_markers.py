"""Skeleton / mesh markers and the overlay image."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")

from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from disrt_core.body.skeleton import SMPL_BONES
from disrt_core.geometry.bedframe import net_to_label
from disrt_ros.markers import (
    NEUTRAL_RGBA,
    SPREAD_HIGH_M,
    SPREAD_LOW_M,
    joint_markers,
    marker_points,
    mesh_marker,
    mesh_marker_bytes,
    overlay_image,
    spread_colours,
)


def test_spread_colours_green_yellow_red_and_neutral():
    spread = np.array([0.0, SPREAD_LOW_M, (SPREAD_LOW_M + SPREAD_HIGH_M) / 2, SPREAD_HIGH_M, 1.0])
    rgba = spread_colours(spread, hypotheses=5)
    np.testing.assert_allclose(rgba[:, :3], [[0, 1, 0], [0, 1, 0], [1, 1, 0], [1, 0, 0],
                                             [1, 0, 0]])
    np.testing.assert_allclose(rgba[:, 3], 1.0)
    # A quarter of the way: more green than red.
    quarter = spread_colours(np.array([SPREAD_LOW_M + (SPREAD_HIGH_M - SPREAD_LOW_M) / 4]), 5)
    np.testing.assert_allclose(quarter[0, :3], [0.5, 1.0, 0.0])
    np.testing.assert_allclose(spread_colours(np.zeros(3), hypotheses=1),
                               np.tile(NEUTRAL_RGBA, (3, 1)))


def test_joint_markers_spheres_and_bones():
    joints = np.arange(72, dtype=np.float64).reshape(24, 3) / 10
    rgba = spread_colours(np.linspace(0, 0.2, 24), 4)
    header = Header(frame_id="cam")
    header.stamp.sec = 7
    array = joint_markers(joints, rgba, header, lifetime_s=1.5)
    spheres, lines = array.markers
    assert spheres.type == Marker.SPHERE_LIST and lines.type == Marker.LINE_LIST
    assert (spheres.id, lines.id) == (0, 1) and spheres.ns == lines.ns
    for m in (spheres, lines):
        assert m.header.frame_id == "cam" and m.header.stamp.sec == 7
        assert (m.lifetime.sec, m.lifetime.nanosec) == (1, 500_000_000)
        assert m.pose.orientation.w == 1.0
    np.testing.assert_allclose(marker_points(spheres), joints)
    assert len(lines.points) == 2 * len(SMPL_BONES) == 46
    parent, child = SMPL_BONES[10]
    np.testing.assert_allclose(marker_points(lines)[20:22], joints[[parent, child]])
    assert lines.colors[21].r == pytest.approx(rgba[child, 0])
    assert spheres.colors[23].r == pytest.approx(1.0) and spheres.colors[0].g == 1.0


def test_mesh_marker_is_vertices_indexed_by_faces():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0.5]], float)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    marker = mesh_marker(vertices, faces, Header(frame_id="cam"))
    assert marker.type == Marker.TRIANGLE_LIST and marker.scale.x == 1.0
    np.testing.assert_allclose(marker_points(marker), vertices[[0, 1, 2, 0, 2, 3]])
    assert 0 < marker.color.a <= 1


@pytest.mark.parametrize("frame_id", ["", "c", "cam", "camera_depth_optical_frame", "x" * 8])
def test_serialized_mesh_marker_equals_the_message(frame_id):
    """The numpy-built CDR decodes to the same Marker as rclpy's own serialization (the
    frame id's length shifts the alignment of everything after it)."""
    rng = np.random.default_rng(1)
    vertices, faces = rng.normal(size=(50, 3)), rng.integers(0, 50, size=(97, 3))
    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = 3, 4
    raw = mesh_marker_bytes(vertices, faces, header, ns="body", lifetime_s=0.25)
    expected = deserialize_message(serialize_message(
        mesh_marker(vertices, faces, header, ns="body", lifetime_s=0.25)), Marker)
    decoded = deserialize_message(raw, Marker)
    assert decoded == expected
    np.testing.assert_array_equal(marker_points(decoded), vertices[faces.reshape(-1)])


def test_overlay_draws_joints_at_their_network_pixels():
    scale = 4
    net = np.full((128, 54), 0.5, np.float32)
    rows, cols = np.array([20.0, 100.0]), np.array([10.0, 40.0])
    x, y = net_to_label(rows, cols)
    joints = np.stack([x, y, np.zeros(2)], axis=1)
    rgba = np.array([[1.0, 0, 0, 1], [0, 0, 1.0, 1]])  # red, blue
    image = overlay_image(net, joints, rgba, scale=scale, bones=[(0, 1)])
    assert image.shape == (128 * scale, 54 * scale, 3) and image.dtype == np.uint8
    # Centre of pixel (r, c) is ((c + .5)·s, (r + .5)·s) in the big image; bgr order.
    red = image[int(20.5 * scale), int(10.5 * scale)]
    blue = image[int(100.5 * scale), int(40.5 * scale)]
    np.testing.assert_array_equal(red, [0, 0, 255])
    np.testing.assert_array_equal(blue, [255, 0, 0])
    # Background keeps the depth grey (0.5 -> 127) away from the skeleton.
    np.testing.assert_array_equal(image[2, 200], [127, 127, 127])
