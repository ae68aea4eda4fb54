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

**Anny** takes the same parameter vector as SMPL (poses in SMPL axes, T-pose zero: its
backend retargets its own A-pose rest, see ``disrt_core.body.anny``), so the SPEC's bounds
apply unchanged; the shape squash keeps the shape in (−3, 3), which Anny's backend maps
inside its phenotype range [0, 1]. Straight arms at the sides, hands on the belly and arms
overhead are all within reach (``test/core/test_decoder.py``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import torch
from torch import Tensor, nn

from disrt_core.body.base import BodyModel
from disrt_core.body.layout import ParamLayout

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



@dataclass(frozen=True)
class DecoderConfig:
    """Constants of the prediction branch (SPEC §1.3, §11); JSON-friendly for checkpoints.

    translation_offset: added to the predicted root translation, m ((0.6−0.286, 1.2−0.286, 0.1)).
    shape_limit: shape ← limit·tanh(shape/limit).
    bounds_scale: multiplies the table :data:`JOINT_ANGLE_BOUNDS` (reference: 2).
    apply_bounds: False turns the joint bounds off.
    """

    translation_offset: tuple[float, float, float] = (0.314, 0.914, 0.1)
    shape_limit: float = 3.0
    bounds_scale: float = 2.0
    apply_bounds: bool = True

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
        return cls(**data)


def angle_bounds(scale: float = 2.0) -> tuple[Tensor, Tensor]:
    """(lo, hi) [24, 3] in rad: the SPEC table times ``scale``."""
    table = torch.tensor(JOINT_ANGLE_BOUNDS, dtype=torch.float64) * scale  # [24,3,2]
    return table[..., 0].float(), table[..., 1].float()


def translation_shift(layout: ParamLayout, offset) -> Tensor:
    """[P] zeros but for ``offset`` (m) at the root translation: x + shift is SPEC §1.3
    step 1. The decoder keeps it as a buffer (no host-to-GPU copy per call, so that a CUDA
    graph can capture the decoding)."""
    shift = torch.zeros(layout.param_dim)
    shift[layout.transl] = torch.as_tensor(offset, dtype=shift.dtype)
    return shift


def squash_shape(shape: Tensor, limit: float = 3.0) -> Tensor:
    """``limit·tanh(shape/limit)`` (SPEC §1.3 step 3): identity near 0, |out| < limit."""
    return limit * torch.tanh(shape / limit)


def bound_angles(theta: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """Soft box bounds ``m + h·tanh((θ−m)/h)``, m = (lo+hi)/2, h = (hi−lo)/2 (SPEC §1.3)."""
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    return mid + half * torch.tanh((theta - mid) / half)


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
        self.config = config = config or DecoderConfig()
        lo, hi = angle_bounds(config.bounds_scale)
        self.register_buffer("lo", lo, persistent=False)
        self.register_buffer("hi", hi, persistent=False)
        self.register_buffer("transl_shift", translation_shift(body_model.param_layout,
                                                              config.translation_offset),
                             persistent=False)

    @property
    def layout(self) -> ParamLayout:
        return self.body_model.param_layout

    def decode_params(self, x: Tensor, is_gt: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """(body-model params [B,P], shape [B,S], θ [B,72]) of x [B,P] (SPEC §1.3 steps 1-3)."""
        layout, cfg = self.layout, self.config
        if not is_gt:
            x = x + self.transl_shift.to(x.dtype)
        p = layout.unpack(x)
        theta = torch.cat([p.root_orient, p.body_pose], dim=-1)
        if is_gt:
            return x, p.shape, theta
        shape = squash_shape(p.shape, cfg.shape_limit)
        if cfg.apply_bounds:
            theta = bound_angles(theta.view(-1, 24, 3), self.lo, self.hi).flatten(1)
        params = layout.pack(shape, p.transl, theta[:, :3], theta[:, 3:])
        return params, shape, theta

    def invert(self, x0: Tensor, max_arg: float = 0.999) -> Tensor:
        """Prediction-branch input [B, P] that decodes to the ground truth x0 [B, P] (label
        frame): translation − offset, shape limit·atanh(shape/limit), each bounded angle
        m + h·atanh((θ − m)/h) (steps 1 and 3 of SPEC §1.3 undone; issue 21).

        The tanh arguments are clamped to ±``max_arg`` (values at or past a bound cannot be
        reached exactly), and the root's unbounded angles to (−π, π), which the cos|sin
        slice can hold. So ``decode_params(invert(x0))`` equals x0's shape and angles
        wherever they lie inside the bounds' reach.
        """
        layout, cfg = self.layout, self.config
        p = layout.unpack(x0)
        shape = cfg.shape_limit * torch.atanh((p.shape / cfg.shape_limit).clamp(-max_arg,
                                                                                 max_arg))
        theta = torch.cat([p.root_orient, p.body_pose], dim=-1)
        if cfg.apply_bounds:
            lo, hi = self.lo.flatten().to(x0.dtype), self.hi.flatten().to(x0.dtype)
            mid, half = (lo + hi) / 2, (hi - lo) / 2
            theta = mid + half * torch.atanh(((theta - mid) / half).clamp(-max_arg, max_arg))
        root = theta[:, :3].clamp(-math.pi + 1e-3, math.pi - 1e-3)
        return layout.pack(shape, p.transl, root, theta[:, 3:]) - self.transl_shift.to(x0.dtype)

    def forward(self, x: Tensor, gender: Tensor | None = None, is_gt: bool = False) -> DecodedBody:
        params, shape, theta = self.decode_params(x, is_gt)
        vertices, joints = self.body_model(params, gender)
        root_cs = x[:, self.layout.root_cos.start:self.layout.root_sin.stop]
        return DecodedBody(params, shape, theta, root_cs, joints, vertices)


def to_vertex_frame(vertices: Tensor) -> Tensor:
    """Label frame -> the reference's "vertex frame" ``[y, x, −z]`` (SPEC §1.3 step 5); the map
    is its own inverse, so it also brings GT vertex files (vertex frame) into the label frame."""
    return torch.stack([vertices[..., 1], vertices[..., 0], -vertices[..., 2]], dim=-1)

