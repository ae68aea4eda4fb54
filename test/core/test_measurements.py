import math

import numpy as np
import pytest
import torch

from disrt_core.body import load_body_model
from disrt_core.measurements import (
    SMPL_LANDMARKS,
    Landmarks,
    SurfacePoint,
    body_measurements,
    girth,
    landmarks_for,
    measure_mesh,
    slice_segments,
)


def cylinder(radius=0.15, n=32, levels=(0.0, 0.4, 1.0)):
    """Closed triangulated cylinder along y: rings of n vertices, fan caps at the ends."""
    ang = 2 * np.pi * np.arange(n) / n
    verts = [[radius * np.cos(a), y, radius * np.sin(a)] for y in levels for a in ang]
    faces = []
    for r in range(len(levels) - 1):
        for i in range(n):
            a, b = r * n + i, r * n + (i + 1) % n
            c, d = a + n, b + n
            faces += [[a, b, d], [a, d, c]]
    bottom, top = len(verts), len(verts) + 1
    verts += [[0.0, levels[0], 0.0], [0.0, levels[-1], 0.0]]
    last = (len(levels) - 1) * n
    for i in range(n):
        faces += [[bottom, (i + 1) % n, i], [top, last + i, last + (i + 1) % n]]
    return np.array(verts), np.array(faces)


def box(w=0.3, h=1.0, d=0.2):
    """Closed box [−w/2, w/2] × [0, h] × [−d/2, d/2] of 12 triangles."""
    v = np.array([[x, y, z] for x in (-w / 2, w / 2) for y in (0.0, h) for z in (-d / 2, d / 2)])
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = [f for a, b, c, e in quads for f in ([a, b, c], [a, c, e])]
    return v, np.array(faces)


def test_single_triangle_slice_by_hand():
    verts = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    seg = slice_segments(verts, np.array([[0, 1, 2]]), 0.5)
    assert seg.shape == (1, 2, 3)
    np.testing.assert_allclose(sorted(map(tuple, seg[0])), [(0.0, 0.5, 0.5), (0.5, 0.5, 0.0)])
    assert slice_segments(verts, np.array([[0, 1, 2]]), 2.0).shape == (0, 2, 3)


@pytest.mark.parametrize("level", [0.2, 0.4, 0.77])
def test_cylinder_girth_is_the_inscribed_polygon(level):
    r, n = 0.15, 32
    verts, faces = cylinder(r, n)
    assert girth(verts, faces, level) == pytest.approx(2 * n * r * math.sin(math.pi / n), rel=1e-9)


def test_box_girth_and_height_landmarks():
    verts, faces = box(0.3, 1.0, 0.2)
    assert girth(verts, faces, 0.5) == pytest.approx(2 * (0.3 + 0.2), rel=1e-12)
    cverts, cfaces = cylinder(0.1, 16, levels=(0.0, 0.5, 1.8))
    top_face = int(np.flatnonzero((cfaces == len(cverts) - 1).any(axis=1))[0])
    corner = int(np.flatnonzero(cfaces[top_face] == len(cverts) - 1)[0])
    bary = [0.0, 0.0, 0.0]
    bary[corner] = 1.0
    ring_face = 0  # first side face: vertices 0, 1 on the ring at y = 0, vertex 2 at y = 0.5
    landmarks = Landmarks(
        height=(SurfacePoint(top_face, tuple(bary)), SurfacePoint(ring_face, (1.0, 0.0, 0.0))),
        chest=SurfacePoint(ring_face, (0.0, 0.0, 1.0)),
        waist=SurfacePoint(ring_face, (0.5, 0.0, 0.5)),
        hips=SurfacePoint(ring_face, (0.25, 0.0, 0.75)),
    )
    out = measure_mesh(cverts, cfaces, landmarks)
    ring = 100 * 2 * 16 * 0.1 * math.sin(math.pi / 16)
    assert out["height"] == pytest.approx(180.0)
    assert out["chest"] == pytest.approx(ring) and out["waist"] == pytest.approx(ring)
    assert out["hips"] == pytest.approx(ring)
    # a plane that only touches the mesh (its lowest ring) cuts nothing
    assert girth(cverts, cfaces, 0.0) == 0.0


def test_smpl_landmarks_are_the_spec_faces(smpl_fixture_dir):
    assert [p.face for p in SMPL_LANDMARKS.height] == [435, 5975]
    assert SMPL_LANDMARKS.height[0].bary == (0.0, 1.0, 0.0)
    assert (SMPL_LANDMARKS.chest.face, SMPL_LANDMARKS.waist.face, SMPL_LANDMARKS.hips.face) == (
        11885, 6833, 1341)
    body = load_body_model("smpl", smpl_fixture_dir)
    assert landmarks_for(body) is SMPL_LANDMARKS
    out = body_measurements(body, torch.zeros(2, 10))
    assert set(out) == {"height", "chest", "waist", "hips"} and out["chest"].shape == (2,)


def test_anny_measurements_are_plausible_and_follow_the_shape(anny_body):
    shapes = torch.zeros(2, 6)
    shapes[1, 3] = 2.0  # heavier
    out = body_measurements(anny_body, shapes)
    assert 160 < out["height"][0] < 185
    for name in ("chest", "waist", "hips"):
        assert 70 < out[name][0] < 115, name
        assert out[name][1] > out[name][0] + 1.0, name
