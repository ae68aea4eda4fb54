"""SLP's own preprocessing: raw Kinect depth -> the 128×54 network grid (SPEC §7.2, §7.3).

SLP ships, per subject, a homography ``align_PTr_depth`` (3×3, float64) that maps a raw
depth pixel (x = column, y = row, OpenCV's convention) to a pressure-mat (PM) pixel. The
pipeline that made the cleaned arrays DiSRT trains on (BodyPressure) is, per frame:

1. ``cv2.warpPerspective(depth, H/‖H‖_F, dsize=(84, 192))`` (bilinear, zeros outside);
2. simLab only: keep PM rows 0:188 (its mat sits 4 cm off) and zero-pad back to 192;
3. ``scipy.ndimage.zoom(·, 0.665, order=1)`` -> 128×56; 4. crop ``[:, 1:-1]`` -> 128×54;
5. danaLab cleaned files only: :func:`clean_depth_bodypressure` (optional live).

The values stay raw depths in mm (the camera is nearly perpendicular to the bed, so
``z_L ≈ bed_mm − d``), bed at ~2101 mm (danaLab) or ~2264 mm (simLab); normalise with
``bedframe.normalize_depth``. :func:`slp_raw_to_network` is the reference (OpenCV + SciPy,
one frame); :func:`slp_raw_to_network_torch` is the same maths batched on any device
(equal up to OpenCV's 1/32-pixel coordinate rounding). BodyPressure cast the warped
uint16 frame to int16 before zooming; ``integer=True`` reproduces that rounding exactly.

Mapping back (display): :func:`slp_camera_pose` turns the homography and the Kinect's
intrinsics into ``T_cam_bed`` (bed/label frame -> camera optical frame), so predicted
joints and vertices go back to the camera with ``geometry.camera.label_to_camera`` and the
generic ``geometry.camera.raw_to_network`` also works on SLP frames.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from disrt_core.geometry.bedframe import NET_SHAPE, O_T_SLP, PM_CELL_M, PM_SHAPE, PM_ZOOM

#: SLP's Kinect v2 depth intrinsics (portrait frame, 512 rows × 424 cols), px (SPEC §7.2).
KINECT_DEPTH_K = np.array([[367.8, 0.0, 208.1], [0.0, 367.8, 259.7], [0.0, 0.0, 1.0]])
SLP_RAW_DEPTH_SHAPE = (512, 424)  # rows, cols
SIMLAB_PM_ROWS = 188  # simLab keeps PM rows 0:188 (4 cm mat adjustment), SPEC §7.3 step 2

#: PM pixel (x = col, y = row, 1) -> label (x_L, y_L, 1) in metres (SPEC §1.4).
PM_TO_LABEL = np.array([[PM_CELL_M, 0.0, O_T_SLP[0]],
                        [0.0, -PM_CELL_M, -O_T_SLP[1]],
                        [0.0, 0.0, 1.0]])


def homography_a_to_b(p_a: np.ndarray, p_b: np.ndarray | None = None) -> np.ndarray:
    """SLP's A->B homography ``inv(P_B)·P_A / ‖·‖_F`` from the per-modality ``align_PTr_*``
    matrices (modality -> PM); ``p_b=None`` is the PM itself (identity) (SPEC §7.2)."""
    h = np.asarray(p_a, np.float64)
    if p_b is not None:
        h = np.linalg.inv(np.asarray(p_b, np.float64)) @ h
    return h / np.linalg.norm(h)


def _check_frame(depth_raw: np.ndarray, homography: np.ndarray) -> None:
    if np.ndim(depth_raw) != 2:
        raise ValueError(f"depth frame must be 2-D (rows, cols), got shape {np.shape(depth_raw)}")
    if np.shape(homography) != (3, 3) or not np.isfinite(homography).all():
        raise ValueError(f"homography must be a finite 3x3 matrix, got {np.shape(homography)}")


def warp_to_pm(depth_raw: np.ndarray, homography: np.ndarray, *,
               integer: bool = False) -> np.ndarray:
    """Step 1: raw depth (rows × cols, mm) -> PM grid (192, 84), bilinear, 0 outside.

    ``integer=False``: warp in float32 (SPEC). ``integer=True``: warp the uint16 frame and
    cast to int16 as BodyPressure did when it wrote the cleaned arrays.
    """
    import cv2

    _check_frame(depth_raw, homography)
    h = np.asarray(homography, np.float64)
    h = h / np.linalg.norm(h)
    dsize = (PM_SHAPE[1], PM_SHAPE[0])  # OpenCV wants (width, height)
    if integer:
        return cv2.warpPerspective(np.asarray(depth_raw).astype(np.uint16), h,
                                   dsize).astype(np.int16)
    return cv2.warpPerspective(np.asarray(depth_raw, np.float32), h, dsize)


def simlab_mat_adjust(pm: np.ndarray) -> np.ndarray:
    """Step 2 (simLab only): keep rows 0:188, zero-pad the bottom back to 192 rows."""
    out = np.zeros_like(pm)
    out[:SIMLAB_PM_ROWS] = pm[:SIMLAB_PM_ROWS]
    return out


def pm_zoom_crop(pm: np.ndarray) -> np.ndarray:
    """Steps 3-4: ``scipy.ndimage.zoom(pm, 0.665, order=1)[:, 1:-1]`` -> (128, 54), same dtype."""
    from scipy.ndimage import zoom

    return zoom(pm, PM_ZOOM, order=1)[:, 1:-1]


def slp_raw_to_network(depth_raw: np.ndarray, homography: np.ndarray, *, simlab: bool = False,
                       clean: bool = False, integer: bool = False) -> np.ndarray:
    """One raw SLP depth frame (512×424 uint16 mm) -> network-grid depth (128, 54) float32 mm.

    SPEC §7.3 steps 1, (2 if ``simlab``), 3, 4, (5 if ``clean``). With ``integer=True`` and
    ``clean=True`` this reproduces BodyPressure's ``depth_*_cleaned_0to102.npy`` arrays.
    """
    pm = warp_to_pm(depth_raw, homography, integer=integer)
    if simlab:
        pm = simlab_mat_adjust(pm)
    net = pm_zoom_crop(pm).astype(np.float32)
    return clean_depth_bodypressure(net) if clean else net


def clean_depth_bodypressure(depth: np.ndarray) -> np.ndarray:
    """BodyPressure's clean-up of a (128, 54) danaLab frame in mm (SPEC §7.3 step 5), a copy.

    Reproduces ``PreprocessingLib.clean_depth_images`` including its quirks: per column,
    1 + (number of rows 0..14 outside [1800, 2200] mm) top rows take the mode of the top 20
    rows (±10 columns, values within ±50 mm of the top rows' overall mode); then rows
    ``-i`` for i < 1 + (number of rows -1..-14 outside [1700, 2300]) take the mode of rows
    -21..-2 (±40 mm) — ``-0`` is row 0, so row 0 ends with the bottom mode; a column with
    no usable mode is left alone. Last, pixels < 1800 mm in rows 2..39, cols 2..51 ("hair")
    take the minimum value ≥ 1800 of rows r-2..r+1, cols c-2..c+1 of the frame so far.
    """
    if np.shape(depth) != NET_SHAPE:
        raise ValueError(f"clean_depth_bodypressure expects {NET_SHAPE}, got {np.shape(depth)}")
    orig = np.asarray(depth, np.float32)
    out = orig.copy()
    width = NET_SHAPE[1]
    overall_mode = int(np.argmax(np.bincount(np.clip(orig[:20], 0, None).astype(np.int64)
                                             .ravel())))

    def local_mode(rows: slice, col: int, tol: int) -> int | None:
        values = orig[rows, max(0, col - 10):min(53, col + 10)].ravel().astype(np.int64)
        values = values[(values < overall_mode + tol) & (values > overall_mode - tol)]
        return int(np.argmax(np.bincount(values))) if values.size else None

    for col in range(width):
        mode_top = local_mode(slice(0, 20), col, 50)
        if mode_top is None:
            continue
        top = orig[:15, col]
        count = 1 + int(((top < 1800) | (top > 2200)).sum())
        out[:count, col] = mode_top
        mode_bottom = local_mode(slice(-21, -1), col, 40)
        if mode_bottom is None:
            continue
        # Rows -0 (= row 0, already overwritten above), -1, ..., -14 of the current frame.
        probe = out[[-i for i in range(15)], col]
        count_b = 1 + int(((probe < 1700) | (probe > 2300)).sum())
        out[[-i for i in range(count_b)], col] = mode_bottom
    pre_hair = out.copy()
    for row in range(2, 40):
        for col in range(2, 52):
            if pre_hair[row, col] < 1800:
                box = pre_hair[row - 2:row + 2, col - 2:col + 2].ravel()
                box = box[box >= 1800]
                if box.size:
                    out[row, col] = box.min()
    return out


# --- batched torch version -----------------------------------------------------------------

def _pm_grid(homography: Tensor, height: int, width: int) -> Tensor:
    """grid_sample grid [B,192,84,2] of the raw pixels each PM cell reads (inverse warp)."""
    rows = torch.arange(PM_SHAPE[0], dtype=homography.dtype, device=homography.device)
    cols = torch.arange(PM_SHAPE[1], dtype=homography.dtype, device=homography.device)
    rr, cc = torch.meshgrid(rows, cols, indexing="ij")
    dst = torch.stack([cc, rr, torch.ones_like(cc)], -1).reshape(1, -1, 3)
    src = dst @ torch.linalg.inv(homography).transpose(-1, -2)  # [B, N, 3]
    uv = src[..., :2] / src[..., 2:3]
    grid = torch.stack([uv[..., 0] / (width - 1), uv[..., 1] / (height - 1)], -1) * 2 - 1
    return grid.reshape(-1, PM_SHAPE[0], PM_SHAPE[1], 2)


def slp_raw_to_network_torch(depth_raw: Tensor, homography: Tensor, *,
                             simlab: bool = False) -> Tensor:
    """Batched :func:`slp_raw_to_network` (steps 1-4): depth [B,H,W] (any dtype, mm) and
    homographies [B,3,3] (raw pixel -> PM pixel) -> [B,128,54] float32 mm, on their device."""
    from disrt_core.geometry.camera import pm_to_network

    if depth_raw.ndim != 3 or homography.shape[-2:] != (3, 3):
        raise ValueError(f"expected depth [B,H,W] and homography [B,3,3], got "
                         f"{tuple(depth_raw.shape)} and {tuple(homography.shape)}")
    depth = depth_raw.to(torch.float32)
    grid = _pm_grid(homography.to(depth.device, torch.float64), *depth.shape[1:])
    pm = torch.nn.functional.grid_sample(depth[:, None], grid.to(torch.float32), mode="bilinear",
                                         padding_mode="zeros", align_corners=True)[:, 0]
    if simlab:
        pm = torch.cat([pm[:, :SIMLAB_PM_ROWS], torch.zeros_like(pm[:, SIMLAB_PM_ROWS:])], 1)
    return pm_to_network(pm)


# --- homography <-> camera pose ------------------------------------------------------------

def slp_homography(T_cam_bed: np.ndarray, K: np.ndarray = KINECT_DEPTH_K) -> np.ndarray:
    """The raw-pixel -> PM-pixel homography of a camera (K, ``T_cam_bed``) for the bed plane
    z_L = 0: inverse of ``K·[r1 r2 t]·PM_TO_LABEL``, Frobenius-normalised like SLP's."""
    T = np.asarray(T_cam_bed, np.float64)
    pm_to_pixel = np.asarray(K, np.float64) @ np.column_stack(
        [T[:3, 0], T[:3, 1], T[:3, 3]]) @ PM_TO_LABEL
    h = np.linalg.inv(pm_to_pixel)
    return h / np.linalg.norm(h)


def slp_camera_pose(homography: np.ndarray, K: np.ndarray = KINECT_DEPTH_K) -> np.ndarray:
    """``T_cam_bed`` [4,4] (label frame -> camera optical frame, m) implied by a raw-pixel ->
    PM-pixel homography and the intrinsics: the plane-pose decomposition of
    ``K⁻¹·(PM_TO_LABEL·H)⁻¹ = λ[r1 r2 t]`` (Zhang), re-orthonormalised by SVD.

    The homography only knows the bed plane: the pose is as good as SLP's calibration
    (a few mm at the bed); ``t_z`` comes out near the camera-bed distance (2.101 m).
    """
    h = np.asarray(homography, np.float64)
    if h.shape != (3, 3) or not np.isfinite(h).all():
        raise ValueError(f"homography must be a finite 3x3 matrix, got {h.shape}")
    m = np.linalg.inv(np.asarray(K, np.float64)) @ np.linalg.inv(PM_TO_LABEL @ h)
    scale = 2.0 / (np.linalg.norm(m[:, 0]) + np.linalg.norm(m[:, 1]))
    m = m * scale
    if m[2, 2] < 0:  # the bed lies in front of the camera
        m = -m
    r = np.column_stack([m[:, 0], m[:, 1], np.cross(m[:, 0], m[:, 1])])
    u, _, vt = np.linalg.svd(r)
    r = u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt
    T = np.eye(4)
    T[:3, :3] = r
    T[:3, 3] = m[:, 2]
    return T


def raw_pixels_to_pm(uv: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """Raw pixels (x = col, y = row) [...,2] -> PM pixels (col, row) [...,2] (float)."""
    uv1 = np.concatenate([uv, np.ones_like(uv[..., :1])], -1) @ np.asarray(homography).T
    return uv1[..., :2] / uv1[..., 2:3]


def pm_to_raw_pixels(pm_xy: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """PM pixels (col, row) [...,2] -> raw pixels (x = col, y = row) [...,2] (float)."""
    return raw_pixels_to_pm(pm_xy, np.linalg.inv(homography))
