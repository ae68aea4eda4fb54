"""Diffusion spaces, the skip parametrisation, min-SNR weights and checkpoint timesteps
(issue 21)."""

import math

import pytest
import torch

from disrt_core.diffusion import GaussianDiffusion, check_timesteps
from disrt_core.diffusion_space import DiffusionSpace, min_snr_weight


def _data(n=4000, seed=0):
    g = torch.Generator().manual_seed(seed)
    scale = torch.tensor([1.5, 0.1, 0.3, 0.002, 0.5])  # one dimension below the std floor
    offset = torch.tensor([0.0, 0.9, -0.3, 0.01, 2.0])
    return torch.randn(n, 5, generator=g) * scale + offset, scale, offset


def test_normalised_space_round_trips_and_whitens():
    x, scale, _ = _data()
    space = DiffusionSpace.from_data(x, "skip", std_floor=0.01)
    z = space.to_z(x)
    torch.testing.assert_close(space.from_z(z), x, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(z.mean(0), torch.zeros(5), atol=1e-4, rtol=0)
    # unit variance where the data vary more than the floor; the floored one stays small
    torch.testing.assert_close(z.std(0, unbiased=False)[[0, 1, 2, 4]], torch.ones(4),
                               atol=1e-4, rtol=0)
    assert space.std[3] == pytest.approx(0.01) and z[:, 3].std() < 0.3
    torch.testing.assert_close(space.std[[0, 1, 2, 4]], scale[[0, 1, 2, 4]], rtol=0.05, atol=0)
    # through the header and back
    again = DiffusionSpace.from_dict(space.to_dict())
    torch.testing.assert_close(again.to_z(x), z)
    assert DiffusionSpace.from_dict(None).is_identity
    raw = DiffusionSpace()
    assert raw.to_z(x) is x and raw.from_z(x) is x


def test_bad_spaces_are_refused():
    with pytest.raises(ValueError, match="normalised space"):
        DiffusionSpace("raw", "skip")
    with pytest.raises(ValueError, match="mean and std"):
        DiffusionSpace("normalised", "x0")
    with pytest.raises(ValueError, match="> 0"):
        DiffusionSpace("normalised", "x0", [0.0, 1.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="one of"):
        DiffusionSpace("whitened")


def test_skip_output_is_anchored_to_z_t():
    d = GaussianDiffusion()
    ab = torch.as_tensor(d.alphas_cumprod, dtype=torch.float32)
    space = DiffusionSpace("normalised", "skip", torch.zeros(3), torch.ones(3))
    z_t = torch.randn(4, 3)
    t = torch.tensor([0, 10, 50, 99])
    # F = 0: ẑ0 = √ᾱ_t·z_t, i.e. z_t itself where c_out -> 0 (t = 0: within 0.05 %)
    zero = space.x0_from_output(torch.zeros(4, 3), z_t, t, ab)
    torch.testing.assert_close(zero, ab[t].sqrt()[:, None] * z_t)
    torch.testing.assert_close(zero[0], z_t[0], rtol=6e-4, atol=0)
    # F enters with √(1−ᾱ_t): at t = 99 the output is F (the regressor end)
    f = torch.randn(4, 3)
    out = space.x0_from_output(f, z_t, t, ab)
    torch.testing.assert_close(out - zero, (1 - ab[t]).sqrt()[:, None] * f)
    assert (out[3] - f[3]).abs().max() < 0.01 * (1 + z_t[3].abs().max())
    # the x0 parametrisation returns the output untouched
    assert DiffusionSpace().x0_from_output(f, z_t, t, ab) is f


def test_skip_with_zero_output_is_the_best_linear_guess_for_unit_data():
    """Independent check of c_skip = √ᾱ: the least-squares slope of z0 on z_t for unit
    Gaussian data, and the remaining error 1 − ᾱ = c_out²."""
    d = GaussianDiffusion()
    g = torch.Generator().manual_seed(3)
    z0 = torch.randn(200_000, generator=g, dtype=torch.float64)
    for t in (5, 25, 60):
        z_t = d.q_sample(z0[:, None], torch.full((len(z0),), t), torch.randn(
            len(z0), 1, generator=g, dtype=torch.float64))[:, 0]
        slope = float((z0 * z_t).sum() / (z_t * z_t).sum())
        ab = d.alphas_cumprod[t]
        assert slope == pytest.approx(math.sqrt(ab), abs=0.01)
        assert float(((z0 - math.sqrt(ab) * z_t) ** 2).mean()) == pytest.approx(1 - ab, abs=0.01)


def test_min_snr_weight():
    d = GaussianDiffusion()
    ab = torch.as_tensor(d.alphas_cumprod)
    w = min_snr_weight(ab, torch.arange(100), gamma=5.0)
    snr = ab / (1 - ab)
    assert torch.all(w[snr >= 5] == 1.0)
    torch.testing.assert_close(w[snr < 5], snr[snr < 5] / 5)
    assert torch.all(w[1:] <= w[:-1]) and w[99] < 1e-4
    with pytest.raises(ValueError):
        min_snr_weight(ab, torch.arange(3), gamma=0.0)


def _mixture_denoiser(modes: torch.Tensor, d: GaussianDiffusion):
    """The exact E[x0 | x_t] of data equally spread over ``modes`` [M, P]: a model that
    knows the data and uses x_t."""
    ab = torch.as_tensor(d.alphas_cumprod)

    def fn(x_t, t, cond):
        a = ab[t][:, None, None]
        logits = -((x_t[:, None].double() - a.sqrt() * modes[None]) ** 2).sum(-1) / (
            2 * (1 - a[..., 0]))
        return (logits.softmax(dim=1)[..., None] * modes[None]).sum(1).float()

    return fn


def test_ddim_with_a_model_that_knows_the_data_improves_with_steps():
    d = GaussianDiffusion()
    g = torch.Generator().manual_seed(0)
    modes = torch.randn(6, 4, generator=g, dtype=torch.float64)
    fn = _mixture_denoiser(modes, d)
    noise = torch.randn(512, 4, generator=g)
    dist = {}
    for steps in (1, 5, 10):
        x = d.ddim_sample(fn, torch.zeros(512, 1), (512, 4), steps, noise=noise)
        dist[steps] = float(torch.cdist(x.double(), modes).min(dim=1).values.mean())
    # one step returns the blurred mean of the modes; more steps land on them
    assert dist[5] < 0.5 * dist[1] and dist[10] <= dist[5] + 1e-3


def test_checkpoint_timesteps_rule_and_lists():
    d = GaussianDiffusion(100, {"first": 99, "last": 60, "by_steps": {"5": [99, 90, 80, 70, 60]}})
    assert d.ddim_timesteps(5) == [99, 90, 80, 70, 60]
    assert d.ddim_timesteps(1) == [99]
    assert d.ddim_timesteps(2) == [99, 60]
    assert d.ddim_timesteps(10) == [int(v) for v in torch.linspace(99, 60, 10).round().tolist()]
    with pytest.raises(ValueError, match="≤ 40"):
        d.ddim_timesteps(41)
    assert GaussianDiffusion().ddim_timesteps(5) == [99, 74, 50, 25, 0]  # the SPEC's
    for bad in ({"first": 50, "last": 60}, {"last": 100}, {"by_steps": {"3": [99, 50]}},
                {"by_steps": {"2": [10, 20]}}, {"every": 3}, [99, 0]):
        with pytest.raises(ValueError):
            check_timesteps(bad)


def test_decoder_inverse_decodes_to_the_truth(smpl_fixture_dir):
    from disrt_core.body import load_body_model
    from disrt_core.decoder import MeshDecoder

    body = load_body_model("smpl", smpl_fixture_dir)
    decoder = MeshDecoder(body)
    g = torch.Generator().manual_seed(0)
    lo, hi = decoder.lo.flatten(), decoder.hi.flatten()
    theta = lo + (hi - lo) * (0.1 + 0.8 * torch.rand(3, 72, generator=g))  # inside the bounds
    theta[:, :3] = theta[:, :3].clamp(-2.5, 2.5)  # the root lies in (-π, π] as atan2 gives it
    shape = 2.8 * (2 * torch.rand(3, 10, generator=g) - 1)
    x0 = body.param_layout.pack(shape, torch.tensor([[0.4, 0.9, 0.1]] * 3), theta[:, :3],
                                theta[:, 3:])
    x_net = decoder.invert(x0)
    gt = decoder(x0, is_gt=True)
    pred = decoder(x_net)
    torch.testing.assert_close(pred.theta, gt.theta, atol=1e-4, rtol=0)
    torch.testing.assert_close(pred.shape, gt.shape, atol=1e-4, rtol=0)
    torch.testing.assert_close(pred.joints, gt.joints, atol=1e-5, rtol=0)
    # the plain offset space does not decode to the truth: the squash and bounds move it
    assert (decoder(x0 - decoder.transl_shift).joints - gt.joints).norm(dim=-1).mean() > 1e-2
    # at or past a bound: clamped, finite
    far = x0.clone()
    far[:, 19:88] = 10.0
    assert torch.isfinite(decoder.invert(far)).all()


def test_sigma_data_one_is_the_v_prediction_skip():
    abar = torch.linspace(0.999, 2e-5, 100)
    t = torch.tensor([0, 10, 25, 50, 99])
    plain = DiffusionSpace("normalised", "skip", torch.zeros(3), torch.ones(3))
    one = DiffusionSpace("normalised", "skip", torch.zeros(3), torch.ones(3), 1.0)
    for a, b in zip(plain.skip_coefficients(abar, t), one.skip_coefficients(abar, t)):
        torch.testing.assert_close(a.expand_as(b), b, atol=1e-6, rtol=0)


@pytest.mark.parametrize("sigma", [0.25, 0.6])
def test_sigma_data_skip_is_the_posterior_mean_and_keeps_f_at_unit_variance(sigma):
    """Independent check by sampling: for z0 ~ N(0, σ_d²), the least-squares slope of z0 on
    z_t is c_skip (the linear posterior mean), and the output F = (z0 − c_skip·z_t)/c_out
    that makes ẑ0 exact has unit variance (EDM's preconditioning)."""
    gen = torch.Generator().manual_seed(0)
    n = 400_000
    abar = torch.tensor([0.96435, 0.50086, 0.06667])
    space = DiffusionSpace("normalised", "skip", torch.zeros(1), torch.ones(1), sigma)
    for i in range(len(abar)):
        z0 = sigma * torch.randn(n, generator=gen, dtype=torch.float64)
        z_t = abar[i].double().sqrt() * z0 + (1 - abar[i].double()).sqrt() * torch.randn(
            n, generator=gen, dtype=torch.float64)
        slope = float((z0 * z_t).sum() / (z_t * z_t).sum())
        c_skip, c_out = space.skip_coefficients(abar, torch.tensor([i]))
        assert slope == pytest.approx(float(c_skip), abs=0.005)
        target = (z0 - float(c_skip) * z_t) / float(c_out)
        assert float(target.var()) == pytest.approx(1.0, abs=0.01)


def test_sigma_data_per_dimension_round_trips_through_the_header():
    from disrt_core.checkpoint import check_diffusion

    sd = torch.tensor([0.2, 0.5, 1.0])
    space = DiffusionSpace("normalised", "skip", torch.zeros(3), torch.ones(3), sd)
    settings = check_diffusion({"num_timesteps": 100, **space.to_dict()})
    again = DiffusionSpace.from_dict(settings)
    torch.testing.assert_close(again.sigma_data, sd)
    c_skip, _c_out = again.skip_coefficients(torch.tensor([0.5]), torch.tensor([0, 0]))
    assert c_skip.shape == (2, 3) and float(c_skip[0, 2]) == pytest.approx(0.5 ** 0.5)
    with pytest.raises(ValueError, match="skip"):
        DiffusionSpace("normalised", "x0", torch.zeros(3), torch.ones(3), sd)
    with pytest.raises(ValueError, match="per dimension"):
        DiffusionSpace("normalised", "skip", torch.zeros(3), torch.ones(3), torch.ones(4))
