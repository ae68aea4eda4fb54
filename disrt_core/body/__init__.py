"""Body models behind one interface: SMPL (paper-exact, licensed files) and Anny (open).

>>> model = load_body_model()          # SMPL if its files are found, else Anny
>>> vertices, joints = model(params)   # params [B, model.param_dim] -> metres

Every model is a ``torch.nn.Module`` with ``param_layout`` (named slices of the parameter
vector, SPEC §1.1), ``param_dim``, ``model_id`` (``smpl-neutral``, ``anny-0.6``, ...; stored
in checkpoints, which refuse another model), ``faces`` (LongTensor [F,3]), ``joint_names``
(SMPL's 24) and ``forward(params[, gender]) -> BodyOutput(vertices [B,V,3], joints [B,24,3])``.
Frames: see :mod:`disrt_core.body.base`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from disrt_core.body.base import BodyModel, BodyOutput, place_body
from disrt_core.body.layout import BodyParams, ParamLayout
from disrt_core.body.skeleton import SMPL_BONES, SMPL_JOINT_NAMES, SMPL_PARENTS
from disrt_core.body.smpl_files import SMPL_DOWNLOAD_HINT, find_smpl_file

__all__ = [
    "SMPL_BONES", "SMPL_JOINT_NAMES", "SMPL_PARENTS", "BodyModel", "BodyModelFallbackWarning",
    "BodyOutput", "BodyParams", "ParamLayout", "load_body_model", "place_body",
]  # fmt: skip


class BodyModelFallbackWarning(UserWarning):
    """SMPL files were not found and the open Anny model is used instead."""


def _smpl_available(model_dir: Path | None, gender: str) -> bool:
    if model_dir is None:
        return False
    genders = ("female", "male") if gender == "both" else (gender,)
    try:
        for g in genders:
            find_smpl_file(model_dir, g)
    except FileNotFoundError:
        return False
    return True


def load_body_model(
    kind: str = "auto",
    model_dir: str | Path | None = None,
    gender: str = "neutral",
    device: str = "cpu",
) -> BodyModel:
    """Load a body model.

    kind: ``"smpl"`` (needs the official files), ``"anny"`` (open, always available) or
        ``"auto"``: SMPL when its files are in ``model_dir``, else Anny with a one-line
        :class:`BodyModelFallbackWarning`.
    model_dir: folder of the SMPL .pkl files; default ``$DISRT_SMPL_DIR``.
    gender: SMPL's ``neutral``, ``female``, ``male`` or ``both`` (per-sample blend). Anny
        has gender in its shape vector and ignores this.
    device: where the model's buffers live.
    """
    if kind not in ("auto", "smpl", "anny"):
        raise ValueError(f"kind must be 'auto', 'smpl' or 'anny', got {kind!r}")
    if gender not in ("neutral", "female", "male", "both"):
        raise ValueError(f"gender must be neutral, female, male or both, got {gender!r}")
    if model_dir is None and os.environ.get("DISRT_SMPL_DIR"):
        model_dir = os.environ["DISRT_SMPL_DIR"]
    model_dir = Path(model_dir).expanduser() if model_dir is not None else None

    if kind == "auto":
        if _smpl_available(model_dir, gender):
            kind = "smpl"
        else:
            warnings.warn(
                "SMPL model files not found (set DISRT_SMPL_DIR); using the open Anny body "
                "model: metrics are not comparable with SMPL papers.",
                BodyModelFallbackWarning,
                stacklevel=2,
            )
            kind = "anny"
    if kind == "smpl":
        if model_dir is None:
            raise FileNotFoundError(f"kind='smpl' needs model_dir or DISRT_SMPL_DIR. "
                                    f"{SMPL_DOWNLOAD_HINT}")
        from disrt_core.body.smpl import load_smpl

        return load_smpl(model_dir, gender).to(device)

    from disrt_core.body.anny import AnnyBody

    return AnnyBody().to(device)
