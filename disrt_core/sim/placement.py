"""Where the body lies on the mattress (x, y) and how it first touches it (z).

[choice] The body's footprint is estimated from its joints (each widened by a flesh margin,
``JOINT_MARGIN``), so placement happens before any mesh is built. The footprint is centred
on the mattress and then shifted by a uniform random fraction (±40 %) of the room left on
each axis; a footprint wider than the mattress minus 2 cm is refused (the pose is redrawn),
and one up to 3 cm longer than it is allowed (feet over the end). For an average adult
lying supine this puts the pelvis near (0.35, 0.95) m in the label frame, where SLP's
subjects lie. Vertically the body is first put down with its lowest vertex on the mattress
top (z = 0) — the sinkage of :mod:`disrt_core.sim.mattress` then lowers it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from disrt_core.geometry.bedframe import BED_CENTRE_LABEL

#: Flesh around each SMPL joint (m, for a 1.75 m adult): how far the body reaches beyond it.
JOINT_MARGIN = (0.12, 0.09, 0.09, 0.12, 0.07, 0.07, 0.12, 0.06, 0.06, 0.12, 0.06, 0.06,
                0.08, 0.08, 0.08, 0.11, 0.07, 0.07, 0.05, 0.05, 0.05, 0.05, 0.09, 0.09)
SIDE_CLEARANCE = 0.02  # m left free across the mattress
END_OVERHANG = 0.03  # m a footprint may exceed the mattress length
SHIFT_FRACTION = 0.8  # of the free room, as a full range centred on 0


def footprint(joints: Tensor, scale: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Lower and upper (x, y) corners [B,2] of the body's footprint from joints [B,24,3]."""
    margin = joints.new_tensor(JOINT_MARGIN)[None]
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
    centre = joints.new_tensor(BED_CENTRE_LABEL)
    return centre - (lo + hi) / 2 + shift, fits


def lowest_point_offset(vertices: Tensor) -> Tensor:
    """Vertical shift [B] that puts the lowest vertex of each body at z = 0."""
    return -vertices[..., 2].amin(1)


#: Body parts for settling: (name, first joint of the limb, its parent, segments).
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


def settle_limbs(vertices: Tensor, joints: Tensor, labels: Tensor, rotations: Tensor,
                 body_pose: Tensor, tolerance: float = 0.005) -> tuple[Tensor, Tensor]:
    """Raise limbs that reach below the trunk so they rest at the trunk's level.

    A rigid body on a spring bed is carried by its lowest parts; a hand or heel a few cm
    below the back would take the whole weight. [choice] For every limb whose lowest vertex
    lies more than ``tolerance`` below the trunk's lowest vertex, the limb is turned about
    its first joint (shoulder or hip), around the horizontal axis across the line to that
    vertex, by the exact angle that brings the vertex up to the trunk's level. Limbs above
    the trunk (a hand on the chest, a raised knee) are left alone.

    vertices [B,V,3], joints [B,24,3]: the posed body (bed frame); labels [V] from
    :func:`part_labels`; rotations [B,24,3,3] global joint rotations
    (``poses.global_rotations``); body_pose [B,69]. Returns the new body pose and
    a bool [B,4] of the limbs that moved.
    """
    import roma

    z = vertices[..., 2]
    big = torch.finfo(z.dtype).max
    trunk_low = torch.where(labels == 0, z, big).amin(1)
    pose = body_pose.reshape(-1, 23, 3).clone()
    moved = []
    up = z.new_tensor([0.0, 0.0, 1.0])
    for k, (_, first, parent, _) in enumerate(LIMBS):
        zk = torch.where(labels == k + 1, z, big)
        low_z, low_i = zk.min(1)
        gap = trunk_low - low_z
        move = gap > tolerance
        point = vertices.gather(1, low_i[:, None, None].expand(-1, 1, 3))[:, 0]
        r = point - joints[:, first]
        horizontal = r[:, :2].norm(dim=-1).clamp(min=1e-6)
        axis = torch.linalg.cross(torch.cat([r[:, :2], torch.zeros_like(r[:, :1])], -1),
                                  up.expand_as(r))
        axis = axis / axis.norm(dim=-1, keepdim=True).clamp(min=1e-9)
        # In the plane across the axis the point is at (h, r_z); turning by θ puts it at
        # height R·sin(θ + φ) with R = |(h, r_z)|, φ = atan2(r_z, h).
        radius = torch.sqrt(horizontal**2 + r[:, 2] ** 2)
        phi = torch.atan2(r[:, 2], horizontal)
        target = ((r[:, 2] + gap) / radius).clamp(-1, 1)
        theta = torch.where(move, torch.asin(target) - phi, torch.zeros_like(gap))
        lift = roma.rotvec_to_rotmat(axis * theta[:, None])
        g_parent = rotations[:, parent]
        local = roma.rotvec_to_rotmat(pose[:, first - 1])
        new = g_parent.transpose(-1, -2) @ lift @ g_parent @ local
        pose[:, first - 1] = torch.where(move[:, None], roma.rotmat_to_rotvec(new),
                                         pose[:, first - 1])
        moved.append(move)
    return pose.reshape(-1, 69), torch.stack(moved, -1)
