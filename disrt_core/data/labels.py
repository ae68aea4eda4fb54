"""The 162-number label vector of SLP and BodyPressureSD, and the x0 the network learns.

Label (SPEC §1.2), label frame: ``0:72`` 24 joints (mm) · ``72:82`` betas · ``82:154`` joint
angles (``82:85`` root, ``85:154`` body) · ``154:157`` root translation (m) · ``157:159``
gender one-hot ([1,0] female, [0,1] male) · ``159`` 1 · ``160`` mass kg · ``161`` height m.

* :func:`label_to_params`: x0 = [betas, transl, cos root, sin root, body pose] (SPEC §1.1).
* :func:`slp_label`: from a BodyMAP SMPL fit of an SLP frame (SPEC §7.4).
* :func:`bodypressure_label`: from BodyPressureSD arrays, vectorised (SPEC §7.5).
* :func:`vertex_frame_to_label`: GT vertex files' ``[y_L, x_L, −z_L]`` back to the label frame.

Functions take numpy arrays with any leading batch dimensions; float64 inside.
"""

from __future__ import annotations

import numpy as np

LABEL_DIM = 162
JOINTS_MM = slice(0, 72)
BETAS = slice(72, 82)
ROOT = slice(82, 85)
BODY_POSE = slice(85, 154)
TRANSL = slice(154, 157)
GENDER = slice(157, 159)
MASS = 160
HEIGHT = 161

#: BodyPressureSD -> label frame (SPEC §7.5) [BodyPressure code, DiSRT code].
BPSD_MARKER_SHIFT_M = np.array([0.286, 0.286, 0.0])
BPSD_JOINT_ADJUST_MM = np.array([-12.0, -35.0, -75.0])
BPSD_TRANSL_ADJUST_M = np.array([-0.298, -0.321, -0.075])
#: mass = body_volume · a / b, per gender (SPEC §7.5).
BPSD_MASS_NORMALIZER = {"f": (62.5, 0.06878933937454557), "m": (78.4, 0.0828308574658067)}


def label_to_params(label: np.ndarray) -> np.ndarray:
    """x0 [..., 88] from labels [..., 162] (SPEC §1.1):
    ``[L[72:82], L[154:157], cos L[82:85], sin L[82:85], L[85:154]]``."""
    label = np.asarray(label, np.float64)
    root = label[..., ROOT]
    return np.concatenate([label[..., BETAS], label[..., TRANSL], np.cos(root), np.sin(root),
                           label[..., BODY_POSE]], axis=-1)


def label_joints_m(label: np.ndarray) -> np.ndarray:
    """Ground-truth joints [..., 24, 3] in metres (label[0:72] is mm)."""
    label = np.asarray(label, np.float64)
    return label[..., JOINTS_MM].reshape(*label.shape[:-1], 24, 3) / 1000.0


def gender_onehot(female: bool | np.ndarray) -> np.ndarray:
    """[1,0] female, [0,1] male (SPEC §1.2); vectorised over a bool array."""
    female = np.asarray(female, bool)
    return np.stack([female, ~female], axis=-1).astype(np.float64)


def build_label(*, joints_mm, betas, root, body_pose, transl, female, mass, height_m) -> np.ndarray:
    """Assemble labels [..., 162] from their parts (each [..., n] or scalar per sample)."""
    parts = [np.asarray(joints_mm, np.float64), np.asarray(betas, np.float64),
             np.asarray(root, np.float64), np.asarray(body_pose, np.float64),
             np.asarray(transl, np.float64)]
    batch = parts[0].shape[:-1]
    scalars = [np.broadcast_to(np.asarray(v, np.float64), batch)[..., None]
               for v in (1.0, mass, height_m)]
    out = np.concatenate([*parts, np.broadcast_to(gender_onehot(female), (*batch, 2)),
                          *scalars], axis=-1)
    if out.shape[-1] != LABEL_DIM:
        raise ValueError(f"label parts add up to {out.shape[-1]} values, expected {LABEL_DIM}")
    return out


