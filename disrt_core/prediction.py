"""What :meth:`disrt_core.infer.Estimator.predict` returns: :class:`Prediction` (label
frame, metres, kPa), the one body made from K hypotheses (:func:`average_bodies`) and the
presence decision added to an answer (:func:`with_presence`)."""

from __future__ import annotations

from dataclasses import dataclass

import roma
import torch
from torch import Tensor

from disrt_core.body.layout import ParamLayout
from disrt_core.occupancy import presence_probability


@dataclass
class Prediction:
    """Output of :meth:`Estimator.predict` for a batch of B images (label frame, metres).

    ``params``, ``joints`` and ``vertices`` describe one body per image: ``joints`` and
    ``vertices`` are ``body_model(params)``. With K > 1 hypotheses that body is their
    average (:func:`average_bodies`); ``joint_spread`` and ``hypotheses_joints`` come from
    all K. New per-image outputs go in as fields with defaults, [B, ...] first.
    """

    params: Tensor  # [B, P] what the body model takes (after the decoder's squashing/offset)
    joints: Tensor  # [B, 24, 3] of the body ``params`` describe
    vertices: Tensor  # [B, V, 3] mesh of the same body
    joint_spread: Tensor  # [B, 24] RMS distance of hypotheses from their mean joint; 0 if K=1
    hypotheses_joints: Tensor | None = None  # [B, K, 24, 3] when K > 1
    #: [B] probability that a person lies on the mattress, from the depth and this answer
    #: (disrt_core.occupancy); ``present`` is it ≥ 0.5. Without one, the body is nonsense.
    present_prob: Tensor | None = None
    present: Tensor | None = None  # [B] bool
    #: With :meth:`Estimator.set_pressure` on (kPa; learned from the depth or physical, see
    #: there): [B,192,84] on SLP's pressure-mat grid (bed frame), [B,V] on the skin per
    #: vertex, [B,R,2] peak and mean per body region (``disrt_core.pressure.REGIONS``).
    pressure: Tensor | None = None
    vertex_pressure: Tensor | None = None
    region_pressure: Tensor | None = None
    #: [B, 24] radius (m) around each joint that holds the true joint with the probability
    #: the checkpoint's calibration for this K states (``disrt_core.uncertainty``; header
    #: ``diffusion.interval``); None where the checkpoint has none for this K.
    joint_interval: Tensor | None = None


def average_bodies(params: Tensor, layout: ParamLayout) -> Tensor:
    """One body from K: params [B, K, P] (body-model input, decoded) -> [B, P].

    Each of the 24 joint rotations (root included) is the chordal L2 mean of the K rotation
    matrices projected back to SO(3) (``roma.special_procrustes``); shape and root
    translation are the arithmetic mean. The result is a valid body whose mesh is decoded
    once, so joints and mesh agree.

    Chosen by measurement (issue #20 item 5; shipped default weights, K = 8, 5 DDIM steps,
    256 generated kinect2 frames of ``SceneGenerator(...).sample(256, seed=7)``, two noise
    seeds): MPJPE of the mean of the hypotheses' joints (the previous answer, whose mesh
    came from the mean parameter vector and lay up to 365 mm from its joints) 55.4 / 55.7
    mm; this rotation average 55.9 / 56.1 mm; the medoid hypothesis (smallest mean joint
    distance to the others) 56.4 / 56.3 mm; one hypothesis alone 57.4 / 57.6 mm.
    """
    b, k = params.shape[:2]
    u = layout.unpack(params)
    rotvecs = torch.cat([u.root_orient, u.body_pose], dim=-1).view(b, k, 24, 3)
    mean_rot = roma.special_procrustes(roma.rotvec_to_rotmat(rotvecs).mean(dim=1))
    theta = roma.rotmat_to_rotvec(mean_rot).reshape(b, 72)
    return layout.pack(u.shape.mean(dim=1), u.transl.mean(dim=1), theta[:, :3], theta[:, 3:])


def with_presence(pred: Prediction, depth: Tensor) -> Prediction:
    """``pred`` with ``present_prob`` (:mod:`disrt_core.occupancy`; computed unless already
    there) and ``present``."""
    if pred.present_prob is None:
        pred.present_prob = presence_probability(depth, pred.vertices)
    pred.present = pred.present_prob >= 0.5
    return pred
