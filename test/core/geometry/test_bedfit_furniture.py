"""Furniture against an end of the mattress (``bedfit_furniture``): the end cut back to the
furniture's face where the raw pixels show the mattress's end there; pillows, bodies and a
long mattress are not cut."""

from __future__ import annotations

import pytest
import torch

from disrt_core.geometry.bedfit_batch import fit_beds
from disrt_core.geometry.bedfit_furniture import foot_end, proposals
from disrt_core.geometry.bedfit_rect import FINE
from test.core.geometry.bedscenes import CX, CY, bedroom, view

LIMITS = {"width": (0.7, 2.1), "length": (1.8, 2.4), "size_tol": 0.03}
CELL = 0.02


def _grid(raised_below: float, across: float = 1.0) -> dict:
    """A fine grid (cells of 2 cm, rows v, columns u) flat at the level, raised 0.2 m at
    u < ``raised_below`` on the ``across`` share of the rows from v = −0.45 m up."""
    c = (torch.arange(FINE) + 0.5 - FINE / 2) * CELL
    height = torch.zeros(FINE, FINE)
    rows = (c >= -0.45) & (c < -0.45 + across * 0.9)
    height[rows[:, None] & (c < raised_below)[None, :]] = 0.2
    return {"cell": torch.tensor([[CELL]]), "height": height[None, None],
            "seen": torch.ones(1, 1, FINE, FINE)}


def test_a_raised_run_at_an_end_is_cut_at_its_inner_face():
    # A 2.6 m rectangle along u whose − end lies over a desk reaching to u = −0.75 m: the
    # last raised cell is [-0.78, -0.76) (centres (i + 0.5 − 64)·0.02 m), so the cut end is
    # at −0.76 m and 2.06 m are left; the + end has nothing raised.
    rect = torch.tensor([[[-1.3, 1.3, -0.45, 0.45]]])
    new, valid = proposals(_grid(-0.75), rect, LIMITS)
    assert valid[0, 0].tolist() == [False, True]
    assert new[0, 0, 1].tolist() == pytest.approx([-0.76, 1.3, -0.45, 0.45], abs=1e-5)


@pytest.mark.parametrize(("raised_below", "across"), [(-1.2, 1.0), (-0.75, 0.5), (-0.2, 1.0)])
def test_no_cut_for_a_board_half_the_width_or_too_short_a_rest(raised_below, across):
    # 10 cm raised (a board: trim_boards's), half the width raised (a body, a pillow), or
    # a cut that would leave 1.5 m (less than a mattress).
    rect = torch.tensor([[[-1.3, 1.3, -0.45, 0.45]]])
    _, valid = proposals(_grid(raised_below, across), rect, LIMITS)
    assert not bool(valid.any())


def test_the_head_end_is_not_put_at_the_furniture():
    sign, conf, known = torch.tensor([1.0, 1.0, -1.0]), torch.tensor([0.9, 0.9, 0.8]), \
        torch.tensor([True, True, True])
    s, c, k = foot_end(torch.tensor([1, -1, 0]), sign, conf, known)
    assert s.tolist() == [-1.0, 1.0, -1.0]  # only the fit whose head was at the cut end
    assert c.tolist() == pytest.approx([0.5, 0.9, 0.8]) and k.tolist() == [False, True, True]


def _error(fits, frame) -> float:
    """Largest corner distance (m), head order as fitted."""
    return float((fits.corners[0].double() - frame.mattress_corners[0].double()).norm(
        dim=-1).amax())


@pytest.mark.parametrize("sensor", ["kinect2", "d455_640x360"])
@pytest.mark.parametrize("pillow", [False, True])
def test_a_desk_against_the_foot_end_is_left_out(sensor, pillow):
    """A desk 0.6 m deep with its top 0.2 m above the mattress, pushed against the bed's
    foot (3 cm from the mattress, over the frame's rim), seen from 3 m above the foot half:
    the grid's rectangle ran over the desk (2.6 m; the frame was refused before); the fit
    now ends at the mattress and the head end is at the headboard."""
    room = bedroom(0.9, 2.0, headboard=0.4, furniture=False, pillow=pillow)
    foot = CY - 1.0
    room.box(CX - 0.5, CX + 0.5, foot - 0.63, foot - 0.03, -room.floor, 0.2)
    frame = view(room, sensor, 3.0, offset=(0.0, -0.3), seed=1)
    fits = fit_beds(frame.depth_raw, frame.K.float())
    assert bool(fits.ok[0]), fits.reason_text(0)
    assert float(fits.size[0, 1]) == pytest.approx(2.0, abs=0.03)
    assert _error(fits, frame) < 0.05


@pytest.mark.parametrize("sensor", ["kinect2", "l515"])
def test_a_folded_duvet_across_the_head_end_is_not_cut(sensor):
    """A 2.4 m mattress with a duvet folded 15 cm high across its whole width at the head
    end (0.5 m long: a raised run whose cut would leave a mattress's 1.9 m, so it is
    proposed); no free space at its inner side on the raw pixels, so the full length is
    kept (accepting every proposal cuts it to 1.9 m)."""
    room = bedroom(0.9, 2.4, headboard=0.4, furniture=False, pillow=False, person=False)
    head = CY + 1.2
    room.box(CX - 0.45, CX + 0.45, head - 0.5, head, 0.0, 0.15)
    frame = view(room, sensor, 3.0, seed=1)
    fits = fit_beds(frame.depth_raw, frame.K.float())
    assert bool(fits.ok[0]), fits.reason_text(0)
    assert float(fits.size[0, 1]) == pytest.approx(2.4, abs=0.03)
    assert _error(fits, frame) < 0.05
