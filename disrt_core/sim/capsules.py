"""Capsule model of the body for the gross self-intersection check of the pose prior.

:func:`self_intersecting` approximates limbs and trunk by capsules between joints and flags
poses where two non-adjacent capsules' axes come closer than half the sum of their radii
(gross interpenetration only; a hand resting on the chest passes).
"""

from __future__ import annotations

import torch
from torch import Tensor

from disrt_core.constants import const

#: Capsules (joint a, joint b, radius in m for a 1.75 m adult).
CAPSULES = {
    "trunk_low": (0, 6, 0.10), "trunk_high": (6, 12, 0.10), "head": (12, 15, 0.085),
    "l_upper": (16, 18, 0.045), "r_upper": (17, 19, 0.045),
    "l_fore": (18, 20, 0.035), "r_fore": (19, 21, 0.035),
    "l_hand": (20, 22, 0.03), "r_hand": (21, 23, 0.03),
    "l_thigh": (1, 4, 0.07), "r_thigh": (2, 5, 0.07),
    "l_shin": (4, 7, 0.045), "r_shin": (5, 8, 0.045),
    "l_foot": (7, 10, 0.035), "r_foot": (8, 11, 0.035),
}  # fmt: skip
#: Capsule pairs that must not interpenetrate grossly.
CAPSULE_PAIRS = [
    ("l_fore", "r_fore"), ("l_hand", "r_hand"), ("l_hand", "r_fore"), ("r_hand", "l_fore"),
    ("l_upper", "trunk_high"), ("r_upper", "trunk_high"), ("l_fore", "head"),
    ("r_fore", "head"), ("l_hand", "head"), ("r_hand", "head"), ("l_upper", "head"),
    ("r_upper", "head"), ("l_thigh", "r_thigh"), ("l_shin", "r_shin"), ("l_foot", "r_foot"),
    ("l_shin", "r_thigh"), ("r_shin", "l_thigh"), ("l_fore", "l_thigh"),
    ("r_fore", "r_thigh"), ("l_hand", "trunk_low"), ("r_hand", "trunk_low"),
    ("l_fore", "trunk_low"), ("r_fore", "trunk_low"),
]


def segment_distance(p0: Tensor, p1: Tensor, q0: Tensor, q1: Tensor) -> Tensor:
    """Closest distance between segments p0-p1 and q0-q1 ([..., 3] each), batched."""
    d1, d2, r = p1 - p0, q1 - q0, p0 - q0
    a, e = (d1 * d1).sum(-1).clamp(min=1e-12), (d2 * d2).sum(-1).clamp(min=1e-12)
    b, c, f = (d1 * d2).sum(-1), (d1 * r).sum(-1), (d2 * r).sum(-1)
    denom = a * e - b * b
    s = torch.where(denom > 1e-12, ((b * f - c * e) / denom.clamp(min=1e-12)).clamp(0, 1),
                    torch.zeros_like(a))
    t = (b * s + f) / e
    s = torch.where(t < 0, (-c / a).clamp(0, 1), torch.where(t > 1, ((b - c) / a).clamp(0, 1), s))
    t = t.clamp(0, 1)
    return ((p0 + d1 * s[..., None]) - (q0 + d2 * t[..., None])).norm(dim=-1)


def self_intersecting(joints: Tensor, scale: Tensor | None = None,
                      tolerance: float = 0.5) -> Tensor:
    """Bool [B]: some capsule pair of ``CAPSULE_PAIRS`` is closer than ``tolerance`` × the
    sum of their radii (scaled by ``scale`` [B], body height / 1.75 m)."""
    dev = joints.device
    a = const([CAPSULES[p][0] for p, _ in CAPSULE_PAIRS], dev)
    b = const([CAPSULES[p][1] for p, _ in CAPSULE_PAIRS], dev)
    c = const([CAPSULES[q][0] for _, q in CAPSULE_PAIRS], dev)
    d = const([CAPSULES[q][1] for _, q in CAPSULE_PAIRS], dev)
    radius = const([CAPSULES[p][2] + CAPSULES[q][2] for p, q in CAPSULE_PAIRS], dev)
    dist = segment_distance(joints[:, a], joints[:, b], joints[:, c], joints[:, d])
    if scale is not None:
        radius = radius * scale[:, None]
    return (dist < tolerance * radius).any(-1)
