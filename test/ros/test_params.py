"""Parameter declaration and validation: defaults, per-camera parameters, clear errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("rclpy")

import rclpy
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter

from disrt_core.geometry.bedframe import BED_CENTRE_LABEL
from disrt_ros.params import GLOBAL, PER_CAMERA, ParameterError, declare_and_load

pytestmark = pytest.mark.ros
_names = (f"params_{i}" for i in itertools.count())


@pytest.fixture(scope="module")
def context():
    context = Context()
    rclpy.init(context=context)
    yield context
    rclpy.try_shutdown(context=context)


def load(context, check_files=False, **overrides):
    node = Node(next(_names), context=context, parameter_overrides=[
        Parameter(k, value=v) for k, v in overrides.items()])
    try:
        return declare_and_load(node, check_files=check_files), node.describe_parameters(
            ["ddim_steps", "max_batch"])
    finally:
        node.destroy_node()


def test_defaults_one_realsense_camera_that_finds_its_bed(context):
    config, (steps, batch) = load(context)
    assert (config.ddim_steps, config.hypotheses, config.eta, config.seed) == (5, 1, 0.0, None)
    (camera,) = config.cameras
    assert camera.name == "camera" and camera.bed_region == "auto"
    assert camera.head_side == "auto" and camera.head_fallback == "top"
    assert camera.T_cam_bed is None
    assert camera.depth_topic == "camera/depth/image_rect_raw"
    assert camera.info_topic == "camera/depth/camera_info"
    # bed_region pose without T_cam_bed: 2.101 m over the bed centre, looking down: the
    # centre maps to (0, 0, 2.101).
    config, _ = load(context, **{"camera.bed_region": "pose"})
    centre = config.cameras[0].T_cam_bed @ np.array([*BED_CENTRE_LABEL, 0.0, 1.0])
    np.testing.assert_allclose(centre[:3], [0, 0, 2.101], atol=1e-6)
    # Given corners or a transform, bed_region follows them unless it is set.
    config, _ = load(context, **{"camera.corners_px": [1.0, 2.0, 3.0, 2.0, 3.0, 9.0, 1.0, 9.0]})
    assert config.cameras[0].bed_region == "corners"
    config, _ = load(context, **{"camera.T_cam_bed": np.eye(4).reshape(-1).tolist()})
    assert config.cameras[0].bed_region == "pose"
    # Descriptors: described, ranged, and only the sampling parameters are dynamic.
    assert "DDIM" in steps.description and not steps.read_only
    assert (steps.integer_range[0].from_value, steps.integer_range[0].to_value) == (1, 100)
    assert batch.read_only
    assert all(desc for _, desc, _ in {**GLOBAL, **PER_CAMERA}.values())


def test_camera_type_namespaces_and_explicit_values(context):
    T = np.eye(4)
    T[:3, :3] = [[1, 0, 0], [0, -1, 0], [0, 0, -1]]
    T[:3, 3] = [0.1, 0.2, 2.5]
    config, _ = load(context, camera_type="kinect", cameras=["a", "b"], seed=7,
                     **{"a.namespace": "/k4a", "b.depth_topic": "/x/depth",
                        "b.T_cam_bed": T.reshape(-1).tolist(),
                        "a.intrinsics": [500.0, 501.0, 320.0, 240.0],
                        "b.bed_region": "corners",
                        "b.corners_px": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]})
    a, b = config.cameras
    assert config.seed == 7
    assert a.depth_topic == "/k4a/depth/image_raw" and a.info_topic == "/k4a/depth/camera_info"
    assert b.depth_topic == "/x/depth" and b.info_topic == "b/depth/camera_info"
    np.testing.assert_array_equal(a.K_fallback, [[500, 0, 320], [0, 501, 240], [0, 0, 1]])
    assert b.bed_region == "corners" and b.T_cam_bed is None
    np.testing.assert_array_equal(b.corners_px, [[1, 2], [3, 4], [5, 6], [7, 8]])
    config, _ = load(context, **{"camera.T_cam_bed": T.reshape(-1).tolist()})
    np.testing.assert_array_equal(config.cameras[0].T_cam_bed, T)


@pytest.mark.parametrize("overrides,message", [
    ({"camera.bed_region": "floor"}, "'camera.bed_region' is 'floor'; use one of pose"),
    ({"camera.head_side": "up"}, "'camera.head_side'"),
    ({"camera_type": "lidar"}, "'camera_type' is 'lidar'"),
    ({"camera.T_cam_bed": [1.0] * 16}, "not a rigid transform"),
    ({"camera.T_cam_bed": [1.0, 0.0]}, "needs 16 numbers"),
    ({"camera.bed_region": "corners"}, "'camera.corners_px' needs 8 numbers"),
    ({"camera.intrinsics": [500.0, 500.0]}, r"needs \[fx, fy, cx, cy\]"),
    ({"camera.intrinsics": [0.0, 500.0, 1.0, 1.0]}, "focal lengths must be positive"),
    ({"camera.camera_height_m": 2}, "decimal point"),
    ({"ddim_steps": 0}, "'ddim_steps'"),
    ({"precision": "int8"}, "'precision' is 'int8'"),
    ({"compile": "fast"}, "'compile' is 'fast'"),
    ({"cuda_graphs": True, "device": "cpu"}, "'cuda_graphs' needs a CUDA device"),
    ({"cameras": ["a", "a"]}, "distinct camera names"),
    ({"cameras": ["1st"]}, "must start with a letter"),
    ({"input_qos": "best_effort"}, "'input_qos' is 'best_effort'; use one of reliable, "
                                   "sensor_data, system_default"),
    ({"camera.input_transport": "theora"}, "'camera.input_transport' is 'theora'"),
])
def test_invalid_values_name_the_parameter_and_the_fix(context, overrides, message):
    with pytest.raises(ParameterError, match=message):
        load(context, **overrides)


def test_input_qos_and_transport_global_and_per_camera(context):
    config, _ = load(context, cameras=["a", "b"], input_transport="compressedDepth",
                     **{"b.input_qos": "sensor_data", "b.input_transport": "raw"})
    a, b = config.cameras
    assert (a.input_qos, a.input_transport) == ("reliable", "compressedDepth")
    assert (b.input_qos, b.input_transport) == ("sensor_data", "raw")


def test_device_and_checkpoint_are_checked_at_start(context, tmp_path):
    with pytest.raises(ParameterError, match="'device' is 'tpu'; use auto, cpu"):
        load(context, check_files=True, device="tpu", checkpoint=__file__)
    with pytest.raises(ParameterError, match=r"checkpoint.*not found.*checkpoint:="):
        load(context, check_files=True, checkpoint=str(tmp_path / "missing.safetensors"))
    config, _ = load(context, check_files=True, device="cpu", checkpoint=__file__)
    assert config.device == "cpu" and config.checkpoint.name == "test_params.py"
