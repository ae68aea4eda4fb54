"""training/calibrate_interval.py's measurement: per-joint errors and spreads of a checkpoint
on a data set (disrt_core.train.interval, issue 21)."""

import numpy as np
import torch

from disrt_core.checkpoint import read_header, rewrite_header
from disrt_core.infer import Estimator
from disrt_core.train.data import eval_batches
from disrt_core.train.interval import errors_and_spread
from disrt_core.uncertainty import fit_interval


def test_errors_and_spread_of_a_checkpoint(tmp_path, smpl_both, tiny_checkpoint):
    path, spec = tiny_checkpoint
    err, spread = errors_and_spread(path, spec, hypotheses=3, steps=2, body=smpl_both,
                                    max_samples=4)
    assert err.shape == spread.shape == (4, 24) and spread.min() > 0
    # the same answers, measured by hand: the mean body of K = 3, seed 0, against the labels
    est = Estimator.from_checkpoint(path, body_model=smpl_both, seed=0, steps=2,
                                    hypotheses=3)
    batch = next(iter(eval_batches(spec, smpl_both, torch.device("cpu"), 64, 4)))
    pred = est.predict(batch["depth"], batch["gender"].float())
    want = np.linalg.norm(pred.joints.numpy() - batch["joints"].numpy(), axis=-1)
    np.testing.assert_allclose(err, want, rtol=1e-5)
    np.testing.assert_allclose(spread, pred.joint_spread.numpy(), rtol=1e-5)
    entry = {**fit_interval(err, spread), "steps": 2}
    out = rewrite_header(path, tmp_path / "c.safetensors", diffusion={"interval": {"3": entry}})
    assert read_header(out).diffusion["interval"]["3"]["steps"] == 2
