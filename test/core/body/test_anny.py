"""Anny backend, exercised for real (built once per session by the ``anny_body`` fixture)."""

import math
import warnings

import pytest
import roma
import torch

from disrt_core.body import BodyModelFallbackWarning, load_body_model
from disrt_core.body.anny import (
    PHENOTYPE_CENTRE,
    PHENOTYPES,
    phenotype_to_shape,
    shape_to_phenotype,
)


def _joint(model, name):
    return model.joint_names.index(name)


def test_interface(anny_body):
    assert anny_body.model_id == "anny-0.6"
    assert anny_body.param_dim == 6 + 78
    assert len(anny_body.joint_names) == 24
    faces = anny_body.faces
    assert faces.dtype == torch.long and faces.shape[1] == 3
    assert int(faces.max()) == anny_body.num_vertices - 1


def test_zero_vector_is_an_average_adult_in_smpl_canonical_frame(anny_body):
    vertices, joints = anny_body(anny_body.zero_params(1))
    v, j = vertices[0], joints[0]
    height = float(v[:, 1].max() - v[:, 1].min())
    assert 1.6 < height < 1.85, height
    torch.testing.assert_close(j[0], torch.zeros(3))  # pelvis at transl = 0
    assert j[_joint(anny_body, "head"), 1] > 0.5  # y up
    assert j[_joint(anny_body, "left_hip"), 0] > 0.05  # x toward the body's left
    assert j[_joint(anny_body, "right_shoulder"), 0] < -0.1
    foot, ankle = j[_joint(anny_body, "left_foot")], j[_joint(anny_body, "left_ankle")]
    assert foot[2] - ankle[2] > 0.05  # toes point forward, +z


def test_bent_knee_moves_the_ankle_about_the_knee(anny_body):
    params = anny_body.zero_params(1)
    _, rest = anny_body(params)
    pose = params[:, anny_body.param_layout.body_pose].view(1, 23, 3)
    pose[0, _joint(anny_body, "left_knee") - 1] = torch.tensor([1.2, 0.0, 0.0])
    _, bent = anny_body(params)
    knee, ankle = _joint(anny_body, "left_knee"), _joint(anny_body, "left_ankle")
    rot = roma.rotvec_to_rotmat(torch.tensor([1.2, 0.0, 0.0]))
    expected = rest[0, knee] + rot @ (rest[0, ankle] - rest[0, knee])
    torch.testing.assert_close(bent[0, ankle], expected, atol=1e-4, rtol=0)
    # Knee flexion about +x swings the shin backwards (-z) and up, as in SMPL.
    assert bent[0, ankle, 2] < rest[0, ankle, 2] - 0.2
    right = _joint(anny_body, "right_ankle")
    torch.testing.assert_close(bent[0, right], rest[0, right], atol=1e-6, rtol=0)


def test_root_orientation_lays_the_body_down(anny_body):
    params = anny_body.zero_params(1)
    layout = anny_body.param_layout
    # -90° about x turns the head (+y) to -z... take +90°: y -> z, z -> -y.
    root = torch.tensor([math.pi / 2, 0.0, 0.0])
    params[0, layout.root_cos], params[0, layout.root_sin] = torch.cos(root), torch.sin(root)
    params[0, layout.transl] = torch.tensor([0.4, 1.0, 0.15])
    _, upright = anny_body(anny_body.zero_params(1))
    _, lying = anny_body(params)
    rot = roma.rotvec_to_rotmat(root)
    expected = upright[0] @ rot.T + torch.tensor([0.4, 1.0, 0.15])
    torch.testing.assert_close(lying[0], expected, atol=1e-5, rtol=0)


def test_shape_changes_the_body(anny_body):
    layout = anny_body.param_layout
    params = anny_body.zero_params(3)
    height = PHENOTYPES.index("height")
    params[1, layout.shape.start + height] = 3.0
    params[2, layout.shape.start + height] = -3.0
    vertices, _ = anny_body(params)
    heights = vertices[..., 1].amax(1) - vertices[..., 1].amin(1)
    assert heights[1] > heights[0] + 0.2 > heights[2] + 0.4


def test_phenotype_mapping_is_centred_and_invertible():
    zero = shape_to_phenotype(torch.zeros(6))
    torch.testing.assert_close(zero, torch.tensor(PHENOTYPE_CENTRE))
    s = torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0, 0.0])
    torch.testing.assert_close(phenotype_to_shape(shape_to_phenotype(s)), s)
    assert shape_to_phenotype(torch.full((6,), 10.0)).max() == 1.0  # clipped to Anny's range


def test_batch_forward_equals_single_forwards(anny_body):
    g = torch.Generator().manual_seed(0)
    params = anny_body.zero_params(3)
    layout = anny_body.param_layout
    params[:, layout.shape] = torch.randn(3, 6, generator=g)
    params[:, layout.body_pose] = 0.3 * torch.randn(3, 69, generator=g)
    v, j = anny_body(params)
    for i in range(3):
        vi, ji = anny_body(params[i : i + 1])
        torch.testing.assert_close(v[i], vi[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(j[i], ji[0], atol=1e-5, rtol=0)


def test_gradients_reach_shape_and_pose(anny_body):
    params = anny_body.zero_params(2).requires_grad_()
    vertices, joints = anny_body(params)
    (vertices.sum() + joints.sum()).backward()
    layout = anny_body.param_layout
    assert params.grad[:, layout.shape].abs().sum() > 0
    assert params.grad[:, layout.body_pose].abs().sum() > 0


def test_auto_falls_back_to_anny_with_one_warning(monkeypatch, anny_body):
    monkeypatch.delenv("DISRT_SMPL_DIR", raising=False)
    monkeypatch.setattr("disrt_core.body.anny.AnnyBody", lambda: anny_body)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_body_model()
    fallback = [w for w in caught if issubclass(w.category, BodyModelFallbackWarning)]
    assert len(fallback) == 1 and "not comparable" in str(fallback[0].message)
    assert model is anny_body


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="kind"):
        load_body_model(kind="smplx")
    with pytest.raises(ValueError, match="gender"):
        load_body_model(kind="anny", gender="other")


def test_training_after_inference_in_one_process(anny_body):
    """roma caches a constant per device at the first ``special_procrustes``: made inside
    ``torch.inference_mode`` (an evaluation before training) it broke every later Anny
    forward with autograd. Anny's forward makes it outside inference mode first."""
    from disrt_core.body.rotations import roma_constants_outside_inference

    roma.mappings._cached_horn_map.cache_clear()
    roma_constants_outside_inference.cache_clear()
    params = anny_body.zero_params(2)
    params[:, anny_body.param_layout.shape] = 0.3  # not a rest model Anny has cached
    with torch.inference_mode():
        anny_body(params)
    params = params.clone().requires_grad_()
    vertices, joints = anny_body(params)
    (vertices.sum() + joints.sum()).backward()
    assert params.grad[:, anny_body.param_layout.shape].abs().sum() > 0
