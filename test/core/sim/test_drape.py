"""The blanket height field: above the body everywhere, hides what is under it, sags."""

import torch

from disrt_core.geometry.bedframe import BED_CENTRE_LABEL
from disrt_core.geometry.camera import overhead_camera_pose, transform_points
from disrt_core.sim.drape import Blankets, drape, solve_membrane
from disrt_core.sim.render import grid_faces, render_depth
from disrt_core.sim.scene import GRID, render_grid

NEG = float("-inf")


def blanket(cover=2, thickness=0.015, sag=5.0, folds=False):
    """A blanket over the whole grid (rectangle far larger than the bed)."""
    f = torch.zeros(1, 6, 6)
    if folds:
        f[0, :, 2] = torch.linspace(0, 3, 6)
        f[0, :, 0] = BED_CENTRE_LABEL[0]
        f[0, :, 1] = torch.linspace(0.3, 1.5, 6)
        f[0, :, 3], f[0, :, 4], f[0, :, 5] = 0.2, 0.02, 0.03
    return Blankets(cover=torch.tensor([cover]), centre=torch.tensor([BED_CENTRE_LABEL]),
                    angle=torch.zeros(1), x_range=torch.tensor([[-5.0, 5.0]]),
                    y_range=torch.tensor([[-5.0, 5.0]]), thickness=torch.tensor([thickness]),
                    sag=torch.tensor([sag]), turn_down=torch.zeros(1), folds=f)


def hand_scene():
    """A flat mattress with a 'hand' (palm block and four 1 cm fingers with 1 cm gaps)
    lying on it; returns (support, body_top, mattress mask, hand mask) on GRID."""
    rows, cols = GRID.shape
    support = torch.zeros(1, rows, cols)
    top = torch.full((1, rows, cols), NEG)
    r0, c0 = 100, 60
    top[0, r0:r0 + 9, c0:c0 + 8] = 0.035  # palm
    for k in range(4):  # fingers along the rows, one cell wide, one apart
        top[0, r0 + 9:r0 + 17, c0 + 2 * k] = 0.02
    mattress = torch.ones(1, rows, cols, dtype=torch.bool)
    mattress[:, :10], mattress[:, -10:], mattress[:, :, :10], mattress[:, :, -10:] = (False,) * 4
    return support, top, mattress, torch.isfinite(top)


def test_blanket_never_below_the_body_and_thicker_than_its_cloth():
    support, top, mattress, hand = hand_scene()
    for cover, thickness, sag in ((1, 0.002, 25.0), (2, 0.02, 3.0)):
        h = drape(support, top, blanket(cover, thickness, sag, folds=True), mattress)
        cloth = torch.isfinite(h)
        assert cloth.equal(mattress)
        assert (h[cloth] >= support[cloth] + thickness - 1e-6).all()
        assert (h[hand] >= top[hand] + thickness - 1e-6).all()


def test_blanket_over_generated_bodies_stays_above_them(sim_generator):
    batch = sim_generator.sample(6, 11, cover=2, with_mesh=True)
    top, cloth = batch["body_top"], batch["cloth_height"]
    covered = torch.isfinite(top) & torch.isfinite(cloth)
    assert covered.sum() > 2000
    # Blanket thickness is at least 8 mm (COVER_RANGES); the cloth clears the body by it.
    assert ((cloth - top)[covered] >= 0.008 - 1e-5).all()
    # And the body top re-rasterised from the final mesh agrees with what was draped on.
    top_again, _ = sim_generator.heightmaps(batch["vertices"])
    torch.testing.assert_close(top_again, top)


