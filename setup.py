"""disrt_ros: in-bed human mesh recovery from an overhead depth camera (ROS 2, ament_python).

Builds with ``colcon build`` in a ROS 2 Jazzy workspace and installs with pip elsewhere
(``scripts/bootstrap.sh`` does that, pinned by ``constraints.txt``).
"""

from glob import glob

from setuptools import find_packages, setup

package_name = "disrt_ros"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(include=["disrt_core", "disrt_core.*", "disrt_ros", "disrt_ros.*"]),
    package_data={"disrt_core": ["weights/*.safetensors", "weights/*.json"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml") + glob("config/*.rviz")
         + glob("config/*.xml")),
    ],
    python_requires=">=3.10",
    install_requires=[
        "setuptools",
        "torch",
        "numpy",
        "scipy",
        "opencv-python-headless",
        "smplx",
        "anny",
        "roma",
        "trimesh",
        "safetensors",
        "PyYAML",
        "tqdm",
        "rosbags",
        "pillow",
    ],
    extras_require={
        # ROS 2 Jazzy client library and messages from PyPI, for machines without a ROS install.
        "ros": [
            "ros-jazzy-rclpy[fastrtps]",
            "ros-jazzy-sensor-msgs",
            "ros-jazzy-visualization-msgs",
            "ros-jazzy-geometry-msgs",
            "ros-jazzy-std-msgs",
            "ros-jazzy-diagnostic-msgs",
        ],
        "realsense": ["pyrealsense2"],
        # tests and lint; colcon builds the package as ROS users do (test/test_colcon_build.py)
        "dev": ["pytest", "ruff", "colcon-common-extensions"],
        # the error-against-fraction plot of training/sim2real.py (SIM2REAL.md)
        "plot": ["matplotlib"],
    },
    zip_safe=True,
    maintainer="disrt_ros developers",
    maintainer_email="dev@disrt-ros.local",
    description="Diffusion-based in-bed human mesh recovery from depth (DiSRT-In-Bed) for ROS 2",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            # disrt_ros tools (ROS side)
            "disrt-demo = disrt_ros.demo:main",
            "disrt-bed-monitor = disrt_ros.node:main",
            "disrt-slp2bag = disrt_ros.tools.slp2bag:main",
            "disrt-synth2bag = disrt_ros.tools.synth2bag:main",
            "disrt-replay = disrt_ros.tools.replay:main",
            "disrt-record = disrt_ros.tools.record:main",
            "disrt-score = disrt_ros.tools.score:main",
            "disrt-realsense = disrt_ros.realsense:main",
            "disrt-fit-bed = disrt_ros.tools.fit_bed:main",
            "disrt-report = disrt_ros.tools.report:main",
            # disrt_core tools (no ROS)
            "disrt-generate = disrt_core.sim.cli:main",
            "disrt-train = disrt_core.train.cli:train_main",
            "disrt-evaluate = disrt_core.train.cli:evaluate_main",
        ],
    },
)
