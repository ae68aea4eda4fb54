"""SMPL's kinematic chain without a mesh, one tree level at a time.

The generator evaluates the chain for thousands of candidate poses (pose redraws, sitting
knees, the settling); joint by joint that is 23 small matrix products per call, and the GPU
generator is bound by such launches (benchmarks/NOTES.md). The joints of one depth in the
tree (8 levels below the pelvis) do not depend on each other, so each level is one batched
product. Rotations are world-aligned, as both body-model backends use.
"""

from __future__ import annotations

import roma
import torch
from torch import Tensor

from disrt_core.body.skeleton import SMPL_PARENTS
from disrt_core.constants import const


def _depth(j: int) -> int:
    return 0 if SMPL_PARENTS[j] < 0 else 1 + _depth(SMPL_PARENTS[j])


#: Joints per tree depth 1..8 and their parents (SMPL order).
LEVELS: tuple[tuple[int, ...], ...] = tuple(
    tuple(j for j in range(1, 24) if _depth(j) == d)
    for d in range(1, 1 + max(_depth(j) for j in range(24))))


def _level_index(device: torch.device) -> tuple[tuple[Tensor, Tensor], ...]:
    """(joints, parents) index tensors per level on ``device`` (made once, disrt_core.constants)."""
    return tuple((const(js, device, torch.long),
                  const([SMPL_PARENTS[j] for j in js], device, torch.long)) for js in LEVELS)


def global_rotations(root_rotmat: Tensor, body_pose: Tensor) -> Tensor:
    """World rotations [B,24,3,3] of every joint's frame, G_j = G_parent(j) · R_j, from the
    root rotation [B,3,3] and body_pose [B,69] (axis-angle of joints 1..23)."""
    n = body_pose.shape[0]
    local = roma.rotvec_to_rotmat(body_pose.reshape(n, 23, 3))
    local = torch.cat([root_rotmat[:, None], local], 1)  # [B,24,3,3], joint 0 = the root
    glob = local
    for joints, parents in _level_index(body_pose.device):
        glob = glob.index_copy(1, joints, glob[:, parents] @ local[:, joints])
    return glob


def forward_joints(rest: Tensor, body_pose: Tensor, root_rotmat: Tensor,
                   transl: Tensor) -> Tensor:
    """Posed joints [B,24,3] from rest joints [B,24,3] (canonical), body pose [B,69], root
    rotation [B,3,3] and pelvis position [B,3]: p_j = p_parent + G_parent · (r_j − r_parent)."""
    glob = global_rotations(root_rotmat, body_pose)
    pos = transl[:, None].expand(-1, 24, -1).contiguous()
    for joints, parents in _level_index(rest.device):
        bone = (rest[:, joints] - rest[:, parents])[..., None]
        pos = pos.index_copy(1, joints, pos[:, parents] + (glob[:, parents] @ bone)[..., 0])
    return pos