def test_blanket_hides_a_hand_lying_under_it():
    support, top, mattress, _hand = hand_scene()
    h = drape(support, top, blanket(2, 0.015, 5.0), mattress)
    T = overhead_camera_pose(2.2, BED_CENTRE_LABEL)[None]
    K = torch.tensor([[[367.8, 0.0, 208.1], [0.0, 367.8, 259.7], [0.0, 0.0, 1.0]]])
    rows, cols = GRID.shape
    faces = grid_faces((rows + 1) // 2, (cols + 1) // 2)

    def render(height):
        mesh = render_grid(height, torch.tensor([-0.6]), block=2).reshape(1, -1, 3)
        return render_depth(transform_points(T, mesh), faces, K, (512, 424))[0]

    hand_only = render(torch.maximum(support, top))
    covered = render(torch.where(torch.isfinite(h), h, support))
    flat = render(support)
    sees_hand = hand_only < flat - 0.01  # pixels where the bare hand is seen
    assert sees_hand.sum() > 30
    # Under the blanket those pixels see cloth above the hand (at least its thickness).
    assert (covered[sees_hand] < hand_only[sees_hand] - 0.013).all()
    # And the fingers are gone: across the finger row the cloth varies smoothly, the bare
    # hand jumps by 2 cm between a finger and a gap.
    r = 100 + 13
    bare = torch.maximum(support, top)[0, r, 60:68]
    cloth = h[0, r, 60:68]
    assert (bare.diff().abs().max() > 0.019) and (cloth.diff().abs().max() < 0.005)


def test_membrane_sags_by_c_l2_over_8_between_two_ridges():
    # Two 30 cm ridges, cloth over both: between them the cloth is the discrete parabola
    # pinned on the ridges' inner cells (columns 39 and 80), sag c·L²/8 mid-way, L = 0.41 m.
    rows, cols = 400, 120  # long, so the pinned ends (rows 0 and 399) do not reach row 200
    support = torch.zeros(1, rows, cols)
    support[0, :, 30:40] = 0.3
    support[0, :, 80:90] = 0.3
    mask = torch.zeros(1, rows, cols, dtype=torch.bool)
    mask[0, :, 30:90] = True
    c = 2.0
    expected = 0.3 - c * 0.41**2 / 8
    converged = solve_membrane(support, mask, torch.tensor([c]), 0.01,
                               iterations=(300, 200, 100, 100, 60))
    assert abs(float(converged[0, 200, 59:61].mean()) - expected) < 1e-3
    # The generator's default (few sweeps per level) is within 5 mm of it.
    fast = solve_membrane(support, mask, torch.tensor([c]), 0.01)
    assert abs(float(fast[0, 200, 59:61].mean()) - expected) < 5e-3
    # A heavier cloth (larger c) sags more.
    heavy = solve_membrane(support, mask, torch.tensor([4 * c]), 0.01)
    assert heavy[0, 200, 60] < fast[0, 200, 60] - 0.05


def test_throws_lie_on_the_lower_bed_folded_double_and_over_what_is_there():
    from disrt_core.sim.drape import COVER_RANGES, blanket_mask, sample_throws

    n = 400
    width, length = torch.full((n,), 0.95), torch.full((n,), 2.0)
    throws = sample_throws(width, length, BED_CENTRE_LABEL, torch.Generator().manual_seed(0),
                           prob=0.3)
    present = throws.cover == 2
    assert set(throws.cover.tolist()) <= {0, 2}
    assert 0.22 < float(present.float().mean()) < 0.38
    # Over the lower three quarters of the mattress (y grows toward the head end).
    foot = BED_CENTRE_LABEL[1] - 1.0
    assert (throws.centre[:, 1] >= foot - 1e-6).all()
    assert (throws.centre[:, 1] <= foot + 1.5 + 1e-6).all()
    lo, hi = COVER_RANGES[2]["thickness"]
    assert (throws.thickness >= 2 * lo - 1e-9).all() and (throws.thickness <= 2 * hi + 1e-9).all()
    # Draped over a scene with a (first) cover on it, a throw lies on top of that cover.
    rows, cols = GRID.shape
    k = int(present.nonzero()[0])
    one = Blankets(**{f: getattr(throws, f)[k:k + 1] for f in Blankets.__dataclass_fields__})
    base = torch.full((1, rows, cols), 0.05)  # a cover 5 cm up everywhere
    mattress = torch.ones(1, rows, cols, dtype=torch.bool)
    h = drape(base, torch.full_like(base, NEG), one, mattress)
    inside = blanket_mask(one)[0]
    assert inside.sum() > 0.3 * 0.25 * 4 / GRID.pitch**2  # at least the smallest throw's area
    assert (h[0][inside] >= 0.05 + float(one.thickness) - 1e-4).all()
    assert torch.isinf(h[0][~inside]).all()
    # None where it is absent, whatever its rectangle.
    m = int((~present).nonzero()[0])
    off = Blankets(**{f: getattr(throws, f)[m:m + 1] for f in Blankets.__dataclass_fields__})
    assert torch.isinf(drape(base, torch.full_like(base, NEG), off, mattress)).all()
