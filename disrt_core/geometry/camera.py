"""Any depth camera -> the network's 128×54 input, and back (batched torch, CPU or GPU).

The camera is described by its intrinsics ``K`` (raw-frame pixels) and the pose of the bed
(label) frame in the camera optical frame, ``T_cam_bed`` (``p_cam = T_cam_bed @ p_bed``;
optical frame as ROS defines it: x right, y down, z forward along the view).

:func:`raw_to_network` follows SLP's pipeline (SPEC §7.3) with the homography induced by the
bed plane in place of SLP's calibrated ``align_PTr_depth``:

1. each 1 cm pressure-mat (PM) cell (row, col) is the bed point (x_L, y_L, 0); project it
   into the raw frame and sample the depth there bilinearly (``warpPerspective`` in SLP);
2. turn the sampled depth into the height above the bed of the 3D point it measures, and
   express it in SLP's convention, ``d = bed_mm − 1000·h`` (so any camera height and tilt
   looks like SLP's overhead Kinect at 2.101 m); cells without a reading stay 0;
3. resample the 192×84 PM image to 128×56 with corner-aligned bilinear interpolation
   (``scipy.ndimage.zoom(·, 0.665, order=1)``) and crop one column per side -> 128×54.

Missing readings [choice]: SLP interpolates raw zeros together with valid depths, which
turns the border of every hole into phantom surfaces up to a metre above the bed. Here both
interpolations leave invalid samples out (normalised convolution: interpolate value·mask and
mask, divide) and a pixel with under half of its weight on valid samples stays 0. Where a
frame has no holes this is SLP's pipeline exactly.

For SLP itself (camera nearly perpendicular to the bed) step 2 changes the depth by less
than the sensor noise; the exact SLP path with its homographies is in ``geometry.slp``.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from disrt_core.geometry.bedframe import NET_SHAPE, PM_SHAPE, SLP_DANALAB_BED_MM, pm_to_label


def transform_points(T: Tensor, points: Tensor) -> Tensor:
    """Apply rigid transforms T [...,4,4] to points [..., N, 3]."""
    return points @ T[..., :3, :3].transpose(-1, -2) + T[..., None, :3, 3]


def invert_rigid(T: Tensor) -> Tensor:
    """Inverse of rigid transforms [...,4,4]."""
    rot_t = T[..., :3, :3].transpose(-1, -2)
    out = torch.zeros_like(T)
    out[..., :3, :3] = rot_t
    out[..., :3, 3] = -(rot_t @ T[..., :3, 3, None])[..., 0]
    out[..., 3, 3] = 1.0
    return out


def pm_cell_points(device=None, dtype=torch.float32) -> Tensor:
    """Label-frame bed points (x, y, 0) of the PM cells, [192, 84, 3]."""
    rows = torch.arange(PM_SHAPE[0], device=device, dtype=dtype)
    cols = torch.arange(PM_SHAPE[1], device=device, dtype=dtype)
    rr, cc = torch.meshgrid(rows, cols, indexing="ij")
    x, y = pm_to_label(rr, cc)
    return torch.stack([x, y, torch.zeros_like(x)], dim=-1)


def project(K: Tensor, points_cam: Tensor) -> Tensor:
    """Pixel coordinates (u, v) [B,N,2] of camera-frame points [B,N,3]; K [B,3,3]."""
    uvw = points_cam @ K.transpose(-1, -2)
    return uvw[..., :2] / uvw[..., 2:3]


def pixel_rays(K: Tensor, uv: Tensor) -> Tensor:
    """Rays [B,N,3] (z = 1, camera optical frame) through pixels uv [B,N,2] of cameras K
    [B,3,3] (upper triangular, last row 0 0 1): K⁻¹·(u, v, 1) written out, so that no
    matrix inverse (whose error check waits for the GPU) sits in the frame path."""
    fx, skew, cx = K[:, 0, 0, None], K[:, 0, 1, None], K[:, 0, 2, None]
    fy, cy = K[:, 1, 1, None], K[:, 1, 2, None]
    y = (uv[..., 1] - cy) / fy
    x = (uv[..., 0] - cx - skew * y) / fx
    return torch.stack([x, y, torch.ones_like(x)], -1)


def _masked_resample(values: Tensor, valid: Tensor, resample) -> tuple[Tensor, Tensor]:
    """Resample ``values`` where ``valid``, ignoring invalid samples (normalised convolution):
    a result is valid when at least half of its interpolation weight fell on valid samples."""
    weight = resample(valid.to(values))
    total = resample(torch.where(valid, values, torch.zeros_like(values)))
    ok = weight >= 0.5
    return torch.where(ok, total / weight.clamp(min=1e-6), torch.zeros_like(total)), ok


def _zoom_crop(image: Tensor) -> Tensor:
    zoomed = F.interpolate(image[:, None], size=(NET_SHAPE[0], NET_SHAPE[1] + 2),
                           mode="bilinear", align_corners=True)[:, 0]
    return zoomed[:, :, 1:-1]


def pm_to_network(pm: Tensor, valid: Tensor | None = None) -> Tensor:
    """[B,192,84] PM-grid image -> [B,128,54]: zoom 0.665 (order 1, corner-aligned) and crop.

    With ``valid`` (bool [B,192,84]) the invalid cells are left out of the interpolation and
    output pixels with less than half valid support are 0 (see ``raw_to_network``).
    """
    if valid is None:
        return _zoom_crop(pm)
    return _masked_resample(pm, valid, _zoom_crop)[0]


def raw_to_pm_heights(depth_mm: Tensor, K: Tensor, T_cam_bed: Tensor) -> tuple[Tensor, Tensor]:
    """Heights above the bed (m) on the PM grid [B,192,84] and a validity mask.

    depth_mm: [B,H,W] raw frames (any dtype, mm along the optical axis, 0 = no reading);
    K: [B,3,3]; T_cam_bed: [B,4,4].
    """
    batch, height, width = depth_mm.shape
    depth = depth_mm.to(torch.float32)
    bed_points = pm_cell_points(depth.device).reshape(1, -1, 3).expand(batch, -1, -1)
    uv = project(K.to(depth), transform_points(T_cam_bed.to(depth), bed_points))  # [B, N, 2]
    # grid_sample with align_corners=True: -1 and 1 are the centres of the border pixels.
    grid = torch.stack([uv[..., 0] / (width - 1), uv[..., 1] / (height - 1)], -1) * 2 - 1
    grid = grid.reshape(batch, PM_SHAPE[0], PM_SHAPE[1], 2)

    def warp(image: Tensor) -> Tensor:
        return F.grid_sample(image[:, None], grid, mode="bilinear", padding_mode="zeros",
                             align_corners=True)[:, 0]

    sampled, valid = _masked_resample(depth, depth > 0, warp)
    # Back-project the sampled depth along the ray of each cell's pixel, to the bed frame.
    rays = pixel_rays(K.to(depth), uv)  # [B, N, 3], z = 1
    points = rays * (sampled.reshape(batch, -1, 1) / 1000.0)
    T_bed_cam = invert_rigid(T_cam_bed.to(depth))
    heights = transform_points(T_bed_cam, points)[..., 2].reshape(batch, *PM_SHAPE)
    return torch.where(valid, heights, torch.zeros_like(heights)), valid


def raw_to_network(depth_mm: Tensor, K: Tensor, T_cam_bed: Tensor,
                   bed_mm: float = SLP_DANALAB_BED_MM) -> Tensor:
    """Raw depth frames -> network-grid depth [B,128,54] in mm, SLP convention (float32).

    The bed surface is at ``bed_mm``, a surface h metres above it at ``bed_mm − 1000·h``,
    and 0 marks cells without a reading (they become "far above the bed" after
    ``normalize_depth``, as missing pixels do in SLP). Round and cast to uint16 to store.
    """
    heights, valid = raw_to_pm_heights(depth_mm, K, T_cam_bed)
    return pm_to_network(bed_mm - 1000.0 * heights, valid)


def label_to_camera(points_bed: Tensor, T_cam_bed: Tensor) -> Tensor:
    """Label-frame points [B,N,3] (e.g. predicted joints, vertices) -> camera optical frame."""
    return transform_points(T_cam_bed, points_bed)


def overhead_camera_pose(height_m: float, centre_xy: tuple[float, float], *,
                         tilt_rad: tuple[float, float] = (0.0, 0.0),
                         yaw_rad: float = 0.0) -> Tensor:
    """``T_cam_bed`` [4,4] of a camera ``height_m`` above the bed point ``centre_xy`` (label
    frame), looking down (optical z = −z_L) with image rows running from the head end (+y_L)
    to the foot end, then turned by the rotation vector (tilt_x, tilt_y, yaw) in camera axes
    (small tilts about its x and y axes, yaw about its optical axis). Handy for tests, the
    generator and fixed installations.
    """
    import roma

    # Optical axes in the bed frame: x_c = +x_L (columns grow with x_L), y_c = -y_L (rows run
    # from the head end), z_c = -z_L (looking down). R_bed_cam has these as columns.
    r_bed_cam = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])
    tilt = roma.rotvec_to_rotmat(torch.tensor([tilt_rad[0], tilt_rad[1], yaw_rad]))
    r_bed_cam = r_bed_cam @ tilt
    T_bed_cam = torch.eye(4)
    T_bed_cam[:3, :3] = r_bed_cam
    T_bed_cam[:3, 3] = torch.tensor([centre_xy[0], centre_xy[1], height_m])
    return invert_rigid(T_bed_cam)


def median_depth(frames) -> np.ndarray:
    """Per-pixel median of depth frames of one camera (numpy [H,W] each, any unit; 0 or
    non-finite = no reading): the median of each pixel's readings where at least half of
    the frames read it, else 0. A stereo camera's noise is largely new in every frame, so
    over 5 frames it falls by about half (the bed fit's input, ``bed_fit_frames``)."""
    stack = np.stack([np.asarray(f, dtype=np.float32) for f in frames])
    valid = np.isfinite(stack) & (stack > 0)
    enough = 2 * valid.sum(0) >= len(stack)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan pixels: nan, set to 0 below
        med = np.nanmedian(np.where(valid, stack, np.nan), axis=0)
    return np.where(enough, med, 0.0).astype(np.float32)