def flip_root_x(global_orient: np.ndarray) -> np.ndarray:
    """axis-angle(Rx(π)·R(global_orient)), angle in [0, π] (SPEC §7.4): SLP fits are in the
    camera frame (y down, z away); Rx(π) turns them into the label frame (y, z flipped)."""
    from scipy.spatial.transform import Rotation

    rot = Rotation.from_rotvec([np.pi, 0.0, 0.0]) * Rotation.from_rotvec(
        np.asarray(global_orient, np.float64).reshape(-1, 3))
    return rot.as_rotvec().reshape(np.shape(global_orient))


def slp_translation(o_t_slp, slp_t_cam, cam_t_bo, bo_t_br) -> np.ndarray:
    """Root translation of an SLP fit in the label frame (SPEC §7.4):
    ``t = O_T_slp + slp_T_cam + cam_T_Bo + Bo_T_Br``, then ``t[1:] *= −1``."""
    t = (np.asarray(o_t_slp, np.float64) + np.asarray(slp_t_cam, np.float64)
         + np.asarray(cam_t_bo, np.float64) + np.asarray(bo_t_br, np.float64))
    return t * np.array([1.0, -1.0, -1.0])


def slp_label(fit: dict, slp_t_cam: np.ndarray, *, female: bool, mass_kg: float,
              height_cm: float) -> np.ndarray:
    """Label [162] of one SLP frame from its BodyMAP fit (SPEC §7.4). ``slp_t_cam`` is the
    row of ``slp_T_cam_0to102.npy`` (it overrides the pickle's); physique from
    ``physiqueData.npy``. The same label serves all three covers."""
    return build_label(
        joints_mm=1000.0 * np.asarray(fit["markers_xyz_m"], np.float64).reshape(72),
        betas=np.asarray(fit["betas"], np.float64).reshape(10)[:10],
        root=flip_root_x(np.asarray(fit["global_orient"]).reshape(3)),
        body_pose=np.asarray(fit["body_pose"], np.float64).reshape(69),
        transl=slp_translation(fit["O_T_slp"], slp_t_cam, fit["cam_T_Bo"], fit["Bo_T_Br"]),
        female=female, mass=mass_kg, height_m=height_cm / 100.0)


def bodypressure_label(*, markers_xyz_m, body_shape, joint_angles, root_xyz_shift, body_volume,
                       body_height, gender: str) -> np.ndarray:
    """Labels [N, 162] of BodyPressureSD samples (SPEC §7.5), from the pickle's arrays
    (``markers_xyz_m`` [N, ≥72] m, ``body_shape`` [N, ≥10], ``joint_angles`` [N, ≥72],
    ``root_xyz_shift`` [N, 3] m, ``body_volume`` [N], ``body_height`` [N] m); ``gender``
    ``"f"`` or ``"m"`` (from the file name)."""
    if gender not in BPSD_MASS_NORMALIZER:
        raise ValueError(f"gender must be 'f' or 'm', got {gender!r}")
    markers = np.asarray(markers_xyz_m, np.float64)[:, :72].reshape(-1, 24, 3)
    joints = 1000.0 * (markers - BPSD_MARKER_SHIFT_M) + BPSD_JOINT_ADJUST_MM
    angles = np.asarray(joint_angles, np.float64)[:, :72]
    a, b = BPSD_MASS_NORMALIZER[gender]
    return build_label(
        joints_mm=joints.reshape(-1, 72), betas=np.asarray(body_shape, np.float64)[:, :10],
        root=angles[:, :3], body_pose=angles[:, 3:],
        transl=np.asarray(root_xyz_shift, np.float64)[:, :3] + BPSD_TRANSL_ADJUST_M,
        female=np.full(len(markers), gender == "f"),
        mass=np.asarray(body_volume, np.float64) * a / b,
        height_m=np.asarray(body_height, np.float64))


def vertex_frame_to_label(vertices: np.ndarray) -> np.ndarray:
    """GT vertex files are in the "vertex frame" [y_L, x_L, −z_L] (SPEC §1.3): undo it."""
    v = np.asarray(vertices)
    return np.stack([v[..., 1], v[..., 0], -v[..., 2]], axis=-1)


def label_to_vertex_frame(points: np.ndarray) -> np.ndarray:
    """Label-frame points -> the vertex frame [y_L, x_L, −z_L] of the GT vertex files."""
    p = np.asarray(points)
    return np.stack([p[..., 1], p[..., 0], -p[..., 2]], axis=-1)
