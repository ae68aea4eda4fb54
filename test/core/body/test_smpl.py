"""SMPL backend on the fixture model written in the official pickle format."""

import math
import pickle
import shutil

import numpy as np
import pytest
import roma
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from disrt_core.body import load_body_model
from disrt_core.body.fixtures import FIXTURE_REST_JOINTS, fixture_arrays, write_fake_smpl_pickle
from disrt_core.body.smpl_files import find_smpl_file, load_smpl_arrays, read_smpl_pickle
from disrt_core.decoder import MeshDecoder


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DISRT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DISRT_SMPL_DIR", raising=False)


def test_loader_reads_chumpy_and_sparse_without_chumpy(smpl_fixture_dir):
    arrays = read_smpl_pickle(smpl_fixture_dir / "SMPL_NEUTRAL.pkl")
    ref = fixture_arrays(seed=0)
    np.testing.assert_allclose(arrays["shapedirs"], ref["shapedirs"][:, :, :10], atol=1e-7)
    np.testing.assert_allclose(arrays["J_regressor"], ref["J_regressor"], atol=1e-7)
    np.testing.assert_allclose(arrays["v_template"], ref["v_template"], atol=1e-6)
    assert arrays["f"].dtype == np.int64 and arrays["v_template"].dtype == np.float32
    assert arrays["kintree_table"][0, 0] == -1


def test_cache_is_written_once_and_used(smpl_fixture_dir, tmp_path, monkeypatch):
    path = smpl_fixture_dir / "SMPL_NEUTRAL.pkl"
    first = load_smpl_arrays(path)
    cached = list((tmp_path / "cache" / "smpl").glob("SMPL_NEUTRAL-*.npz"))
    assert len(cached) == 1

    def _fail(_path):
        raise AssertionError("the pickle was parsed again instead of reading the cache")

    monkeypatch.setattr("disrt_core.body.smpl_files.read_smpl_pickle", _fail)
    second = load_smpl_arrays(path)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])


@pytest.mark.parametrize(
    ("gender", "name"),
    [
        ("female", "basicModel_f_lbs_10_207_0_v1.0.0.pkl"),
        ("male", "basicmodel_m_lbs_10_207_0_v1.0.0.pkl"),
        ("neutral", "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"),
        ("neutral", "SMPL_NEUTRAL.pkl"),
        ("male", "smpl_male.pkl"),
    ],
)
def test_official_file_names_are_found(tmp_path, gender, name):
    sub = tmp_path / "models" / "smpl"
    sub.mkdir(parents=True)
    (sub / name).write_bytes(b"x")
    assert find_smpl_file(tmp_path / "models", gender).name == name


def test_missing_files_say_where_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"smpl\.is\.tue\.mpg\.de.*DISRT_SMPL_DIR"):
        load_body_model(kind="smpl", model_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="DISRT_SMPL_DIR"):
        load_body_model(kind="smpl")


def test_wrong_file_names_the_problem(tmp_path):
    bad = tmp_path / "SMPL_NEUTRAL.pkl"
    bad.write_bytes(pickle.dumps({"v_template": np.zeros((10, 3))}, protocol=2))
    with pytest.raises(ValueError, match=r"keys \['shapedirs'"):
        read_smpl_pickle(bad)
    arrays = fixture_arrays()
    arrays["weights"] = arrays["weights"][:, :20]
    bad.write_bytes(pickle.dumps(arrays, protocol=2))
    expected = r"'weights' has shape \(6890, 20\), expected \(6890, 24\)"
    with pytest.raises(ValueError, match=expected):
        read_smpl_pickle(bad)
    bad.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not a readable SMPL model file"):
        read_smpl_pickle(bad)


def test_auto_prefers_smpl_when_files_exist(smpl_fixture_dir, monkeypatch):
    monkeypatch.setenv("DISRT_SMPL_DIR", str(smpl_fixture_dir))
    model = load_body_model()
    assert model.model_id == "smpl-neutral"
    assert model.param_dim == 88 and model.faces.shape == (13776, 3)
    assert model.joint_names[0] == "pelvis" and len(model.joint_names) == 24


def _smpl(smpl_fixture_dir, gender="neutral"):
    return load_body_model(kind="smpl", model_dir=smpl_fixture_dir, gender=gender)


def test_rest_pose_joints_are_the_designed_ones(smpl_fixture_dir):
    model = _smpl(smpl_fixture_dir)
    vertices, joints = model(model.zero_params(2))
    expected = torch.tensor(FIXTURE_REST_JOINTS - FIXTURE_REST_JOINTS[0], dtype=torch.float32)
    torch.testing.assert_close(joints[0], expected, atol=1e-6, rtol=0)
    template = torch.tensor(fixture_arrays()["v_template"] - FIXTURE_REST_JOINTS[0],
                            dtype=torch.float32)
    torch.testing.assert_close(vertices[1], template, atol=1e-6, rtol=0)


def test_root_rotation_and_translation_by_hand(smpl_fixture_dir):
    model = _smpl(smpl_fixture_dir)
    layout = model.param_layout
    params = model.zero_params(1)
    transl = torch.tensor([0.3, -1.2, 0.25])
    params[0, layout.transl] = transl
    # 90° about z: (x, y, z) -> (-y, x, z).
    params[0, layout.root_cos] = torch.cos(torch.tensor([0.0, 0.0, math.pi / 2]))
    params[0, layout.root_sin] = torch.sin(torch.tensor([0.0, 0.0, math.pi / 2]))
    _, joints = model(params)
    rest = torch.tensor(FIXTURE_REST_JOINTS - FIXTURE_REST_JOINTS[0], dtype=torch.float32)
    expected = torch.stack([-rest[:, 1], rest[:, 0], rest[:, 2]], dim=1) + transl
    torch.testing.assert_close(joints[0], expected, atol=1e-5, rtol=0)


