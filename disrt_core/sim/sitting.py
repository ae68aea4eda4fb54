"""Bodies sitting on a long side of the mattress: the occupancy classifier's
``sitting_on_edge`` class (the posture label means nothing for them; they carry a flag).

The pose [choice] (:func:`sample_sitting`, semantic SMPL pose as in :mod:`poses`): facing
away from the bed across one long side (either, equally likely), turned U[±20°] about the
vertical, the trunk upright or leaning back up to 12° (on the hands); hips flexed so that
the thighs lie 0–8° below the horizontal (at most the 90.5° of the joint limits), knees
apart 0–12° each; knees bent U[65°, 90°] so the lower legs hang toward the floor (never
tucked back under the mattress, which a height field cannot hold), less where the floor is
nearer than the lower legs are long: the feet then stand on it (the knee is opened in 10°
steps until the sole clears the floor). The back of the knee lies at the mattress edge
(the knee nearer the bed 10 cm, for a 1.75 m body, + U[0, 4] cm beyond it), the pelvis
U[±(length/2 − 0.35 m)] along the bed. Arms:
*prop* (hand on the mattress beside the hip, arm a little out and back) or *lap* (hand on
its own thigh), each arm on its own, equally likely; the settling (:mod:`disrt_core.sim.rest`)
then lays the hands on the mattress or the thighs. [choice] A lap arm's humerus is turned
out (``ARMS["lap"]``: τ −45..−20°) so the forearm reaches forward along its own thigh: turned
in (τ 0..30°), the hand lay at or across the midline and in a quarter of the lap-lap draws
the two hands, or a hand and the other forearm, passed through each other, which the
settling cannot undo (it keeps each capsule pair no closer than it was). φ ≥ 35° and an
elbow of 65° or more keep the forearm above the thigh (the draws now clear every capsule
pair of the self-intersection test). The neck is bent forward 0–15° (looking down a
little), the spine ±5°.

The mattress carries the weight less the lower legs and feet (``FEET_LOAD``, 12 % of it,
Winter's segment masses) when the feet stand on the floor, all of it when they hang.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import roma
import torch
from torch import Tensor

from disrt_core.constants import const, on_device
from disrt_core.geometry.bedframe import BED_CENTRE_LABEL
from disrt_core.sim.poses import (
    ARM_CLASSES,
    ARMS,
    JOINT_LIMITS,
    LEG_CLASSES,
    _axis_rot,
    _uniform,
    arm_rotations,
    forward_joints,
    leg_rotations,
    mirror,
)

FEET_LOAD = 0.122  # of the body weight: both lower legs and feet
SIT_ARMS = ("prop", "lap")
SEAT_PELVIS = 0.10  # m the hip joints lie above the seat (1.75 m body)
SOLE_BELOW_ANKLE = 0.075  # m (1.75 m body)
SEAT_SINK = 0.05  # m the buttocks sink into the mattress (for the floor clearance only)


@dataclass
class SittingPose:
    """Sitting bodies (semantic pose, radians; label frame, m)."""

    root_orient: Tensor  # [B,3]
    body_pose: Tensor  # [B,69]
    xy: Tensor  # [B,2] pelvis position
    arm_class: Tensor  # [B,2] ARM_CLASSES index
    leg_class: Tensor  # [B,2] LEG_CLASSES index ("hanging")
    feet_on_floor: Tensor  # [B] bool
    mattress_load: Tensor  # [B] share of the body weight the mattress carries


def sample_sitting(n: int, gen: torch.Generator, rest_joints: Tensor, scale: Tensor,
                   width: Tensor, length: Tensor, floor_z: Tensor) -> SittingPose:
    """``n`` bodies sitting on the edge (module docstring). rest_joints [24,3]: the body
    model's T-pose joints (canonical), scaled per body by ``scale`` [n]; width, length [n]:
    the mattress; floor_z [n]: the floor below the mattress top (negative, m)."""
    device = rest_joints.device
    u = torch.rand(n, 12, generator=gen, device=device)
    side = torch.where(u[:, 0] < 0.5, -1.0, 1.0)
    yaw = torch.deg2rad((u[:, 1] * 2 - 1) * 20)
    lean = torch.deg2rad(-12 * u[:, 2])
    zero = torch.zeros_like(side)
    r0 = torch.stack([torch.stack([zero, zero, side], -1),
                      torch.stack([side, zero, zero], -1),
                      torch.stack([zero, zero + 1, zero], -1)], -2)  # columns: body x, y, z
    root = _axis_rot(2, yaw) @ r0 @ _axis_rot(0, lean)

    pose = torch.zeros(n, 23, 3, device=device)
    sit_arm = (u[:, 3:5] < 0.5).long()  # 0 prop, 1 lap
    arm_class = const(tuple(ARM_CLASSES.index(a) for a in SIT_ARMS), device)[sit_arm]
    ranges = const(tuple(tuple(ARMS[a][k] for k in ("alpha", "phi", "tau", "elbow"))
                         for a in SIT_ARMS), device)
    arm_par = _uniform(ranges[sit_arm], gen)  # [n,2,4]
    for k, (collar, shoulder, elbow) in enumerate(((13, 16, 18), (14, 17, 19))):
        c, s, e = arm_rotations(*arm_par[:, k].unbind(-1))
        if k == 1:
            c, s, e = mirror(c), mirror(s), mirror(e)
        pose[:, collar - 1], pose[:, shoulder - 1], pose[:, elbow - 1] = c, s, e
    flex = (math.pi / 2 + lean - torch.deg2rad(8 * u[:, 5])).clamp(max=1.5794)
    knee = torch.deg2rad(65 + 25 * u[:, 6:8])  # [n,2]
    for joint in (3, 6, 9):
        pose[:, joint - 1, 0] = torch.deg2rad((u[:, 8] * 2 - 1) * 5)
    pose[:, 11, 0] = torch.deg2rad(15 * u[:, 9])

    rest = rest_joints[None] * scale[:, None, None]
    pelvis_z = SEAT_PELVIS * scale - SEAT_SINK
    sole = SOLE_BELOW_ANKLE * scale
    steps = torch.arange(7, -1, -1, device=device, dtype=knee.dtype)[:, None]  # [8,1]
    transl = torch.stack([zero, zero, pelvis_z], -1).repeat(8, 1)
    for k, (hip, kn) in enumerate(((1, 4), (2, 5))):
        abd = torch.deg2rad(12 * u[:, 10 + k])
        # The most bent knee whose sole clears the floor: the knee opened by 70, 60, ...,
        # 0° (all eight tried at once), the last that clears kept.
        trial = (knee[None, :, k] - steps * math.radians(10)).clamp(min=math.radians(15))
        h, kk = leg_rotations(flex.repeat(8), abd.repeat(8), zero.repeat(8), trial.reshape(-1))
        if k == 1:
            h, kk = mirror(h), mirror(kk)
        trials = pose.repeat(8, 1, 1)
        trials[:, hip - 1], trials[:, kn - 1] = h, kk
        joints = forward_joints(rest.repeat(8, 1, 1), trials.reshape(8 * n, 69),
                                root.repeat(8, 1, 1), transl)
        clear = (joints[:, 7 + k, 2] - sole.repeat(8) >= floor_z.repeat(8) + 0.005).view(8, n)
        last = torch.where(clear, torch.arange(8, device=device)[:, None], -1).amax(0)
        best = torch.where(last >= 0, trial.gather(0, last.clamp(min=0)[None])[0], knee[:, k])
        h, kk = leg_rotations(flex, abd, zero, best)
        if k == 1:
            h, kk = mirror(h), mirror(kk)
        pose[:, hip - 1], pose[:, kn - 1] = h, kk
    limits = on_device(JOINT_LIMITS, pose)
    pose = torch.maximum(torch.minimum(pose, limits[..., 1]), limits[..., 0])

    joints = forward_joints(rest, pose.reshape(n, 69), root, torch.stack([zero, zero, pelvis_z],
                                                                          -1))
    feet = ((joints[:, 7:9, 2] - sole[:, None]) < floor_z[:, None] + 0.03).any(1)
    # The knee nearer the bed clear of the edge by a calf's depth (the height field of the
    # mattress has a vertical side: a calf inside its footprint would be inside it).
    near = torch.where(side > 0, joints[:, 4:6, 0].amin(1), joints[:, 4:6, 0].amax(1))
    edge = BED_CENTRE_LABEL[0] + side * width / 2
    x = edge + side * (0.1 * scale + 0.04 * u[:, 11]) - near
    room = (length / 2 - 0.35).clamp(min=0)
    y = BED_CENTRE_LABEL[1] + room * (2 * torch.rand(n, generator=gen, device=device) - 1)
    leg_class = torch.full((n, 2), LEG_CLASSES.index("hanging"), device=device)
    load = 1.0 - FEET_LOAD * feet.float()
    return SittingPose(roma.rotmat_to_rotvec(root), pose.reshape(n, 69), torch.stack([x, y], -1),
                       arm_class, leg_class, feet, load)
