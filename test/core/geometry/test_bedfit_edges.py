"""The mattress's edges on the raw pixels (``bedfit_edges``) and the weak flag of a fit whose
edges the camera cannot all see: a bed against a same-height bench, against a wall."""

from __future__ import annotations

import math

import pytest
import torch

from disrt_core.geometry import bedfit_boards, bedfit_checks, bedfit_edges, bedfit_rect
from disrt_core.geometry.bedfit import fit_bed, weak_because
from disrt_core.geometry.bedfit_batch import fit_beds
from disrt_core.geometry.bedfit_result import WEAK_CAUSES, WEAK_NOISE
from disrt_core.geometry.camera import median_depth
from test.core.geometry.bedscenes import CX, CY, bedroom, fit_error, view

TOL_M = 0.05
STEP = 0.005


def _line(pattern: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """inside, out [1,M] and offsets s [M] (5 mm apart, 0 at the 21st point) of a line
    written as I (mattress), o (free space), A (above) and . (no reading)."""
    inside = torch.tensor([c == "I" for c in pattern])[None]
    out = torch.tensor([c == "o" for c in pattern])[None]
    s = (torch.arange(len(pattern), dtype=torch.float32) - 20) * STEP
    return inside, out, s


def test_a_step_is_the_mattress_edge_not_what_lies_beyond():
    # A clean edge: between the 20th and 21st point.
    pos, clear = bedfit_edges.steps(*_line("I" * 20 + "o" * 20))
    assert bool(clear[0]) and float(pos[0]) == pytest.approx(-0.0025, abs=1e-6)
    # A wall a few cm beyond: mattress, the gap, then the wall's foot at the mattress's
    # height; the step is the mattress's edge.
    pos, clear = bedfit_edges.steps(*_line("I" * 20 + "o" * 8 + "I" * 12 + "A" * 10))
    assert bool(clear[0]) and float(pos[0]) == pytest.approx(-0.0025, abs=1e-6)
    # A board hides the end: a few in-band readings at its far side, then the floor, are no
    # step (the end is left to the rest of the fit).
    _, clear = bedfit_edges.steps(*_line("I" * 20 + "A" * 16 + "..." + "III" + "." + "o" * 12))
    assert not bool(clear[0])


def test_median_of_nine_matches_torch():
    gen = torch.Generator().manual_seed(0)
    x = (torch.round(torch.rand(5000, 9, generator=gen) * 8) + 1) / 8  # ties
    x[torch.rand(5000, 9, generator=gen) < 0.3] = float("nan")
    x[:50] = float("nan")  # nothing read
    expected = x.nanmedian(-1).values
    got = bedfit_edges._nanmedian9(x.T.nan_to_num(0.0))
    torch.testing.assert_close(got, expected, equal_nan=True, rtol=0, atol=0)


VIEWS = (((0.1, 0.1), 0.3), ((-0.1, 0.0), 1.4))  # (offset, yaw) of a camera 3.2 m up


def _fits(room, sensor):
    for seed, (offset, yaw) in enumerate(VIEWS):
        frame = view(room, sensor, 3.2, offset=offset, tilt=(0.05, -0.04), yaw=yaw, seed=seed)
        yield fit_beds(frame.depth_raw, frame.K.float()), frame


@pytest.mark.parametrize("sensor", ["tof_320x240", "d455_640x360"])
def test_a_clearly_seen_bed_is_not_weak(sensor):
    room = bedroom(0.9, 2.0, headboard=None, furniture=False)
    for fits, frame in _fits(room, sensor):
        assert bool(fits.ok[0]) and not bool(fits.weak[0])
        assert fit_error(fits, frame) < TOL_M
        assert float(fits.edge_support[0].min()) >= 0.1 and float(fits.seam[0]) < 0.3


@pytest.mark.parametrize("sensor", ["tof_320x240", "d455_640x360"])
def test_bed_against_a_bench_of_its_height_is_never_a_silent_wrong_fit(sensor):
    """A bench as high as the mattress, 3 cm beyond its frame along a long side: together
    they look like one 1.8 m mattress. The fit is the bed, or it is flagged weak (the gap
    between them runs along the rectangle it found)."""
    room = bedroom(0.9, 2.0, furniture=False)
    x1, y0, y1 = CX + 0.45, CY - 1.0, CY + 1.0
    room.box(x1 + 0.06, x1 + 0.96, y0 - 0.03, y1 + 0.03, -room.floor, 0.0)
    flagged = 0
    for fits, frame in _fits(room, sensor):
        assert bool(fits.ok[0])
        if fit_error(fits, frame) >= TOL_M:
            assert bool(fits.weak[0]) and float(fits.seam[0]) >= 0.3
            flagged += 1
    assert flagged >= 1  # the merged rectangle was found and flagged, not missed


def test_bed_against_a_wall_is_right_or_weak():
    """A blanket over someone, the bed 2 cm from a wall along its left side: the edge at the
    wall is measured between the mattress and the wall's foot, or the fit is weak."""
    room = bedroom(0.9, 2.0, blanket=True, furniture=False)
    x0 = CX - 0.45
    room.box(x0 - 0.15, x0 - 0.05, CY - 3, CY + 3, -room.floor, 1.5)
    right = 0
    for fits, frame in _fits(room, "tof_320x240"):
        assert bool(fits.ok[0])
        assert fit_error(fits, frame) < TOL_M or bool(fits.weak[0])
        right += fit_error(fits, frame) < TOL_M
    assert right >= 1


def test_a_fit_in_large_depth_noise_is_weak():
    """The low-resolution D435 mode 3.2 m away: depth noise of several cm at the mattress,
    so its corners cannot be trusted to 5 cm; the same bed seen by the D455 is not weak."""
    room = bedroom(0.9, 2.0, headboard=None, furniture=False)
    for fits, _ in _fits(room, "d435_424x240"):
        assert bool(fits.ok[0]) and float(fits.noise[0]) >= WEAK_NOISE and bool(fits.weak[0])
    for fits, _ in _fits(room, "d455_640x360"):
        assert float(fits.noise[0]) < WEAK_NOISE and not bool(fits.weak[0])


def test_the_median_of_frames_of_a_noisy_camera_is_still_weak():
    """The node fits the per-pixel median of 5 frames: it lowers the D435 424x240's noise
    at 3.2 m from 3.5-7 cm to about 2.6 cm, still too much to trust the corners to 5 cm (the
    benchmark's unflagged wrong fits were such frames), so the fit stays weak; the D455's
    median (σ a few mm) is not weak."""
    room = bedroom(0.9, 2.0, headboard=None, furniture=False)
    for sensor, weak in (("d435_424x240", True), ("d455_640x360", False)):
        for offset, yaw in VIEWS:
            frames = [view(room, sensor, 3.2, offset=offset, tilt=(0.05, -0.04), yaw=yaw,
                           seed=seed) for seed in range(5)]
            depth = median_depth([f.depth_raw[0].numpy() for f in frames])
            fits = fit_beds(torch.from_numpy(depth)[None], frames[0].K.float())
            assert bool(fits.ok[0]) and bool(fits.weak[0]) == weak
            assert bool(fits.weak_causes[0, WEAK_CAUSES.index("noise")]) == weak


def test_a_weak_fit_says_why():
    """The user-facing reasons follow the flags that made the fit weak: the noisy
    low-resolution D435 names the noise (and its σ), not an unseen edge; a clearly seen bed
    has no reasons and no text."""
    room = bedroom(0.9, 2.0, headboard=None, furniture=False)
    frame = view(room, "d435_424x240", 3.2, offset=VIEWS[0][0], tilt=(0.05, -0.04),
                 yaw=VIEWS[0][1], seed=0)
    fit = fit_bed(frame.depth_raw[0].numpy(), frame.K[0].numpy())
    assert fit.weak and len(fit.weak_because) == 1 and "noisy" in fit.weak_because[0]
    assert f"σ {100 * fit.noise_m:.1f} cm" in fit.weak_text()
    frame = view(room, "d455_640x360", 3.2, offset=VIEWS[0][0], tilt=(0.05, -0.04),
                 yaw=VIEWS[0][1], seed=0)
    fit = fit_bed(frame.depth_raw[0].numpy(), frame.K[0].numpy())
    assert not fit.weak and fit.weak_because == () and fit.weak_text() == ""


@pytest.mark.parametrize("yaw", [math.pi / 2, -math.pi / 2])
def test_end_hidden_by_a_tall_headboard_reaches_the_board(yaw):
    """A camera beyond the head end: the 0.6 m headboard hides a strip of the mattress in
    front of it. The head end is put at the board (its strip has no readings), within 5 cm,
    and the fit is weak (that end is not measured)."""
    room = bedroom(0.9, 2.0, headboard=0.6, pillow=False, person=False, furniture=False)
    for seed, (offset, height) in enumerate((((0.0, 1.3), 2.8), ((0.0, 1.45), 3.1))):
        frame = view(room, "d455_640x360", height, offset=offset, yaw=yaw, seed=seed)
        fits = fit_beds(frame.depth_raw, frame.K.float())
        assert bool(fits.ok[0]) and bool(fits.weak[0])
        assert fit_error(fits, frame) < TOL_M
        because = weak_because(fits, 0)
        assert because and all("noisy" not in b and "gap" not in b for b in because)


def _truth_rectangle(frame, head_short: float = 0.0):
    """The true mattress of a frame as ``bounded`` takes it (centre, eu across, ev toward
    the head, half sizes, plane n·p + offset = 0 with n toward the camera), its head end
    moved ``head_short`` m toward the foot."""
    c = frame.mattress_corners[0].to(torch.float32)  # head-left, head-right, foot-right, ...
    eu, ev = c[1] - c[0], c[0] - c[3]
    half = torch.stack([eu.norm(), ev.norm()]) / 2
    eu, ev = eu / eu.norm(), ev / ev.norm()
    n = torch.linalg.cross(eu, ev)
    centre = c.mean(0)
    n = -n if float(n @ centre) > 0 else n
    centre = centre - ev * head_short / 2
    half = half - torch.tensor([0.0, head_short / 2])
    return (n[None], -(n @ centre)[None], torch.tensor([0.003]), centre[None], eu[None],
            ev[None], half[None])


def test_an_end_against_a_board_is_bounded_one_at_a_pillow_is_not():
    """The issue's D455 bedroom: the mattress's head end lies against a 0.4 m headboard
    (the ray test finds no step down there, the board hides the gap behind it). The board
    rising right at the true head edge bounds that edge; an edge 30 cm short of it, at the
    pillow and the sleeper's head, is not bounded; nor is the head end without a board."""
    def head_share(room, short=0.0):
        frame = view(room, "d455_640x360", 2.4, tilt=(0.12, -0.05), yaw=-math.pi / 2,
                     seed=1)
        depth = frame.depth_raw.to(torch.float32) / 1000
        n, offset, sigma, centre, eu, ev, half = _truth_rectangle(frame, short)
        share = bedfit_boards.bounded(depth, frame.K.float(), n, offset, sigma, centre, eu,
                                     ev, half)
        return share[0]  # +u, -u, +v (head), -v (foot)

    boarded = head_share(bedroom(floor=0.3))
    assert float(boarded[2]) >= 0.1
    assert float(boarded[3]) == 0.0  # the foot end: no board, a clear drop to the floor
    assert float(head_share(bedroom(floor=0.3), short=0.3)[2]) == 0.0
    assert float(head_share(bedroom(floor=0.3, headboard=None))[2]) == 0.0


def test_the_issue_bedroom_is_not_weak():
    """The same bedroom fitted automatically: right, and not weak (every edge is seen,
    the head end by the board it lies against), from either side of the bed."""
    for yaw, seed in ((-math.pi / 2, 1), (-math.pi / 2, 3), (math.pi / 2, 2)):
        frame = view(bedroom(floor=0.3), "d455_640x360", 2.4, tilt=(0.12, -0.05), yaw=yaw,
                     seed=seed)
        fits = fit_beds(frame.depth_raw, frame.K.float())
        assert bool(fits.ok[0]) and fit_error(fits, frame) < TOL_M
        assert not bool(fits.weak[0]), fits.edge_support[0]


def test_an_end_left_short_in_front_of_a_headboard_moves_out_to_it():
    """The head end fitted 25 cm short, at the front of the pillow (the sleeper's head and
    the pillow hide the mattress's end): ``board_ends`` moves it out to the headboard (the
    board stands 3 cm beyond the mattress here; the end stops 2 cm before the board), and
    does not move it without a board, nor move the foot end (a clear drop to the floor)."""
    def moves(room):
        frame = view(room, "d455_640x360", 2.4, tilt=(0.12, -0.05), yaw=-math.pi / 2,
                     seed=1)
        depth = frame.depth_raw.to(torch.float32) / 1000
        n, offset, sigma, centre, eu, ev, half = _truth_rectangle(frame, 0.25)
        return bedfit_boards.board_ends(depth, frame.K.float(), n, offset, sigma, centre,
                                        eu, ev, half)[0]  # +u, -u, +v (head), -v (foot)

    boarded = moves(bedroom(floor=0.3))
    assert float(boarded[2]) == pytest.approx(0.25 + 0.03 - bedfit_rect.GAP_TO_BOARD, abs=0.03)
    assert float(boarded[3]) == 0.0
    assert float(moves(bedroom(floor=0.3, headboard=None))[2]) == 0.0


def _with_footboard(height: float, gap: float = 0.03, floor: float = 0.3):
    """The issue's bedroom with a footboard ``height`` m above the mattress, 4 cm thick,
    standing ``gap`` m beyond the mattress's foot end (3 cm: as its headboard)."""
    room = bedroom(floor=floor)
    x0, x1, y0 = CX - room.width / 2, CX + room.width / 2, CY - room.length / 2
    room.box(x0 - 0.03, x1 + 0.03, y0 - gap - 0.04, y0 - gap, -floor, height)
    return room


def test_an_end_that_took_in_a_low_footboard_moves_in_to_it():
    """A footboard 8 cm above the mattress: a noisy camera reads part of its top as mattress,
    and the ray test's step lies at its outer face. ``board_inside`` moves such a foot end,
    given 7 cm out (at the board's outer face), in to 2 cm before the board's inner face
    (``GAP_TO_BOARD``), 1 cm from the true end here; it moves neither the head end (pillow,
    sleeper, headboard) nor a foot end as far out over a plain drop to the floor."""
    def moves(room):
        frame = view(room, "d435_640x480", 2.6, tilt=(0.15, -0.05), yaw=-math.pi / 2,
                     seed=4)
        depth = frame.depth_raw.to(torch.float32) / 1000
        n, offset, sigma, centre, eu, ev, half = _truth_rectangle(frame)
        centre = centre - ev * 0.07 / 2  # the foot end 7 cm out
        half = half + torch.tensor([0.0, 0.07 / 2])
        return bedfit_boards.board_inside(depth, frame.K.float(), n, offset, sigma, centre,
                                          eu, ev, half)[0]  # +u, -u, +v (head), -v (foot)

    boarded = moves(_with_footboard(0.08))
    assert float(boarded[3]) == pytest.approx(0.07 - 0.03 + bedfit_rect.GAP_TO_BOARD,
                                              abs=0.02)
    assert float(boarded[2]) == 0.0 and float(boarded[0]) == 0.0 and float(boarded[1]) == 0.0
    assert float(moves(bedroom(floor=0.3))[3]) == 0.0


def test_a_covered_foot_end_that_took_in_a_footboard_moves_in_to_it():
    """A duvet folded 6 cm thick over the foot half of the mattress, up to its end, and an
    18 cm footboard 4 cm thick standing 4 cm beyond it (the generator's rooms: the board on
    the frame's rim). In front of the board lies the duvet, not bare mattress, so the face
    is found where the board rises above whatever lies before it; the foot end, given 8 cm
    out (at the board's outer face, where the ray test's step lies), moves in to within
    3 cm of the mattress's end. A duvet ending at the foot without a
    board, the duvet folded back 6 cm from the end, and a bolster 12 cm high lying across the
    mattress 6-16 cm from the end (a step up inside the end, but bare mattress beyond it: no
    board) move nothing."""
    def moves(room, out=0.08):
        frame = view(room, "d435_640x480", 2.6, tilt=(0.15, -0.05), yaw=-math.pi / 2,
                     seed=4)
        depth = frame.depth_raw.to(torch.float32) / 1000
        n, offset, sigma, centre, eu, ev, half = _truth_rectangle(frame)
        centre = centre - ev * out / 2
        half = half + torch.tensor([0.0, out / 2])
        return bedfit_boards.board_inside(depth, frame.K.float(), n, offset, sigma, centre,
                                          eu, ev, half)[0]  # +u, -u, +v (head), -v (foot)

    def covered(board: bool, fold: float = 0.0):
        room = bedroom(floor=0.4, person=False, pillow=False, headboard=None,
                       furniture=False)
        x0, x1, y0 = CX - room.width / 2, CX + room.width / 2, CY - room.length / 2
        room.box(x0 + 0.01, x1 - 0.01, y0 + fold, CY, 0.0, 0.06)
        if board:
            room.box(x0 - 0.03, x1 + 0.03, y0 - 0.08, y0 - 0.04, -0.4, 0.18)
        return room

    moved = moves(covered(True))
    # In by 6 cm would put it GAP_TO_BOARD before the face; the stereo camera smooths the
    # board's edge into the duvet, which puts the face a little nearer: within 3 cm.
    assert float(moved[3]) == pytest.approx(0.08, abs=0.03)
    assert float(moved[2]) == 0.0 and float(moved[0]) == 0.0 and float(moved[1]) == 0.0
    assert float(moves(covered(False), out=0.0)[3]) == 0.0
    assert float(moves(covered(False, fold=0.06), out=0.0)[3]) == 0.0
    bolster = covered(False, fold=0.16)  # a bolster across the duvet's end, 6 cm inside
    x0, y0 = CX - bolster.width / 2, CY - bolster.length / 2
    bolster.box(x0 + 0.02, x0 + bolster.width - 0.02, y0 + 0.06, y0 + 0.16, 0.0, 0.12)
    assert float(moves(bolster, out=0.0)[3]) == 0.0


@pytest.mark.parametrize("sensor", ["d435_640x480", "kinect2"])
def test_an_end_that_ran_over_a_flush_footboard_into_its_shadow_moves_in_to_it(sensor):
    """A footboard 14 cm above the mattress, flush with it (no gap to stop the fit at the
    mattress's end): the foot end given 17 cm out (over the board's top, in the shadow
    behind it, where its lines see no step) moves in to ``GAP_TO_BOARD`` before the board's
    face, which lies 17 cm inside: looked for up to ``UNSEEN_DEPTH`` inside such an end,
    and only ``LOW_DEPTH`` (12 cm) inside an end seen to step down."""
    frame = view(_with_footboard(0.14, gap=0.0), sensor, 2.6, tilt=(0.15, -0.05),
                 yaw=-math.pi / 2, seed=4)
    depth = frame.depth_raw.to(torch.float32) / 1000
    n, offset, sigma, centre, eu, ev, half = _truth_rectangle(frame)
    centre, half = centre - ev * 0.17 / 2, half + torch.tensor([0.0, 0.17 / 2])

    def moves(deep: float) -> torch.Tensor:  # +u, -u, +v (head), -v (foot)
        return bedfit_boards.board_inside(depth, frame.K.float(), n, offset, sigma, centre,
                                          eu, ev, half, deep=deep)[0]

    unseen = moves(bedfit_boards.UNSEEN_DEPTH)
    assert float(unseen[3]) == pytest.approx(0.17 + bedfit_rect.GAP_TO_BOARD, abs=0.015)
    assert float(unseen[:3].abs().max()) == 0.0
    assert float(moves(bedfit_boards.LOW_DEPTH).abs().max()) == 0.0


def test_a_5cm_footboard_behind_bare_mattress_below_a_duvet_is_found():
    """The SLP-like bed scenes' foot ends 4.7-5.3 cm out: a footboard only 5 cm above the
    mattress, 2 cm beyond it, a duvet 6 cm thick over the bed up to 10 cm from the foot, seen
    by a Kinect v2 from 2.2 m. Seen at a slant, the board's first 4 cm read 4 cm high on
    the mean (``LOW_FACE`` was 4 cm): the foot end given 5 cm out (the board's outer face)
    moves in by those 5 cm; with no board it moves nothing."""
    def moves(board: bool) -> float:
        room = bedroom(floor=0.4, person=False, pillow=False, furniture=False)
        x0, x1, y0 = CX - room.width / 2, CX + room.width / 2, CY - room.length / 2
        room.box(x0 + 0.01, x1 - 0.01, y0 + 0.1, CY + 0.3, 0.0, 0.06)  # the duvet
        if board:
            room.box(x0 - 0.03, x1 + 0.03, y0 - 0.05, y0 - 0.02, -0.4, 0.05)
        frame = view(room, "kinect2", 2.2, seed=1)
        depth = frame.depth_raw.to(torch.float32) / 1000
        n, offset, sigma, centre, eu, ev, half = _truth_rectangle(frame)
        centre, half = centre - ev * 0.05 / 2, half + torch.tensor([0.0, 0.05 / 2])
        return float(bedfit_boards.board_inside(depth, frame.K.float(), n, offset, sigma,
                                                centre, eu, ev, half)[0, 3])  # the foot

    assert moves(True) == pytest.approx(0.05, abs=0.015)
    assert moves(False) == 0.0


def test_a_bed_with_a_low_footboard_is_fitted_to_the_mattress():
    """The whole fit of that bedroom with a 6 cm footboard 1 cm beyond the mattress (below
    the 15 cm a board needs to bound an edge), seen by two stereo cameras and a
    time-of-flight one: every corner within 5 cm of the truth (the fit's foot end lay at the
    board's outer face, 5-7 cm out, before ``board_inside``). A 12 cm board stays right."""
    for height, sensor, seed in ((0.06, "d435_640x480", 4), (0.06, "d455_640x360", 2),
                                 (0.06, "azure_nfov", 5), (0.12, "d435_640x480", 4)):
        frame = view(_with_footboard(height, gap=0.01), sensor, 2.6, tilt=(0.15, -0.05),
                     yaw=-math.pi / 2, seed=seed)
        fits = fit_beds(frame.depth_raw, frame.K.float())
        assert bool(fits.ok[0]), (height, sensor, fits.reason_text(0))
        assert fit_error(fits, frame) < TOL_M, (height, sensor, fit_error(fits, frame))


def test_an_edge_seen_at_a_grazing_angle_from_beyond_it_is_pulled_in_and_weak():
    """A camera low and far out beyond a long side sees that side's face just below the
    mattress top within the mattress band, so the edge is measured several cm too far out
    (the benchmark's one unflagged wrong fit: a D435 1280x720 side 4 cm out, no other weak
    cause; here 3.9 cm). The edge is pulled in by most of the bound (``grazing``), and where
    the bound is large the fit is weak (``grazing_edge``); the same bed from above is
    neither."""
    room = bedroom(0.9, 2.0, person=False, headboard=None, furniture=False)
    graze = WEAK_CAUSES.index("grazing_edge")
    for height, offset, tilt, grazing in ((2.0, (3.0, 0.3), (0.0, -0.75), True),
                                          (2.0, (2.5, 0.3), (0.0, -0.6), False),
                                          (3.2, (0.3, 0.3), (0.05, -0.04), False)):
        frames = [view(room, "d435_1280x720", height, offset=offset, tilt=tilt, seed=seed)
                  for seed in range(5)]
        depth = median_depth([f.depth_raw[0].numpy() for f in frames])
        fits = fit_beds(torch.from_numpy(depth)[None], frames[0].K.float())
        assert bool(fits.ok[0]) and bool(fits.weak_causes[0, graze]) == grazing
        assert bool(fits.weak[0]) == grazing
        assert float(fits.size[0, 0]) == pytest.approx(0.9, abs=0.015)  # 3.9 cm unpulled
        assert fit_error(fits, frames[0]) < 0.015
        if grazing:
            assert any("grazing" in text for text in weak_because(fits, 0))


def test_grazing_is_how_far_out_the_side_face_reads_as_mattress():
    """Camera 2 m above the plane z = 2 (n toward the camera), 3 m out past the +u edge of
    a 0.9 m wide rectangle: below·d/h = 0.03·2.55/2 at +u, nothing at the others."""
    n = torch.tensor([[0.0, 0.0, -1.0]])
    centre = torch.tensor([[-3.0, 0.0, 2.0]])
    eu, ev = torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[0.0, 1.0, 0.0]])
    half = torch.tensor([[0.45, 1.0]])
    g = bedfit_checks.grazing(n, torch.tensor([2.0]), torch.tensor([0.03]), centre, eu, ev,
                              half)
    torch.testing.assert_close(g, torch.tensor([[0.03 * 2.55 / 2, 0.0, 0.0, 0.0]]))
