"""The mattress hidden behind something on it (``bedfit_hidden``): its cells count toward
the fill, so a bed against a wall with a person's shadow reaching the wall is found."""

from __future__ import annotations

import pytest
import torch

from disrt_core.geometry.bedfit_batch import fit_beds
from disrt_core.geometry.bedfit_hidden import hidden_cells
from disrt_core.geometry.bedfit_rect import FINE
from test.core.geometry.bedscenes import CX, CY, Room, fit_error, view


def _against_the_wall() -> Room:
    """A 0.9 × 2 m mattress against a wall along its +x side; someone lies on their side
    left of the middle, shoulders and hips 0.55 m high over 0.6 m of the length, legs low."""
    room = Room(width=0.9, length=2.0, floor=0.5)
    x0, x1, y0, y1 = CX - 0.45, CX + 0.45, CY - 1.0, CY + 1.0
    room.box(x0, x1, y0, y1, -0.2, 0.0)
    room.box(x0 - 0.03, x1 + 0.03, y0 - 0.03, y1 + 0.03, -0.5, -0.2)
    room.box(x1 + 0.03, x1 + 0.13, CY - 3, CY + 3, -0.5, 1.5)  # the wall
    room.box(CX - 0.25, CX + 0.05, CY + 0.1, CY + 0.7, 0.0, 0.55)  # shoulders and hips
    room.box(CX - 0.22, CX + 0.02, CY - 0.9, CY + 0.85, 0.0, 0.12)  # the rest, lower
    return room


# (offset across the bed, height) of a D435 on the open side, pitched toward the wall: the
# person hides a strip of mattress out to the wall, and the fill of the right rectangle
# was 0.78-0.79 (< min_fill 0.8): the frame was refused.
@pytest.mark.parametrize("pose", [(-1.0, 1.8), (-1.0, 2.0), (-1.2, 2.0)])
def test_a_mattress_hidden_behind_a_person_out_to_the_wall_is_found(pose):
    offset, height = pose
    frame = view(_against_the_wall(), "d435_640x480", height, offset=(offset, 0.0),
                 tilt=(0.0, 0.4), seed=1)
    assert bool(frame.present[0])
    fits = fit_beds(frame.depth_raw, frame.K.float())
    assert bool(fits.ok[0]), fits.reason_text(0)
    assert fit_error(fits, frame) < 0.05


def test_hidden_cells_lie_in_the_shadow_cast_away_from_the_camera():
    """A 0.5 m caster 2.0-2.1 m from the camera's foot point, the camera 2 m above the
    plane: its shadow runs h·r/(H−h) ≈ 0.7 m on beyond it; nothing toward the camera or
    farther out is hidden."""
    cell = torch.tensor([[0.02]])
    u = (torch.arange(FINE) + 0.5 - FINE / 2) * 0.02  # cell centres, m
    pa = (2.6 + u)[None, :].expand(FINE, FINE)[None, None]  # grid centred 2.6 m out, along a
    pb = u[:, None].expand(FINE, FINE)[None, None]
    height = torch.zeros(1, 1, FINE, FINE)
    caster = (pa >= 2.0) & (pa < 2.1)
    height[caster] = 0.5
    where = torch.ones(1, 1, FINE, FINE, dtype=torch.bool) & ~caster
    hidden = hidden_cells(height, where, pa, pb, torch.zeros(1, 1), cell, torch.tensor([[2.0]]))
    row = FINE // 2
    at = lambda a: bool(hidden[0, 0, row, int((a - 2.6) / 0.02 + FINE / 2)])  # noqa: E731
    assert at(2.15) and at(2.4) and at(2.6)
    assert not at(1.9) and not at(3.1)
