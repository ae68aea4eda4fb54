"""launch/bed_monitor.launch.py (with light stand-ins for launch / launch_ros, which pip
installs lack), config/bed_monitor.yaml (read by rcl's own parser into the real node) and
config/bed_monitor.rviz (its topics are the node's)."""

from __future__ import annotations

import importlib.util
import itertools
import sys
import types
from pathlib import Path

import pytest
import yaml

pytest.importorskip("rclpy")

import rclpy
from rclpy.context import Context
from rclpy.node import Node as RclpyNode

from disrt_ros.params import GLOBAL, INPUT_QOS, INPUT_TRANSPORTS, PER_CAMERA, declare_and_load

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_FILE = ROOT / "launch" / "bed_monitor.launch.py"
YAML_FILE = ROOT / "config" / "bed_monitor.yaml"
RVIZ_FILE = ROOT / "config" / "bed_monitor.rviz"
pytestmark = pytest.mark.ros
_names = (f"launch_test_{i}" for i in itertools.count())


class _Recorder:
    """Stand-in for a launch class: keeps its arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class LaunchConfiguration(_Recorder):
    @property
    def name(self):
        return self.args[0]


class ParameterValue(_Recorder):
    pass


def stand_in_modules() -> dict[str, types.ModuleType]:
    classes = {
        "launch": {"LaunchDescription": type("LaunchDescription", (_Recorder,), {})},
        "launch.actions": {"DeclareLaunchArgument":
                           type("DeclareLaunchArgument", (_Recorder,), {})},
        "launch.conditions": {"IfCondition": type("IfCondition", (_Recorder,), {})},
        "launch.substitutions": {"LaunchConfiguration": LaunchConfiguration},
        "launch_ros": {},
        "launch_ros.actions": {"Node": type("Node", (_Recorder,), {})},
        "launch_ros.parameter_descriptions": {"ParameterValue": ParameterValue},
    }
    modules = {}
    for name, members in classes.items():
        module = types.ModuleType(name)
        module.__dict__.update(members)
        modules[name] = module
    return modules


@pytest.fixture
def description(monkeypatch):
    for name, module in stand_in_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location("bed_monitor_launch", LAUNCH_FILE)
    launch_file = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch_file)
    return launch_file.generate_launch_description()


def test_launch_file_declares_arguments_node_parameters_and_rviz(description):
    entities = description.args[0]
    arguments = {e.args[0]: e.kwargs for e in entities
                 if type(e).__name__ == "DeclareLaunchArgument"}
    assert set(arguments) == {"camera_namespace", "camera_type", "depth_topic", "info_topic",
                              "input_qos", "input_transport", "checkpoint", "device",
                              "params_file", "rviz", "log_level"}
    assert arguments["input_qos"]["default_value"] == GLOBAL["input_qos"][0]
    assert set(arguments["input_qos"]["choices"]) == set(INPUT_QOS)
    assert set(arguments["input_transport"]["choices"]) == set(INPUT_TRANSPORTS)
    assert arguments["rviz"]["default_value"] == "false"
    assert arguments["rviz"]["choices"] == ["true", "false"]
    assert arguments["camera_namespace"]["default_value"] == "/camera/camera"
    assert all(kw.get("description") for kw in arguments.values())
    assert Path(arguments["params_file"]["default_value"]) == YAML_FILE

    monitor, rviz = [e for e in entities if type(e).__name__ == "Node"]
    kw = monitor.kwargs
    assert (kw["package"], kw["executable"], kw["name"]) == (
        "disrt_ros", "disrt-bed-monitor", "bed_monitor")
    assert "remappings" not in kw  # camera topics come through parameters
    params_file, overrides = kw["parameters"]
    assert params_file.name == "params_file"
    declared = set(GLOBAL) | {f"camera.{key}" for key in PER_CAMERA}
    assert set(overrides) <= declared  # only parameters the node declares
    sources = {name: value.args[0].name for name, value in overrides.items()}
    assert sources == {"camera.namespace": "camera_namespace", "camera.depth_topic": "depth_topic",
                       "camera.info_topic": "info_topic", "camera_type": "camera_type",
                       "input_qos": "input_qos", "input_transport": "input_transport",
                       "checkpoint": "checkpoint", "device": "device"}
    assert all(value.kwargs == {"value_type": str} for value in overrides.values())
    assert kw["ros_arguments"][0] == "--log-level"
    # Every launch configuration used is a declared argument.
    used = [kw["ros_arguments"][1].name, params_file.name, *sources.values(),
            rviz.kwargs["condition"].args[0].name]
    assert set(used) <= set(arguments)

    assert (rviz.kwargs["package"], rviz.kwargs["executable"]) == ("rviz2", "rviz2")
    assert rviz.kwargs["arguments"][0] == "-d"
    assert Path(rviz.kwargs["arguments"][1]) == RVIZ_FILE and RVIZ_FILE.is_file()


@pytest.fixture(scope="module")
def context():
    context = Context()
    rclpy.init(context=context)
    yield context
    rclpy.try_shutdown(context=context)


def test_yaml_is_read_by_rcl_and_every_key_is_a_parameter(context):
    node = RclpyNode("bed_monitor", context=context,
                     cli_args=["--ros-args", "--params-file", str(YAML_FILE)])
    try:
        config = declare_and_load(node, check_files=False)
        given = set(node._parameter_overrides)
        declared = set(node._parameters)
    finally:
        node.destroy_node()
    assert given and given <= declared, f"unknown keys in the YAML: {given - declared}"
    (camera,) = config.cameras
    assert camera.depth_topic == "/camera/camera/depth/image_rect_raw"
    assert (camera.input_qos, camera.input_transport) == ("reliable", "raw")
    assert (config.ddim_steps, config.device, config.max_batch) == (5, "auto", 8)
    # Every parameter has its value in the YAML or a commented example there.
    text = YAML_FILE.read_text()
    for name in [*GLOBAL, *PER_CAMERA]:
        assert f"{name}:" in text, name


def test_rviz_config_shows_the_node_outputs():
    config = yaml.safe_load(RVIZ_FILE.read_text())
    displays = {d["Class"].split("/")[1]: d for d in config["Visualization Manager"]["Displays"]}
    topic = {name: d["Topic"]["Value"] for name, d in displays.items() if "Topic" in d}
    assert topic == {"MarkerArray": "/bed_monitor/joints", "Marker": "/bed_monitor/mesh",
                     "PointCloud2": "/bed_monitor/mesh_cloud", "Image": "/bed_monitor/overlay"}
    assert displays["DepthCloud"]["Depth Map Topic"] == "/camera/camera/depth/image_rect_raw"
    # The node publishes reliably: RViz subscribes reliably too (best effort would also match).
    assert all(d["Topic"]["Reliability Policy"] == "Reliable" for d in displays.values()
               if "Topic" in d)
    assert config["Visualization Manager"]["Global Options"]["Fixed Frame"] == \
        "camera_depth_optical_frame"


def test_real_launch_packages_when_installed():
    """Where ROS 2 launch is installed, the file builds a real LaunchDescription."""
    try:
        import launch_ros  # noqa: F401

        import launch
    except ImportError:
        pytest.skip("launch / launch_ros are not installed (pip install)")
    if getattr(launch, "__file__", None) is None:
        pytest.skip("'launch' here is the repository's launch/ folder, not the package")
    spec = importlib.util.spec_from_file_location("bed_monitor_launch_real", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert isinstance(module.generate_launch_description(), launch.LaunchDescription)
