"""Rumpled covers: a stiff cover bridges gaps a membrane falls into, gathered waves only
raise the cloth, and the shares and ranges are those documented."""

import math

import torch

from disrt_core.sim.drape import drape
from disrt_core.sim.rumple import (
    CLOSING_CELLS,
    TAUT,
    WAVES,
    Rumples,
    close,
    sag_factor,
    sample_rumples,
    wave_relief,
)
from disrt_core.sim.scene import GRID
from test.core.sim.test_drape import NEG, blanket


def legs_scene(gap_cells: int):
    """Two 12 cm 'legs' along the bed with a gap of ``gap_cells`` 1 cm cells between them,
    on a flat mattress: (support, body_top, mattress mask, column of the gap's middle)."""
    rows, cols = GRID.shape
    support = torch.zeros(1, rows, cols)
    top = torch.full((1, rows, cols), NEG)
    left = 50
    top[0, 60:180, left:left + 14] = 0.12
    top[0, 60:180, left + 14 + gap_cells:left + 28 + gap_cells] = 0.12
    mattress = torch.ones(1, rows, cols, dtype=torch.bool)
    return support, top, mattress, left + 14 + gap_cells // 2


def one(on=True, closing=3, taut=1.0, amplitude=0.0):
    waves = torch.tensor([[[amplitude, 0.3, 0.0, 0.0], [0.0, 0.2, 0.0, 0.0]]])
    return Rumples(on=torch.tensor([on]), closing=torch.tensor([closing]),
                   taut=torch.tensor([taut]), waves=waves)


def test_closing_fills_narrow_valleys_only():
    h = torch.zeros(1, 40, 60)
    h[0, :, 10:20] = 0.2
    h[0, :, 25:35] = 0.2  # a 5-cell valley between two ridges
    h[0, :, 45:60] = 0.1  # an 10-cell valley to a lower ridge
    closed = close(h, 7)
    assert torch.allclose(closed[0, 20, 20:25], torch.tensor(0.2))  # bridged at the ridges
    assert torch.allclose(closed[0, 20, 37:43], torch.tensor(0.0))  # too wide: unchanged
    assert (closed >= h).all()  # a closing never lowers anything
    assert torch.equal(close(torch.zeros(1, 30, 30), 9), torch.zeros(1, 30, 30))
    # Off the body (−inf) stays −inf away from it; a gap between two finite parts closes.
    body = torch.full((1, 30, 30), NEG)
    body[0, 5:25, 5:10], body[0, 5:25, 13:18] = 0.1, 0.1
    closed = close(body, 5)
    assert torch.allclose(closed[0, 15, 10:13], torch.tensor(0.1))
    assert torch.isinf(closed[0, 15, 25:]).all()


def test_a_stiff_cover_bridges_the_gap_between_the_legs_a_membrane_falls_into():
    support, top, mattress, mid = legs_scene(gap_cells=10)
    cloth = blanket(cover=1, thickness=0.002, sag=8.0)
    plain = drape(support, top, cloth, mattress)
    stiff = drape(support, top, cloth, mattress, rumples=one(closing=CLOSING_CELLS.index(13)))
    row = 120
    # The sheet (c = 8/m) sags about c·L²/8 ≈ 1 cm into the 10 cm gap (L = 0.10-0.11 m: the
    # body top is dilated by a cell); closed over 13 cm it spans it at the legs' height plus
    # its thickness.
    assert 0.122 - 0.015 < plain[0, row, mid] < 0.122 - 0.007
    assert abs(float(stiff[0, row, mid]) - 0.122) < 0.001
    # A closing narrower than the gap does not bridge it.
    narrow = drape(support, top, cloth, mattress, rumples=one(closing=CLOSING_CELLS.index(5)))
    assert abs(float(narrow[0, row, mid] - plain[0, row, mid])) < 0.002
    # Not rumpled: exactly the plain drape.
    off = drape(support, top, cloth, mattress, rumples=one(on=False))
    assert torch.equal(off, plain)
    # Never below the body plus the cloth's thickness.
    body = torch.isfinite(top)
    assert (stiff[body] >= top[body] + 0.002 - 1e-5).all()


def test_taut_cover_sags_less_and_waves_only_raise_it():
    support, top, mattress, mid = legs_scene(gap_cells=30)
    cloth = blanket(cover=1, thickness=0.002, sag=8.0)
    plain = drape(support, top, cloth, mattress)
    taut = drape(support, top, cloth, mattress, rumples=one(closing=0, taut=0.2))
    assert taut[0, 120, mid] > plain[0, 120, mid] + 0.02
    wavy = drape(support, top, cloth, mattress, rumples=one(closing=0, taut=1.0, amplitude=0.02))
    plain_rumpled = drape(support, top, cloth, mattress, rumples=one(closing=0, taut=1.0))
    rise = (wavy - plain_rumpled)[0, 120]
    assert (rise >= -1e-6).all() and float(rise.max()) > 0.019  # A(1 + sin)/2 reaches A
    # Waves along x (direction 0) with λ = 0.3 m: the rise repeats every 30 cells.
    assert torch.allclose(rise[20:50], rise[50:80], atol=1e-4)


def test_sampled_rumples_share_and_ranges():
    n = 2000
    r = sample_rumples(n, torch.Generator().manual_seed(0), "cpu", prob=0.4)
    assert 0.36 < float(r.on.float().mean()) < 0.44
    assert set(r.closing.tolist()) == set(range(len(CLOSING_CELLS)))
    assert (r.taut >= TAUT[0]).all() and (r.taut <= TAUT[1]).all()
    for k, ((a_lo, a_hi), (l_lo, l_hi)) in enumerate(WAVES):
        a, lam = r.waves[:, k, 0], r.waves[:, k, 1]
        assert (a >= a_lo).all() and (a <= a_hi).all()
        assert (lam >= l_lo).all() and (lam <= l_hi).all()
    assert torch.equal(sag_factor(r)[~r.on], torch.ones(int((~r.on).sum())))
    relief = wave_relief(Rumples(r.on[:8], r.closing[:8], r.taut[:8], r.waves[:8]))
    assert (relief[~r.on[:8]] == 0).all()
    top = sum(WAVES[k][0][1] for k in range(2))
    assert float(relief.min()) >= 0 and float(relief.max()) <= top + 1e-6
    assert not math.isnan(float(relief.sum()))


def test_generator_rumples_the_covers_not_the_bodies(anny_body):
    """Rumples are drawn after the bodies: the same seed gives the same bodies, and the
    covered scenes differ."""
    from disrt_core.sim import SceneGenerator, SimConfig

    body = anny_body
    a = SceneGenerator(SimConfig(sensor="kinect2", covers=(1,), rumple_prob=0.0), body, "cpu")
    b = SceneGenerator(SimConfig(sensor="kinect2", covers=(1,), rumple_prob=1.0), body, "cpu")
    x, y = a.sample(4, seed=11), b.sample(4, seed=11)
    assert torch.equal(x["joints"], y["joints"])
    assert not torch.equal(x["depth"], y["depth"])
