"""Pressure under a body mesh: the generator's own maps given back, load, regions, vertices."""

from __future__ import annotations

import pytest
import torch

from disrt_core.geometry.bedframe import label_to_pm
from disrt_core.pressure import CONTACT_KPA, REGIONS, PressureModel, region_vertices
from disrt_core.sim.mattress import GRAVITY
from disrt_core.sim.shapes import body_mass
from disrt_core.threads import cpu_threads

POSTURE = (0, 0, 1, 2, 3)  # supine, supine, left side down, right side down, prone


@pytest.fixture(scope="module")
def batch(anny_body):
    """Generated bodies at rest with their pressure maps (bed scene, Kinect v2)."""
    from disrt_core.sim import SceneGenerator, SimConfig

    with cpu_threads():
        gen = SceneGenerator(SimConfig(sensor="kinect2"), anny_body, "cpu")
        return gen.sample(len(POSTURE), 5, posture=torch.tensor(POSTURE), with_mesh=True)


@pytest.fixture(scope="module")
def model(anny_body):
    return PressureModel(anny_body)


def test_the_true_body_with_the_true_bed_gives_the_generators_map(batch, model):
    out = model(batch["vertices"], batch["joints"], stiffness=batch["stiffness"],
                pillow_boxes=batch["pillow_boxes"], pillow_squash=batch["pillow_squash"],
                mattress_size=batch["mattress_size"])
    truth = batch["pressure"]
    assert out.grid.shape == truth.shape == (len(POSTURE), 192, 84)
    # The generator decides what lies on the pillow before its last rigid shift of a few
    # mm, this model after it: a cell at that edge may differ by a fraction of a kPa.
    assert (out.grid - truth).abs().mean() < 0.005
    assert (out.grid - truth).abs().max() < 0.2
    assert truth.max() > 3.0  # a real map, not two empty ones


def test_the_mattress_carries_the_weight(batch, anny_body):
    bare = PressureModel(anny_body, pillow="never")
    out = bare(batch["vertices"], batch["joints"])
    weight = body_mass(batch["vertices"], anny_body.faces) * GRAVITY
    force = out.grid.flatten(1).sum(1) * 1e3 * 1e-4  # kPa over 1 cm cells -> N
    # A body whose underside lies over SLP's mat window has all its weight on the mat; one
    # with a hand or foot beside it (a side sleeper's arm here) a little less, never more.
    v = batch["vertices"]
    rows, cols = label_to_pm(v[..., 0], v[..., 1])
    low = v[..., 2] < v[..., 2].amin(1, keepdim=True) + 0.05
    over = ~(low & ((rows < 0) | (rows > 191) | (cols < 0) | (cols > 83))).any(1)
    assert int(over.sum()) >= 3
    torch.testing.assert_close(force[over], weight[over], rtol=0.02, atol=0.0)
    assert (force <= 1.02 * weight).all() and (force >= 0.9 * weight).all()
    stiffer = PressureModel(anny_body, pillow="never", stiffness=3 * bare.stiffness)
    peak = stiffer(batch["vertices"], batch["joints"]).grid.flatten(1).amax(1)
    assert (peak > out.grid.flatten(1).amax(1)).all()  # a stiffer mattress: higher peaks


def test_regions_follow_the_posture(batch, model):
    regions = model(batch["vertices"], batch["joints"], stiffness=batch["stiffness"],
                    pillow_boxes=batch["pillow_boxes"], pillow_squash=batch["pillow_squash"],
                    mattress_size=batch["mattress_size"]).regions
    peak = {name: regions[:, r, 0] for r, name in enumerate(REGIONS)}
    supine, left, right, prone = [0, 1], 2, 3, 4
    for name in ("occiput", "sacrum"):  # the head on its pillow: the skin pressure there
        assert (peak[name][supine] > CONTACT_KPA).all(), name
    assert (torch.maximum(peak["heel_left"], peak["heel_right"])[supine] > CONTACT_KPA).all()
    # on the left side: the left hip carries more than the right one, and the other way
    assert peak["trochanter_left"][left] > max(CONTACT_KPA, peak["trochanter_right"][left])
    assert peak["trochanter_right"][right] > max(CONTACT_KPA, peak["trochanter_left"][right])
    assert peak["sacrum"][prone] < CONTACT_KPA  # the back faces up
    mean = regions[..., 1]
    assert ((mean <= regions[..., 0] + 1e-6) & (mean >= 0)).all()
    assert ((mean > CONTACT_KPA) == (regions[..., 0] > CONTACT_KPA)).all()


