"""The batched pipeline end to end: labels consistent with each other and with the image."""

import warnings

import pytest
import roma
import torch

from disrt_core.data.shards import validate
from disrt_core.geometry.bedframe import label_to_net
from disrt_core.geometry.camera import transform_points
from disrt_core.posture import posture_from_axis_angle
from disrt_core.sim import SceneGenerator, SimConfig, to_shard_arrays
from disrt_core.sim.poses import ARM_CLASSES, JOINT_LIMITS


def test_batch_keys_shapes_and_schema(sim_batch, sim_generator):
    b = sim_batch
    n, p = 12, sim_generator.layout.param_dim
    assert b["depth"].shape == (n, 128, 54) and b["depth_raw"].shape == (n, 512, 424)
    assert b["params"].shape == (n, p) and b["joints"].shape == (n, 24, 3)
    assert b["pressure"].shape == (n, 192, 84)
    arrays = to_shard_arrays(b)
    assert validate(arrays, p) == n
    # Stored integers are exact: depth values are whole millimetres.
    assert torch.equal(b["depth"], b["depth"].round())


def test_labels_recompute_from_the_parameters(sim_batch, sim_generator):
    body = sim_generator.body
    vertices, joints = body(sim_batch["params"])
    torch.testing.assert_close(joints, sim_batch["joints"], atol=1e-4, rtol=0)
    torch.testing.assert_close(vertices, sim_batch["vertices"], atol=1e-4, rtol=0)
    # params_cam is the same body in the camera frame.
    _, joints_cam = body(sim_batch["params_cam"])
    expected = transform_points(sim_batch["T_cam_bed"], sim_batch["joints"])
    torch.testing.assert_close(joints_cam, expected, atol=1e-4, rtol=0)
    # Posture label = the root orientation's class = the prior's class.
    root = sim_generator.layout.unpack(sim_batch["params"]).root_orient
    assert torch.equal(sim_batch["posture"], posture_from_axis_angle(root))
    assert torch.equal(sim_batch["posture"], sim_batch["prior_posture"])


def test_body_rests_in_the_mattress_and_within_limits(sim_batch, sim_generator):
    v = sim_batch["vertices"]
    lowest = v[..., 2].amin(1)
    # Sunk below the mattress top by the springs' depth (the lowest vertex may lie a little
    # below the 1 cm underside map the springs see), and carried: the pressure integrates to
    # the weight on the mattress (m·g; the feet of someone sitting stand on the floor).
    assert ((lowest + sim_batch["sink"]).abs() < 0.005).all()
    load = sim_batch["pressure_grid"].sum((1, 2)) * 1000 * 0.01**2
    weight = sim_batch["mass"] * 9.81 * sim_batch["mattress_load"]
    torch.testing.assert_close(load, weight, rtol=1e-3, atol=0)
    pose = sim_generator.layout.unpack(sim_batch["params"]).body_pose.reshape(-1, 23, 3)
    assert (pose >= JOINT_LIMITS[..., 0] - 1e-4).all()
    assert (pose <= JOINT_LIMITS[..., 1] + 1e-4).all()
    # On the mattress; supine pelvises in the bed's middle band, as in SLP's subjects.
    pelvis = sim_batch["joints"][:, 0]
    assert ((pelvis[:, 0] - 0.347).abs() < 0.45).all() and ((pelvis[:, 1] - 0.9).abs() < 0.5).all()
    supine = sim_batch["posture"] == 0
    assert supine.sum() >= 2
    assert ((pelvis[supine, 0] - 0.347).abs() < 0.2).all()
    # (Arms over the head reach up the bed: the footprint is centred, the pelvis lies lower.)
    overhead = (sim_batch["arm_class"] == ARM_CLASSES.index("overhead")).any(1)
    band = torch.where(overhead, 0.4, 0.2)
    assert ((pelvis[supine, 1] - 0.95).abs() < band[supine]).all()
    assert 40 < float(sim_batch["mass"].min()) and float(sim_batch["mass"].max()) < 160
    assert ((sim_batch["stature"] >= 1.5) & (sim_batch["stature"] <= 2.0)).all()


def test_skeleton_lies_on_the_body_in_the_depth_image(anny_body):
    from disrt_core.sim import SceneGenerator, SimConfig

    # No second blanket: it may lie over the foot end's corners looked at below.
    plain = SceneGenerator(SimConfig(sensor="kinect2", throw_prob=0.0), anny_body, "cpu")
    b = plain.sample(8, 21, cover=0, posture=torch.zeros(8, dtype=torch.long))
    depth = b["depth"]  # mm, bed at 2101
    rows, cols = label_to_net(b["joints"][..., 0], b["joints"][..., 1])
    r, c = rows.round().long(), cols.round().long()
    for joint in (0, 3, 6, 9):  # pelvis and spine: always under the skin's top surface
        inside = (r[:, joint] >= 0) & (r[:, joint] < 128) & (c[:, joint] >= 0) & (c[:, joint] < 54)
        d = depth[torch.arange(8)[inside], r[inside, joint], c[inside, joint]]
        height = (2101 - d) / 1000
        assert (height > 0.08).all(), (joint, height)
    # Far from the body (the foot end's corners: the head pillow lies at the other end) the
    # image shows the mattress at the bed distance.
    bed = torch.cat([depth[:, -10:-2, 2:6], depth[:, -10:-2, -6:-2]], 1)
    assert ((bed - 2101).abs() < 30).float().mean() > 0.8


