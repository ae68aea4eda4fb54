"""Where the body lies on the mattress (x, y) and how it first touches it (z).

[choice] The body's footprint is estimated from its joints (each widened by a flesh margin,
``JOINT_MARGIN``), so placement happens before any mesh is built. The footprint is centred
on the mattress and then shifted by a uniform random fraction (±40 %) of the room left on
each axis; a footprint wider than the mattress minus 2 cm is refused (the pose is redrawn),
and one up to 3 cm longer than it is allowed (feet over the end). For an average adult
lying supine this puts the pelvis near (0.35, 0.95) m in the label frame, where SLP's
subjects lie. Vertically the body is first put down with its lowest vertex on the mattress
top (z = 0) (:func:`lowest_point_offset`, for callers without settling); the settling of
:mod:`disrt_core.sim.rest` and the sinkage of :mod:`disrt_core.sim.mattress` then rest it.
:func:`part_labels` (trunk or limb per vertex) is kept for callers of the coarse parts;
:mod:`disrt_core.sim.bodyparts` has the settling's own.
"""

from __future__ import annotations

import torch
from torch import Tensor

from disrt_core.constants import const
from disrt_core.geometry.bedframe import BED_CENTRE_LABEL

#: Flesh around each SMPL joint (m, for a 1.75 m adult): how far the body reaches beyond it.
JOINT_MARGIN = (0.12, 0.09, 0.09, 0.12, 0.07, 0.07, 0.12, 0.06, 0.06, 0.12, 0.06, 0.06,
                0.08, 0.08, 0.08, 0.11, 0.07, 0.07, 0.05, 0.05, 0.05, 0.05, 0.09, 0.09)
SIDE_CLEARANCE = 0.02  # m left free across the mattress
END_OVERHANG = 0.03  # m a footprint may exceed the mattress length
SHIFT_FRACTION = 0.8  # of the free room, as a full range centred on 0


def footprint(joints: Tensor, scale: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Lower and upper (x, y) corners [B,2] of the body's footprint from joints [B,24,3]."""
    margin = const(JOINT_MARGIN, joints.device, joints.dtype)[None]
    if scale is not None:
        margin = margin * scale[:, None]
    xy = joints[..., :2]
    return (xy - margin[..., None]).amin(1), (xy + margin[..., None]).amax(1)


def place_on_mattress(joints: Tensor, width: Tensor, length: Tensor, gen: torch.Generator,
                      scale: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Translation (x, y) [B,2] to add to bodies posed with their pelvis at the origin
    (joints [B,24,3], bed frame orientation), and whether each fits [B] (bool)."""
    lo, hi = footprint(joints, scale)
    size = torch.stack([width - SIDE_CLEARANCE, length], -1)
    room = size - (hi - lo)
    fits = (room[:, 0] >= 0) & (room[:, 1] >= -END_OVERHANG)
    u = torch.rand(joints.shape[0], 2, generator=gen, device=joints.device) - 0.5
    shift = u * SHIFT_FRACTION * room.clamp(min=0)
    centre = const(BED_CENTRE_LABEL, joints.device, joints.dtype)
    return centre - (lo + hi) / 2 + shift, fits


def lowest_point_offset(vertices: Tensor) -> Tensor:
    """Vertical shift [B] that puts the lowest vertex of each body at z = 0."""
    return -vertices[..., 2].amin(1)


#: Coarse body parts: (name, first joint of the limb, its parent, segments).
LIMBS = (
    ("left_arm", 16, 13, ((16, 18), (18, 20), (20, 22))),
    ("right_arm", 17, 14, ((17, 19), (19, 21), (21, 23))),
    ("left_leg", 1, 0, ((1, 4), (4, 7), (7, 10))),
    ("right_leg", 2, 0, ((2, 5), (5, 8), (8, 11))),
)
TRUNK_SEGMENTS = ((0, 3), (3, 6), (6, 9), (9, 12), (12, 15), (0, 1), (0, 2), (9, 13), (9, 14),
                  (13, 16), (14, 17))


def part_labels(vertices: Tensor, joints: Tensor) -> Tensor:
    """Part of every vertex of a rest mesh [V,3] with joints [24,3]: 0 trunk (and head),
    1..4 the ``LIMBS``; the part whose bone segment is nearest."""
    segments, owner = list(TRUNK_SEGMENTS), [0] * len(TRUNK_SEGMENTS)
    for k, (_, _, _, bones) in enumerate(LIMBS):
        segments += bones
        owner += [k + 1] * len(bones)
    a = joints[[s for s, _ in segments]]
    b = joints[[e for _, e in segments]]
    ab = (b - a)[None]  # [1,S,3]
    t = (((vertices[:, None] - a[None]) * ab).sum(-1) / (ab * ab).sum(-1).clamp(min=1e-12))
    closest = a[None] + t.clamp(0, 1)[..., None] * ab
    dist = (vertices[:, None] - closest).norm(dim=-1)  # [V,S]
    return torch.tensor(owner, device=vertices.device)[dist.argmin(1)]
