"""A tiny exact depth renderer for geometry tests: axis-aligned boxes in the bed frame."""

from __future__ import annotations

import numpy as np

KINECT_K = np.array([[367.8, 0.0, 208.1], [0.0, 367.8, 259.7], [0.0, 0.0, 1.0]])
KINECT_SHAPE = (512, 424)


def render(K, T_cam_bed, boxes, shape=KINECT_SHAPE):
    """Depth in mm along the optical axis (float64; 0 where nothing is hit) of boxes given as
    ((x0, x1), (y0, y1), (z0, z1)) in the bed (label) frame, by the slab method."""
    T_cam_bed = np.asarray(T_cam_bed, np.float64)
    v, u = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    rays = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(K).T  # z = 1 (camera)
    rot, t = T_cam_bed[:3, :3], T_cam_bed[:3, 3]
    origin = -rot.T @ t  # camera centre in the bed frame
    dirs = rays @ rot  # ray directions in the bed frame; parameter s = depth in metres
    best = np.full(shape, np.inf)
    for box in boxes:
        lo = np.array([b[0] for b in box])
        hi = np.array([b[1] for b in box])
        with np.errstate(divide="ignore", invalid="ignore"):
            t0 = (lo - origin) / dirs
            t1 = (hi - origin) / dirs
        near = np.nanmax(np.minimum(t0, t1), axis=-1)
        far = np.nanmin(np.maximum(t0, t1), axis=-1)
        hit = (far >= near) & (near > 0)
        best = np.where(hit & (near < best), near, best)
    return np.where(np.isfinite(best), best * 1000.0, 0.0)