def test_bent_knee_moves_the_ankle_about_the_knee(smpl_fixture_dir):
    model = _smpl(smpl_fixture_dir)
    params = model.zero_params(1)
    pose = params[:, model.param_layout.body_pose].view(1, 23, 3)
    pose[0, 4 - 1] = torch.tensor([1.2, 0.0, 0.0])  # left knee (joint 4) about x
    _, bent = model(params)
    rest = torch.tensor(FIXTURE_REST_JOINTS - FIXTURE_REST_JOINTS[0], dtype=torch.float32)
    rot = roma.rotvec_to_rotmat(torch.tensor([1.2, 0.0, 0.0]))
    expected_ankle = rest[4] + rot @ (rest[7] - rest[4])
    torch.testing.assert_close(bent[0, 7], expected_ankle, atol=1e-5, rtol=0)
    torch.testing.assert_close(bent[0, 8], rest[8], atol=1e-6, rtol=0)  # right ankle stays


def test_gender_blend_selects_each_model(smpl_fixture_dir):
    both = _smpl(smpl_fixture_dir, "both")
    female, male = _smpl(smpl_fixture_dir, "female"), _smpl(smpl_fixture_dir, "male")
    assert both.model_id == "smpl-both" and both.takes_gender
    params = both.zero_params(2)
    params[:, :10] = torch.randn(2, 10, generator=torch.Generator().manual_seed(1))
    onehot = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    v, _ = both(params, gender=onehot)
    torch.testing.assert_close(v[0], female(params[:1])[0][0])
    torch.testing.assert_close(v[1], male(params[1:])[0][0])
    with pytest.raises(ValueError, match="one-hot"):
        both(params)


def test_second_gender_file_missing_for_both(smpl_fixture_dir, tmp_path):
    folder = tmp_path / "only_female"
    folder.mkdir()
    shutil.copy(smpl_fixture_dir / "SMPL_FEMALE.pkl", folder)
    with pytest.raises(FileNotFoundError, match="'male'"):
        _smpl(folder, "both")


def test_fixture_writer_is_deterministic(tmp_path):
    a = write_fake_smpl_pickle(tmp_path / "a.pkl", seed=3).read_bytes()
    b = write_fake_smpl_pickle(tmp_path / "b.pkl", seed=3).read_bytes()
    assert a == b


def test_rigid_transform_of_params_moves_the_body_rigidly(smpl_fixture_dir):
    from disrt_core.geometry.camera import overhead_camera_pose, transform_points

    model = _smpl(smpl_fixture_dir)
    g = torch.Generator().manual_seed(2)
    params = model.zero_params(2)
    params[:, model.param_layout.body_pose] = 0.3 * torch.randn(2, 69, generator=g)
    root = torch.tensor([[0.3, -1.0, 2.0], [2.5, 0.2, -0.4]])
    params[:, model.param_layout.root_cos] = torch.cos(root)
    params[:, model.param_layout.root_sin] = torch.sin(root)
    params[:, model.param_layout.transl] = torch.tensor([[0.3, 0.9, 0.1], [0.5, 1.1, 0.2]])
    T = overhead_camera_pose(2.2, (0.35, 0.87), tilt_rad=(0.05, -0.1), yaw_rad=0.2)
    T = T.expand(2, 4, 4)
    v_bed, j_bed = model(params)
    v_cam, j_cam = model(model.param_layout.rigid_transform(params, T))
    torch.testing.assert_close(j_cam, transform_points(T, j_bed), atol=2e-5, rtol=0)
    torch.testing.assert_close(v_cam, transform_points(T, v_bed), atol=2e-5, rtol=0)


class _DeviceAudit(TorchDispatchMode):
    """Records every op that takes a tensor off ``device`` or reads a value to the host:
    on a GPU, each would be a copy or a synchronisation that a CUDA graph cannot capture."""

    def __init__(self, device: str) -> None:
        super().__init__()
        self.device, self.offenders = torch.device(device), []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        flat = torch.utils._pytree.tree_leaves((args, kwargs or {}))
        if func is torch.ops.aten._local_scalar_dense.default or any(
                isinstance(a, torch.Tensor) and a.device != self.device and a.dim() > 0
                for a in flat):
            self.offenders.append(str(func))
        return func(*args, **(kwargs or {}))


def test_decoding_stays_on_the_device(smpl_fixture_dir):
    """On the meta device (a stand-in for the GPU): the Estimator's decoding (the decoder
    and SMPL, kinematic tree included) touches no CPU tensor and reads nothing back, so it
    can be captured in a CUDA graph."""
    body = load_body_model("smpl", smpl_fixture_dir)
    decoder = MeshDecoder(body).to("meta")
    x0 = torch.zeros(2, body.param_dim, device="meta")
    with _DeviceAudit("meta") as audit:
        out = decoder(x0, None, is_gt=False)
    assert out.joints.shape == (2, 24, 3) and out.vertices.device.type == "meta"
    assert audit.offenders == []
    # The tree still walks SMPL's parents (a plain int per joint) after the move.
    tree = body.models["neutral"].parents
    assert tree[4] == 1 and tree[1:].device.type == "meta"


def test_kinematic_tree_follows_the_body_model(smpl_fixture_dir):
    body = load_body_model("smpl", smpl_fixture_dir).double()
    tree = body.models["neutral"].parents
    assert tree.tensor.dtype == torch.long  # .double() leaves indices alone
    assert tree.ints[:5] == [-1, 0, 0, 0, 1]
    out = body(torch.zeros(1, body.param_dim, dtype=torch.float64))
    assert out.joints.dtype == torch.float64
