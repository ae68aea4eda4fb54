"""Training in a normalised diffusion space with the skip output and the direct x0 term
(issue 21), and the paper config's headers left as they were."""

import pytest
import torch

from disrt_core.checkpoint import read_header
from disrt_core.diffusion_space import DiffusionSpace
from disrt_core.model import Denoiser
from disrt_core.train.config import ConfigError, load_config
from disrt_core.train.monitor import read_log
from disrt_core.train.space import fold_into_head
from disrt_core.train.state import latest_state, load_state
from disrt_core.train.trainer import Trainer


def _one_stage(make_config, out, **diffusion):
    raw = make_config(out)
    raw["stages"] = raw["stages"][:1]
    raw["stages"][0]["epochs"] = 1
    raw["diffusion"] = diffusion
    raw["loss"]["lambda_x0"] = 1.0 if diffusion else 0.0
    return raw


def test_normalised_skip_run_exports_its_space(make_config, keep_threads, tmp_path, smpl_both):
    config = load_config(None, base=_one_stage(make_config, tmp_path / "n", space="normalised",
                                               parametrisation="skip", invert_bounds=True))
    trainer = Trainer(config)
    space = trainer.space
    assert space.kind == "normalised" and space.parametrisation == "skip"
    # the statistics are those of the training vectors in the decoder's input space
    x = torch.cat([b["params"] for b in trainer.data[0].epoch(0)]).float()
    z = space.to_z(trainer.decoder.invert(x))
    moving = trainer.decoder.invert(x).std(0) > 0.05
    torch.testing.assert_close(z.mean(0), torch.zeros(88), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.std(0, unbiased=False)[moving], torch.ones(int(moving.sum())),
                               atol=1e-4, rtol=0)
    trainer.fit()
    trainer.close()
    rows = read_log(tmp_path / "n" / "log.csv")
    assert rows and all(float(r["loss"]) > 0 for r in rows)
    header = read_header(tmp_path / "n" / "model.safetensors")
    again = DiffusionSpace.from_dict(header.diffusion)
    torch.testing.assert_close(again.mean, space.mean)
    assert header.diffusion["parametrisation"] == "skip" and header.diffusion["invert_bounds"]
    assert load_state(latest_state(tmp_path / "n"))["space"]["space"] == "normalised"
    from disrt_core.infer import Estimator

    est = Estimator.from_checkpoint(tmp_path / "n" / "model.safetensors", body_model=smpl_both)
    assert est.space.kind == "normalised"
    pred = est.predict(torch.rand(2, 1, 128, 54), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert torch.isfinite(pred.joints).all()
    # a continuation from the raw paper recipe's weights folds the statistics into the head
    raw = load_config(None, base=_one_stage(make_config, tmp_path / "r"))
    raw_trainer = Trainer(raw)
    raw_trainer.fit()
    raw_trainer.close()
    assert set(read_header(tmp_path / "r" / "model.safetensors").diffusion) == {
        "num_timesteps", "schedule"}  # the paper config's header is unchanged
    cont = _one_stage(make_config, tmp_path / "c", space="normalised", parametrisation="skip")
    cont["init"] = {"checkpoint": str(tmp_path / "r" / "model.safetensors")}
    trainer = Trainer(load_config(None, base=cont))
    assert trainer.space.kind == "normalised"
    w_raw = raw_trainer.model.head[-1].weight
    torch.testing.assert_close(trainer.model.head[-1].weight * trainer.space.std[:, None], w_raw)
    trainer.close()
    # and a normalised run cannot continue as a raw one
    back = _one_stage(make_config, tmp_path / "b")
    back["init"] = {"checkpoint": str(tmp_path / "n" / "model.safetensors")}
    with pytest.raises(ConfigError, match=r"diffusion\.space=normalised"):
        Trainer(load_config(None, base=back))


def test_fold_into_head_reexpresses_the_output():
    torch.manual_seed(0)
    from disrt_core.model import DenoiserConfig
    from disrt_core.train.config import TINY_NETWORK

    net = Denoiser(DenoiserConfig.from_dict(TINY_NETWORK), 12).eval()
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.1)
    args = (torch.randn(3, 12), torch.tensor([0, 50, 99]), torch.rand(3, 1, 128, 54))
    before = net(*args)
    space = DiffusionSpace("normalised", "skip", torch.randn(12), 0.1 + torch.rand(12))
    fold_into_head(net, space)
    torch.testing.assert_close(space.from_z(net(*args)), before, atol=1e-5, rtol=1e-5)


def test_bad_space_settings_are_refused(make_config, tmp_path):
    for diffusion, match in (({"space": "whitened"}, "diffusion.space"),
                             ({"parametrisation": "skip"}, "normalised"),
                             ({"space": "normalised", "std_floor": 0.0}, "std_floor")):
        with pytest.raises(ConfigError, match=match):
            load_config(None, base=_one_stage(make_config, tmp_path / "x", **diffusion))


