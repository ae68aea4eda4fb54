"""The bed's geometry (disrt_core.sim.scene): stacked head pillows."""

import torch

from disrt_core.sim.scene import HEIGHT_RANGE, STACK_FACTOR, sample_beds, side_pillows


def test_stacked_pillows_are_taller_in_their_share_and_leave_the_rest_alone():
    n = 2000
    plain = sample_beds(n, torch.Generator().manual_seed(3))
    stacked = sample_beds(n, torch.Generator().manual_seed(3), stack_prob=0.25)
    h0, h1 = plain.pillow[:, 5], stacked.pillow[:, 5]
    taller = h1 > h0 + 1e-9
    assert 0.22 < float(taller.float().mean()) < 0.28
    ratio = h1[taller] / h0[taller]
    assert (ratio >= STACK_FACTOR[0] - 1e-5).all() and (ratio <= STACK_FACTOR[1] + 1e-5).all()
    assert ratio.max() - ratio.min() > 0.3  # the factor varies, not one fixed multiple
    assert float(h1.max()) <= HEIGHT_RANGE[1] * STACK_FACTOR[1] + 1e-6
    # Everything else is drawn from the same numbers as without stacking.
    assert torch.equal(h1[~taller], h0[~taller])
    for key in ("width", "length", "floor_z", "frame_z"):
        assert torch.equal(getattr(plain, key), getattr(stacked, key))
    # Without stacking no extra number is drawn: the next draw is the same as before.
    g = torch.Generator().manual_seed(4)
    sample_beds(8, g)
    after = torch.rand(3, generator=g)
    g2 = torch.Generator().manual_seed(4)
    sample_beds(8, g2, stack_prob=0.0)
    assert torch.equal(torch.rand(3, generator=g2), after)
    # A side sleeper's stacked pillow stays taller than a single side pillow.
    side = side_pillows(stacked, torch.ones(n, dtype=torch.bool)).pillow[:, 5]
    assert float(side[taller].min()) > 0.12
