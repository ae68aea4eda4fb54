"""Shared fixtures of the ROS tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def ros():
    """One rclpy context and executor thread for a test module (:class:`.rosutil.Ros`);
    the process's torch threads are restored afterwards (a node sets them to its
    ``cpu_threads``)."""
    from .rosutil import Ros

    threads = torch.get_num_threads()
    ros = Ros()
    yield ros
    ros.close()
    torch.set_num_threads(threads)
