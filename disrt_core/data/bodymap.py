"""BodyMAP's SMPL fits of SLP: ``SLP_SMPL_fits/fits/p{s:03d}/proc_{p:02d}.pkl`` (SPEC §7.4).

One pickle per danaLab subject ``s`` (1..102) and pose ``p`` (1..45): a dict with the 11
keys of the SLP-3Dfits originals (``gender``, ``gt_joints``, ``betas``, ``body_pose``,
``transl``, ``global_orient``, ``camera_*``) plus five BodyPressure added (``O_T_slp``,
``slp_T_cam``, ``cam_T_Bo``, ``Bo_T_Br``, ``markers_xyz_m``). Read through the restricted
unpickler (numpy arrays and builtins only). The label is built by
:func:`disrt_core.data.labels.slp_label`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from disrt_core.data.source import DataError, check_array
from disrt_core.safe_pickle import load_pickle

FITS_DIR = Path("SLP_SMPL_fits") / "fits"
ORIGINAL_KEYS = ("gender", "gt_joints", "betas", "body_pose", "transl", "global_orient",
                 "camera_rotation", "camera_translation", "camera_focal_length_x",
                 "camera_focal_length_y", "camera_center")
ADDED_KEYS = ("O_T_slp", "slp_T_cam", "cam_T_Bo", "Bo_T_Br", "markers_xyz_m")
FIT_KEYS = ORIGINAL_KEYS + ADDED_KEYS
#: Arrays the label needs, with their shapes.
LABEL_ARRAYS = {"betas": (10,), "body_pose": (69,), "global_orient": (3,), "O_T_slp": (3,),
                "cam_T_Bo": (3,), "Bo_T_Br": (3,), "markers_xyz_m": (24, 3)}
DOWNLOAD_HINT = ("download BodyMAP's SMPL fits for SLP (see the BodyMAP README, "
                 "github.com/RCHI-Lab/BodyMAP) into <data>/SLP_SMPL_fits/fits/")


def fit_path(root: str | Path, subject: int, pose: int) -> Path:
    """``<root>/SLP_SMPL_fits/fits/p{s:03d}/proc_{p:02d}.pkl`` (1-based ids)."""
    return Path(root) / FITS_DIR / f"p{subject:03d}" / f"proc_{pose:02d}.pkl"


def load_fit(path: str | Path) -> dict:
    """One fit, checked: a clear :class:`DataError` for a missing file, the SLP-3Dfits
    originals (which lack the last five keys) or a wrong shape / NaN."""
    path = Path(path)
    if not path.is_file():
        original = path.with_name(f"s{path.stem.split('_')[-1]}.pkl")
        if original.is_file():
            raise DataError(f"{path}: not found, but {original.name} is there: that is an "
                            f"SLP-3Dfits original without {list(ADDED_KEYS)}; "
                            f"{DOWNLOAD_HINT}")
        raise DataError(f"{path}: SMPL fit not found; {DOWNLOAD_HINT}")
    try:
        fit = load_pickle(path)
    except Exception as exc:  # a broken file: name it
        raise DataError(f"{path}: cannot read the SMPL fit pickle ({exc})") from exc
    if not isinstance(fit, dict):
        raise DataError(f"{path}: expected a dict of arrays, got {type(fit).__name__}")
    missing = [k for k in LABEL_ARRAYS if k not in fit]
    if missing:
        extra = (" (an SLP-3Dfits original: " + DOWNLOAD_HINT + ")"
                 if set(missing) & set(ADDED_KEYS) else "")
        raise DataError(f"{path}: missing keys {missing}{extra}")
    for key, shape in LABEL_ARRAYS.items():
        fit[key] = check_array(np.asarray(fit[key], np.float64).reshape(shape)
                               if np.size(fit[key]) == np.prod(shape) else fit[key],
                               key, shape, str(path))
    return fit
