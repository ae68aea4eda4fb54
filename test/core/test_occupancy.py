"""Someone in bed or not: features of the depth against the predicted body, and the
probability the Estimator reports."""

import math

import pytest
import torch

from disrt_core.geometry.bedframe import DEPTH_RANGE_MM, NET_SHAPE, net_to_label
from disrt_core.occupancy import (
    body_top_map,
    observed_heights,
    occupancy_features,
    presence_probability,
)


def _slab(rows, cols, height):
    """Vertices of a flat slab ``height`` m above the mattress over network cells
    rows × cols (a stand-in body), label frame."""
    r, c = torch.meshgrid(torch.arange(*rows).float(), torch.arange(*cols).float(),
                          indexing="ij")
    x, y = net_to_label(r, c)
    return torch.stack([x, y, torch.full_like(x, height)], -1).reshape(1, -1, 3)


def test_body_top_map_puts_vertices_in_their_cells():
    vertices = _slab((10, 20), (5, 15), 0.2)
    top = body_top_map(vertices)[0]
    assert torch.allclose(top[10:20, 5:15], torch.tensor(0.2))
    assert top[40:, :].max() == -math.inf  # nothing far from the slab


def test_a_body_seen_where_it_is_predicted_is_present_a_flat_bed_is_not():
    body = _slab((20, 110), (15, 40), 0.2)
    seen = torch.ones(1, *NET_SHAPE)
    seen[0, 20:110, 15:40] = 1 - 0.2 / (DEPTH_RANGE_MM / 1000)  # 20 cm up, where the body is
    heights, valid = observed_heights(seen)
    assert abs(float(heights[0, 50, 20]) - 0.2) < 1e-5 and valid.all()
    agreement, contrast, raised, volume, error, high, length = occupancy_features(seen, body)[0]
    # The 5x5 averaging rounds the slab's corners off: nearly all of it agrees.
    assert agreement > 0.97 and error < 0.02
    assert abs(float(contrast) - 0.2) < 0.02  # 20 cm above the mattress around it
    assert 90 * 25 / (128 * 54) < float(raised) < 92 * 27 / (128 * 54) + 1e-6
    cell = (0.83 / 55) * (1.91 / 127)
    assert abs(float(volume) - 90 * 25 * 0.2 * cell) < 1e-3
    # 20 cm is high (≥ 10 cm) over the slab less its smoothed corners; below the head end's
    # 32 rows the slab reaches over rows 32..109 (row 110's 5×5 mean is 2/5 · 20 cm = 8 cm).
    assert 88 * 23 / (128 * 54) < float(high) <= 90 * 25 / (128 * 54)
    assert abs(float(length) - 79 / 96) < 1e-6
    flat = torch.ones(1, *NET_SHAPE)
    assert float(occupancy_features(flat, body)[0, 0]) == 0.0
    # Noisy depth of an empty bed (several cm a pixel) does not make a body.
    gen = torch.Generator().manual_seed(0)
    noisy = (1 + 0.05 / 0.715 * torch.randn(1, *NET_SHAPE, generator=gen)).clamp(0, 1)
    assert presence_probability(noisy, body)[0] < 0.1
    p = presence_probability(torch.cat([seen, flat]), torch.cat([body, body]))
    assert p[0] > 0.9 and p[1] < 0.1
    # No readings at all is not a person either.
    assert presence_probability(torch.zeros(1, *NET_SHAPE), body)[0] < 0.1


def test_the_estimator_reports_presence(tmp_path):
    from disrt_core.infer import Estimator

    est = Estimator.from_checkpoint("disrt_core/weights/default.safetensors", seed=0)
    pred = est.predict(torch.ones(2, 1, *NET_SHAPE))  # an empty, flat bed
    assert pred.present_prob.shape == (2,) and not pred.present.any()


def test_the_bed_state_sitting_in_bed_or_empty():
    from disrt_core.occupancy import (
        EMPTY,
        IN_BED,
        SITTING,
        occupancy_state,
        sitting_probability,
        tall_shares,
    )

    bed_mm = 2101.0
    net = torch.full((3, *NET_SHAPE), bed_mm)
    net[0, 40:70, 40:54] = bed_mm - 800.0  # a trunk and head 0.8 m up at the edge: sitting
    net[1, 60:75, 20:32] = bed_mm - 450.0  # a raised knee, 0.45 m: still lying
    shares = tall_shares(net, bed_mm)
    cells = 128 * 54
    assert shares[0].tolist() == pytest.approx([30 * 14 / cells] * 3)  # above 0.4/0.55/0.7 m
    assert shares[1].tolist() == pytest.approx([15 * 12 / cells, 0, 0])
    assert shares[2].tolist() == [0, 0, 0]
    present = torch.tensor([0.1, 0.9, 0.2])
    state = occupancy_state(present, net, bed_mm)
    assert state.tolist() == [SITTING, IN_BED, EMPTY]
    net[2, :10] = 0  # no readings are not tall things
    assert tall_shares(net, bed_mm)[2].tolist() == [0, 0, 0]
    assert sitting_probability(present, net, bed_mm)[2] < 0.5


def test_box_max_is_the_square_pool():
    from disrt_core.occupancy import _box_max

    x = (torch.rand(2, 1, 128, 54, generator=torch.Generator().manual_seed(0)) > 0.9).float()
    x[0, 0, 0, 0] = 1.0  # a corner cell: the padding must not shift it
    for k in (3, 9, 21):
        expected = torch.nn.functional.max_pool2d(x, k, stride=1, padding=k // 2)
        assert torch.equal(_box_max(x, k), expected)


def test_a_folded_throw_on_an_empty_bed_is_not_a_person():
    """A 5-7 cm throw over the lower bed and the head pillow, with a thin body answered
    onto it (the network always answers one): the body agrees with what is seen there, but
    nothing is 10 cm high below the pillow and nothing reaches along the bed."""
    range_m = DEPTH_RANGE_MM / 1000
    body = _slab((20, 120), (18, 36), 0.10)
    for height in (0.05, 0.07):
        seen = torch.ones(1, *NET_SHAPE)
        seen[0, 50:120, 5:50] = 1 - height / range_m  # the throw
        seen[0, 0:30, 8:46] = 1 - 0.12 / range_m  # the pillow
        agreement, *_, length = occupancy_features(seen, body)[0]
        assert agreement > 0.75 and length == 0
        assert presence_probability(seen, body)[0] < 0.1
