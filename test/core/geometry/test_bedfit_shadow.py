"""An end of the mattress hidden behind its board (``bedfit_shadow``): placed at the board's
inner face, and the fit flagged ``inferred_end``."""

from __future__ import annotations

import math

import pytest

from disrt_core.geometry.bedfit import weak_because
from disrt_core.geometry.bedfit_batch import fit_beds
from disrt_core.geometry.bedfit_result import WEAK_CAUSES
from test.core.geometry.bedscenes import bedroom, fit_error, view

INFERRED = WEAK_CAUSES.index("inferred_end")
# (yaw, offset, height, tilt) of a D455 1.0-1.3 m beyond the head end of a 2 m mattress,
# 2.4 m above it, pitched toward the bed: its 0.6 m headboard hides 0.3-0.45 m of the
# mattress, more than the grid stage's ``shadowed_ends`` reaches (the fit was refused).
VIEWS = ((math.pi / 2, (0.0, 2.0), 2.4, (-0.3, 0.0)),
         (-math.pi / 2, (0.0, 2.3), 2.4, (-0.4, 0.0)))


@pytest.mark.parametrize("pillow", [False, True])
@pytest.mark.parametrize("pose", VIEWS)
def test_an_end_in_a_headboards_shadow_is_placed_at_the_board(pose, pillow):
    yaw, offset, height, tilt = pose
    room = bedroom(0.9, 2.0, headboard=0.6, pillow=pillow, person=False, furniture=False)
    frame = view(room, "d455_640x360", height, offset=offset, yaw=yaw, tilt=tilt, seed=1)
    truth = frame.mattress_corners[0].double()
    length = float((truth[0] - truth[3]).norm())
    fits = fit_beds(frame.depth_raw, frame.K.float())
    assert bool(fits.ok[0]), fits.reason_text(0)
    assert bool(fits.weak[0]) and bool(fits.weak_causes[0, INFERRED])
    assert any("board" in b and "shadow" in b for b in weak_because(fits, 0))
    assert float(fits.size[0, 1]) == pytest.approx(length, abs=0.05)
    assert fit_error(fits, frame) < 0.05


def test_a_bed_seen_whole_has_no_inferred_end():
    """The same bed from above its middle: nothing hidden, no end inferred."""
    room = bedroom(0.9, 2.0, headboard=0.6, pillow=False, person=False, furniture=False)
    frame = view(room, "d455_640x360", 2.6, offset=(0.0, 0.2), seed=1)
    fits = fit_beds(frame.depth_raw, frame.K.float())
    assert bool(fits.ok[0]) and not bool(fits.weak_causes[0, INFERRED])
    assert fit_error(fits, frame) < 0.05