def test_deterministic_per_seed_and_cover_forcing_changes_only_the_cover(sim_generator):
    a = sim_generator.sample(4, 5)
    b = sim_generator.sample(4, 5)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    c = sim_generator.sample(4, 6)
    assert not torch.equal(a["params"], c["params"])
    bare = sim_generator.sample(4, 5, cover=0)
    torch.testing.assert_close(bare["params"], a["params"])
    assert (bare["cover"] == 0).all()
    covered = sim_generator.sample(4, 5, cover=2)
    # The blanket raises the image where it lies over the body, never lowers it much.
    diff = (bare["depth"] - covered["depth"])[(bare["depth"] > 0) & (covered["depth"] > 0)]
    assert (diff > 5).float().mean() > 0.2


def test_d435_sensor_batch(anny_body):
    gen = SceneGenerator(SimConfig(sensor="d435", covers=(1,)), anny_body, "cpu")
    b = gen.sample(3, 0, with_raw=True)
    assert b["depth_raw"].shape == (3, 480, 848)
    assert (b["cover"] == 1).all()
    assert (b["depth"] > 0).float().mean() > 0.9  # the bed region is seen
    torch.testing.assert_close(b["K"][0, 0, 0], torch.tensor(426.0))


def test_smpl_bodies_use_the_semantic_pose_as_parameters(smpl_fixture_dir):
    # The fixture SMPL's random faces make rendering it meaningless (and slow); its
    # parameter path is what differs from Anny: 88 values.
    from disrt_core.body import load_body_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        smpl = load_body_model("smpl", smpl_fixture_dir)
    gen = SceneGenerator(SimConfig(), smpl, "cpu")
    gen_rng = torch.Generator().manual_seed(0)
    bodies = gen.sample_bodies(16, gen_rng)
    params = bodies["params"]
    assert params.shape == (16, 88)
    vertices, joints = smpl(params)
    settled = gen.settle(params, vertices, joints)
    pose = gen.layout.unpack(settled).body_pose.reshape(-1, 23, 3)
    assert (pose >= JOINT_LIMITS[..., 0] - 1e-5).all()
    assert (pose <= JOINT_LIMITS[..., 1] + 1e-5).all()
    root = gen.layout.unpack(settled).root_orient
    assert torch.equal(posture_from_axis_angle(root), bodies["posture"])


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="covers"):
        SimConfig(covers=(3,))
    with pytest.raises(ValueError, match="unknown sensor"):
        SimConfig(sensor="kinect1")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_batch_matches_cpu_statistics(anny_body):
    gen = SceneGenerator(SimConfig(), anny_body, "cuda")
    b = gen.sample(64, 0)
    assert b["depth"].is_cuda and b["depth"].shape == (64, 128, 54)
    assert posture_from_axis_angle(gen.layout.unpack(b["params"]).root_orient).equal(b["posture"])
    assert roma.is_rotation_matrix(b["T_cam_bed"][:, :3, :3], epsilon=1e-4)


def test_noise_seed_gives_another_frame_of_the_same_scenes(sim_generator):
    """``noise_seed``: the same bodies, bed and camera, new sensor noise; the clean surfaces
    agree (the median of the differences is a few mm), the readings do not everywhere."""
    base = sim_generator.sample(2, 4, with_raw=True)
    one = sim_generator.sample(2, 4, with_raw=True, noise_seed=11)
    two = sim_generator.sample(2, 4, with_raw=True, noise_seed=12)
    again = sim_generator.sample(2, 4, with_raw=True, noise_seed=11)
    for other in (one, two):
        torch.testing.assert_close(other["params"], base["params"])
        torch.testing.assert_close(other["T_cam_bed"], base["T_cam_bed"])
    torch.testing.assert_close(again["depth_raw"], one["depth_raw"])  # a seed is a frame
    a, b = one["depth_raw"].float(), two["depth_raw"].float()
    both = (a > 0) & (b > 0)
    assert not torch.equal(a, b)
    assert float((a - b)[both].abs().median()) < 10.0  # mm: the same surfaces


def test_given_bodies_make_a_sequence_of_one_scene(sim_generator):
    first = sim_generator.sample(2, 9)
    params = first["params"].clone()
    moved = params.clone()
    moved[:, sim_generator.layout.transl.start] += 0.03  # the person shifts 3 cm
    again = sim_generator.sample(2, 9, params=params)
    later = sim_generator.sample(2, 9, params=moved)
    # Same scene (bed, camera, blanket draws), same body where it was given; only the
    # height comes from contact again (the mattress of this stream may differ from `first`).
    torch.testing.assert_close(again["T_cam_bed"], later["T_cam_bed"])
    z = sim_generator.layout.transl.start + 2
    keep = torch.ones(params.shape[1], dtype=torch.bool)
    keep[z] = False
    torch.testing.assert_close(again["params"][:, keep], params[:, keep], atol=1e-4, rtol=0)
    torch.testing.assert_close(again["params"][:, z], later["params"][:, z], atol=2e-3, rtol=0)
    torch.testing.assert_close(later["joints"][..., 0] - again["joints"][..., 0],
                               torch.full((2, 24), 0.03), atol=1e-4, rtol=0)
