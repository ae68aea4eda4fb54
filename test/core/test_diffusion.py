import math

import numpy as np
import pytest
import torch

from disrt_core.diffusion import GaussianDiffusion

SPEC_ALPHA_BAR = {0: 0.99900, 20: 0.63796, 25: 0.50086, 40: 0.17593, 50: 0.066666,
                  60: 0.020193, 74: 2.5782e-3, 80: 9.267e-4, 99: 2.039e-5}


def test_schedule_matches_spec():
    d = GaussianDiffusion(100)
    assert d.betas.dtype == np.float64
    assert d.betas[0] == pytest.approx(0.001) and d.betas[-1] == pytest.approx(0.2)
    assert np.allclose(np.diff(d.betas), 0.199 / 99)
    for t, value in SPEC_ALPHA_BAR.items():
        assert d.alphas_cumprod[t] == pytest.approx(value, rel=2e-4), t
    # ᾱ_t is the running product of (1 − β)
    assert d.alphas_cumprod[2] == pytest.approx((1 - 0.001) * (1 - 0.001 - 0.199 / 99)
                                                * (1 - 0.001 - 2 * 0.199 / 99))


def test_ddim_timesteps():
    d = GaussianDiffusion()
    assert d.ddim_timesteps(5) == [99, 74, 50, 25, 0]
    assert d.ddim_timesteps(1) == [99]
    assert d.ddim_timesteps(2) == [99, 0]
    assert d.ddim_timesteps(100) == list(range(99, -1, -1))
    for bad in (0, 101):
        with pytest.raises(ValueError, match=r"1\.\.100"):
            d.ddim_timesteps(bad)


def test_q_sample_statistics():
    d = GaussianDiffusion()
    g = torch.Generator().manual_seed(0)
    n = 200_000
    x0 = torch.full((n, 2), 1.5)
    t = torch.full((n,), 25)
    xt = d.q_sample(x0, t, torch.randn(n, 2, generator=g))
    ab = d.alphas_cumprod[25]
    assert xt.mean().item() == pytest.approx(math.sqrt(ab) * 1.5, abs=0.01)
    assert xt.std().item() == pytest.approx(math.sqrt(1 - ab), abs=0.01)
    # per-row timesteps
    x = d.q_sample(torch.ones(2, 1), torch.tensor([0, 99]), torch.zeros(2, 1))
    torch.testing.assert_close(x[:, 0], torch.tensor([math.sqrt(0.999),
                                                      math.sqrt(d.alphas_cumprod[99])]))


@pytest.mark.parametrize("eta", [0.0, 0.7])
def test_ddim_lands_exactly_on_a_fixed_x0(eta):
    d = GaussianDiffusion()
    target = torch.randn(4, 88)

    def fixed(x_t, t, cond):
        return target

    out = d.ddim_sample(fixed, torch.zeros(4, 1), (4, 88), steps=5, eta=eta,
                        generator=torch.Generator().manual_seed(3))
    assert torch.equal(out, target)


