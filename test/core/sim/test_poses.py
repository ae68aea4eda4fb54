"""The in-bed pose prior: limits, posture classes, limb semantics, retargeting, capsules."""

import math

import roma
import torch

from disrt_core.body.fixtures import FIXTURE_REST_JOINTS
from disrt_core.posture import LEFT, PRONE, RIGHT, SUPINE, posture_from_axis_angle
from disrt_core.sim.poses import (
    ARM_CLASSES,
    JOINT_LIMITS,
    LEG_CLASSES,
    PosePrior,
    forward_joints,
    segment_distance,
    self_intersecting,
)

REST = torch.tensor(FIXTURE_REST_JOINTS, dtype=torch.float32)  # a T-pose skeleton


def sample(n=4000, seed=0, posture=None):
    return PosePrior().sample(n, torch.Generator().manual_seed(seed), posture=posture)


def test_joint_angles_stay_within_their_limits():
    pose = sample().body_pose.reshape(-1, 23, 3)
    assert (pose >= JOINT_LIMITS[..., 0] - 1e-6).all()
    assert (pose <= JOINT_LIMITS[..., 1] + 1e-6).all()
    # The limits are SPEC §1.3's: e.g. the left elbow flexes about −y up to 2.5709 rad.
    torch.testing.assert_close(JOINT_LIMITS[17, 1], torch.tensor([-2.5709, 0.0480]))
    torch.testing.assert_close(JOINT_LIMITS[15, 2], torch.tensor([-1.5708, 2.1886]) * 2 / 3)


def test_each_posture_class_has_its_root_orientation():
    p = sample()
    assert set(p.posture.tolist()) == {0, 1, 2, 3}
    assert torch.equal(posture_from_axis_angle(p.root_orient), p.posture)
    rot = roma.rotvec_to_rotmat(p.root_orient)
    chest = rot[..., :, 2]  # where the chest (canonical +z) points in the bed frame
    assert (chest[p.posture == SUPINE, 2] > 0.7).all()
    assert (chest[p.posture == PRONE, 2] < -0.7).all()
    # Lying on the left side: the body's left (+x) points down.
    assert (rot[p.posture == LEFT][:, 2, 0] < -0.7).all()
    assert (rot[p.posture == RIGHT][:, 2, 0] > 0.7).all()
    head = rot[..., :, 1]  # the head (canonical +y) points to the head end (+y) of the bed
    assert (head[:, 1] > math.cos(math.radians(15))).all()
    # ¾ turns: about 30 % roll 30–42° off their class's own roll, none 42–48° (the class
    # boundary is 45°), the others at most 25°.
    roll = torch.rad2deg(torch.atan2(chest[:, 0], chest[:, 2]))
    own = torch.tensor([0.0, 90.0, -90.0, 180.0])[p.posture]
    off = ((roll - own + 180) % 360 - 180).abs()
    turned = off > 28
    assert 0.26 < float(turned.float().mean()) < 0.34
    assert (off[turned] < 43.5).all() and (off[turned] > 28).all()
    assert (off[~turned] < 25.5).all()
    # Forced classes keep the random stream: the rest of the sample is unchanged.
    forced = sample(posture=torch.full((4000,), PRONE))
    assert (forced.posture == PRONE).all()
    torch.testing.assert_close(forced.body_pose[p.posture == PRONE],
                               p.body_pose[p.posture == PRONE])


def test_posture_frequencies_follow_the_weights():
    p = sample(8000)
    freq = torch.bincount(p.posture, minlength=4).float() / 8000
    # Balanced by default: 2,000 each, binomial sd 19 (0.5 %); 2 % is 4 sd.
    torch.testing.assert_close(freq, torch.full((4,), 0.25), atol=0.02, rtol=0)
    other = PosePrior((0.4, 0.25, 0.25, 0.1)).sample(8000, torch.Generator().manual_seed(1))
    freq = torch.bincount(other.posture, minlength=4).float() / 8000
    torch.testing.assert_close(freq, torch.tensor([0.4, 0.25, 0.25, 0.1]), atol=0.02, rtol=0)


def test_side_lying_without_a_pillow_lays_the_lower_arm_under_the_head():
    n = 2000
    gen = torch.Generator().manual_seed(4)
    pillow = torch.arange(n) % 2 == 0
    p = PosePrior().sample(n, gen, posture=torch.full((n,), LEFT), pillow=pillow)
    under = ARM_CLASSES.index("cradle")
    # Left lateral: the left (index 0) arm is below. Without a pillow it is always under the
    # head; with one, as the table draws it (cradle arms 25 % of the lower arms).
    assert (p.arm_class[~pillow, 0] == under).all()
    share = float((p.arm_class[pillow, 0] == under).float().mean())
    assert 0.15 < share < 0.35
    j = _posed(p)
    hand, head, shoulder = j[~pillow, 22], j[~pillow, 15], j[~pillow, 16]
    assert ((hand - head).norm(dim=-1) < 0.2).all()  # by the head
    # In the body's frame the hand lies toward its left side (down, under the cheek), the
    # elbow forward of the chest, no further out to the left than a hand's breadth.
    assert (hand[:, 0] > head[:, 0] - 0.05).all() and (hand[:, 0] - head[:, 0]).mean() > 0.05
    elbow = j[~pillow, 18]
    assert (elbow[:, 2] > 0.15).all() and (elbow[:, 0] < shoulder[:, 0] + 0.1).all()


