"""Depth that makes no sense over a bed is named, with its likely cause."""

import numpy as np
import torch

from disrt_core.geometry.bedframe import NET_SHAPE
from disrt_core.geometry.plausibility import bed_region_problem, units_problem


def test_units_of_the_depth_image():
    metres = np.full((10, 10), 2.4, np.float32)
    assert units_problem(metres, "32FC1") is None
    assert "millimetres" in units_problem(metres * 1000, "32FC1")
    millimetres = np.full((10, 10), 2400, np.uint16)
    assert units_problem(millimetres, "16UC1") is None
    assert "metres" in units_problem(np.full((10, 10), 2, np.uint16), "16UC1")
    assert units_problem(np.zeros((10, 10), np.float32), "32FC1") is None  # empty: not units


def test_bed_region_nearer_farther_or_unseen():
    bed = 2101.0
    frames = torch.full((5, *NET_SHAPE), bed)
    frames[1, 20:110, 15:40] = bed - 250.0  # a person lying there: fine
    frames[2] = bed + 1300.0  # the floor 1.3 m beyond the configured mattress (camera at 3 m)
    frames[3] = bed - 1000.0  # something 1 m nearer than the mattress
    frames[4, :, :20] = 0  # ...and a frame mostly without readings
    frames[4, :100] = 0
    problems = bed_region_problem(frames, bed)
    assert problems[0] is None and problems[1] is None
    assert "farther" in problems[2] and "1.30 m" in problems[2]
    assert "nearer" in problems[3]
    assert "readings" in problems[4]
