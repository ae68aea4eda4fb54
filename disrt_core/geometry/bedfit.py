"""Where is the bed? ``T_cam_bed`` for any depth camera, from four clicked corners or fitted.

The network works in the bed ("label") frame of SPEC §1.4 (x across the bed, y toward the
head end, z up from the mattress, metres). For a camera that is not SLP's, this module
finds the pose of that frame in the camera optical frame (``p_cam = T_cam_bed @ p_bed``),
which ``geometry.camera.raw_to_network`` then uses. The frame is metric: the mattress
centre is put at ``bedframe.BED_CENTRE_LABEL`` and the 1 cm PM cells stay 1 cm, so a bed
larger than 84 × 192 cm is cropped and a smaller one padded — never stretched.

* :func:`bed_from_corners`: the user gives the four mattress-corner pixels in the order
  **head-left, head-right, foot-right, foot-left**, as seen in the camera image looking
  down at the bed with the head end at the top (clockwise in an unmirrored top view).
  The mattress plane is fitted (RANSAC) to the depth inside that quadrilateral and the
  corner rays are intersected with it.
* :func:`fit_bed`: automatic: finds the mattress (a rectangle 0.7–2.1 × 1.8–2.4 m,
  horizontal, raised above the floor, completely in view, with or without a person on it)
  among the floor, furniture and clutter of a whole room, and its head end (``head="auto"``:
  from the person, a pillow, the boards; or the image side it is on). One frame, numpy, on
  the batched torch core :func:`disrt_core.geometry.bedfit_batch.fit_beds`. When no
  mattress is found it raises :class:`BedNotFoundError` saying what it saw; a fit with an
  edge the camera hardly sees (against a wall, under a blanket's overhang, behind a board)
  comes back ``weak``, as its corners may be several cm off there. For a bed the camera
  cannot see whole, give the corners, or for SLP use ``geometry.slp.slp_camera_pose``.
* :func:`bed_change`: periodic re-check: has the bed moved? (angle, offset, shift, yaw).

Pixels are (u = column, v = row); depth images are mm along the optical axis, 0 = no
reading; ``K`` is the 3×3 intrinsic matrix of that image. Everything here is numpy float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from disrt_core.geometry.bedfit_words import weak_because
from disrt_core.geometry.bedframe import BED_CENTRE_LABEL

HEAD_SIDES = ("top", "bottom", "left", "right")
# [choice] A refusal with this share of the frame's blocks unread (BedFits.unread) hints at a
# bed beyond the range: generated Azure Kinect rooms with the mattress past its 3.86 m gave
# 0.32-0.69, frames of the other sensors (scattered stereo holes) at most 0.24.
UNREAD_HINT = 0.3


@dataclass
class BedFit:
    """A fitted bed. Camera optical frame, metres."""

    T_cam_bed: np.ndarray  # [4,4] bed (label) frame -> camera frame
    normal: np.ndarray  # [3] unit normal of the mattress plane, pointing at the camera
    offset: float  # plane: normal · p + offset = 0 (offset = distance camera -> plane)
    corners: np.ndarray  # [4,3] head-left, head-right, foot-right, foot-left
    size_m: tuple[float, float]  # (width across, length along) of the mattress rectangle
    inlier_fraction: float  # share of the depth points used that lie on the plane
    rms_m: float  # RMS distance of the inliers to the plane
    head_confidence: float = 1.0  # in [0.5, 1]; 1 for corners or a given head side
    head_known: bool = True  # False: head="auto" saw no cue, the head end is head_fallback's
    head_cues: tuple[float, float, float] = (0.0, 0.0, 0.0)  # person, pillow, boards (+: head)
    noise_m: float = float("nan")  # depth noise σ at the mattress level (automatic fit)
    weak: bool = False  # automatic fit: an edge hardly seen, a seam or a noisy level: check it
    edge_support: tuple[float, ...] = ()  # automatic fit: per edge, share of steps or boards at it
    weak_because: tuple[str, ...] = ()  # automatic fit: why it is weak (weak_text says it)
    raised_deg: float = 0.0  # automatic fit: a raised head section's angle (0: none)

    @property
    def centre(self) -> np.ndarray:
        return self.corners.mean(axis=0)

    def weak_text(self) -> str:
        """Why a ``weak`` fit is uncertain, for a user: "" for a fit that is not."""
        if not self.weak:
            return ""
        because = "; ".join(self.weak_because) or "an edge hardly seen"
        support = ", ".join(f"{v:.2f}" for v in self.edge_support)
        return (f"the mattress fit is uncertain: {because}; its corners may be several cm "
                f"off (edge support {support})")


class BedNotFoundError(ValueError):
    """No mattress in the frame; the message says what was seen and what to do.
    ``reason``: a ``bedfit_result.REASONS`` key; ``surfaces``: the horizontal surfaces
    measured, ``(width, length, distance)`` m, most mattress-like first; ``fits``: the
    frame's ``BedFits`` (batch of one, on the CPU) with the candidates measured."""

    def __init__(self, message: str, reason: int, surfaces: list[tuple[float, float, float]],
                 fits=None):
        super().__init__(message)
        self.reason = reason
        self.surfaces = surfaces
        self.fits = fits  # the frame's BedFits (candidates and all), for pictures


