"""Small rotation helpers that roma and smplx do not provide."""

from __future__ import annotations

import roma
import torch
from torch import Tensor


def rotation_between(a: Tensor, b: Tensor) -> Tensor:
    """The smallest rotations [...,3,3] taking unit vectors ``a`` [...,3] onto unit vectors
    ``b`` [...,3] (about the axis a×b; the identity where they already agree). Not defined
    for opposite vectors, which callers here never pass."""
    axis = torch.linalg.cross(a, b)
    sin = axis.norm(dim=-1, keepdim=True)
    cos = (a * b).sum(-1, keepdim=True)
    angle = torch.atan2(sin, cos)
    rotvec = torch.where(sin > 1e-9, axis / sin.clamp(min=1e-9) * angle, torch.zeros_like(axis))
    return roma.rotvec_to_rotmat(rotvec)


def align_x(d: Tensor) -> Tensor:
    """Smallest rotations [B,3,3] taking +x onto the unit directions ``d`` [B,3]."""
    return rotation_between(torch.zeros_like(d) + d.new_tensor([1.0, 0.0, 0.0]), d)
