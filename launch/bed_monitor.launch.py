"""Start the bed monitor node (and optionally RViz) for one overhead depth camera.

    ros2 launch disrt_ros bed_monitor.launch.py camera_namespace:=/camera/camera \\
        device:=cuda checkpoint:=/path/model.safetensors rviz:=true

The node reads ``config/bed_monitor.yaml`` (or ``params_file:=...``); the launch arguments
below override the matching parameters. Without the ``launch`` package (pip installs) the
same node starts with

    disrt-bed-monitor --ros-args --params-file config/bed_monitor.yaml \\
        -p camera.namespace:=/camera/camera -p device:=cuda

Camera topics are set through parameters (``camera.namespace``, or ``camera.depth_topic`` /
``camera.info_topic``), so no remapping is needed; ``--ros-args -r`` remapping of
``camera/depth/...`` works as well. Several beds: list them in ``cameras`` in the YAML.
Frames of 640×480 and more over Fast DDS: export ``FASTRTPS_DEFAULT_PROFILES_FILE`` with
``config/fastdds_large_frames.xml`` for the camera driver and this launch alike (README).
"""

from pathlib import Path  # noqa: I001 (ruff mistakes the launch/ folder for the launch package)

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

# Installed: share/disrt_ros/{launch,config}; source checkout: {launch,config}/.
CONFIG = Path(__file__).resolve().parent.parent / "config"

ARGUMENTS = [
    DeclareLaunchArgument("camera_namespace", default_value="/camera/camera",
                          description="namespace of the depth camera's topics "
                                      "(realsense-ros: /camera/camera)"),
    DeclareLaunchArgument("camera_type", default_value="realsense",
                          choices=["realsense", "kinect", "generic"],
                          description="sets the depth topic name under the namespace"),
    DeclareLaunchArgument("depth_topic", default_value="",
                          description="depth image topic; empty = from namespace and type"),
    DeclareLaunchArgument("info_topic", default_value="",
                          description="CameraInfo topic; empty = <namespace>/depth/camera_info"),
    DeclareLaunchArgument("input_qos", default_value="reliable",
                          choices=["reliable", "sensor_data", "system_default"],
                          description="QoS of the depth and CameraInfo subscriptions: reliable "
                                      "for drivers' defaults, sensor_data for best-effort "
                                      "publishers"),
    DeclareLaunchArgument("input_transport", default_value="raw",
                          choices=["raw", "compressedDepth"],
                          description="raw Image, or image_transport's compressedDepth"),
    DeclareLaunchArgument("checkpoint", default_value="",
                          description="model checkpoint (.safetensors); empty = default weights"),
    DeclareLaunchArgument("device", default_value="auto",
                          description="auto, cpu, cuda or cuda:N"),
    DeclareLaunchArgument("params_file", default_value=str(CONFIG / "bed_monitor.yaml"),
                          description="node parameters (YAML)"),
    DeclareLaunchArgument("rviz", default_value="false", choices=["true", "false"],
                          description="also start RViz with config/bed_monitor.rviz"),
    DeclareLaunchArgument("log_level", default_value="info",
                          description="node log level (debug shows every bad frame)"),
]


#: node parameter -> the launch argument that sets it.
OVERRIDES = {
    "camera.namespace": "camera_namespace",
    "camera.depth_topic": "depth_topic",
    "camera.info_topic": "info_topic",
    "camera_type": "camera_type",
    "input_qos": "input_qos",
    "input_transport": "input_transport",
    "checkpoint": "checkpoint",
    "device": "device",
}


def _text(argument: str) -> ParameterValue:
    # Typed as a string: an empty value or a path is never re-read as YAML.
    return ParameterValue(LaunchConfiguration(argument), value_type=str)


def generate_launch_description() -> LaunchDescription:
    monitor = Node(
        package="disrt_ros",
        executable="disrt-bed-monitor",
        name="bed_monitor",
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {name: _text(argument) for name, argument in OVERRIDES.items()},
        ],
        ros_arguments=["--log-level", LaunchConfiguration("log_level")],
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        arguments=["-d", str(CONFIG / "bed_monitor.rviz")],
        condition=IfCondition(LaunchConfiguration("rviz")),
    )
    return LaunchDescription([*ARGUMENTS, monitor, rviz])
