"""The x_t experiments' denoiser patch (training/experiments/xt_common.py) must reach both
paths a network is run through: the trainer's ``forward`` and the Estimator's per-step
``forward_encoded`` (the depth-only start runs once per call). Until 2026-12-07 it replaced
``forward`` only, so self-conditioning's previous answer never reached the sampler."""

from pathlib import Path

import pytest
import torch

from disrt_core.body import load_body_model
from disrt_core.infer import Estimator
from disrt_core.model import denoiser, small

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def patch_denoiser(monkeypatch):
    """xt_common.patch_denoiser, with the Denoiser class restored after the test."""
    monkeypatch.syspath_prepend(str(ROOT / "training" / "experiments"))
    for name in ("__init__", "forward", "forward_encoded", "load_state_dict"):
        monkeypatch.setattr(denoiser.Denoiser, name, getattr(denoiser.Denoiser, name))
    import xt_common

    return xt_common.patch_denoiser


def test_the_patched_step_runs_in_training_and_in_sampling(patch_denoiser, smpl_fixture_dir):
    calls = []

    def step(self, x_t, t, code):
        calls.append(int(t[0]))
        return self.head(self._trunk(self.embed(x_t, t) + self.extra(x_t), code))

    patch_denoiser("extra", lambda config: config.emb_dim, step)
    torch.manual_seed(0)
    net = denoiser.Denoiser(small().replace(dropout=0.0), 88).eval()
    assert torch.count_nonzero(net.extra.weight) == 0  # starts as the network it patches
    depth = torch.rand(1, 1, 128, 54, generator=torch.Generator().manual_seed(0))
    net(torch.zeros(1, 88), torch.tensor([7]), depth)
    assert calls == [7]
    calls.clear()
    body = load_body_model("smpl", smpl_fixture_dir)
    Estimator.from_model(net, body, hypotheses=1, steps=5, seed=0).predict(depth)
    assert calls == [99, 74, 50, 25, 0]  # one patched call per DDIM step (SPEC timesteps)


def test_weights_without_the_layer_load_with_it_at_zero(patch_denoiser):
    plain = denoiser.Denoiser(small(), 88).state_dict()
    patch_denoiser("extra", lambda config: config.emb_dim,
                   denoiser.Denoiser.forward_encoded)
    net = denoiser.Denoiser(small(), 88)
    torch.nn.init.ones_(net.extra.weight)
    net.load_state_dict(plain)
    assert torch.count_nonzero(net.extra.weight) == 0


def test_self_conditioning_gets_the_previous_step_within_one_call_only(
        patch_denoiser, smpl_fixture_dir, monkeypatch):
    import importlib

    import xt_selfcond

    xt_selfcond = importlib.reload(xt_selfcond)  # patches the (restored afterwards) class
    fed = []
    inner = xt_selfcond._pass

    def recording(self, x_t, t, code, sc):
        fed.append(bool(torch.count_nonzero(sc)))
        return inner(self, x_t, t, code, sc)

    monkeypatch.setattr(xt_selfcond, "_pass", recording)
    torch.manual_seed(0)
    net = denoiser.Denoiser(small().replace(dropout=0.0), 88).eval()
    depth = torch.rand(1, 1, 128, 54, generator=torch.Generator().manual_seed(0))
    est = Estimator.from_model(net, load_body_model("smpl", smpl_fixture_dir), hypotheses=1,
                               steps=5, seed=0, timesteps={"first": 99, "last": 70})
    est.predict(depth)
    est.predict(depth)  # a new call starts without a previous answer
    # x̂0 at t = 0 after a chain that stopped at t = 70 (xt_eval's t0 score): a new call too
    est._model_fn(torch.zeros(1, 88), torch.zeros(1, dtype=torch.long), depth)
    assert fed == [False, True, True, True, True] * 2 + [False]
