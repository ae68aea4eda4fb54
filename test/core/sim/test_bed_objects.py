"""Things lying on the bed: on the mattress, clear of the body, under or over the cover."""

import math

import torch

from disrt_core.sim.bed_objects import OBJECTS, bed_objects
from disrt_core.sim.scene import GRID, mattress_mask, sample_beds


def test_objects_lie_on_the_mattress_clear_of_the_body():
    n = 256
    gen = torch.Generator().manual_seed(0)
    beds = sample_beds(n, gen)
    x, y = GRID.xy()
    # A body-sized blob down the middle of the bed.
    body = ((x - 0.35).abs() < 0.2) & ((y - 0.9).abs() < 0.8)
    top = torch.where(body, torch.tensor(0.2), torch.tensor(-math.inf)).expand(n, -1, -1)
    below, above = bed_objects(beds, top, gen, prob=1.0)
    things = torch.maximum(below, above)
    on = mattress_mask(beds)
    assert (things[~on] == 0).all()
    # Nothing within 3 cells of the body.
    near = torch.nn.functional.max_pool2d(body[None, None].float(), 7, 1, 3)[0, 0] > 0
    assert (things[:, near] == 0).all()
    assert float(things.amax()) <= max(h[1] for _, _, h, _ in OBJECTS.values()) + 1e-6
    count = (things > 0).flatten(1).any(1).float().mean()
    assert count > 0.25  # a single bed with someone on it leaves little room, but some
    assert (below > 0).any() and (above > 0).any()
    none_below, none_above = bed_objects(beds, top, gen, prob=0.0)
    assert none_below.abs().sum() == 0 and none_above.abs().sum() == 0
