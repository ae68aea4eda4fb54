"""Wedges and bolsters against the body (disrt_core.sim.props): they touch it, never rise
through it, follow the drawn share and stay off empty beds."""

import math

import torch

from disrt_core.geometry.bedframe import BED_CENTRE_LABEL
from disrt_core.sim.props import body_props
from disrt_core.sim.scene import GRID


def lying_trunk(n: int):
    """A 0.36 m wide, 0.7 m long trunk lying along the bed (top 0.2 m, underside 0.02 m)
    and its joints (pelvis below, neck above, label frame)."""
    x, y = GRID.xy("cpu")
    cx, cy = BED_CENTRE_LABEL
    trunk = ((x - cx).abs() <= 0.18) & ((y - cy).abs() <= 0.35)
    top = torch.where(trunk, 0.2, -math.inf).expand(n, -1, -1).clone()
    under = torch.where(trunk, 0.02, -math.inf).expand(n, -1, -1).clone()
    joints = torch.zeros(n, 24, 3)
    joints[:, 0, :2] = torch.tensor([cx, cy - 0.3])
    joints[:, 12, :2] = torch.tensor([cx, cy + 0.3])
    return top, under, joints, trunk


def test_props_touch_the_body_and_never_rise_through_it():
    n = 64
    top, under, joints, trunk = lying_trunk(n)
    h = body_props(top, under, joints, torch.Generator().manual_seed(0), prob=1.0)
    x, _ = GRID.xy("cpu")
    cx = BED_CENTRE_LABEL[0]
    for b in range(n):
        prop = (h[b] > 0.005) & ~trunk
        assert prop.any()
        gap = (x[prop] - cx).abs().min() - 0.18  # from the trunk's side to the prop
        assert -0.011 <= float(gap) <= 0.031, (b, float(gap))
        # Beside the trunk, on one side only, as long as a wedge or bolster is.
        assert bool((x[prop] > cx).all()) or bool((x[prop] < cx).all())
        assert 0.06 < float(h[b].max()) <= 0.25 + 1e-6
    assert (h[:, trunk] <= 0.02 + 1e-6).all()  # under the body: at most its underside


def test_prop_share_and_no_prop_without_a_body():
    n = 400
    top, under, joints, _ = lying_trunk(n)
    h = body_props(top, under, joints, torch.Generator().manual_seed(1), prob=0.3)
    share = float((h.flatten(1).amax(1) > 0).float().mean())
    assert 0.22 < share < 0.38
    empty = torch.full_like(top, -math.inf)
    assert (body_props(empty, empty, joints, torch.Generator().manual_seed(1), 1.0) == 0).all()
    assert (body_props(top, under, joints, torch.Generator().manual_seed(1), 0.0) == 0).all()
