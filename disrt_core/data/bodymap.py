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

from disrt_core.data.source import DataError, check_array, pickle_problem
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


def _missing_fit(path: Path) -> str:
    original = path.with_name(f"s{path.stem.split('_')[-1]}.pkl")
    if original.is_file():
        return (f"{path}: not found, but {original.name} is there: that is an SLP-3Dfits "
                f"original without {list(ADDED_KEYS)}; {DOWNLOAD_HINT}")
    return f"{path}: SMPL fit not found; {DOWNLOAD_HINT}"


def fit_problem(path: str | Path) -> str | None:
    """Why the fit at ``path`` cannot be read (missing, empty or truncated), or None; cheap
    (no unpickling), for checking a split before training."""
    path = Path(path)
    if not path.is_file():
        return _missing_fit(path)
    return pickle_problem(path, "SMPL fit pickle", DOWNLOAD_HINT)


def load_fit(path: str | Path) -> dict:
    """One fit, checked: a clear :class:`DataError` for a missing or unreadable file, the
    SLP-3Dfits originals (which lack the last five keys) or a wrong shape, non-numeric
    values or NaN."""
    path = Path(path)
    if not path.is_file():
        raise DataError(_missing_fit(path))
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
        value = check_array(fit[key], key, (None,) * np.ndim(fit[key]), str(path))
        fit[key] = check_array(value.astype(np.float64).reshape(shape)
                               if value.size == np.prod(shape) else value, key, shape, str(path))
    return fit
