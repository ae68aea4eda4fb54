"""Choosing among passing mattress candidates (``bedfit_checks.duplicates`` and ``stacked``):
hand-made candidates, the answers counted by hand."""

from __future__ import annotations

import torch

from disrt_core.geometry.bedfit_checks import FILL_MARGIN, STACKED, duplicates, stacked


def test_of_two_rectangles_of_one_bed_the_better_filled_is_kept():
    """Candidates 0 and 1 lie on one level 10 cm apart (one bed found twice: a rectangle
    turned with a thrown blanket, fill 0.83, and the mattress's own, 0.98); candidate 2 is
    another surface 40 cm lower; candidate 3 is the same bed again but failed a check."""
    level = torch.tensor([[2.00, 2.01, 2.40, 2.00]])
    mid = torch.tensor([[[0.0, 0.0], [0.1, 0.0], [0.0, 0.0], [0.05, 0.05]]])
    flags = torch.tensor([[0, 0, 0, 4]])
    fill = torch.tensor([[0.83, 0.98, 0.99, 0.99]])
    assert duplicates(level, mid, flags, fill).tolist() == [[True, False, False, True]]
    # The first filled better: the second goes (as before, when the first was always kept).
    fill = torch.tensor([[0.98, 0.83, 0.99, 0.5]])
    assert duplicates(level, mid, flags, fill).tolist() == [[False, True, False, True]]
    # About as well (within FILL_MARGIN) keeps the earlier; 40 cm apart they are two beds.
    fill = torch.tensor([[0.9, 0.9, 0.9, 0.9]])
    assert duplicates(level, mid, flags, fill).tolist() == [[False, True, False, True]]
    fill = torch.tensor([[0.932, 0.94 + FILL_MARGIN - 0.01, 0.9, 0.9]])
    assert duplicates(level, mid, flags, fill).tolist() == [[False, True, False, True]]
    far = torch.tensor([[[0.0, 0.0], [0.4, 0.0], [0.0, 0.0], [1.0, 1.0]]])
    assert duplicates(level, far, flags, fill).tolist() == [[False, False, False, False]]


def _rectangles(centres, halves, yaw_deg):
    yaw = torch.tensor(yaw_deg) * torch.pi / 180
    eu = torch.stack([torch.cos(yaw), torch.sin(yaw), torch.zeros_like(yaw)], -1)
    ev = torch.stack([-torch.sin(yaw), torch.cos(yaw), torch.zeros_like(yaw)], -1)
    return torch.tensor(centres)[None], eu[None], ev[None], torch.tensor(halves)[None]


def test_a_rectangle_lying_on_another_comes_after_it():
    """Candidate 0: the mattress, 0.98 × 1.95 m at 2.35 m. Candidate 1: a body under a
    blanket lying diagonally on it, 0.70 × 1.85 m, turned 17°, its centre 12 cm off the
    mattress's, 9 cm higher: it lies on the mattress. Candidate 2: a mattress 0.45 m above
    a floor (candidate 3, far larger): a bed on a floor, not stacked."""
    centre, eu, ev, half = _rectangles(
        [[0.0, 0.0, 2.35], [0.08, 0.09, 2.26], [3.0, 0.0, 2.5], [3.0, 0.5, 2.95]],
        [[0.49, 0.975], [0.35, 0.925], [0.45, 1.0], [1.5, 2.5]], [0.0, 17.0, 0.0, 0.0])
    level = torch.tensor([[2.35, 2.26, 2.5, 2.95]])
    good = torch.tensor([[True, True, True, True]])
    assert stacked(good, level, centre, eu, ev, half).tolist() == [[False, True, False, False]]
    # Only passing candidates count, on either side.
    assert stacked(torch.tensor([[False, True, True, True]]), level, centre, eu, ev,
                   half).tolist() == [[False, False, False, False]]
    # Beyond the band (a table top 30 cm over the mattress): not lying on it.
    level = torch.tensor([[2.35, 2.35 - STACKED[1] - 0.05, 2.5, 2.95]])
    assert stacked(good, level, centre, eu, ev, half).tolist() == [[False, False, False, False]]
    # Its centre outside the mattress: beside it, not on it.
    centre[0, 1, 0] = 0.6
    level = torch.tensor([[2.35, 2.26, 2.5, 2.95]])
    assert stacked(good, level, centre, eu, ev, half).tolist() == [[False, False, False, False]]
