"""Calibrated joint intervals from the hypotheses' spread (disrt_core.uncertainty, issue 21)."""

import numpy as np
import pytest
import torch
from scipy.stats import chi

from disrt_core.body import load_body_model
from disrt_core.checkpoint import CheckpointError, read_header, rewrite_header, save_checkpoint
from disrt_core.decoder import MeshDecoder
from disrt_core.infer import Estimator
from disrt_core.model import Denoiser, small
from disrt_core.uncertainty import check_interval, fit_interval, joint_interval


def _proportional(n: int, seed: int, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Errors that are k_j times the spread times a chi(3) draw: the 90 % radius is
    k_j · χ₃⁻¹(0.9) · s exactly."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(0.005, 0.05, size=(n, len(k)))
    return k * s * chi.rvs(3, size=(n, len(k)), random_state=rng), s


def test_errors_proportional_to_the_spread_give_the_chi_radius():
    k = np.array([2.0, 5.0, 10.0])
    fit = fit_interval(*_proportional(10000, 0, k), level=0.9)
    want = k * chi.ppf(0.9, 3)  # 2.50 k
    # the sharpest interval at 90 % is (close to) the exact one: all in the scale
    np.testing.assert_allclose(fit["scale"], want, rtol=0.08)
    assert max(fit["offset_m"]) < 0.1 * np.mean(k * 0.0275 * 2.5)
    err, s = _proportional(10000, 1, k)  # new draws: the coverage holds
    r = joint_interval(torch.from_numpy(s), fit).numpy()
    assert abs(np.mean(err <= r) - 0.9) < 0.01
    assert fit["coverage"] == pytest.approx(0.9, abs=0.005)


def test_a_spread_that_says_nothing_is_left_out():
    rng = np.random.default_rng(2)
    err = rng.gamma(4.0, 0.02, size=(10000, 2))
    s = rng.uniform(0.005, 0.05, size=(10000, 2))  # independent of the error
    fit = fit_interval(err, s, level=0.8)
    np.testing.assert_allclose(fit["offset_m"], np.quantile(err, 0.8, axis=0), rtol=0.05)
    assert max(fit["scale"]) < 0.5  # a tiny share of a radius of ~0.1 m
    with pytest.raises(ValueError, match="level"):
        fit_interval(err, s, level=1.0)


def test_check_interval_names_what_is_wrong():
    good = {"8": {"level": 0.9, "offset_m": [0.1] * 24, "scale": [3.0] * 24}}
    assert check_interval(good) is good
    for bad, match in (({"x": good["8"]}, "hypotheses"),
                       ({"8": {**good["8"], "level": 1.5}}, "level"),
                       ({"8": {**good["8"], "scale": [1.0] * 23}}, "scale"),
                       ({"8": {**good["8"], "offset_m": [-0.1] * 24}}, "offset_m")):
        with pytest.raises(ValueError, match=match):
            check_interval(bad)


def test_estimator_gives_the_interval_of_its_k_and_steps(tmp_path, smpl_fixture_dir):
    body = load_body_model("smpl", smpl_fixture_dir)
    torch.manual_seed(0)
    net = Denoiser(small().replace(dropout=0.0), body.param_layout.param_dim).eval()
    path = save_checkpoint(tmp_path / "m.safetensors", net, body.model_id, body.param_layout,
                           MeshDecoder(body).config)
    offsets = [0.01 * (j + 1) for j in range(24)]
    interval = {"1": {"level": 0.9, "steps": 5, "offset_m": offsets, "scale": [0.0] * 24},
                "3": {"level": 0.9, "steps": 5, "offset_m": [0.05] * 24, "scale": [4.0] * 24}}
    rewrite_header(path, diffusion={"interval": interval})
    assert read_header(path).diffusion["interval"]["3"]["scale"][0] == 4.0
    depth = torch.rand(2, 1, 128, 54, generator=torch.Generator().manual_seed(0))
    est = Estimator.from_checkpoint(path, body_model=body, seed=0)
    pred = est.predict(depth)
    torch.testing.assert_close(pred.joint_interval, torch.tensor([offsets, offsets]))
    est.set_sampling(hypotheses=3)
    pred = est.predict(depth)
    torch.testing.assert_close(pred.joint_interval, 0.05 + 4.0 * pred.joint_spread)
    est.set_sampling(hypotheses=2)  # no calibration for K = 2
    assert est.predict(depth).joint_interval is None
    est.set_sampling(hypotheses=1, steps=10)  # nor for another step count
    assert est.predict(depth).joint_interval is None
    with pytest.raises(CheckpointError, match="interval"):
        rewrite_header(path, tmp_path / "bad.safetensors",
                       diffusion={"interval": {"1": {"level": 0.9}}})
