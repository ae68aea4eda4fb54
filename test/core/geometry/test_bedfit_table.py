"""An overbed table over the bed (``bedfit_table``): its top is hidden from the head-end
decision, which took the table's end for the head end."""

from __future__ import annotations

import pytest
import torch

from disrt_core.geometry.bedfit_batch import fit_beds
from disrt_core.geometry.bedfit_rect import FINE
from disrt_core.geometry.bedfit_table import hidden, mirrored, overbed_tops
from test.core.geometry.bedscenes import CX, CY, bedroom, view

CELL = 0.02
RECT = torch.tensor([[-1.0, 1.0, -0.45, 0.45]])  # 2.0 × 0.9 m, long along u (columns)


def _grid(*blocks: tuple[float, float, float, float, float]) -> tuple[torch.Tensor, ...]:
    """A fine grid (2 cm cells, rows v, columns u, all read) at the level, raised to
    ``h`` over each block (u0, u1, v0, v1, h) (m)."""
    c = (torch.arange(FINE) + 0.5 - FINE / 2) * CELL
    height = torch.zeros(FINE, FINE)
    for u0, u1, v0, v1, h in blocks:
        height[((c >= v0) & (c < v1))[:, None] & ((c >= u0) & (c < u1))[None, :]] = h
    return height[None], torch.ones(1, FINE, FINE), torch.tensor([CELL])


def test_a_top_running_over_a_long_edge_is_hidden():
    # A table top 0.3 m above the mattress from v = −0.15 m to 0.7 m (0.25 m beyond the
    # + long edge at 0.45), over u in [−0.7, −0.25): those cells, and one cell round them.
    height, seen, cell = _grid((-0.7, -0.25, -0.15, 0.7, 0.3))
    tops = overbed_tops(height, seen, cell, RECT)[0]
    c = (torch.arange(FINE) + 0.5 - FINE / 2) * CELL
    block = ((c >= -0.15) & (c < 0.7))[:, None] & ((c >= -0.7) & (c < -0.25))[None, :]
    assert bool(tops[block].all())
    assert int(tops.sum()) <= int(block.sum()) + 2 * (22 + 43) + 4  # a ring of one cell
    h, s = hidden(height, seen, tops[None])
    assert float(h[0][block].abs().max()) == 0.0 and float(s[0][block].max()) == 0.0
    assert float(s.sum()) == FINE * FINE - int(tops.sum())


@pytest.mark.parametrize("blocks", [
    [(0.5, 0.95, -0.35, 0.35, 0.15)],  # a pillow inside the mattress
    [(0.5, 0.95, -0.45, 0.45, 0.3), (0.5, 0.95, 0.5, 0.9, 0.3)],  # a bedside table, a gap
    [(-0.7, -0.25, -0.15, 0.45, 0.3), (-0.7, -0.25, 0.45, 0.7, 0.2)],  # 10 cm lower beside
    [(-0.7, -0.25, 0.45, 0.48, 0.3)],  # a rail, 3 cm wide
    [(-0.7, -0.65, -0.15, 0.7, 0.3)],  # 5 cm along: no table
])
def test_what_is_not_a_top_running_over_an_edge_stays(blocks):
    height, seen, cell = _grid(*blocks)
    assert not bool(overbed_tops(height, seen, cell, RECT).any())


def test_a_rectangle_long_along_v_reads_the_same_top():
    # The grid of the first test turned by 90°: the same cells, transposed.
    height, seen, cell = _grid((-0.7, -0.25, -0.15, 0.7, 0.3))
    along_u = overbed_tops(height, seen, cell, RECT)
    along_v = overbed_tops(height.transpose(-1, -2), seen, cell, RECT[:, [2, 3, 0, 1]])
    assert torch.equal(along_u.transpose(-1, -2), along_v)


def _table_fit(sensor: str, blanket: bool, footboard: float | None, top: float, at: float):
    """A bed without headboard (a footboard ``footboard`` m high or none), a pillow and
    someone on the back (under a blanket), an overbed table whose 0.45 × 0.85 m top, ``top``
    m above the mattress, reaches 0.6 m over the bed from a post 0.2 m beside it, ``at`` m
    from the bed's centre toward the foot (negative: toward the head), seen from 2.6 m:
    the fit, and whether its corners (head order as fitted) are within 5 cm."""
    room = bedroom(0.9, 2.0, headboard=None, furniture=False, blanket=blanket)
    x0, x1, y0 = CX - 0.45, CX + 0.45, CY - 1.0
    if footboard is not None:
        room.box(x0 - 0.03, x1 + 0.03, y0 - 0.07, y0 - 0.03, -room.floor, footboard)
    room.box(x1 - 0.6, x1 + 0.25, CY - at - 0.22, CY - at + 0.22, top - 0.015, top)
    room.box(x1 + 0.17, x1 + 0.23, CY - at - 0.03, CY - at + 0.03, -room.floor, top - 0.015)
    frame = view(room, sensor, 2.6, seed=1)
    fits = fit_beds(frame.depth_raw, frame.K.float())
    assert bool(fits.ok[0]), fits.reason_text(0)
    error = (fits.corners[0].double() - frame.mattress_corners[0].double()).norm(dim=-1)
    return fits, float(error.amax()) < 0.05


@pytest.mark.parametrize("sensor", ["kinect2", "d435_640x480", "l515", "d455_640x360"])
def test_an_overbed_table_over_the_foot_half_is_not_the_head_end(sensor):
    """A 0.35 m top 0.3 m toward the foot: each of these fits had its head end at the
    table, confidently; now at the pillow, confidently."""
    fits, right = _table_fit(sensor, False, None, 0.35, 0.3)
    assert bool(fits.head_known[0]) and right


@pytest.mark.parametrize(("sensor", "blanket", "footboard", "top", "at"), [
    ("kinect2", False, None, 0.35, -0.55), ("d435_640x480", True, None, 0.25, -0.55),
    ("l515", False, 0.35, 0.35, -0.55), ("d455_640x360", True, 0.35, 0.25, -0.3)])
def test_an_overbed_table_over_the_head_half_does_not_turn_the_bed(sensor, blanket,
                                                                    footboard, top, at):
    """A top over the chest or the head: hidden at its end alone, it took the head's and
    torso's volume away and these fits put the head end at the feet, confidently; hidden
    with its mirror too and the two required to agree, the head end is right or unknown."""
    fits, right = _table_fit(sensor, blanket, footboard, top, at)
    assert right or not bool(fits.head_known[0])


def test_a_mask_is_mirrored_through_the_rectangles_centre():
    # A rectangle centred at u = 0.1 m (long along u): cells at u in [0.5, 0.6) go to
    # u in (-0.4, -0.3]; the same rectangle long along v mirrors rows instead.
    c = (torch.arange(FINE) + 0.5 - FINE / 2) * CELL
    mask = ((c >= 0.5) & (c < 0.6))[None, None, :].expand(1, FINE, FINE)
    rect = torch.tensor([[-0.9, 1.1, -0.45, 0.45]])
    out = mirrored(mask, torch.tensor([CELL]), rect)[0, 0]
    assert torch.equal(out, (c > -0.4) & (c <= -0.3))
    out_v = mirrored(mask.transpose(-1, -2), torch.tensor([CELL]), rect[:, [2, 3, 0, 1]])
    assert torch.equal(out_v[0, :, 0], (c > -0.4) & (c <= -0.3))
