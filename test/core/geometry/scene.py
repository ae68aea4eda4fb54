"""Exact depth rendering of boxes in the bed frame for the geometry tests."""

from __future__ import annotations

import numpy as np

from disrt_core.data.fixtures import render_boxes
from disrt_core.geometry.slp import KINECT_DEPTH_K, SLP_RAW_DEPTH_SHAPE

KINECT_K = KINECT_DEPTH_K
KINECT_SHAPE = SLP_RAW_DEPTH_SHAPE


def render(K, T_cam_bed, boxes, shape=KINECT_SHAPE) -> np.ndarray:
    """Depth in mm along the optical axis (0 where nothing is hit) of boxes
    ((x0, x1), (y0, y1), (z0, z1)) in the bed (label) frame."""
    return render_boxes(K, T_cam_bed, boxes, shape)
