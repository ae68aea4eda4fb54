"""The Estimator with a checkpoint's own sampler timesteps and diffusion space (issue 21)."""

import pytest
import torch

from disrt_core.body import load_body_model
from disrt_core.checkpoint import CheckpointError, read_header, rewrite_header, save_checkpoint
from disrt_core.decoder import MeshDecoder
from disrt_core.diffusion import GaussianDiffusion
from disrt_core.diffusion_space import DiffusionSpace
from disrt_core.infer import Estimator
from disrt_core.model import Denoiser, small


@pytest.fixture(scope="module")
def smpl_body(smpl_fixture_dir):
    return load_body_model("smpl", smpl_fixture_dir)


def _constant_net(value: torch.Tensor) -> Denoiser:
    """A network whose output is ``value`` [P] whatever its inputs."""
    torch.manual_seed(0)
    net = Denoiser(small().replace(dropout=0.0), value.shape[-1])
    torch.nn.init.zeros_(net.head[-1].weight)
    with torch.no_grad():
        net.head[-1].bias.copy_(value)
    return net.eval()


def _depth(b=2):
    return torch.rand(b, 1, 128, 54, generator=torch.Generator().manual_seed(0))


def _spy(est):
    calls, net = [], est._step_net
    est._step_net = lambda x, t, code: calls.append(int(t[0])) or net(x, t, code)
    return calls


def test_header_timesteps_are_used_and_steps_still_set_the_count(tmp_path, smpl_body):
    net = _constant_net(torch.zeros(88))
    timesteps = {"first": 99, "last": 60, "by_steps": {"3": [99, 95, 90]},
                 "validation": {"note": "test"}}
    path = save_checkpoint(tmp_path / "m.safetensors", net, smpl_body.model_id,
                           smpl_body.param_layout, MeshDecoder(smpl_body).config,
                           diffusion={"timesteps": timesteps})
    assert read_header(path).diffusion["timesteps"]["last"] == 60
    est = Estimator.from_checkpoint(path, body_model=smpl_body, seed=0)
    calls = _spy(est)
    est.predict(_depth(1))
    assert calls == [99, 89, 80, 70, 60]
    for steps, expected in ((3, [99, 95, 90]), (1, [99]), (2, [99, 60])):
        calls.clear()
        est.set_sampling(steps=steps)  # the node's ddim_steps
        est.predict(_depth(1))
        assert calls == expected
    with pytest.raises(ValueError, match="≤ 40"):
        est.set_sampling(steps=50)
    # a checkpoint without timesteps keeps the SPEC's
    plain = save_checkpoint(tmp_path / "p.safetensors", net, smpl_body.model_id,
                            smpl_body.param_layout, MeshDecoder(smpl_body).config)
    est = Estimator.from_checkpoint(plain, body_model=smpl_body, seed=0)
    calls = _spy(est)
    est.predict(_depth(1))
    assert calls == [99, 74, 50, 25, 0]
    # rewrite_header adds them to an existing file, weights untouched
    out = rewrite_header(plain, tmp_path / "q.safetensors", diffusion={"timesteps": timesteps})
    assert read_header(out).diffusion["timesteps"]["by_steps"] == {"3": [99, 95, 90]}
    with pytest.raises(CheckpointError, match="timesteps"):
        rewrite_header(plain, tmp_path / "r.safetensors",
                       diffusion={"timesteps": {"first": 10, "last": 20}})


def test_normalised_space_maps_the_samples_back(tmp_path, smpl_body):
    """x0 output c in a normalised space answers mean + std·c; the skip output F = c after
    one step from t = 99 answers mean + std·(√ᾱ₉₉·z_T + √(1−ᾱ₉₉)·c), z_T the seeded noise."""
    g = torch.Generator().manual_seed(1)
    mean = torch.randn(88, generator=g) * 0.05
    std = 0.02 + torch.rand(88, generator=g) * 0.1
    c = torch.randn(88, generator=g)
    z_T = torch.randn(1, 88, generator=torch.Generator().manual_seed(0))  # the seed-0 draw
    ab = float(GaussianDiffusion().alphas_cumprod[99])
    skip = ab**0.5 * z_T[0] + (1 - ab) ** 0.5 * c
    decoder = MeshDecoder(smpl_body)
    for param, steps, z0 in (("x0", 5, c), ("skip", 1, skip)):
        expected = decoder((mean + std * z0)[None]).joints
        path = save_checkpoint(tmp_path / f"{param}.safetensors", _constant_net(c),
                               smpl_body.model_id, smpl_body.param_layout,
                               MeshDecoder(smpl_body).config,
                               diffusion=DiffusionSpace("normalised", param, mean,
                                                        std).to_dict())
        est = Estimator.from_checkpoint(path, body_model=smpl_body, seed=0, steps=steps)
        assert est.space.kind == "normalised" and est.space.parametrisation == param
        pred = est.predict(_depth(1))
        torch.testing.assert_close(pred.joints, expected, atol=1e-5, rtol=0)
    with pytest.raises(CheckpointError, match="values"):
        save_checkpoint(tmp_path / "bad.safetensors", _constant_net(c), smpl_body.model_id,
                        smpl_body.param_layout, MeshDecoder(smpl_body).config,
                        diffusion=DiffusionSpace("normalised", "x0", mean[:5],
                                                 std[:5]).to_dict())
        read_header(tmp_path / "bad.safetensors")