def test_region_vertex_sets_lie_where_they_are_named(anny_body):
    vertices, joints = anny_body(anny_body.zero_params(1))
    sets = region_vertices(vertices[0], joints[0])
    assert set(sets) == set(REGIONS) and all(len(idx) >= 20 for idx in sets.values())
    v, j = vertices[0], joints[0]
    centre = {name: v[idx].mean(0) for name, idx in sets.items()}
    assert centre["occiput"][2] < j[15, 2] and centre["occiput"][1] > j[12, 1]  # behind, up
    assert centre["sacrum"][2] < j[0, 2] and abs(centre["sacrum"][0]) < 0.03
    assert centre["heel_left"][0] > 0 > centre["heel_right"][0]  # x: the body's left
    assert centre["heel_left"][1] < j[7, 1] and centre["heel_left"][2] < j[7, 2]
    assert centre["trochanter_left"][0] > j[1, 0] > 0
    assert (centre["elbow_left"] - j[18]).norm() < 0.06
    assert all(not set(sets["scapula_left"].tolist()) & set(sets[n].tolist())
               for n in REGIONS if n != "scapula_left")


def test_vertex_pressure_is_on_the_underside(batch, model, anny_body):
    out = model(batch["vertices"], batch["joints"])
    assert out.vertex.shape == batch["vertices"].shape[:2]
    assert ((out.vertex > CONTACT_KPA).sum(1) > 100).all()
    rest, joints = anny_body(anny_body.zero_params(1))
    rest, joints = rest[0], joints[0]
    trunk = (rest[:, 1] > joints[0, 1]) & (rest[:, 1] < joints[12, 1]) & \
        (rest[:, 0].abs() < 0.15)
    chest = trunk & (rest[:, 2] > joints[9, 2] + 0.08)  # the front of the trunk
    back = trunk & (rest[:, 2] < joints[9, 2] - 0.03)
    supine = [0, 1]
    assert (out.vertex[supine][:, chest] == 0).all()
    assert ((out.vertex[supine][:, back] > CONTACT_KPA).sum(1) > 50).all()
    # skin pressure and the mat agree away from the pillow: the highest of each within 20 %
    torch.testing.assert_close(out.vertex.amax(1), out.grid.flatten(1).amax(1), rtol=0.2,
                               atol=0.5)


def test_an_empty_bed_has_no_pressure(batch, model):
    v = batch["vertices"][:2].clone()
    v[1] = float("nan")  # the generator's empty bed
    out = model(v, batch["joints"][:2])
    assert out.grid[0].max() > 3.0
    assert out.grid[1].abs().max() == 0 and out.vertex[1].abs().max() == 0
    assert out.regions[1].abs().max() == 0


def test_settling_needs_params_and_keeps_the_load(batch, anny_body):
    settled = PressureModel(anny_body, settle=True)
    with pytest.raises(ValueError, match="params"):
        settled(batch["vertices"][:1], batch["joints"][:1])
    out = settled(batch["vertices"][:1], batch["joints"][:1], params=batch["params"][:1])
    assert out.grid.shape == (1, 192, 84) and out.grid.max() > 3.0


def test_reading_a_given_map_is_the_models_own_reading(batch, anny_body):
    """Without a pillow the mat is the skin pressure: reading the model's own map back
    gives its per-vertex and per-region pressure, where the body lies over the mat (the
    mattress is longer than SLP's mat: a head or heel may lie beyond it)."""
    bare = PressureModel(anny_body, pillow="never")
    out = bare(batch["vertices"], batch["joints"])
    vertex, regions = bare.read(batch["vertices"], out.grid)
    rows, cols = label_to_pm(batch["vertices"][..., 0], batch["vertices"][..., 1])
    on_mat = (rows.round() >= 0) & (rows.round() < 192) & (cols.round() >= 0) & \
        (cols.round() < 84)
    torch.testing.assert_close(vertex[on_mat], out.vertex[on_mat])
    assert (vertex[~on_mat] == 0).all()
    whole = ((out.vertex > 0) & ~on_mat).sum(1) == 0  # bodies pressing on the mat only
    assert whole.sum() >= 2
    torch.testing.assert_close(regions[whole], out.regions[whole])
    v = batch["vertices"][:2].clone()
    v[1] = float("nan")  # an empty bed's body: nothing read
    vertex, regions = bare.read(v, out.grid[:2])
    assert vertex[1].abs().max() == 0 and regions[1].abs().max() == 0
    assert regions[0].abs().max() > CONTACT_KPA



