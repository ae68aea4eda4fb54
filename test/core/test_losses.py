import math

import pytest
import torch

from disrt_core.body import load_body_model
from disrt_core.decoder import DecodedBody, MeshDecoder
from disrt_core.diffusion import GaussianDiffusion
from disrt_core.losses import (
    LossConfig,
    decoded_terms,
    diffusion_loss,
    joint_distance,
    mesh_loss,
    normalisers_from_data,
)
from disrt_core.model import Denoiser, small


def _body(shape, root_cs, theta, joints, vertices):
    return DecodedBody(params=torch.zeros(1, 1), shape=torch.tensor([shape]),
                       theta=torch.tensor([theta]), root_cs=torch.tensor([root_cs]),
                       joints=torch.tensor([joints]), vertices=torch.tensor([vertices]))


def test_mesh_loss_against_hand_values():
    theta = [0.0] * 72
    theta_gt = [0.0] * 72
    theta[5], theta_gt[70] = 0.3, -0.6
    joints = [[0.0, 0.0, 0.0]] * 24
    joints_gt = [[0.0, 0.0, 0.0]] * 23 + [[0.3, 0.4, 0.0]]
    verts, verts_gt = [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], [[0.0, 0.0, 2.0], [1.0, 1.0, 1.0]]
    pred = _body([1.0, -2.0], [0.5] * 6, theta, joints, verts)
    gt = _body([0.0, 0.0], [0.5] * 5 + [-0.1], theta_gt, joints_gt, verts_gt)
    cfg = LossConfig(norm_betas=2.0, norm_root=0.5, norm_angles=0.25, norm_joints=0.1,
                     norm_v2v=4.0, lambda_v2v=0.5)
    terms = mesh_loss(pred, gt, cfg)
    eps_norm = math.sqrt(3) * 1e-7  # the reference's +1e-7 on each component
    hand = {
        "betas": 3.0 / 2,
        "root": 0.6 / 6,
        "angles": (0.09 + 0.36) / 72,
        "joints": (23 * eps_norm + math.sqrt((0.3 - 1e-7) ** 2 + (0.4 - 1e-7) ** 2 + 1e-14)) / 24,
        "v2v": 2.0 / 2,
    }
    for key, value in hand.items():
        assert terms[key].item() == pytest.approx(value, rel=1e-5), key
    smpl = hand["betas"] / 2 + hand["root"] / 0.5 + hand["angles"] / 0.25 + hand["joints"] / 0.1
    assert terms["smpl"].item() == pytest.approx(smpl, rel=1e-5)
    assert terms["v2v_norm"].item() == pytest.approx(0.25)
    assert terms["total"].item() == pytest.approx(smpl + 0.5 * 0.25, rel=1e-5)


def test_default_normalisers_are_the_reference_stds():
    cfg = LossConfig()
    assert (cfg.norm_betas, cfg.norm_root) == (1.728158146914805, 0.3684988513298487)
    assert (cfg.norm_angles, cfg.norm_joints) == (0.29641429463719227, 0.1752780723422608)
    assert cfg.norm_v2v == 0.1752780723422608 and cfg.lambda_v2v == 1.0


def test_joint_distance_has_a_finite_gradient_at_zero():
    a = torch.zeros(1, 24, 3, requires_grad=True)
    joint_distance(a, torch.zeros(1, 24, 3)).sum().backward()
    assert torch.isfinite(a.grad).all()