def test_prone_heads_are_turned_to_one_side():
    p = sample(2000, posture=torch.full((2000,), PRONE))
    twist = p.body_pose.reshape(-1, 23, 3)[:, [8, 11, 14], 1]  # spine3, neck, head about y
    same_side = (torch.sign(twist) == torch.sign(twist[:, :1])).all(1)
    assert same_side.all()
    assert (twist.abs() >= math.radians(3) - 1e-6).all()
    assert 0.4 < float((twist[:, 0] > 0).float().mean()) < 0.6  # either side


def test_deterministic_per_seed():
    a, b, c = sample(500, 1), sample(500, 1), sample(500, 2)
    for name in ("posture", "root_orient", "body_pose", "arm_class", "leg_class"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.body_pose, c.body_pose)


def _posed(p):
    """Canonical joints (root not applied) of the poses on the T-pose skeleton."""
    n = p.body_pose.shape[0]
    return forward_joints(REST.expand(n, -1, -1), p.body_pose, torch.eye(3).expand(n, 3, 3),
                          torch.zeros(n, 3))


def test_limb_classes_put_hands_and_knees_where_their_names_say():
    p = sample(posture=torch.full((4000,), SUPINE))
    j = _posed(p)
    left_arm = p.arm_class[:, 0]
    hand, shoulder, pelvis = j[:, 22], j[:, 16], j[:, 0]
    head = j[:, 15]
    side = left_arm == ARM_CLASSES.index("side")
    belly = left_arm == ARM_CLASSES.index("belly")
    overhead = left_arm == ARM_CLASSES.index("overhead")
    assert side.sum() > 100 and belly.sum() > 50 and overhead.sum() > 50
    # Arms at the side: the hand below the shoulder, on its own side of the body.
    assert (hand[side, 1] < shoulder[side, 1] - 0.3).all() and (hand[side, 0] > 0).all()
    # Hand on the belly: in front of the trunk (+z), near the midline, between hips and chest.
    assert (hand[belly, 2] > 0.05).all()
    assert (hand[belly, 0].abs() < 0.25).all()
    assert (hand[belly, 1] > pelvis[belly, 1] - 0.15).all()
    # Overhead: the upper arm raised above the shoulder, the hand up by the head.
    elbow = j[:, 18]
    assert (elbow[overhead, 1] > shoulder[overhead, 1] + 0.1).all()
    assert (hand[overhead, 1] > head[overhead, 1] - 0.2).all()
    knee_up = p.leg_class[:, 0] == LEG_CLASSES.index("knee_up")
    straight = p.leg_class[:, 0] == LEG_CLASSES.index("straight")
    # Knee up: the knee rises toward the chest side (+z); straight legs stay behind it.
    assert (j[knee_up, 4, 2] > 0.15).all() and (j[straight, 4, 2] < 0.05).all()
    # Hand under the pillow: raised above the shoulder, within a hand's reach of the head.
    under = left_arm == ARM_CLASSES.index("pillow")
    assert under.sum() > 30
    assert (hand[under, 1] > shoulder[under, 1]).all()
    assert ((hand[under] - head[under]).norm(dim=-1) < 0.35).all()


def test_anny_arms_point_where_the_semantic_pose_says(anny_body):
    # The prior's T-pose-zero rotations drive Anny directly (its backend retargets its A-pose).
    p = sample(64, 3)
    params = anny_body.zero_params(64)
    params[:, anny_body.param_layout.body_pose] = p.body_pose
    _, anny = anny_body(params)
    semantic = _posed(p)
    for a, b in ((16, 18), (18, 20)):  # upper arm and forearm, left
        d_anny = anny[:, b] - anny[:, a]
        d_sem = semantic[:, b] - semantic[:, a]
        cos = torch.nn.functional.cosine_similarity(d_anny, d_sem, dim=-1)
        assert (cos > 0.995).all(), cos.min()


def test_segment_distance_against_dense_sampling():
    torch.manual_seed(0)
    p0, p1, q0, q1 = torch.randn(4, 200, 3)
    t = torch.linspace(0, 1, 201)
    a = p0[:, None] + t[None, :, None] * (p1 - p0)[:, None]
    b = q0[:, None] + t[None, :, None] * (q1 - q0)[:, None]
    brute = torch.cdist(a, b).amin((1, 2))
    d = segment_distance(p0, p1, q0, q1)
    assert (d <= brute + 1e-5).all() and ((brute - d) < 0.02).all()


def test_self_intersection_flags_crossed_forearms_only():
    j = REST.clone()[None].repeat(2, 1, 1)
    # Sample 1: both forearms crossing through the same point in front of the chest.
    j[1, 18], j[1, 20] = torch.tensor([0.2, 0.2, 0.1]), torch.tensor([-0.2, 0.3, 0.1])
    j[1, 19], j[1, 21] = torch.tensor([-0.2, 0.2, 0.1]), torch.tensor([0.2, 0.3, 0.1])
    j[1, 22], j[1, 23] = j[1, 20] + 0.05, j[1, 21] + 0.05
    assert self_intersecting(j).tolist() == [False, True]