def test_the_capturable_underside_is_the_same_map(batch, model):
    """The fixed-box rasteriser a CUDA graph can hold gives the same underside, and the
    same reading, for generated bodies at rest in every posture (the box: a few cells)."""
    vertices = batch["vertices"]
    assert 3 <= model.box <= 12
    torch.testing.assert_close(model.underside(vertices, capturable=True),
                               model.underside(vertices))
    mat = torch.rand(len(POSTURE), 192, 84, generator=torch.Generator().manual_seed(1))
    for got, want in zip(model.read(vertices, mat, capturable=True), model.read(vertices, mat)):
        torch.testing.assert_close(got, want)

def test_the_estimator_answers_pressure_when_asked(smpl_fixture_dir):
    from disrt_core.body import load_body_model
    from disrt_core.infer import Estimator
    from disrt_core.model import Denoiser, small
    from disrt_core.model.pressure_net import load_pressure_net

    body = load_body_model("smpl", smpl_fixture_dir)
    torch.manual_seed(0)
    net = Denoiser(small().replace(dropout=0.0), body.param_dim).eval()
    est = Estimator(net, body, seed=0)
    depth = torch.rand(2, 1, 128, 54, generator=torch.Generator().manual_seed(0))
    assert est.predict(depth).pressure is None
    est.set_pressure(True, method="physical")
    pred = est.predict(depth)
    assert pred.pressure.shape == (2, 192, 84) and pred.vertex_pressure.shape == (2, 6890)
    assert pred.region_pressure.shape == (2, len(REGIONS), 2)
    expected = PressureModel(body)(pred.vertices, pred.joints)
    torch.testing.assert_close(pred.pressure, expected.grid)
    est.set_pressure(True)  # the default: the learned map, read under the predicted body
    assert est.pressure_method == "learned"
    pred = est.predict(depth)
    with torch.no_grad():
        learned = load_pressure_net()[0].pressure(depth)
    torch.testing.assert_close(pred.pressure, learned)
    vertex, regions = PressureModel(body).read(pred.vertices, learned)
    torch.testing.assert_close(pred.vertex_pressure, vertex)
    torch.testing.assert_close(pred.region_pressure, regions)
    with pytest.raises(ValueError, match="learned"):
        est.set_pressure(True, method="guess")
    est.set_pressure(False)
    assert est.predict(depth).region_pressure is None


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_learned_pressure_replays_in_the_cuda_graph(smpl_fixture_dir):
    """With CUDA graphs the learned pressure is read inside the estimator's graph (the
    capturable underside): the same answers as the estimator without graphs, for a new
    input after the capture. (The SMPL fixture with local faces: Anny's dependencies do
    not fit on the GPU machines this runs on.)"""
    import copy

    from disrt_core.body import load_body_model
    from disrt_core.body.fixtures import local_faces
    from disrt_core.infer import Estimator
    from disrt_core.model import Denoiser, small

    body = load_body_model("smpl", smpl_fixture_dir, device="cuda")
    body.faces = local_faces(body).cuda()
    torch.manual_seed(0)
    net = Denoiser(small().replace(dropout=0.0), body.param_dim).eval()
    answers = []
    for graphs in (True, False):
        est = Estimator(copy.deepcopy(net), body, device="cuda", seed=0, precision="fp32",
                        cuda_graphs=graphs)
        est.set_pressure(True)
        assert est.pressure_model.box is not None
        depth = torch.rand(2, 1, 128, 54, generator=torch.Generator().manual_seed(0))
        est.predict(depth.cuda())  # captures
        answers.append(est.predict(depth.flip(-1).cuda()))
        assert est.graph_scope == ("predict" if graphs else None)
    graphed, eager = answers
    for name in ("pressure", "vertex_pressure", "region_pressure", "present_prob"):
        torch.testing.assert_close(getattr(graphed, name), getattr(eager, name),
                                   rtol=1e-4, atol=1e-4)
