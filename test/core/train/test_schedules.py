import itertools
import math

import pytest
import torch

from disrt_core.train.schedules import LRFactor, build_scheduler, stage_factor


def _lrs(factor, steps, lr=1e-4):
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = build_scheduler(opt, lr, factor)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_linear_paper_equation_15():
    lrs = _lrs(stage_factor("linear", 10), 10)
    assert lrs[0] == 1e-4
    assert lrs[5] == pytest.approx(0.5e-4, rel=1e-15)
    assert lrs[9] == pytest.approx(1e-5, rel=1e-15)  # lr_init / S at the last step
    assert all(a > b for a, b in itertools.pairwise(lrs))


def test_linear_reference_variant_uses_s_plus_one():
    # 100 % real: N = 10,665, batch 32, 15 epochs -> S = 4999, horizon 5000, 4995 steps.
    factor = stage_factor("linear", 4995, variant="reference", epochs=15,
                          samples_per_epoch=10_665, batch_size=32)
    assert factor.horizon == 5000
    assert factor(0) == 1.0 and factor(2500) == 0.5 and factor(4994) == pytest.approx(6 / 5000)


def test_cosine_and_exponential_match_torch():
    steps = 12
    ours_cos = _lrs(stage_factor("cosine", steps), steps)
    ours_exp = _lrs(stage_factor("exponential", steps, gamma=0.9), steps)
    for kind, ours in (("cos", ours_cos), ("exp", ours_exp)):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-4)
        sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps) if kind == "cos"
                 else torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9))
        theirs = []
        for _ in range(steps):
            theirs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        assert ours == pytest.approx(theirs, rel=1e-12)


def test_constant_warmup_and_state_round_trip():
    factor = LRFactor("constant", 100, warmup_steps=4)
    assert [factor(s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_scheduler(opt, 1.0, LRFactor("cosine", 8))
    for _ in range(3):
        opt.step()
        sched.step()
    state = sched.state_dict()
    fresh = build_scheduler(opt, 1.0, LRFactor("linear", 99))  # rebuilt, then restored
    fresh.load_state_dict(state)
    assert fresh.lr_lambdas[0].kind == "cosine" and fresh.last_epoch == 3
    assert fresh.get_last_lr()[0] == pytest.approx(0.5 * (1 + math.cos(math.pi * 3 / 8)))


def test_rebuilt_scheduler_restarts_at_the_stage_lr():
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-4)
    build_scheduler(opt, 3e-4, LRFactor("constant", 5))
    sched = build_scheduler(opt, 1e-4, LRFactor("linear", 4))  # stage 2: initial_lr reset
    assert sched.base_lrs == [1e-4] and opt.param_groups[0]["lr"] == 1e-4
    with pytest.raises(ValueError, match="needs epochs"):
        stage_factor("linear", 4, variant="reference")
