"""Posture classes (supine, left lateral, right lateral, prone) from the root orientation.

The canonical body frame has x toward the body's left and z out of the chest; the label
(bed) frame has z up. Rotating those axes by the root orientation gives where the chest and
the left side face: chest up = supine, chest down = prone, otherwise lateral, named by the
side that is down (left lateral = lying on the left side). Used for the generator's labels,
the node's ``~/posture`` topic and posture accuracy.
"""

from __future__ import annotations

import math

import roma
import torch
from torch import Tensor

POSTURES: tuple[str, ...] = ("supine", "left", "right", "prone")
SUPINE, LEFT, RIGHT, PRONE = range(4)
_COS45 = math.cos(math.pi / 4)


def posture_from_rotmat(root_rotmat: Tensor) -> Tensor:
    """Posture index [B] (see ``POSTURES``) from root rotation matrices [B,3,3] (label frame)."""
    chest_up = root_rotmat[..., 2, 2]  # z component of R·(0,0,1)
    left_up = root_rotmat[..., 2, 0]  # z component of R·(1,0,0)
    lateral = torch.where(left_up < 0, LEFT, RIGHT)
    out = torch.where(chest_up > _COS45, SUPINE, torch.where(chest_up < -_COS45, PRONE, lateral))
    return out.long()


def posture_from_axis_angle(root_orient: Tensor) -> Tensor:
    """Posture index [B] from root axis-angles [B,3] in the label frame."""
    return posture_from_rotmat(roma.rotvec_to_rotmat(root_orient))
