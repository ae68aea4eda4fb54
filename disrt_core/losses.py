"""Training loss on x̂0 through the mesh decoder (SPEC §4), every term reported separately.

``L = betas/σ_b + root/σ_r + angles/σ_a + joints/σ_j + λ·v2v/σ_v`` with

* betas: L1 between the predicted shape (after the squash) and the GT shape, mean over B×S;
* root: L1 between the raw cos|sin slices of x̂0 and x0, mean over B×6;
* angles: MSE between the 72 bounded predicted angles and the GT angles (GT root from
  atan2), mean over B×72;
* joints: ``‖J_pred − J_gt + 1e-7‖₂`` (the reference adds 1e-7 to each component so the
  gradient at 0 is finite), m, mean over B×24;
* v2v: ``‖V_pred − V_gt‖₂``, m, mean over B×V.

Beside the SPEC's terms (issue 21): ``x0``, the mean squared error of the network's ẑ0
against z0 in the diffused variable's space (:mod:`disrt_core.diffusion_space`), weighted
per sample by min-SNR-γ (:func:`~disrt_core.diffusion_space.min_snr_weight`); it enters the
total as ``λ_x0·x0`` (λ_x0 = 0, the SPEC, by default; the term is reported either way).

The normalisers σ are the stds of these quantities over the SMPL synthetic set (BodyPressureSD)
of the reference; they are config values (:class:`LossConfig`) so that a run with another body
model (Anny: 6 shape values, other mesh) can put its own, recomputed from its data.
λ_v2v = 1.0 as in the reference's scripts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch
from torch import Tensor

from disrt_core.constants import const
from disrt_core.decoder import DecodedBody, MeshDecoder
from disrt_core.diffusion import GaussianDiffusion
from disrt_core.diffusion_space import DiffusionSpace, min_snr_weight


@dataclass(frozen=True)
class LossConfig:
    """Weights and normalisers of SPEC §4 (defaults: the reference's SMPL-synthetic stds)."""

    norm_betas: float = 1.728158146914805
    norm_root: float = 0.3684988513298487
    norm_angles: float = 0.29641429463719227
    norm_joints: float = 0.1752780723422608
    norm_v2v: float = 0.1752780723422608
    lambda_smpl: float = 1.0
    lambda_v2v: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


def normalisers_from_data(decoder: MeshDecoder, x0: Tensor, gender: Tensor | None = None,
                          base: LossConfig | None = None) -> LossConfig:
    """Loss normalisers recomputed from GT parameter vectors x0 [N, P] of a training set
    (e.g. for Anny, whose shape values and mesh differ from SMPL's).

    The reference's comments call its constants "the std" of betas, root cos/sin, joint
    angles and joints over the synthetic set, without the recipe; here each is the standard
    deviation of all values of that quantity over the samples (joints: of all joint
    coordinates in metres, also used for v2v as in the reference). Weights λ come from
    ``base``.
    """
    with torch.no_grad():
        gt = decoder(x0, gender, is_gt=True)
    return replace(
        base or LossConfig(),
        norm_betas=float(gt.shape.std()), norm_root=float(gt.root_cs.std()),
        norm_angles=float(gt.theta.std()), norm_joints=float(gt.joints.std()),
        norm_v2v=float(gt.joints.std()),
    )


def joint_distance(pred: Tensor, gt: Tensor, eps: float = 1e-7) -> Tensor:
    """Per-joint ``‖pred − gt + eps‖₂`` [..., J] (the reference's joint term)."""
    return ((pred - gt + eps) ** 2).sum(dim=-1).sqrt()


def mesh_loss(pred: DecodedBody, gt: DecodedBody, config: LossConfig | None = None
              ) -> dict[str, Tensor]:
    """SPEC §4 on decoded prediction and ground truth.

    Returns raw terms ``betas``, ``root``, ``angles`` (rad²), ``joints`` (m), ``v2v`` (m),
    the normalised ``smpl`` sum, the normalised ``v2v_norm`` and ``total`` =
    λ_smpl·smpl + λ_v2v·v2v_norm.
    """
    cfg = config or LossConfig()
    terms = {
        "betas": (pred.shape - gt.shape).abs().mean(),
        "root": (pred.root_cs - gt.root_cs).abs().mean(),
        "angles": ((pred.theta - gt.theta) ** 2).mean(),
        "joints": joint_distance(pred.joints, gt.joints).mean(),
        "v2v": torch.linalg.vector_norm(pred.vertices - gt.vertices, dim=-1).mean(),
    }
    terms["smpl"] = (terms["betas"] / cfg.norm_betas + terms["root"] / cfg.norm_root
                     + terms["angles"] / cfg.norm_angles + terms["joints"] / cfg.norm_joints)
    terms["v2v_norm"] = terms["v2v"] / cfg.norm_v2v
    terms["total"] = cfg.lambda_smpl * terms["smpl"] + cfg.lambda_v2v * terms["v2v_norm"]
    return terms


def decoded_terms(decoder: MeshDecoder, x0_pred: Tensor, x0: Tensor, gender: Tensor | None,
                  config: LossConfig | None = None) -> dict[str, Tensor]:
    """:func:`mesh_loss` of the prediction x̂0 (prediction branch) against the truth x0 (GT
    branch, no gradient), both decoded through the body model. Its own function so the
    trainer can compile the body model and the loss as one graph (``run.compile_loss``)."""
    pred = decoder(x0_pred.float(), gender, is_gt=False)
    with torch.no_grad():
        gt = decoder(x0, gender, is_gt=True)
    return mesh_loss(pred, gt, config)


def diffusion_loss(
    model,
    diffusion: GaussianDiffusion,
    decoder: MeshDecoder,
    depth: Tensor,
    x0: Tensor,
    gender: Tensor | None = None,
    config: LossConfig | None = None,
    t: Tensor | None = None,
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
    consistent_translation: bool = False,
    space: DiffusionSpace | None = None,
    lambda_x0: float = 0.0,
    min_snr_gamma: float = 5.0,
    invert_bounds: bool = False,
    mesh_terms: Callable[..., dict[str, Tensor]] | None = None,
) -> tuple[dict[str, Tensor], Tensor]:
    """One training evaluation (SPEC §2, §4): t ~ U{0..T−1}, x_t = q_sample(x0, t, ε),
    x̂0 = model(x_t, t, depth), loss between decoder(x̂0) and decoder(x0, GT branch, no grad).

    x0 [B, P] GT parameters (label frame); depth [B,1,128,54]. ``consistent_translation``
    (SPEC §8.1 option): noise ``x0 − offset`` instead of x0, so x_t lives in the same
    (offset) space as x̂0; the reference does not. ``space`` (default: the SPEC's raw space
    with x0 output): a normalised space noises ``z0 = (x0 − offset − mean)/std`` (always
    consistent) and maps the network's output back through its parametrisation
    (:mod:`disrt_core.diffusion_space`). ``invert_bounds``: the diffused truth is
    ``decoder.invert(x0)``, the prediction-branch input that decodes to x0 (squash and
    bounds undone; always consistent), so x_t, x̂0 and the decoder agree on one space.
    ``lambda_x0`` weights the direct ``x0`` term. ``mesh_terms`` (default
    :func:`decoded_terms`): the decoding and mesh terms, e.g. that function compiled.
    Returns (terms, x̂0 in the network's offset space, the decoder's prediction input).
    """
    space = space or DiffusionSpace()
    mesh_terms = mesh_terms or decoded_terms
    b = x0.shape[0]
    if t is None:
        t = diffusion.sample_timesteps(b, device=x0.device, generator=generator)
    if noise is None:
        noise = torch.randn(x0.shape, device=x0.device, generator=generator)
    shift = decoder.transl_shift.to(device=x0.device, dtype=x0.dtype)
    x_net = decoder.invert(x0) if invert_bounds else x0 - shift
    target = space.to_z(x_net)  # what the network's ẑ0 should be
    consistent = consistent_translation or invert_bounds or space.kind != "raw"
    source = target if consistent else x0
    z_t = diffusion.q_sample(source, t, noise)
    alphas_cumprod = const(diffusion.alphas_cumprod, x0.device, torch.float32)  # no host sync
    z0_pred = space.x0_from_output(model(z_t, t, depth).float(), z_t, t, alphas_cumprod)
    x0_pred = space.from_z(z0_pred)
    terms = mesh_terms(decoder, x0_pred, x0, gender, config)
    weight = min_snr_weight(alphas_cumprod, t, min_snr_gamma)
    terms["x0"] = (weight * ((z0_pred - target) ** 2).mean(dim=-1)).mean()
    if lambda_x0:
        terms["total"] = terms["total"] + lambda_x0 * terms["x0"]
    return terms, x0_pred
