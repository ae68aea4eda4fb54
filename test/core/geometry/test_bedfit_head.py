"""The bed finder's head end (``bedfit_headnet``): the features' layout, the classifier's
symmetry, its shipped weights, and rooms where the hand-set cues mislead."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from disrt_core.geometry import bedfit_head
from disrt_core.geometry import bedfit_headnet as net
from disrt_core.geometry.bedfit import fit_bed
from disrt_core.geometry.bedfit_rect import CH_HIGH, CH_LOW, CHANNELS, FINE
from test.core.geometry.bedscenes import CX, CY, bedroom, corner_errors, view

CELL = 0.02


def _grid(bumps=()):
    """A flat, fully seen fine grid around a 0.9 x 2.0 m rectangle (long axis along u),
    with boxes (s0, s1, t0, t1, height) in metres from its centre added on top."""
    j = (torch.arange(FINE, dtype=torch.float64) + 0.5 - FINE / 2) * CELL
    s, t = j[None, :].expand(FINE, -1), j[:, None].expand(-1, FINE)
    height = torch.zeros(FINE, FINE, dtype=torch.float64)
    for s0, s1, t0, t1, h in bumps:
        height = torch.where((s >= s0) & (s < s1) & (t >= t0) & (t < t1), h, height)
    maps = torch.zeros(1, CHANNELS, FINE, FINE, dtype=torch.float64)
    rect = torch.tensor([[-1.0, 1.0, -0.45, 0.45]], dtype=torch.float64)
    return (height[None], maps, torch.ones(1, FINE, FINE, dtype=torch.float64),
            torch.tensor([CELL], dtype=torch.float64), rect,
            torch.tensor([0.005], dtype=torch.float64))


def test_every_pool_gets_cells_and_positions_run_from_the_minus_end():
    feats = net.head_features(*_grid([(0.7, 1.0, -0.3, 0.3, 0.2)]))
    assert feats.shape == (1, net.S_BINS, net.T_BANDS, net.CHANNELS)
    assert (feats[0, :, :, 3] > 0.99).all()  # every pool has seen cells
    mean = feats[0, :, 0, 0]  # the central band's mean height along the bed
    inner_last = net.S_BEYOND + net.S_INSIDE - 1
    assert mean[inner_last] > 0.1 and mean[:inner_last - 1].max() < 1e-9
    # a tall thing beyond the +end shows in the last positions only
    height, maps, *rest = _grid()
    maps[0, CH_HIGH, :, FINE - 10:] = 1.0
    maps[0, CH_LOW, :, :10] = 1.0
    feats = net.head_features(height, maps, *rest)
    assert feats[0, -1, 0, 6] > 0.5 and feats[0, 0, 0, 6] == 0
    assert feats[0, 0, 0, 5] > 0.5 and feats[0, -1, 0, 5] == 0


def test_the_score_changes_sign_with_the_end_and_reads_a_pillow_and_head():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(5, net.S_BINS, net.T_BANDS, net.CHANNELS, generator=gen,
                   dtype=torch.float64)
    cues = torch.rand(5, 3, generator=gen, dtype=torch.float64) * 2 - 1
    np.testing.assert_allclose(net.head_logit(net.flip(x), -cues), -net.head_logit(x, cues),
                               atol=1e-9)
    # the same bed seen from both ends alike: no head end
    sym = (x + net.flip(x)) / 2
    np.testing.assert_allclose(net.head_logit(sym, torch.zeros_like(cues)), 0.0, atol=1e-9)
    # a pillow over the width and a head and shoulders on it at the +end
    feats = net.head_features(*_grid([(0.55, 0.96, -0.3, 0.3, 0.12),
                                      (0.6, 0.85, -0.1, 0.1, 0.22),
                                      (-0.1, 0.6, -0.22, 0.22, 0.18),
                                      (-0.9, -0.1, -0.2, 0.2, 0.12)]))
    cues = torch.zeros(1, 3, dtype=torch.float64)
    assert net.head_logit(feats, cues)[0] > 0
    assert net.head_logit(net.flip(feats), cues)[0] < 0


def test_shipped_weights_are_small_with_a_threshold():
    assert net.WEIGHTS_PATH.stat().st_size <= 100_000
    assert 0.5 < net.min_confidence() < 1.0


def _footboard_and_pile(seed: int, headboard: float | None = 0.4, wall: bool = False):
    """Someone on the back, a pillow, a headboard ``headboard`` m up (None: none) or a wall
    5 cm behind the head end; at the foot a footboard 30 cm up and a heap of bedding (a
    folded duvet and cushions, 10-25 cm high)."""
    rng = np.random.default_rng(seed)
    room = bedroom(headboard=headboard, furniture=False)
    x0, x1 = CX - 0.45, CX + 0.45
    y0 = CY - 1.0
    if wall:
        room.box(CX - 3, CX + 3, CY + 1.05, CY + 1.15, -0.5, 1.2)
    room.box(x0 - 0.03, x1 + 0.03, y0 - 0.07, y0 - 0.03, -0.5, 0.3)  # footboard
    for _ in range(4):  # the heap: boxes of uneven height over the last 45 cm
        w, ln = rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.35)
        cx = rng.uniform(x0 + w / 2, x1 - w / 2)
        cy = rng.uniform(y0 + ln / 2 + 0.02, y0 + 0.45 - ln / 2)
        room.box(cx - w / 2, cx + w / 2, cy - ln / 2, cy + ln / 2, 0.0,
                 rng.uniform(0.1, 0.25), rng.uniform(-0.3, 0.3))
    return room


@pytest.mark.parametrize("seed,sensor,yaw,headboard,wall", [
    (1, "tof_320x240", -1.4, 0.4, False), (2, "d455_640x360", 2.0, 0.4, False),
    (4, "tof_320x240", -2.5, None, True), (3, "d455_640x360", 3.0, None, True)])
def test_footboard_and_pile_at_the_foot_never_give_a_confident_wrong_head(
        seed, sensor, yaw, headboard, wall):
    frame = view(_footboard_and_pile(seed, headboard, wall), sensor, 2.4, tilt=(0.05, -0.03),
                 yaw=yaw, seed=seed)
    fit = fit_bed(frame.depth_raw[0].numpy(), frame.K[0].numpy())
    truth = frame.mattress_corners[0].numpy()
    err = np.linalg.norm(fit.corners - truth, axis=-1).max()
    flipped = np.linalg.norm(fit.corners[[2, 3, 0, 1]] - truth, axis=-1).max()
    assert min(err, flipped) < 0.06  # the mattress itself
    assert err < flipped or not fit.head_known  # the right end, or no claim


def test_unreadable_classifier_weights_name_the_file_and_the_fix(tmp_path):
    from disrt_core.geometry.bedfit_headnet import min_confidence

    bad = tmp_path / "bedfit_head.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match=r"bedfit_head\.safetensors.*fit_head_end\.py"):
        min_confidence(bad)


def _with_disc(grid, s0: float, t0: float, radius: float, h: float):
    """The grid of :func:`_grid` with a disc (a head seen from above) at (s0, t0)."""
    height, *rest = grid
    j = (torch.arange(FINE, dtype=torch.float64) + 0.5 - FINE / 2) * CELL
    s, t = j[None, :].expand(FINE, -1), j[:, None].expand(-1, FINE)
    disc = (s - s0) ** 2 + (t - t0) ** 2 <= radius**2
    return (torch.where(disc[None], torch.full_like(height, h), height), *rest)


def test_a_head_on_the_pillow_is_a_bump_feet_and_a_blanket_are_not():
    """A round head (18 cm, 15 cm over a 10 cm pillow) at the +end is found; at the −end two
    feet 7 cm wide poking up 18 cm and a broad blanket ridge over the knees are not heads."""
    grid = _grid([(0.62, 0.95, -0.3, 0.3, 0.10),  # pillow
                  (-0.2, 0.55, -0.22, 0.22, 0.12),  # torso under the blanket
                  (-0.7, -0.3, -0.3, 0.3, 0.25),  # raised knees: a broad ridge
                  (-0.95, -0.85, 0.05, 0.12, 0.18), (-0.95, -0.85, -0.12, -0.05, 0.18)])
    height, _maps, seen, cell, rect, sigma = _with_disc(grid, 0.78, 0.0, 0.09, 0.25)
    bump = bedfit_head.head_bump(height, seen, cell, rect, sigma)
    assert float(bump[0, 1]) >= bedfit_head.HEAD_MIN_M
    assert float(bump[0, 0]) < 0.05


def test_a_head_at_the_other_end_makes_a_confident_end_unknown():
    """The classifier claims the −end confidently; a head-like bump at the +end (none at
    the −end) makes the end unknown, one at the −end or none leaves it known."""
    logit, cues, pillow = torch.tensor([-3.0]), torch.tensor([0.0]), torch.tensor([0.0])
    against = torch.tensor([[0.0, 0.15]])
    assert not bool(net.head_known(logit, cues, pillow, 0.85, against)[0])
    assert bool(net.head_known(logit, cues, pillow, 0.85, against.flip(-1))[0])
    assert bool(net.head_known(logit, cues, pillow, 0.85, torch.zeros(1, 2))[0])
    assert bool(net.head_known(logit, cues, pillow, 0.85)[0])


def test_the_cues_veto_a_confident_end_only_with_the_pillow_against_it():
    """The classifier claims the +end confidently and the hand-set cues point the other way
    (a footboard higher than what stands at the head end): with the pillow cue for the +end
    the end stays known, with it against the +end (a heap of bedding at the −end, as in
    the footboard-and-pile rooms) the end is unknown; a weak claim stays unknown."""
    logit, cue_logit = torch.tensor([3.0, 3.0, 3.0, 1.0]), torch.tensor([-1.5, -1.5, -0.5, -1.5])
    pillow = torch.tensor([0.8, -0.4, -0.4, 0.8])
    known = net.head_known(logit, cue_logit, pillow, 0.85).tolist()
    assert known == [True, False, True, False]
    # the same seen from the other end
    assert net.head_known(-logit, -cue_logit, -pillow, 0.85).tolist() == known


@pytest.mark.parametrize("sensor,seed,index", [
    ("d455_640x360", 612, 4), ("kinect2", 596, 10), ("d435_640x480", 516, 0)])
def test_a_footboard_taller_than_the_headboard_does_not_claim_the_head(
        anny_body, sensor, seed, index):
    """Generated rooms (generator 1.5, someone in bed) whose footboard stands higher than
    the headboard (0.57 m against 0.34 m, 0.58 m and none, 0.39 m against 0.19 m above the
    mattress): the classifier fitted on the footboards of generator 1.4 (up to 0.35 m) took
    the footboard's end for the head end, sure at 0.90-0.95, in all three. The mattress is
    found, and its head end is right or not claimed."""
    from disrt_core.geometry.bedfit_batch import fit_beds
    from disrt_core.sim import SceneGenerator, SimConfig

    gen = SceneGenerator(SimConfig(scene="room", sensor=sensor, occupancy=(0.8, 0.15, 0.05)),
                         anny_body, "cpu")
    with torch.no_grad():
        sample = gen.sample(16, seed, with_raw=True)
    fits = fit_beds(sample["depth_raw"][index:index + 1], sample["K"][index:index + 1])
    ordered, either = corner_errors(fits.corners[0], sample["mattress_corners"][index])
    assert bool(fits.ok[0]) and either < 0.05
    assert ordered < 0.05 or not bool(fits.head_known[0])
