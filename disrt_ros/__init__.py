"""disrt_ros: the ROS 2 side of disrt_ros (node, message conversions, bag and camera tools).

Everything numerical lives in :mod:`disrt_core`; this package only moves data between ROS
messages and it.
"""