@dataclass
class BedChange:
    """Difference between a reference bed fit and the current frame."""

    angle_deg: float  # angle between the two mattress normals
    offset_m: float  # signed distance of the reference centre from the new plane (+ = above)
    shift_m: float | None  # in-plane move of the centre (None unless re-fitted in full)
    yaw_deg: float | None  # turn about the normal (None unless re-fitted in full)
    moved: bool


def backproject(uv: np.ndarray, depth_m: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixels [...,2] with depths [...] (m along the optical axis) -> camera points [...,3]."""
    uv1 = np.concatenate([uv, np.ones_like(uv[..., :1])], -1)
    return (uv1 @ np.linalg.inv(K).T) * np.asarray(depth_m)[..., None]


def camera_to_label(points_cam: np.ndarray, T_cam_bed: np.ndarray) -> np.ndarray:
    """Camera-frame points [...,3] -> label (bed) frame (inverse of ``label_to_camera``)."""
    rot, t = T_cam_bed[:3, :3], T_cam_bed[:3, 3]
    return (points_cam - t) @ rot


def depth_points(depth_mm: np.ndarray, K: np.ndarray, stride: int = 1,
                 mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Valid pixels of a depth image as camera points [N,3] (m) and their pixels [N,2]."""
    depth = np.asarray(depth_mm, np.float64)
    if depth.ndim != 2:
        raise ValueError(f"depth image must be 2-D (rows, cols), got shape {depth.shape}")
    v, u = np.mgrid[0:depth.shape[0]:stride, 0:depth.shape[1]:stride]
    d = depth[v, u]
    ok = np.isfinite(d) & (d > 0)
    if mask is not None:
        ok &= mask[v, u]
    uv = np.stack([u[ok], v[ok]], -1).astype(np.float64)
    return backproject(uv, d[ok] / 1000.0, K), uv


def fit_plane(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares plane (unit normal toward the camera at the origin, offset) of [N,3]."""
    centroid = points.mean(axis=0)
    centred = points - centroid
    normal = np.linalg.eigh(centred.T @ centred)[1][:, 0]  # smallest-variance direction
    if normal @ centroid > 0:  # make normal · (camera − p) > 0: it points at the camera
        normal = -normal
    return normal, float(-normal @ centroid)


def ransac_planes(points: np.ndarray, *, threshold_m: float = 0.015, max_tilt_deg: float = 30.0,
                  iterations: int = 200, count: int = 2, min_fraction: float = 0.05,
                  seed: int = 0) -> list[tuple[np.ndarray, float, np.ndarray]]:
    """Up to ``count`` planes found one after another (each on the points left by the
    previous), keeping only planes whose normal is within ``max_tilt_deg`` of the optical
    axis. Returns ``(normal, offset, inlier mask over points)``, refined by least squares.
    """
    rng = np.random.default_rng(seed)
    remaining = np.ones(len(points), bool)
    cos_tilt = np.cos(np.deg2rad(max_tilt_deg))
    planes = []
    for _ in range(count):
        idx = np.flatnonzero(remaining)
        if len(idx) < max(3, min_fraction * len(points)):
            break
        pts = points[idx]
        probe = pts[rng.choice(len(pts), min(len(pts), 2000), replace=False)].astype(np.float32)
        tri = pts[rng.integers(0, len(pts), (iterations, 3))]
        normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        norms = np.linalg.norm(normals, axis=1)
        good = norms > 1e-9
        normals[good] /= norms[good, None]
        good &= np.abs(normals[:, 2]) >= cos_tilt
        if not good.any():
            break
        offsets = -(normals * tri[:, 0]).sum(1)
        support = (np.abs(probe @ normals.T.astype(np.float32) + offsets.astype(np.float32))
                   < threshold_m).sum(0)
        support[~good] = -1
        best = int(np.argmax(support))
        normal, offset = normals[best], offsets[best]
        for _ in range(3):  # least-squares refinement on the inliers
            inliers = np.abs(pts @ normal + offset) < threshold_m
            if inliers.sum() < 3:
                break
            normal, offset = fit_plane(pts[inliers])
        inliers = np.abs(pts @ normal + offset) < threshold_m
        if inliers.sum() < min_fraction * len(points):
            break
        mask = np.zeros(len(points), bool)
        mask[idx[inliers]] = True
        planes.append((normal, offset, mask))
        remaining &= ~mask
    return planes


def _frame(centre: np.ndarray, y_axis: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """T_cam_bed with the label-frame point (BED_CENTRE_LABEL, 0) at ``centre``."""
    y = y_axis - (y_axis @ normal) * normal
    y /= np.linalg.norm(y)
    x = np.cross(y, normal)
    rot = np.column_stack([x, y, normal])
    T = np.eye(4)
    T[:3, :3] = rot
    T[:3, 3] = centre - rot @ np.array([*BED_CENTRE_LABEL, 0.0])
    return T


def _ray_plane(uv: np.ndarray, K: np.ndarray, normal: np.ndarray, offset: float) -> np.ndarray:
    rays = np.concatenate([uv, np.ones_like(uv[..., :1])], -1) @ np.linalg.inv(K).T
    return rays * (-offset / (rays @ normal))[..., None]


def _plane_stats(points: np.ndarray, normal: np.ndarray, offset: float,
                 threshold_m: float) -> tuple[float, float]:
    dist = np.abs(points @ normal + offset)
    inliers = dist < threshold_m
    rms = float(np.sqrt(np.mean(dist[inliers] ** 2))) if inliers.any() else float("nan")
    return float(inliers.mean()), rms


def bed_from_corners(depth_mm: np.ndarray, K: np.ndarray, corners_uv, *,
                     threshold_m: float = 0.015, seed: int = 0) -> BedFit:
    """Bed pose from the four mattress-corner pixels (head-left, head-right, foot-right,
    foot-left; see the module docstring) on one depth frame with intrinsics ``K``.

    The plane is RANSAC-fitted to the valid depth inside the quadrilateral (shrunk 10 %
    toward its centre, so edges and the bed frame stay out; a person on the bed is an
    outlier). Raises ``ValueError`` for a wrong shape, too little valid depth or a
    mirrored (counter-clockwise) corner order.
    """
    import cv2

    corners_uv = np.asarray(corners_uv, np.float64)
    if corners_uv.shape != (4, 2):
        raise ValueError(f"corners_uv must be 4 pixels (u, v) [4,2], got {corners_uv.shape}")
    depth = np.asarray(depth_mm)
    shrunk = corners_uv.mean(0) + 0.9 * (corners_uv - corners_uv.mean(0))
    mask = np.zeros(depth.shape, np.uint8)
    cv2.fillPoly(mask, [np.round(shrunk).astype(np.int32)], 1)
    points, _ = depth_points(depth, K, stride=2, mask=mask.astype(bool))
    if len(points) < 50:
        raise ValueError(f"only {len(points)} valid depth pixels inside the given bed corners; "
                         "check the corner pixels and that the depth frame has readings there")
    planes = ransac_planes(points, threshold_m=threshold_m, max_tilt_deg=89.0, count=1,
                           min_fraction=0.2, seed=seed)
    if not planes:
        raise ValueError("no plane covers 20 % of the depth inside the bed corners; is the "
                         "mattress visible?")
    normal, offset, _ = planes[0]
    corners = _ray_plane(corners_uv, K, normal, offset)
    head_left, head_right, foot_right, foot_left = corners
    y_axis = (head_left + head_right - foot_left - foot_right) / 2
    T = _frame(corners.mean(0), y_axis, normal)
    if (head_right - head_left) @ T[:3, 0] <= 0:
        raise ValueError("bed corners are mirrored: give them as head-left, head-right, "
                         "foot-right, foot-left (clockwise seen from above, head at the top)")
    width = (np.linalg.norm(head_right - head_left) + np.linalg.norm(foot_right - foot_left)) / 2
    length = (np.linalg.norm(head_left - foot_left) + np.linalg.norm(head_right - foot_right)) / 2
    fraction, rms = _plane_stats(points, normal, offset, threshold_m)
    return BedFit(T, normal, offset, corners, (float(width), float(length)), fraction, rms)


def fit_bed(depth_mm: np.ndarray, K: np.ndarray, *, head: str = "auto",
            head_fallback: str = "top", **options) -> BedFit:
    """Automatic bed pose from one raw depth frame (mm, 0 = no reading) of a camera
    looking down at a room with a bed (see the module docstring).

    ``head``: ``"auto"`` (the head end decided from the bed: ``head_confidence`` in
    [0.5, 1], ``head_known`` False when nothing told, then the head end is the one toward the
    image side ``head_fallback``) or the image side the head end is on (``top``,
    ``bottom``, ``left``, ``right``; a ``ValueError`` if the bed does not run that way).
    ``options``: see :func:`disrt_core.geometry.bedfit_batch.fit_beds` (size limits ...).
    Raises :class:`BedNotFoundError` when there is no mattress to fit. A fit whose edges
    are not all clearly seen is returned with ``weak`` set (check it, or give the corners).
    """
    import torch

    from disrt_core.geometry.bedfit_batch import fit_beds
    from disrt_core.geometry.bedfit_result import HEAD_ACROSS
    from disrt_core.geometry.bedfit_result import HEAD_SIDES as SIDES

    if head != "auto" and head not in SIDES:
        raise ValueError(f"head must be one of {('auto', *SIDES)}, got {head!r}")
    depth = np.asarray(depth_mm)
    if depth.ndim != 2:
        raise ValueError(f"depth image must be 2-D (rows, cols), got shape {depth.shape}")
    K = np.array(K, np.float64)  # a copy: the caller's array may be read-only
    fits = fit_beds(torch.from_numpy(depth.astype(np.float32))[None],
                    torch.from_numpy(K)[None].float(), head=head, head_fallback=head_fallback,
                    **options)
    if not bool(fits.ok[0]):
        reason = int(fits.reason[0])
        if reason == HEAD_ACROSS:
            raise ValueError(f"the bed's long side does not run toward the image {head}; "
                             "pass the side of the image the head end is on (head='top'|"
                             "'bottom'|'left'|'right') or head='auto'")
        raise not_found_error(fits, 0, options)

    def arr(x):
        return x[0].detach().cpu().double().numpy()

    cues = tuple(float(c) for c in arr(fits.head_cues))
    size = arr(fits.size)
    return BedFit(arr(fits.T_cam_bed), arr(fits.normal), float(fits.offset[0]),
                  arr(fits.corners), (float(size[0]), float(size[1])),
                  float(fits.inlier_fraction[0]), float(fits.rms[0]),
                  head_confidence=float(fits.head_confidence[0]),
                  head_known=bool(fits.head_known[0]), head_cues=cues,
                  noise_m=float(fits.noise[0]), weak=bool(fits.weak[0]),
                  edge_support=tuple(float(x) for x in arr(fits.edge_support)),
                  weak_because=weak_because(fits, 0) if bool(fits.weak[0]) else (),
                  raised_deg=float(fits.raised_deg[0]))


def not_found_error(fits, i: int, options: dict | None = None) -> BedNotFoundError:
    """The :class:`BedNotFoundError` of frame ``i`` of a ``BedFits`` that is not ok."""
    from dataclasses import fields

    from disrt_core.geometry import bedfit_rect as r
    from disrt_core.geometry.bedfit_result import HIDDEN, NO_DEPTH, NO_PLANE, PARTIAL, REASONS

    options = options or {}
    (wlo, whi), (llo, lhi) = options.get("width", (0.7, 2.1)), options.get("length", (1.8, 2.4))
    reason = int(fits.reason[i])
    one = type(fits)(**{f.name: getattr(fits, f.name)[i:i + 1].cpu() for f in fields(fits)})
    size, dist = fits.cand_size[i].cpu().numpy(), fits.cand_distance[i].cpu().numpy()
    flags = fits.cand_flags[i].cpu().numpy()
    order = np.argsort([bin(int(f) & ~(r.FLAG_VIEW | r.FLAG_OCCLUDED)).count("1") * 10
                        - s[0] * s[1] * 1e-3 for f, s in zip(flags, size)])
    order = [j for j in order if not flags[j] & r.FLAG_EMPTY] or list(order[:1])
    surfaces = [(float(size[j, 0]), float(size[j, 1]), float(dist[j])) for j in order]
    advice = ("Is the whole bed in view? Give the corners (bed_region: corners) or check the "
              "mount with disrt-fit-bed")
    if reason in (NO_DEPTH, NO_PLANE):
        text = {NO_DEPTH: "too little valid depth in the frame (is the camera covered, too "
                          "close, or still starting?)",
                NO_PLANE: "no horizontal surface within "
                          f"{options.get('max_tilt_deg', 40.0):g}° of facing the camera (is "
                          "it looking down at the bed?)"}[reason]
        return BedNotFoundError(f"{text}. {advice}", reason, surfaces, one)
    best = surfaces[0] if surfaces else None
    if best is not None and reason in (PARTIAL, HIDDEN):
        what = "cut by the image border (or the sensor's blind band)" if reason == PARTIAL \
            else "partly hidden by something nearer the camera"
        text = (f"{REASONS[reason]}: a mattress-sized surface ({best[0]:.2f} × {best[1]:.2f} m "
                f"at {best[2]:.2f} m) is {what}")
        return BedNotFoundError(f"{text}. {advice}", reason, surfaces, one)
    text = (f"no mattress-sized horizontal surface ({wlo:g}–{whi:g} × {llo:g}–{lhi:g} m) "
            "raised above the floor")
    if float(fits.unread[i]) >= UNREAD_HINT:  # beyond the range reads as nothing, not as far
        advice = (f"{100 * float(fits.unread[i]):.0f} % of the frame reads no depth at all (the "
                  f"farthest reading is {float(fits.farthest[i]):.2f} m): a bed beyond the "
                  "camera's range (Azure Kinect NFOV about 3.9 m, Kinect v2 4.5 m) or under a "
                  "cover it cannot measure reads as nothing; mount it nearer. " + advice)
    if surfaces:
        big = max(surfaces, key=lambda s: s[0] * s[1])
        lowest = max(s[2] for s in surfaces)
        floor = " (the floor?)" if big[2] >= lowest - 0.05 and big[0] * big[1] > 4 else ""
        text += (f": the largest horizontal surface is {big[0]:.1f} × {big[1]:.1f} m at "
                 f"{big[2]:.2f} m{floor}")
        near = [s for s, j in zip(surfaces, order) if s is not big and
                not flags[j] & r.FLAG_SIZE]
        if near:
            text += (f"; a {near[0][0]:.2f} × {near[0][1]:.2f} m surface at {near[0][2]:.2f} m "
                     "is mattress-sized but not a bed (not raised, not full, or a sofa)")
    return BedNotFoundError(f"{text}. {advice}", reason, surfaces, one)


def _project(K: np.ndarray, point: np.ndarray) -> np.ndarray:
    uvw = K @ point
    return uvw[:2] / uvw[2]


def bed_change(reference: BedFit, depth_mm: np.ndarray, K: np.ndarray, *,
               full: bool = False, head: str = "auto", angle_tol_deg: float = 1.0,
               offset_tol_m: float = 0.02, shift_tol_m: float = 0.03,
               threshold_m: float = 0.015, seed: int = 0) -> BedChange:
    """Has the bed moved since ``reference``? Re-fits the mattress plane inside the
    reference corners (a person on the bed is an outlier) and compares normals and the
    reference centre's distance to the new plane. ``full=True`` also re-runs
    :func:`fit_bed` (with ``head``) to measure in-plane shift and yaw.
    ``moved`` is true when any change exceeds its tolerance.
    """
    pixels = np.stack([_project(K, c) for c in reference.corners])
    current = bed_from_corners(depth_mm, K, pixels, threshold_m=threshold_m, seed=seed)
    cos = float(np.clip(reference.normal @ current.normal, -1.0, 1.0))
    angle = float(np.rad2deg(np.arccos(cos)))
    offset = float(reference.centre @ current.normal + current.offset)
    shift = yaw = None
    moved = angle > angle_tol_deg or abs(offset) > offset_tol_m
    if full:
        refit = fit_bed(depth_mm, K, head=head)
        delta = refit.centre - reference.centre
        shift = float(np.linalg.norm(delta - (delta @ refit.normal) * refit.normal))
        y_ref, y_new = reference.T_cam_bed[:3, 1], refit.T_cam_bed[:3, 1]
        yaw = float(np.rad2deg(np.arctan2(np.cross(y_ref, y_new) @ refit.normal, y_ref @ y_new)))
        moved = moved or shift > shift_tol_m or abs(yaw) > angle_tol_deg
    return BedChange(angle, offset, shift, yaw, moved)