def test_choose_timesteps_picks_the_best_range_per_count():
    from disrt_core.train.timesteps import choose

    scores = {5: {0: 56.0, 40: 52.0, 60: 51.0, 80: 51.0}, 10: {0: 60.0, 60: 50.5}}
    chosen = choose(scores)
    # ties go to the smaller last; the first count sets the general range
    assert chosen == {"first": 99, "last": 60, "by_steps": {
        "5": [99, 89, 80, 70, 60], "10": [99, 95, 90, 86, 82, 77, 73, 69, 64, 60]}}
    assert choose({1: {0: 3.0}})["by_steps"] == {"1": [99]}


def test_score_candidates_on_a_checkpoint(tmp_path, smpl_both, tiny_checkpoint):
    from disrt_core.checkpoint import read_header, rewrite_header
    from disrt_core.train.timesteps import choose, score_candidates

    path, spec = tiny_checkpoint
    scores = score_candidates(path, spec, steps=(2, 52), lasts=(0, 50), body=smpl_both,
                              max_samples=4)
    assert set(scores[2]) == {0, 50} and set(scores[52]) == {0}  # 99..50 has only 50 steps
    assert all(v > 0 for t in scores.values() for v in t.values())
    out = rewrite_header(path, tmp_path / "c.safetensors",
                         diffusion={"timesteps": choose(scores)})
    assert read_header(out).diffusion["timesteps"]["by_steps"]["52"][-1] == 0


def test_sigma_data_residual_measures_the_init_network_and_keeps_its_answer(
        make_config, keep_threads, tmp_path, smpl_both):
    """``sigma_data: residual`` on a raw init: σ_d per dimension is the RMS error of the
    network's t = T−1 answer in z (within the documented bounds), the head is refolded so
    that this answer is unchanged, and the run exports σ_d in the header."""
    from disrt_core.train.space import SIGMA_DATA_RANGE

    raw_trainer = Trainer(load_config(None, base=_one_stage(make_config, tmp_path / "r")))
    raw_trainer.fit()
    raw_trainer.close()
    init = str(tmp_path / "r" / "model.safetensors")
    runs = {}
    for name, sd in (("v", 1.0), ("s", "residual")):
        cont = _one_stage(make_config, tmp_path / name, space="normalised",
                          parametrisation="skip", invert_bounds=True, sigma_data=sd)
        cont["init"] = {"checkpoint": init}
        runs[name] = Trainer(load_config(None, base=cont))
    v, s = runs["v"], runs["s"]
    assert v.space.sigma_data is None
    sigma = s.space.sigma_data
    assert sigma.shape == (88,)
    assert float(sigma.min()) >= SIGMA_DATA_RANGE[0] and float(sigma.max()) <= SIGMA_DATA_RANGE[1]
    # σ_d is the t = T−1 error of the starting network, measured here independently
    batches = list(s.data[0].epoch(0))
    x0 = torch.cat([b["params"] for b in batches]).float()
    depth = torch.cat([b["depth"] for b in batches]).float()
    z0 = s.space.to_z(s._to_net(x0))
    t = torch.full((len(z0),), 99)
    z_t = torch.randn(z0.shape, generator=torch.Generator().manual_seed(5))  # ᾱ_99 ≈ 0
    abar = torch.as_tensor(s.diffusion.alphas_cumprod, dtype=torch.float32)
    with torch.no_grad():
        v.model.eval()
        s.model.eval()
        old = v.space.x0_from_output(v.model(z_t, t, depth), z_t, t, abar)
        new = s.space.x0_from_output(s.model(z_t, t, depth), z_t, t, abar)
    torch.testing.assert_close(new, old, atol=2e-3, rtol=2e-3)  # the refold keeps the answer
    rms = ((old - z0) ** 2).mean(0).sqrt().clamp(*SIGMA_DATA_RANGE)
    torch.testing.assert_close(rms, sigma, atol=0.02, rtol=0.02)
    s.model.train()
    s.fit()
    s.close()
    v.close()
    header = read_header(tmp_path / "s" / "model.safetensors")
    torch.testing.assert_close(DiffusionSpace.from_dict(header.diffusion).sigma_data, sigma)


def test_sigma_data_settings_are_checked(make_config, tmp_path):
    for diffusion, match in (({"space": "normalised", "sigma_data": 0.5}, "skip"),
                             ({"space": "normalised", "parametrisation": "skip",
                               "sigma_data": -1}, "sigma_data"),
                             ({"space": "normalised", "parametrisation": "skip",
                               "sigma_data": "residual"}, "init.checkpoint")):
        with pytest.raises(ConfigError, match=match):
            load_config(None, base=_one_stage(make_config, tmp_path / "x", **diffusion))
