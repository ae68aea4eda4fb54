"""Weak cause of ``bedfit_cover``: an end fitted over a low footboard (issue #19 part 2: a wrong
fit must not go unflagged)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from disrt_core.geometry import bedfit_cover
from disrt_core.geometry.bedfit_result import WEAK_CAUSES
from disrt_core.geometry.bedfit_words import weak_because
from test.core.geometry.bedscenes import bedroom, view
from test.core.geometry.test_bedfit_edges import _truth_rectangle, _with_footboard


def _low_board(room, sensor: str, out: float) -> bool:
    """``low_board`` of the room's true mattress with its foot end moved ``out`` m out."""
    frame = view(room, sensor, 2.6, tilt=(0.15, -0.05), yaw=-math.pi / 2, seed=4)
    depth = frame.depth_raw.to(torch.float32) / 1000
    n, offset, _sigma, centre, eu, ev, half = _truth_rectangle(frame)
    centre = centre - ev * out / 2
    half = half + torch.tensor([0.0, out / 2])
    _s, h, beyond = bedfit_cover.profiles(depth, frame.K.float(), n, offset, centre, eu, ev,
                                          half)
    return bool(bedfit_cover.low_board(h, beyond, half)[0])


@pytest.mark.parametrize(("sensor", "height"), [("d435_640x480", 0.08), ("azure_nfov", 0.06)])
def test_an_end_over_a_low_footboard_is_flagged_the_true_end_is_not(sensor, height):
    """The tuning rooms' unflagged wrong fits with an end 7-10 cm out: the end at the outer
    face of a low footboard (4 cm thick, 3 cm beyond the mattress), its top taken as
    mattress. That end has the board's level top just inside it, with the mattress lower
    again behind it: ``low_board``. The true end (the board beyond it) is not, nor the same
    end 7 cm out over a plain drop to the floor (nothing raised inside it)."""
    assert _low_board(_with_footboard(height), sensor, 0.07)
    assert not _low_board(_with_footboard(height), sensor, 0.0)
    assert not _low_board(bedroom(floor=0.3), sensor, 0.07)


def test_the_new_causes_say_why():
    for name, words in (("low_board", "footboard"),):
        causes = torch.zeros(1, len(WEAK_CAUSES), dtype=torch.bool)
        causes[0, WEAK_CAUSES.index(name)] = True
        fits = SimpleNamespace(weak_causes=causes, edge_support=torch.ones(1, 4),
                               noise=torch.zeros(1))
        (text,) = weak_because(fits, 0)
        assert words in text
