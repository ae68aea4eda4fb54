"""The mesh decoder ("MeshEstimator", SPEC §1.3): network output x̂0 -> body-model input ->
joints and mesh in the label (bed) frame.

Two branches:

* **prediction** (``is_gt=False``), applied to the network's x̂0: translation offset
  ``transl += (0.314, 0.914, 0.1)`` m, root axis-angle from ``atan2(sin, cos)``, shape squash
  ``3·tanh(shape/3)``, and per-joint tanh bounds ``θ ← m + h·tanh((θ−m)/h)`` with (m ± h) =
  2 × the SPEC's table, then the body model;
* **ground truth** (``is_gt=True``): no offset, no squash, no bounds.

All constants are named and configurable (:class:`DecoderConfig`, stored in checkpoints,
SPEC §11). Outputs stay in the label frame; :func:`to_vertex_frame` gives the ``[y, x, −z]``
"vertex frame" of the reference's GT vertex files.

**Anny** (poses in SMPL axes, zero pose = A-pose). The shape squash keeps the shape in
(−3, 3), which Anny's backend maps inside its phenotype range [0, 1]. The SMPL joint bounds
are written for SMPL's T-pose with straight arms: the elbows flex about y only (x and z held
to ±0.02 rad) and may not extend past straight. Anny's rest upper arms hang 49° below the
horizontal and its rest forearms are bent 42° forward, so with the plain table its elbows
could neither bend (the flexion axis has a −0.75 x component: a 90° flexion is out of
reach) nor straighten (0.73 rad of extension needed, 0.096 allowed). We therefore express
the elbow, wrist and hand bounds in a frame carried from SMPL's T-pose arm onto the body
model's rest arm (x along the upper arm, y the elbow hinge; ``arm_frames``) and shift the
elbow's flexion bounds by the rest flexion (``elbow_rest_y``), both measured on the model's
rest pose by :func:`arm_bound_calibration`. For SMPL both are zero (paper-exact). The
shoulder, collar, spine, hip and knee bounds are wide enough or aligned for both models
(checked on straight arms at the sides, hands on the belly and arms overhead in
``test/core/test_decoder.py``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import roma
import torch
from torch import Tensor, nn

from disrt_core.body.base import BodyModel
from disrt_core.body.layout import ParamLayout
from disrt_core.body.skeleton import SMPL_JOINT_NAMES

_P3, _P6, _P36 = math.pi / 3, math.pi / 6, math.pi / 36
_COLLAR_L = ((-1.551596394, 2.206094311), (-2.455676183, 0.7627082389), (-1.570795, 2.188641033))
_COLLAR_R = ((-1.551596394, 2.206094311), (-0.7627082389, 2.455676183), (-2.188641033, 1.570795))
_SPINE = ((-_P3, _P3), (-_P36, _P36), (-_P36, _P36))
_LOCKED = ((-0.01, 0.01),) * 3
_PI6 = ((-_P6, _P6),) * 3


def _scaled(rows, k):
    return tuple((lo * k, hi * k) for lo, hi in rows)


#: Per-joint (x, y, z) axis-angle bounds in rad, SMPL order, before the ×2 of SPEC §1.3.
JOINT_ANGLE_BOUNDS: tuple[tuple[tuple[float, float], ...], ...] = (
    ((-0.5933865286111969, 0.5933865286111969), (-2 * math.pi, 2 * math.pi),
     (-1.215762200416361, 1.215762200416361)),  # 0 root
    ((-1.5793940868065197, 0.3097956806), (-0.5881754611, 0.5689768556),
     (-0.5323249722, 0.6736965222)),  # 1 left hip
    ((-1.5793940868065197, 0.3097956806), (-0.5689768556, 0.5881754611),
     (-0.6736965222, 0.5323249722)),  # 2 right hip
    _SPINE,  # 3 spine1
    ((-0.02268926111, 2.441713561), (-0.01, 0.01), (-0.01, 0.01)),  # 4 left knee
    ((-0.02268926111, 2.441713561), (-0.01, 0.01), (-0.01, 0.01)),  # 5 right knee
    _SPINE, _PI6, _PI6,  # 6 spine2, 7 left ankle, 8 right ankle
    _SPINE, _LOCKED, _LOCKED,  # 9 spine3, 10 left foot, 11 right foot
    _SPINE, _scaled(_COLLAR_L, 1 / 3), _scaled(_COLLAR_R, 1 / 3),  # 12 neck, 13/14 collars
    _SPINE, _scaled(_COLLAR_L, 2 / 3), _scaled(_COLLAR_R, 2 / 3),  # 15 head, 16/17 shoulders
    ((-0.01, 0.01), (-2.570867817, 0.04799651389), (-0.01, 0.01)),  # 18 left elbow
    ((-0.01, 0.01), (-0.04799651389, 2.570867817), (-0.01, 0.01)),  # 19 right elbow
    _PI6, _PI6, _LOCKED, _LOCKED,  # 20/21 wrists, 22/23 hands
)  # fmt: skip

#: Joints whose bounds follow the rest direction of the upper arm (see module docstring).
ARM_CHAIN = {"left": (18, 20, 22), "right": (19, 21, 23)}


@dataclass(frozen=True)
class DecoderConfig:
    """Constants of the prediction branch (SPEC §1.3, §11); JSON-friendly for checkpoints.

    translation_offset: added to the predicted root translation, m ((0.6−0.286, 1.2−0.286, 0.1)).
    shape_limit: shape ← limit·tanh(shape/limit).
    bounds_scale: multiplies the table :data:`JOINT_ANGLE_BOUNDS` (reference: 2).
    apply_bounds: False turns the joint bounds off.
    arm_frames: (left, right) rotation vectors (rad, SMPL axes) of the frames the elbow,
        wrist and hand bounds are expressed in.
    elbow_rest_y: (left, right) flexion (rad, about the frame's y) of the rest pose's
        elbows relative to a straight arm; the elbow y bounds are shifted by minus this.
        Both are zeros for SMPL; :func:`arm_bound_calibration` measures them for others.
    """

    translation_offset: tuple[float, float, float] = (0.314, 0.914, 0.1)
    shape_limit: float = 3.0
    bounds_scale: float = 2.0
    apply_bounds: bool = True
    arm_frames: tuple[tuple[float, float, float], tuple[float, float, float]] = (
        (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    elbow_rest_y: tuple[float, float] = (0.0, 0.0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DecoderConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown decoder config keys {unknown}; known: {sorted(known)}")
        data = dict(data)
        if "translation_offset" in data:
            data["translation_offset"] = tuple(data["translation_offset"])
        if "elbow_rest_y" in data:
            data["elbow_rest_y"] = tuple(data["elbow_rest_y"])
        if "arm_frames" in data:
            data["arm_frames"] = tuple(tuple(float(v) for v in r) for r in data["arm_frames"])
        return cls(**data)


def angle_bounds(scale: float = 2.0, elbow_rest_y=(0.0, 0.0)) -> tuple[Tensor, Tensor]:
    """(lo, hi) [24, 3] in rad: the SPEC table times ``scale``, the elbows' y bounds shifted
    by minus the rest flexion ``elbow_rest_y`` (left, right)."""
    table = torch.tensor(JOINT_ANGLE_BOUNDS, dtype=torch.float64) * scale  # [24,3,2]
    for elbow, rest in zip((ARM_CHAIN["left"][0], ARM_CHAIN["right"][0]), elbow_rest_y):
        table[elbow, 1] -= rest
    return table[..., 0].float(), table[..., 1].float()


def arm_bound_frames(arm_frames) -> Tensor:
    """Rotations [24,3,3] of the frames the joint bounds are expressed in: the left (right)
    rotation vector of ``arm_frames`` for the left (right) elbow, wrist and hand, else I."""
    frames = torch.eye(3).repeat(24, 1, 1)
    for side, rotvec in zip(("left", "right"), arm_frames):
        rot = roma.rotvec_to_rotmat(torch.tensor(rotvec, dtype=torch.float64)).float()
        for joint in ARM_CHAIN[side]:
            frames[joint] = rot
    return frames


def offset_translation(x: Tensor, layout: ParamLayout, offset) -> Tensor:
    """x [B, P] with the translation offset added (a new tensor; SPEC §1.3 step 1)."""
    shift = torch.zeros(layout.param_dim, dtype=x.dtype, device=x.device)
    shift[layout.transl] = torch.as_tensor(offset, dtype=x.dtype, device=x.device)
    return x + shift


def squash_shape(shape: Tensor, limit: float = 3.0) -> Tensor:
    """``limit·tanh(shape/limit)`` (SPEC §1.3 step 3): identity near 0, |out| < limit."""
    return limit * torch.tanh(shape / limit)


def bound_angles(theta: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """Soft box bounds ``m + h·tanh((θ−m)/h)``, m = (lo+hi)/2, h = (hi−lo)/2 (SPEC §1.3)."""
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    return mid + half * torch.tanh((theta - mid) / half)


def bound_pose(theta: Tensor, lo: Tensor, hi: Tensor, frames: Tensor | None = None) -> Tensor:
    """Bounds on θ [B, 24, 3] (axis-angles, SMPL axes), each joint's expressed in its frame
    ``frames[j]`` (θ' = Rᵀθ is bounded, then rotated back); ``frames=None`` = identity."""
    if frames is None:
        return bound_angles(theta, lo, hi)
    local = torch.einsum("jba,njb->nja", frames, theta)  # Rᵀ θ
    return torch.einsum("jab,njb->nja", frames, bound_angles(local, lo, hi))


class DecodedBody(NamedTuple):
    """Decoder output for B parameter vectors (label frame, m, rad)."""

    params: Tensor  # [B, P] what the body model took (offset, squashed, bounded, cos/sin)
    shape: Tensor  # [B, S] shape after the squash (prediction) or as given (GT)
    theta: Tensor  # [B, 72] root axis-angle (atan2) and 69 body-pose values, after bounds
    root_cs: Tensor  # [B, 6] the raw cos|sin slice of the input
    joints: Tensor  # [B, 24, 3]
    vertices: Tensor  # [B, V, 3]


class MeshDecoder(nn.Module):
    """Parameter vectors -> :class:`DecodedBody` through a body model (SPEC §1.3).

    ``forward(x, gender=None, is_gt=False)``: x [B, P] in the body model's layout.
    """

    def __init__(self, body_model: BodyModel, config: DecoderConfig | None = None) -> None:
        super().__init__()
        self.body_model = body_model
        if config is None:
            frames, rest_y = arm_bound_calibration(body_model)
            config = DecoderConfig(arm_frames=frames, elbow_rest_y=rest_y)
        self.config = config
        lo, hi = angle_bounds(config.bounds_scale, config.elbow_rest_y)
        self.register_buffer("lo", lo, persistent=False)
        self.register_buffer("hi", hi, persistent=False)
        frames = arm_bound_frames(self.config.arm_frames)
        identity = bool(torch.equal(frames, torch.eye(3).expand(24, 3, 3)))
        self.register_buffer("frames", None if identity else frames, persistent=False)

    @property
    def layout(self) -> ParamLayout:
        return self.body_model.param_layout

    def decode_params(self, x: Tensor, is_gt: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """(body-model params [B,P], shape [B,S], θ [B,72]) of x [B,P] (SPEC §1.3 steps 1-3)."""
        layout, cfg = self.layout, self.config
        if not is_gt:
            x = offset_translation(x, layout, cfg.translation_offset)
        p = layout.unpack(x)
        theta = torch.cat([p.root_orient, p.body_pose], dim=-1)
        if is_gt:
            return x, p.shape, theta
        shape = squash_shape(p.shape, cfg.shape_limit)
        if cfg.apply_bounds:
            theta = bound_pose(theta.view(-1, 24, 3), self.lo, self.hi, self.frames).flatten(1)
        params = layout.pack(shape, p.transl, theta[:, :3], theta[:, 3:])
        return params, shape, theta

    def forward(self, x: Tensor, gender: Tensor | None = None, is_gt: bool = False) -> DecodedBody:
        params, shape, theta = self.decode_params(x, is_gt)
        vertices, joints = self.body_model(params, gender)
        root_cs = x[:, self.layout.root_cos.start:self.layout.root_sin.stop]
        return DecodedBody(params, shape, theta, root_cs, joints, vertices)


def arm_bound_calibration(body_model: BodyModel, min_bend: float = 0.05):
    """``(arm_frames, elbow_rest_y)`` of a body model, measured on its rest pose.

    Each side's frame carries SMPL's T-pose elbow frame onto the rest arm: x (SMPL's left
    upper arm; −x on the right) onto the upper arm u (shoulder -> elbow), y onto the elbow
    hinge with SMPL's flexion sign (left elbows flex about −y, right ones about +y; the
    hinge is ``u×f``, f = elbow -> wrist). ``elbow_rest_y`` is the rest flexion in that frame
    (−bend left, +bend right). A straight rest arm (bend < ``min_bend`` rad) only gets the
    rotation about z that lays ±x onto the upper arm. SMPL models get zeros (paper-exact).
    """
    zero = (0.0, 0.0, 0.0)
    if body_model.model_id.startswith("smpl"):
        return (zero, zero), (0.0, 0.0)
    params = body_model.zero_params(1)
    gender = None
    if body_model.takes_gender:
        gender = torch.tensor([[0.5, 0.5]], device=params.device)
    with torch.no_grad():
        joints = body_model(params, gender).joints[0].double().cpu()
    names = list(SMPL_JOINT_NAMES)
    frames, rest_y = [], []
    for side, sign in (("left", 1.0), ("right", -1.0)):
        shoulder, elbow, wrist = (joints[names.index(f"{side}_{j}")]
                                  for j in ("shoulder", "elbow", "wrist"))
        u, f = elbow - shoulder, wrist - elbow
        e1 = sign * u / u.norm()
        hinge = torch.linalg.cross(u, f)
        bend = float(torch.atan2(hinge.norm(), torch.dot(u, f)))
        if bend < min_bend:  # straight arm: rotate about z only
            e1 = torch.stack([e1[0], e1[1], e1.new_zeros(())])
            e1 = e1 / e1.norm()
            e2 = torch.stack([-e1[1], e1[0], e1.new_zeros(())])
            bend = 0.0
        else:
            e2 = -sign * hinge / hinge.norm()
            e2 = e2 - torch.dot(e2, e1) * e1
            e2 = e2 / e2.norm()
        rot = torch.stack([e1, e2, torch.linalg.cross(e1, e2)], dim=1)  # columns
        frames.append(tuple(float(v) for v in roma.rotmat_to_rotvec(rot)))
        rest_y.append(-sign * bend)
    return (frames[0], frames[1]), (rest_y[0], rest_y[1])


def to_vertex_frame(vertices: Tensor) -> Tensor:
    """Label frame -> the reference's "vertex frame" ``[y, x, −z]`` (SPEC §1.3 step 5); the map
    is its own inverse, so it also brings GT vertex files (vertex frame) into the label frame."""
    return torch.stack([vertices[..., 1], vertices[..., 0], -vertices[..., 2]], dim=-1)