def _hand_ddim(alpha_bar, timesteps, x_T, model, eta, zs):
    """Independent float64 DDIM (SPEC §2) written with numpy."""
    x = x_T.astype(np.float64)
    for i, t in enumerate(timesteps):
        x0 = model(x, t)
        if i + 1 == len(timesteps):
            return x0
        s = timesteps[i + 1]
        a_t, a_s = alpha_bar[t], alpha_bar[s]
        eps = (x - np.sqrt(a_t) * x0) / np.sqrt(1 - a_t)
        sigma = eta * np.sqrt((1 - a_s) / (1 - a_t)) * np.sqrt(1 - a_t / a_s)
        x = np.sqrt(a_s) * x0 + np.sqrt(1 - a_s - sigma**2) * eps + sigma * zs[i]
    return x


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_matches_a_hand_computation(eta):
    d = GaussianDiffusion()
    rng = np.random.default_rng(0)
    x_T = rng.normal(size=(3, 5))
    zs = [rng.normal(size=(3, 5)) for _ in range(3)]

    def toy_np(x, t):  # a denoiser that depends on x_t and t
        return 0.5 * x + 0.01 * t

    def toy(x, t, cond):
        return 0.5 * x + 0.01 * t[:, None].float() + 0 * cond

    expected = _hand_ddim(d.alphas_cumprod, [99, 66, 33, 0], x_T, toy_np, eta, zs)
    out = d.ddim_sample(toy, torch.zeros(3, 1), (3, 5), steps=4, eta=eta,
                        noise=torch.tensor(x_T, dtype=torch.float32),
                        step_noise=[torch.tensor(z, dtype=torch.float32) for z in zs])
    assert d.ddim_timesteps(4) == [99, 66, 33, 0]
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_ddim_is_deterministic_for_eta_zero_and_passes_original_timesteps():
    d = GaussianDiffusion()
    seen = []

    def toy(x, t, cond):
        seen.append(t.tolist())
        return torch.tanh(x) + cond

    cond = torch.randn(2, 7)
    noise = torch.randn(2, 7)
    a = d.ddim_sample(toy, cond, (2, 7), steps=5, noise=noise)
    b = d.ddim_sample(toy, cond, (2, 7), steps=5, noise=noise.clone())
    assert torch.equal(a, b)
    assert [s[0] for s in seen[:5]] == [99, 74, 50, 25, 0] and seen[0] == [99, 99]


def test_hypotheses_are_batched_per_image():
    d = GaussianDiffusion()
    calls = []

    def toy(x, t, cond):
        calls.append(x.shape[0])
        return cond.expand(-1, 3) + 0.0 * x

    cond = torch.tensor([[1.0], [2.0]])
    out = d.sample_hypotheses(toy, cond, param_dim=3, hypotheses=4, steps=3)
    assert out.shape == (2, 4, 3)
    assert calls == [8, 8, 8]  # one network call per step for all B·K rows
    torch.testing.assert_close(out[0], torch.ones(4, 3))
    torch.testing.assert_close(out[1], torch.full((4, 3), 2.0))


def test_ddim_with_the_exact_denoiser_gives_the_posterior_mean_then_samples():
    """Gaussian toy with a closed-form answer (training/experiments/xt_bayes.py): prior
    x0 ~ N(0, 1), posterior given the "image" N(μ, v). With the exact E[x0 | x_t], one DDIM
    step from t = 99 returns μ (ᾱ_99 ≈ 2e-5: x_T says nothing), and 100 steps follow the
    probability-flow ODE to a posterior sample: spread ≈ √v around μ, uncorrelated with the
    truth's own deviation."""
    diffusion = GaussianDiffusion(100)
    g = torch.Generator().manual_seed(3)
    n, var = 20000, 0.2
    mean = torch.randn(n, 1, generator=g)

    def exact(x_t, t, cond):
        ab = torch.as_tensor(diffusion.alphas_cumprod, dtype=torch.float64)[t][:, None]
        gain = ab.sqrt() * var / (ab * var + 1.0 - ab)
        return (mean.double() + gain * (x_t.double() - ab.sqrt() * mean.double())).float()

    noise = torch.randn(n, 1, generator=g)
    one = diffusion.ddim_sample(exact, None, (n, 1), 1, noise=noise)
    assert (one - mean).abs().max() < 0.02 * math.sqrt(var)
    many = diffusion.ddim_sample(exact, None, (n, 1), 100, noise=noise)
    spread = (many - mean).var().item()
    assert 0.85 * var < spread < 1.05 * var  # discretised ODE: ~0.95 v at 100 steps
    # the sample's deviation is the noise's, mapped monotonically (a deterministic ODE)
    assert torch.corrcoef(torch.cat([many - mean, noise], 1).T)[0, 1] > 0.99