def test_diffusion_loss_trains_the_network_not_the_target(smpl_fixture_dir):
    torch.manual_seed(0)
    body = load_body_model("smpl", smpl_fixture_dir)
    decoder = MeshDecoder(body)
    net = Denoiser(small(), body.param_dim)
    x0 = body.zero_params(2)
    x0[:, body.param_layout.transl] = torch.tensor([0.3, 0.9, 0.1])
    x0.requires_grad_(True)
    terms, x0_pred = diffusion_loss(net, GaussianDiffusion(), decoder, torch.rand(2, 1, 128, 54),
                                    x0, t=torch.tensor([0, 99]))
    assert set(terms) >= {"betas", "root", "angles", "joints", "v2v", "smpl", "total"}
    assert x0_pred.shape == (2, 88)
    terms["total"].backward()
    assert net.trunk_out[-1].weight.grad.abs().sum() > 0
    assert x0.grad is None or x0.grad.abs().sum() == 0  # GT branch has no gradient


def test_consistent_translation_noises_offset_space(smpl_fixture_dir):
    body = load_body_model("smpl", smpl_fixture_dir)
    decoder = MeshDecoder(body)
    seen = {}

    def spy(x_t, t, depth):
        seen["x_t"] = x_t
        return torch.zeros_like(x_t)

    x0 = body.zero_params(1)
    d = GaussianDiffusion()
    for flag in (False, True):
        diffusion_loss(spy, d, decoder, torch.rand(1, 1, 128, 54), x0, t=torch.tensor([0]),
                       noise=torch.zeros(1, 88), consistent_translation=flag)
        seen[flag] = seen["x_t"][0, 10:13] / math.sqrt(d.alphas_cumprod[0])
    torch.testing.assert_close(seen[False], torch.zeros(3))
    torch.testing.assert_close(seen[True], -torch.tensor([0.314, 0.914, 0.1]))


def test_normalisers_from_data(smpl_fixture_dir):
    body = load_body_model("smpl", smpl_fixture_dir)
    x0 = body.zero_params(4)
    x0[:, :10] = torch.tensor([1.0, -1.0, 3.0, -3.0])[:, None]  # std of all 40 values
    cfg = normalisers_from_data(MeshDecoder(body), x0, base=LossConfig(lambda_v2v=0.25))
    assert cfg.norm_betas == pytest.approx(math.sqrt(10 * (1 + 1 + 9 + 9) / 39))  # mean 0, n−1
    # cos/sin of a zero root: 12 ones and 12 zeros
    assert cfg.norm_root == pytest.approx(math.sqrt(24 * 0.25 / 23))
    assert cfg.norm_angles == 0.0 and cfg.lambda_v2v == 0.25
    assert cfg.norm_joints == cfg.norm_v2v > 0


def test_diffusion_loss_through_given_mesh_terms(smpl_fixture_dir):
    """``mesh_terms`` replaces the decoding and mesh loss (the trainer passes them compiled):
    the default is ``decoded_terms``, and dynamo traces it to the same terms."""
    torch.manual_seed(0)
    body = load_body_model("smpl", smpl_fixture_dir)
    decoder, d = MeshDecoder(body), GaussianDiffusion()
    x0 = body.zero_params(3) + 0.05 * torch.randn(3, 88)
    depth, t, noise = torch.rand(3, 1, 128, 54), torch.tensor([0, 40, 99]), torch.randn(3, 88)

    def net(x_t, t, depth):
        return 0.5 * x_t + depth.mean(dim=(1, 2, 3))[:, None]

    calls = []

    def spy(*args):
        calls.append(args)
        return decoded_terms(*args)

    plain, _ = diffusion_loss(net, d, decoder, depth, x0, t=t, noise=noise)
    spied, _ = diffusion_loss(net, d, decoder, depth, x0, t=t, noise=noise, mesh_terms=spy)
    traced, _ = diffusion_loss(net, d, decoder, depth, x0, t=t, noise=noise,
                               mesh_terms=torch.compile(decoded_terms, backend="eager"))
    assert len(calls) == 1 and calls[0][2] is x0  # the truth is decoded by mesh_terms
    for key in ("joints", "v2v", "total"):
        assert plain[key] > 0
        torch.testing.assert_close(spied[key], plain[key], rtol=0, atol=0)
        torch.testing.assert_close(traced[key], plain[key])
