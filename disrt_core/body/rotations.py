"""Small rotation helpers that roma and smplx do not provide."""

from __future__ import annotations

import functools

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


@functools.cache
def roma_constants_outside_inference(device: torch.device) -> None:
    """Make roma's per-device constant outside ``torch.inference_mode``. roma caches it
    (``functools.lru_cache`` in ``roma.mappings``) at the first ``special_procrustes`` on a
    device (Anny's rest model and ``average_bodies`` call it): made inside inference mode (an
    Estimator's predict) it is an inference tensor, and every later call with autograd in
    the same process (a training step after an evaluation) fails. Called before either."""
    with torch.inference_mode(False):
        roma.special_procrustes(torch.eye(3, device=device)[None])
