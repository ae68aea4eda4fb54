"""A raised head section (``bedfit_incline``): measured, reported as a weak cause with its
angle, and taken as the head end unless the classifier confidently says otherwise."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from disrt_core.geometry import bedfit_headnet, bedfit_incline
from disrt_core.geometry.bedfit_batch import fit_beds
from disrt_core.geometry.bedfit_incline import raised_section
from disrt_core.geometry.bedfit_rect import FINE
from disrt_core.geometry.bedfit_result import WEAK_CAUSES
from disrt_core.geometry.bedfit_words import weak_because
from test.core.geometry.bedscenes import CX, CY, bedroom, view

CELL = 0.02
RECT = torch.tensor([[-1.0, 1.0, -0.45, 0.45]])  # 2.0 × 0.9 m, long along u (columns)
RAISED = WEAK_CAUSES.index("raised_section")


def _grid(profile) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fine grid (2 cm cells, rows v, columns u, all read) whose height is
    ``profile(u)`` (m) across the whole width."""
    c = (torch.arange(FINE) + 0.5 - FINE / 2) * CELL
    height = profile(c)[None, :].expand(FINE, FINE).clone()
    return height[None], torch.ones(1, FINE, FINE), torch.tensor([CELL])


@pytest.mark.parametrize("degrees", [15.0, 30.0, 45.0])
def test_a_ramp_at_the_plus_end_gives_its_angle(degrees):
    # The last 0.7 m before u = +1.0 rise at tan(degrees): the line fitted 8-45 cm from the
    # end has exactly that slope (the grid's cells sample the ramp without error).
    slope = math.tan(math.radians(degrees))
    height, seen, cell = _grid(lambda u: (u - 0.3).clamp(min=0) * slope)
    angle = raised_section(height, seen, cell, RECT)[0]
    assert float(angle[0]) == 0.0
    assert float(angle[1]) == pytest.approx(degrees, abs=0.01)


@pytest.mark.parametrize("profile", [
    lambda u: torch.where(u > 0.55, 0.12, 0.0),  # a pillow's block, 12 cm
    lambda u: (u - 0.3).clamp(min=0) * 0.1,  # a 6° slope: under 10°
    lambda u: (u - 0.3).clamp(min=0) * 0.6 + 0.1,  # no level beyond the ramp
    lambda u: (u - 0.75).clamp(min=0) * 0.6,  # a ramp over 25 cm: under 10 cm high
])
def test_what_is_no_raised_section(profile):
    height, seen, cell = _grid(profile)
    assert float(raised_section(height, seen, cell, RECT).abs().max()) == 0.0


@pytest.mark.parametrize(("logit", "sign", "known"), [
    (6.0, 1.0, True),  # the classifier confidently for the raised end: kept
    (-0.5, 1.0, True),  # unsure against it: the raised end taken
    (-6.0, -1.0, False),  # confidently against it: unknown, not turned
])
def test_a_raised_section_is_the_head_end_unless_confidently_against(monkeypatch, logit,
                                                                      sign, known):
    # A 30° section at the + end; the classifier's log-odds of the + end are set.
    height, seen, cell = _grid(lambda u: (u - 0.3).clamp(min=0) * 0.58)
    maps = torch.zeros(1, 11, FINE, FINE)
    monkeypatch.setattr(bedfit_headnet, "head_logit",
                        lambda features, cues: torch.tensor([logit]))
    s, conf, k, _, raised = bedfit_headnet.head_end(
        height, maps, seen, cell, RECT, torch.tensor([0.005]), True, 0.85)
    assert float(s[0]) == sign and bool(k[0]) == known
    assert float(conf[0]) >= (0.85 if known else 0.99)
    assert float(raised[0]) == pytest.approx(30.1, abs=0.1)


def test_the_words_give_the_angle():
    causes = torch.zeros(1, len(WEAK_CAUSES), dtype=torch.bool)
    causes[0, RAISED] = True
    fits = SimpleNamespace(weak_causes=causes, raised_deg=torch.tensor([31.6]))
    (text,) = weak_because(fits, 0)
    assert "about 32°" in text and "head section" in text


def _raised_room(degrees: float, blanket: bool):
    """The test bedroom (headboard, pillow, someone on the back) with its head section, the
    last 0.75 m, raised by ``degrees`` as a wedge of 15 steps over the mattress."""
    room = bedroom(0.9, 2.0, headboard=0.4, furniture=False, blanket=blanket)
    x0, x1, y1 = CX - 0.45, CX + 0.45, CY + 1.0
    length, steps, a = 0.75, 15, math.radians(degrees)
    for k in range(1, steps + 1):
        r = k * length / steps
        y = y1 - length + r * math.cos(a)
        room.box(x0, x1, y - length / steps, y, -0.02, r * math.sin(a))
    return room


@pytest.mark.parametrize(("sensor", "degrees", "blanket"), [
    ("kinect2", 30.0, False), ("d455_640x360", 30.0, True), ("d435_640x480", 15.0, False),
    ("kinect2", 45.0, True)])
def test_a_raised_head_section_is_reported(sensor, degrees, blanket):
    """Seen from 2.4 m, the fit is right (corners within 5 cm, the head end known, at the
    raised section) and weak for the raised section with its angle within 5°; the flat bed
    has none. Before, its weak causes read "an edge hardly seen, an end placed at a board"
    (and, until bedfit_incline.explained, still did beside the raised section), and the head
    end was unknown on some of these."""
    frame = view(_raised_room(degrees, blanket), sensor, 2.4, seed=1)
    fits = fit_beds(frame.depth_raw, frame.K.float())
    assert bool(fits.ok[0]), fits.reason_text(0)
    error = (fits.corners[0].double() - frame.mattress_corners[0].double()).norm(dim=-1)
    assert float(error.amax()) < 0.05 and bool(fits.head_known[0])
    assert bool(fits.weak[0]) and bool(fits.weak_causes[0, RAISED])
    # and only for it: the ramp's own misreadings at the ends are left out of the words
    assert [WEAK_CAUSES[i] for i in fits.weak_causes[0].nonzero()[:, 0]] == ["raised_section"]
    assert float(fits.raised_deg[0]) == pytest.approx(degrees, abs=5.0)
    flat = view(bedroom(0.9, 2.0, headboard=0.4, furniture=False, blanket=blanket), sensor,
                2.4, seed=1)
    fits = fit_beds(flat.depth_raw, flat.K.float())
    assert float(fits.raised_deg[0]) == 0.0 and not bool(fits.weak_causes[0, RAISED])


def test_a_raised_section_explains_the_ends_causes_not_a_side_unseen():
    names = ("unseen_edge", "inferred_end", "past_board", "low_board", "seam")
    causes = torch.zeros(3, len(WEAK_CAUSES), dtype=torch.bool)
    for name in names:
        causes[:, WEAK_CAUSES.index(name)] = True
    half = torch.tensor([[1.0, 0.45], [1.0, 0.45], [0.45, 1.0]])  # long along u, u, v
    support = torch.tensor([[0.0, 1.0, 1.0, 1.0],  # only an end unseen
                            [1.0, 1.0, 0.0, 1.0],  # a long side unseen
                            [1.0, 1.0, 0.0, 1.0]])  # an end unseen (long along v)
    left = bedfit_incline.explained(causes, support, half, torch.tensor([30.0, 30.0, 30.0]))
    kept = [[WEAK_CAUSES[i] for i in row.nonzero()[:, 0]] for row in left]
    assert kept == [["seam"], ["unseen_edge", "seam"], ["seam"]]
    none = bedfit_incline.explained(causes, support, half, torch.zeros(3))
    assert torch.equal(none, causes)
