"""Thin lines without readings across the mattress (``bedfit_gaps``): the strips between
them are not deleted by the fine grid's opening on the second pass over refused frames."""

from __future__ import annotations

import torch

from disrt_core.geometry import bedfit_gaps, bedfit_rect
from disrt_core.geometry.bedfit_batch import fit_beds
from test.core.geometry.bedscenes import CX, CY, bedroom, fit_error, view


def _striped(width: float = 0.03, step: float = 0.09):
    """A D435 frame of the fixed bedroom (someone lying on the mattress) with lines of no
    reading ``width`` m wide every ``step`` m along the bed's length, over the mattress and
    the body (as a stereo camera leaves along outlines and on plain bedding): the bed
    between them comes in strips of 6 cm, thinner than the fine grid's opening (10 cm)."""
    frame = view(bedroom(furniture=False), "d435_640x480", 1.8, seed=1)
    T, K = frame.T_cam_bed[0].double(), frame.K[0].double()
    depth = frame.depth_raw.clone()
    rows, cols = depth.shape[-2:]
    y = torch.linspace(CY - 1.05, CY + 1.05, 800, dtype=torch.float64)
    for k in range(10):
        for dx in torch.linspace(-width / 2, width / 2, 5, dtype=torch.float64):
            x = CX + 0.45 - 0.05 - step * k + float(dx)
            p = torch.stack([torch.full_like(y, x), y, torch.zeros_like(y), torch.ones_like(y)], -1)
            uvw = (T @ p.T).T[:, :3] @ K.T
            u, v = (uvw[:, :2] / uvw[:, 2:]).round().long().unbind(-1)
            for du in (-1, 0, 1):
                depth[0, v.clamp(0, rows - 1), (u + du).clamp(0, cols - 1)] = 0
    return frame, depth


def test_a_mattress_cut_into_strips_by_unread_lines_is_found(monkeypatch):
    frame, depth = _striped()
    assert bool(frame.present[0])
    fits = fit_beds(depth, frame.K.float())
    assert bool(fits.ok[0]), fits.reason_text(0)
    assert fit_error(fits, frame) < 0.05
    # without the bridging the opening deletes the strips and the frame is refused
    monkeypatch.setattr(bedfit_rect.gaps_mod, "kept", lambda hard, opened, *args: opened)
    assert not bool(fit_beds(depth, frame.K.float()).ok[0])


def test_kept_bridges_unknown_lines_only():
    """Strips 3 cells wide (thinner than a 5-cell opening) between 1-cell lines: kept where
    the lines read nothing, deleted where they read something (the floor of a gap)."""
    hard = torch.zeros(1, 1, 40, 40)
    for r0 in range(4, 36, 4):
        hard[..., r0:r0 + 3, 5:35] = 1
    cell = torch.full((1, 1), 0.02)
    opened = bedfit_rect.dilate(bedfit_rect.erode(hard, 5), 5)
    assert float(opened.sum()) == 0
    unread = bedfit_gaps.kept(hard, opened, hard > 0, cell, 5)
    seen = bedfit_gaps.kept(hard, opened, torch.ones_like(hard, dtype=torch.bool), cell, 5)
    assert float(seen.sum()) == 0
    assert bool((unread[..., 8:30, 10:30] == hard[..., 8:30, 10:30]).all())
    assert float(unread.sum()) > 0.8 * float(hard.sum())
