"""Finding the mattress where parts of the room read poorly (issue #19 part 2): a body or
speckled bedding across the mattress does not cut the rectangle short, and a mattress whose
floor reads nothing (dark, or beyond the range) is found but flagged weak."""

from __future__ import annotations

import pytest
import torch

from disrt_core.geometry import bedfit_boards, bedfit_rect
from disrt_core.geometry.bedfit import weak_because
from disrt_core.geometry.bedfit_batch import fit_beds
from disrt_core.geometry.bedfit_regions import bridge_dips
from disrt_core.geometry.bedfit_result import WEAK_CAUSES
from test.core.geometry.bedscenes import CX, CY, bedroom, fit_error, view

TOL_M = 0.05
VIEWS = (((0.1, 0.1), 0.3), ((-0.1, 0.0), 1.4))  # (offset, yaw) of a camera 3.2 m up


def test_a_partial_dip_is_bridged_a_gap_and_an_end_are_not():
    cell = torch.tensor([0.02])
    one = torch.ones(40)
    # 16 cm of a body's steep sides (bed share 0.35) across the mattress: bridged.
    body = torch.cat([one, torch.full((8,), 0.35), one])[None]
    assert torch.equal(bridge_dips(body, cell, 0.3, 0.3), torch.ones_like(body))
    # The floor between a bed and a table (nothing of the level there): left as it is.
    gap = torch.cat([one, torch.zeros(8), one])[None]
    assert torch.equal(bridge_dips(gap, cell, 0.3, 0.3), gap)
    # A dip wider than the reach still ends a run (its first and last cells stay low), and
    # the ramp at an end with nothing beyond is unchanged.
    wide = bridge_dips(torch.cat([one, torch.full((20,), 0.35), one])[None], cell, 0.3, 0.3)
    assert float(wide[0, 40]) == pytest.approx(0.35) and float(wide[0, 59]) == pytest.approx(0.35)
    end = torch.cat([one, torch.tensor([0.6, 0.35, 0.3]), torch.zeros(10)])[None]
    assert torch.equal(bridge_dips(end, cell, 0.3, 0.3), end)


def test_the_extent_runs_across_a_body_lying_across_the_mattress():
    """A fine grid of a 0.9 × 2.0 m mattress (2 cm cells) with a 16 cm band across it where
    the bed share is 0.4 (a body's sides, not bed; its holes counted 0.45): the extent is
    the whole mattress, not the half the search started in."""
    F = bedfit_rect.FINE
    cell = torch.tensor([[0.02]])
    centres = (torch.arange(F) + 0.5 - F / 2) * 0.02
    across = (centres.abs() <= 0.45).float()
    along = (centres.abs() <= 1.0).float()
    soft = along[:, None] * across[None, :]  # rows v: along the bed; columns u: across
    band = (centres >= 0.3) & (centres < 0.46)
    soft[band] = soft[band] * 0.4
    rect = bedfit_rect.extents(soft[None, None], cell, torch.tensor([[[0.9, 1.1]]]))[0, 0]
    u0, u1, v0, v1 = rect.tolist()
    assert u1 - u0 == pytest.approx(0.9, abs=0.04)
    assert v1 - v0 == pytest.approx(2.0, abs=0.04)


def _heights(frame) -> torch.Tensor:
    """Height (m) of every pixel's reading above the true mattress plane."""
    raw = frame.depth_raw[0].double() / 1000
    K, C = frame.K[0].double(), frame.mattress_corners[0].double()
    n = torch.linalg.cross(C[1] - C[0], C[3] - C[0])
    n = n / n.norm()
    n = -n if float(n @ C[0]) > 0 else n  # toward the camera
    H, W = raw.shape
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float64),
                          torch.arange(W, dtype=torch.float64), indexing="ij")
    pts = torch.stack([(u - K[0, 2]) / K[0, 0] * raw, (v - K[1, 2]) / K[1, 1] * raw, raw], -1)
    return pts @ n - n @ C.mean(0)


def test_a_bed_on_a_floor_that_reads_nothing_is_found_and_weak():
    """A dark floor (or one beyond the range) gives no readings round the bed, so the test
    that the surface stands above its surroundings finds nothing to stand above: the bed
    is found (it was refused as 'no mattress-sized surface raised above the floor'), and
    the fit is weak, saying why."""
    room = bedroom(0.9, 2.0, headboard=None, furniture=False)
    for seed, (offset, yaw) in enumerate(VIEWS):
        frame = view(room, "tof_320x240", 3.2, offset=offset, tilt=(0.05, -0.04), yaw=yaw,
                     seed=seed)
        depth = frame.depth_raw[0]
        dark = torch.where(_heights(frame) < -0.1, torch.zeros_like(depth), depth)
        fits = fit_beds(dark[None], frame.K.float())
        assert bool(fits.ok[0]) and fit_error(fits, frame) < TOL_M
        assert bool(fits.weak[0])
        assert bool(fits.weak_causes[0, WEAK_CAUSES.index("unread_ring")])
        assert any("floor round the bed hardly reads" in w for w in weak_because(fits, 0))
        # The same bed on a floor that reads is not weak for it.
        fits = fit_beds(depth[None], frame.K.float())
        assert bool(fits.ok[0]) and not bool(fits.weak_causes[0, WEAK_CAUSES.index(
            "unread_ring")])


