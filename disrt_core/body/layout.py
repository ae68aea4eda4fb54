"""The parameter vector x0 the network predicts, and how it splits (SPEC §1.1).

``[shape | root translation (3) | cos(root axis-angle) (3) | sin(root axis-angle) (3) |
body pose (3·23)]``; for SMPL the shape part holds 10 betas, so ``param_dim`` = 88. Each
body model owns one :class:`ParamLayout` (``model.param_layout``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import roma
import torch
from torch import Tensor

from disrt_core.body.skeleton import NUM_BODY_JOINTS


class BodyParams(NamedTuple):
    """A parameter vector split into its parts (all ``[..., n]``, metres and radians)."""

    shape: Tensor  # [..., shape_dim]
    transl: Tensor  # [..., 3] position of the pelvis joint in the output frame, m
    root_cos: Tensor  # [..., 3] cos of each root axis-angle component
    root_sin: Tensor  # [..., 3] sin of each root axis-angle component
    body_pose: Tensor  # [..., 69] axis-angle of joints 1..23, SMPL order

    @property
    def root_orient(self) -> Tensor:
        """Root axis-angle recovered component-wise: ``r_k = atan2(sin_k, cos_k)`` (SPEC §1.1).

        cos/sin are not renormalised. Valid because each component of the axis-angle lies in
        (-π, π] (SPEC §8.8).
        """
        return torch.atan2(self.root_sin, self.root_cos)


@dataclass(frozen=True)
class ParamLayout:
    """Named slices of the parameter vector of one body model."""

    shape_dim: int = 10
    num_body_joints: int = NUM_BODY_JOINTS

    @property
    def shape(self) -> slice:
        return slice(0, self.shape_dim)

    @property
    def transl(self) -> slice:
        return slice(self.shape_dim, self.shape_dim + 3)

    @property
    def root_cos(self) -> slice:
        return slice(self.shape_dim + 3, self.shape_dim + 6)

    @property
    def root_sin(self) -> slice:
        return slice(self.shape_dim + 6, self.shape_dim + 9)

    @property
    def body_pose(self) -> slice:
        return slice(self.shape_dim + 9, self.param_dim)

    @property
    def param_dim(self) -> int:
        return self.shape_dim + 9 + 3 * self.num_body_joints

    def slices(self) -> dict[str, slice]:
        """All named slices, in vector order."""
        return {
            name: getattr(self, name)
            for name in ("shape", "transl", "root_cos", "root_sin", "body_pose")
        }

    def unpack(self, params: Tensor) -> BodyParams:
        """Split ``params [..., param_dim]`` into :class:`BodyParams` (views, no copies)."""
        if params.shape[-1] != self.param_dim:
            raise ValueError(
                f"parameter vector has {params.shape[-1]} values in its last dimension, but "
                f"this body model's layout has {self.param_dim} "
                f"(shape {self.shape_dim} + 3 + 3 + 3 + {3 * self.num_body_joints}); "
                "was it made for another body model?"
            )
        return BodyParams(*(params[..., s] for s in self.slices().values()))

    def pack(
        self, shape: Tensor, transl: Tensor, root_orient: Tensor, body_pose: Tensor
    ) -> Tensor:
        """Build ``params [..., param_dim]`` from shape, translation, root axis-angle, pose."""
        if shape.shape[-1] != self.shape_dim:
            raise ValueError(f"shape has {shape.shape[-1]} values, expected {self.shape_dim}")
        if body_pose.shape[-1] != 3 * self.num_body_joints:
            raise ValueError(
                f"body_pose has {body_pose.shape[-1]} values, expected {3 * self.num_body_joints}"
            )
        return torch.cat(
            [shape, transl, torch.cos(root_orient), torch.sin(root_orient), body_pose], dim=-1
        )

    def rigid_transform(self, params: Tensor, T: Tensor) -> Tensor:
        """Parameters of the same body moved by rigid transforms ``T`` [B,4,4] (e.g. from the
        label frame to the camera frame): root rotation ``R_T·R``, pelvis ``T·transl``."""
        p = self.unpack(params)
        rot = T[..., :3, :3]
        root = roma.rotmat_to_rotvec(rot @ roma.rotvec_to_rotmat(p.root_orient))
        transl = (rot @ p.transl[..., None])[..., 0] + T[..., :3, 3]
        return self.pack(p.shape, transl, root, p.body_pose)

    def to_dict(self) -> dict[str, int]:
        """JSON-friendly description (stored in checkpoints)."""
        return {"shape_dim": self.shape_dim, "num_body_joints": self.num_body_joints,
                "param_dim": self.param_dim}
