"""What every body model in disrt_core is: parameters in, vertices and 24 joints out.

Frames (metres). A backend poses the body in its **canonical frame**, SMPL's: x toward the
body's left, y up along the spine (toward the head), z forward (out of the chest); the
root orientation then rotates the body about its pelvis joint and the translation puts the
pelvis joint at ``transl`` (SPEC §1.3 step 4: ``J = posed joints − J_rest[0] + trans``).
The output frame is whatever frame the parameters are expressed in; in this project that
is the bed ("label") frame of SPEC §1.4.
"""

from __future__ import annotations

from typing import NamedTuple

import roma
import torch
from torch import Tensor, nn

from disrt_core.body.layout import ParamLayout
from disrt_core.body.skeleton import SMPL_JOINT_NAMES


class BodyOutput(NamedTuple):
    """Posed body; unpacks as ``vertices, joints = model(params)``."""

    vertices: Tensor  # [B, V, 3] m
    joints: Tensor  # [B, 24, 3] m, SMPL joint order


def place_body(vertices: Tensor, joints: Tensor, root_orient: Tensor, transl: Tensor) -> BodyOutput:
    """Rotate a canonical body by ``root_orient`` (axis-angle) about its pelvis joint and move
    the pelvis joint to ``transl``.

    vertices [B,V,3], joints [B,24,3] in the canonical frame; root_orient, transl [B,3].
    """
    rot = roma.rotvec_to_rotmat(root_orient)  # [B,3,3]
    pelvis = joints[:, :1]
    rot_t = rot.transpose(-1, -2)
    vertices = (vertices - pelvis) @ rot_t + transl[:, None]
    joints = (joints - pelvis) @ rot_t + transl[:, None]
    return BodyOutput(vertices, joints)


class BodyModel(nn.Module):
    """Base class of the body-model backends (``SMPLBody``, ``AnnyBody``).

    Subclasses set ``model_id``, ``param_layout``, register ``faces`` (LongTensor [F,3]) and
    implement :meth:`pose_canonical`.
    """

    model_id: str
    param_layout: ParamLayout
    joint_names: tuple[str, ...] = SMPL_JOINT_NAMES
    faces: Tensor
    #: Whether :meth:`forward` takes a per-sample gender (SMPL loaded with gender="both").
    takes_gender: bool = False

    @property
    def param_dim(self) -> int:
        return self.param_layout.param_dim

    @property
    def num_vertices(self) -> int:
        raise NotImplementedError

    def pose_canonical(
        self, shape: Tensor, body_pose: Tensor, gender: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """Vertices [B,V,3] and joints [B,24,3] of the body with ``shape`` and ``body_pose``
        (axis-angle [B,69]) in the canonical frame, root orientation not applied."""
        raise NotImplementedError

    def forward(self, params: Tensor, gender: Tensor | None = None) -> BodyOutput:
        """Vertices [B,V,3] and joints [B,24,3] (metres) for parameter vectors [B, param_dim].

        ``gender`` [B,2] one-hot ([1,0] female, [0,1] male, SPEC §1.2) blends the female
        and male models where the backend has them (``takes_gender``); others ignore it.
        """
        if params.ndim != 2:
            raise ValueError(f"params must be [B, {self.param_dim}], got {tuple(params.shape)}")
        p = self.param_layout.unpack(params)
        vertices, joints = self.pose_canonical(p.shape, p.body_pose, gender)
        return place_body(vertices, joints, p.root_orient, p.transl)

    def zero_params(self, batch_size: int = 1) -> Tensor:
        """Parameters of the average adult in the rest pose at the origin: shape, pose and
        translation 0, root orientation 0 (cos 1, sin 0)."""
        params = torch.zeros(batch_size, self.param_dim, device=self.faces.device)
        params[:, self.param_layout.root_cos] = 1.0
        return params