@pytest.mark.parametrize("sensor", ["tof_320x240", "d455_640x360"])
def test_a_mattress_half_that_reads_as_speckle_is_found_whole(sensor):
    """Dark bedding over the foot half: a stereo camera loses most of its pixels (here 80 %
    of the mattress's, at random, in the foot half), so few blocks there had half of their
    pixels read and the fit kept the head half, about 1 m long, and refused it as too
    short. The readings that are left lie on the mattress plane: the whole mattress is
    found."""
    room = bedroom(0.9, 2.0, headboard=None, furniture=False)
    for seed, (offset, yaw) in enumerate(VIEWS):
        frame = view(room, sensor, 3.2, offset=offset, tilt=(0.05, -0.04), yaw=yaw, seed=seed)
        raw = frame.depth_raw[0]
        H, W = raw.shape
        depth_m, K, T = raw.double() / 1000, frame.K[0].double(), frame.T_cam_bed[0].double()
        v, u = torch.meshgrid(torch.arange(H, dtype=torch.float64),
                              torch.arange(W, dtype=torch.float64), indexing="ij")
        pts = torch.stack([(u - K[0, 2]) / K[0, 0] * depth_m, (v - K[1, 2]) / K[1, 1] * depth_m,
                           depth_m], -1)
        bed = (pts - T[:3, 3]) @ T[:3, :3]  # in the bed frame: y toward the head end
        foot = (bed[..., 1] < CY) & (bed[..., 0] - CX).abs().lt(0.5) & (
            _heights(frame).abs() < 0.05)
        lost = foot & (torch.rand(H, W, generator=torch.Generator().manual_seed(seed),
                                  dtype=torch.float64) < 0.8)
        fits = fit_beds(torch.where(lost, torch.zeros_like(raw), raw)[None], frame.K.float())
        assert bool(fits.ok[0]) and fit_error(fits, frame) < TOL_M
        assert float(fits.size[0, 1]) == pytest.approx(2.0, abs=0.05)


def test_an_end_past_a_headboard_is_told_from_one_before_it():
    """``board_past`` on the true rectangle of a bed with a 40 cm headboard (someone on the
    pillow) is false; on the same rectangle with its head end 12 cm further out, past the
    board (where a fit ends when the gap before the board lies in its shadow and the board's
    far face reads at the mattress's height), it is true, and such a fit is weak."""
    room = bedroom(0.9, 2.0, headboard=0.4, furniture=False)
    for seed, (offset, yaw) in enumerate(VIEWS):
        frame = view(room, "tof_320x240", 3.2, offset=offset, tilt=(0.05, -0.04), yaw=yaw,
                     seed=seed, noise=False)
        T = frame.T_cam_bed[0].float()
        n, eu, ev = T[:3, 2][None], T[:3, 0][None], T[:3, 1][None]
        centre = (T[:3, :3] @ torch.tensor([CX, CY, 0.0]) + T[:3, 3])[None]
        offset_ = -(n * centre).sum(-1)
        depth_m = frame.depth_raw.float() / 1000
        K = frame.K.float()
        half = torch.tensor([[0.45, 1.0]])
        assert not bool(bedfit_boards.board_past(depth_m, K, n, offset_, centre, eu, ev, half)[0])
        past = torch.tensor([[0.45, 1.06]])
        assert bool(bedfit_boards.board_past(depth_m, K, n, offset_, centre + 0.06 * ev, eu, ev,
                                             past)[0])
    assert "past_board" in WEAK_CAUSES


def test_the_extent_runs_across_steep_cells_that_lie_on_the_bed():
    """A 24 cm band across the mattress that is not bed at all (a body's hips: their
    heights spread, so the cells are 'vertical') stops the run, unless the points there lie
    in the band (``counts``): then it is on the bed and the run goes on; where the band's
    points are the floor's (a gap), it still stops."""
    F = bedfit_rect.FINE
    cell = torch.tensor([[0.02]])
    centres = (torch.arange(F) + 0.5 - F / 2) * 0.02
    across = (centres.abs() <= 0.45).float()
    along = (centres.abs() <= 1.0).float()
    soft = along[:, None] * across[None, :]
    band = (centres >= 0.3) & (centres < 0.54)
    soft[band] = 0.0
    everything = torch.full((F, F), 9.0)
    on_bed = (everything, everything)
    on_floor = (torch.zeros(F, F), everything)
    size = torch.tensor([[[0.9, 1.1]]])
    for counts, length in ((None, 1.3), (on_floor, 1.3), (on_bed, 2.0)):
        counts = None if counts is None else tuple(c[None, None] for c in counts)
        rect = bedfit_rect.extents(soft[None, None], cell, size, counts=counts)[0, 0]
        assert float(rect[3] - rect[2]) == pytest.approx(length, abs=0.05)
