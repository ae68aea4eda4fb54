"""SMPL backend (paper-exact) through ``smplx``, built from arrays (no chumpy, no pickle).

``smplx.SMPL`` is constructed from the arrays of :mod:`disrt_core.body.smpl_files` (its
``data_struct`` argument), so it never opens the pickle itself. Its 24 regressor joints are
used (the extra vertex joints smplx appends are dropped). Shape = 10 betas, so
``param_dim`` = 88.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from disrt_core.body.base import BodyModel
from disrt_core.body.layout import ParamLayout
from disrt_core.body.smpl_files import find_smpl_file, load_smpl_arrays


def _build_smplx(arrays: dict[str, np.ndarray], gender: str) -> nn.Module:
    import smplx
    from smplx.utils import Struct

    # smplx prints a note about 10-beta models on stdout; keep the caller's output clean.
    with contextlib.redirect_stdout(io.StringIO()):
        model = smplx.SMPL(
            model_path="",
            data_struct=Struct(**arrays),
            gender=gender,
            num_betas=10,
            create_betas=False,
            create_global_orient=False,
            create_body_pose=False,
            create_transl=False,
        )
    model.parents = KinematicTree(model._buffers.pop("parents"))
    return model


class KinematicTree:
    """smplx's ``parents`` in the two forms its ``batch_rigid_transform`` uses them, so
    that the body model can be captured in a CUDA graph: ``parents[1:]`` indexes the joint
    tensor (a tensor on the model's device: a CPU index would be a blocking host-to-GPU
    copy), ``parents[i]`` walks the tree in Python (a plain int: a device tensor would be a
    synchronisation per joint). Not a buffer: the SMPLBody moves it in ``_apply``."""

    def __init__(self, parents: Tensor, ints: list[int] | None = None) -> None:
        self.tensor = parents
        self.ints = parents.tolist() if ints is None else ints

    @property
    def shape(self) -> torch.Size:
        return self.tensor.shape

    def __getitem__(self, index: int | slice) -> int | Tensor:
        return self.ints[index] if isinstance(index, int) else self.tensor[index]

    def moved(self, fn) -> KinematicTree:
        """The same tree with its tensor passed through ``fn`` (``Module._apply``'s)."""
        return KinematicTree(fn(self.tensor), self.ints)


class SMPLBody(BodyModel):
    """SMPL of one gender, or female and male blended per sample (``gender="both"``)."""

    def __init__(self, arrays_by_gender: dict[str, dict[str, np.ndarray]]) -> None:
        super().__init__()
        genders = tuple(arrays_by_gender)
        self.takes_gender = genders == ("female", "male")
        if not (len(genders) == 1 or self.takes_gender):
            raise ValueError(f"give one gender or exactly female and male, got {genders}")
        self.models = nn.ModuleDict({g: _build_smplx(a, g) for g, a in arrays_by_gender.items()})
        self.gender = "both" if self.takes_gender else genders[0]
        self.model_id = f"smpl-{self.gender}"
        self.param_layout = ParamLayout(shape_dim=10)
        first = arrays_by_gender[genders[0]]
        faces = torch.as_tensor(first["f"], dtype=torch.long)
        self.register_buffer("faces", faces, persistent=False)
        self._num_vertices = first["v_template"].shape[0]

    @property
    def num_vertices(self) -> int:
        return self._num_vertices

    def _apply(self, fn, recurse: bool = True):
        """``.to()`` and friends, the kinematic tree included (it is not a buffer)."""
        super()._apply(fn, recurse)
        for model in self.models.values():
            model.parents = model.parents.moved(fn)
        return self

    def _one(self, gender: str, shape: Tensor, body_pose: Tensor) -> tuple[Tensor, Tensor]:
        batch = shape.shape[0]
        out = self.models[gender](
            betas=shape,
            body_pose=body_pose,
            global_orient=body_pose.new_zeros(batch, 3),
            return_verts=True,
        )
        return out.vertices, out.joints[:, :24]

    def pose_canonical(
        self, shape: Tensor, body_pose: Tensor, gender: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        if not self.takes_gender:
            return self._one(self.gender, shape, body_pose)
        if gender is None or gender.shape != (shape.shape[0], 2):
            raise ValueError("this SMPL model blends female and male: pass gender as a "
                             "[B,2] one-hot tensor ([1,0] female, [0,1] male)")
        vf, jf = self._one("female", shape, body_pose)
        vm, jm = self._one("male", shape, body_pose)
        wf, wm = gender[:, 0, None, None], gender[:, 1, None, None]
        return wf * vf + wm * vm, wf * jf + wm * jm


def load_smpl(model_dir: str | Path, gender: str = "neutral") -> SMPLBody:
    """SMPL from the official files in ``model_dir``; ``gender`` neutral, female, male or both."""
    genders = ("female", "male") if gender == "both" else (gender,)
    return SMPLBody({g: load_smpl_arrays(find_smpl_file(model_dir, g)) for g in genders})
