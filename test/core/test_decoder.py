import math

import pytest
import roma
import torch

from disrt_core.body import SMPL_JOINT_NAMES, load_body_model
from disrt_core.decoder import (
    JOINT_ANGLE_BOUNDS,
    DecoderConfig,
    MeshDecoder,
    angle_bounds,
    bound_angles,
    squash_shape,
    to_vertex_frame,
)

J = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}


@pytest.fixture(scope="module")
def smpl_body(smpl_fixture_dir):
    return load_body_model("smpl", smpl_fixture_dir)


def test_bounds_are_twice_the_spec_table():
    lo, hi = angle_bounds()
    assert len(JOINT_ANGLE_BOUNDS) == 24
    torch.testing.assert_close(lo[J["left_knee"]], torch.tensor([-0.04537852222, -0.02, -0.02]))
    torch.testing.assert_close(hi[J["right_elbow"]], torch.tensor([0.02, 5.141735634, 0.02]))
    torch.testing.assert_close(hi[0], torch.tensor([1.1867730572, 4 * math.pi, 2.4315244008]))
    torch.testing.assert_close(lo[J["left_shoulder"]],
                               torch.tensor([-1.551596394, -2.455676183, -1.570795]) * 4 / 3)
    assert (lo < hi).all()


def test_squash_and_bounds_by_hand():
    torch.testing.assert_close(squash_shape(torch.tensor([0.0, 3.0, -30.0])),
                               torch.tensor([0.0, 3 * math.tanh(1.0), 3 * math.tanh(-10.0)]))
    lo, hi = torch.tensor([-1.0]), torch.tensor([3.0])  # m = 1, h = 2
    out = bound_angles(torch.tensor([1.0, 2.0, 100.0, -100.0]), lo, hi)
    torch.testing.assert_close(out, torch.tensor([1.0, 1 + 2 * math.tanh(0.5), 3.0, -1.0]))


def test_prediction_and_gt_branches(smpl_body):
    dec = MeshDecoder(smpl_body)
    assert dec.config == DecoderConfig()  # the paper's decoder
    x = smpl_body.zero_params(2)
    layout = smpl_body.param_layout
    x[:, layout.transl] = torch.tensor([[0.1, 0.2, 0.3], [0.0, -0.1, 0.05]])
    x[:, layout.shape] = 5.0
    x[0, layout.body_pose] = 0.3
    pred = dec(x.clone())
    gt = dec(x.clone(), is_gt=True)
    offset = torch.tensor([0.314, 0.914, 0.1])
    # the pelvis joint sits at the translation (+ the offset for predictions)
    torch.testing.assert_close(gt.joints[:, 0], x[:, layout.transl])
    torch.testing.assert_close(pred.joints[:, 0], x[:, layout.transl] + offset)
    torch.testing.assert_close(pred.shape, torch.full((2, 10), 3 * math.tanh(5 / 3)))
    torch.testing.assert_close(gt.shape, torch.full((2, 10), 5.0))
    torch.testing.assert_close(gt.params, x)
    lo, hi = angle_bounds()
    torch.testing.assert_close(pred.theta[0, 3:], bound_angles(torch.full((69,), 0.3),
                                                               lo[1:].flatten(), hi[1:].flatten()))
    torch.testing.assert_close(pred.root_cs, x[:, 13:19])
    # body-model input of the prediction re-packs the bounded root as cos/sin
    torch.testing.assert_close(layout.unpack(pred.params).root_orient, pred.theta[:, :3])
    torch.testing.assert_close(to_vertex_frame(gt.vertices)[..., 2], -gt.vertices[..., 2])
    torch.testing.assert_close(to_vertex_frame(gt.vertices)[..., 0], gt.vertices[..., 1])
    torch.testing.assert_close(to_vertex_frame(to_vertex_frame(gt.vertices)), gt.vertices)


def test_gt_root_comes_from_atan2(smpl_body):
    dec = MeshDecoder(smpl_body)
    x = smpl_body.zero_params(1)
    x[0, 13:19] = torch.tensor([2.0, -1.0, 0.5, 2.0, 0.0, -0.5])
    gt = dec(x, is_gt=True)
    torch.testing.assert_close(gt.theta[0, :3],
                               torch.tensor([math.pi / 4, math.pi, -math.pi / 4]))


def _arm_pose(body, name):
    """Target poses (SMPL axes, T-pose zero for both body models) of in-bed arms."""
    theta = torch.zeros(24, 3)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        s, e = J[f"{side}_shoulder"], J[f"{side}_elbow"]
        if name == "straight arms at the sides":
            theta[s] = torch.tensor([0.0, 0.0, -1.2 * sign])
        elif name == "hands on the belly":
            # lower the arm, turn it inwards about itself, swing it forward, bend the elbow:
            # the wrists meet above the navel
            lower = roma.rotvec_to_rotmat(torch.tensor([0.0, 0.0, -1.1 * sign]))
            along = lower @ torch.tensor([sign, 0.0, 0.0])
            inwards = roma.rotvec_to_rotmat(along * (math.pi / 2) * sign)
            forward = roma.rotvec_to_rotmat(torch.tensor([-0.5, 0.0, 0.0]))
            theta[s] = roma.rotmat_to_rotvec(forward @ inwards @ lower)
            theta[e] = torch.tensor([0.0, -sign * math.pi / 2, 0.0])
        elif name == "arms overhead":
            theta[s] = torch.tensor([0.0, 0.0, 1.3 * sign])
    return theta


def _invert(dec, theta):
    """Pre-squash angles whose bounded value is ``theta`` [24,3] (None if out of reach)."""
    mid, half = (dec.lo + dec.hi) / 2, (dec.hi - dec.lo) / 2
    u = (theta - mid) / half
    if u.abs().max() >= 0.999:
        return None
    return mid + half * torch.atanh(u)


@pytest.mark.parametrize("pose", ["straight arms at the sides", "hands on the belly",
                                  "arms overhead"])
def test_anny_arm_poses_are_within_reach(anny_body, pose):
    # Anny's backend takes T-pose-zero rotations, so SMPL's bounds (SPEC §1.3) apply as is.
    dec = MeshDecoder(anny_body)
    theta = _arm_pose(anny_body, pose)
    pre = _invert(dec, theta)
    assert pre is not None, f"{pose} is out of the bounds' reach"
    layout = anny_body.param_layout
    x = layout.pack(torch.zeros(1, 6), torch.zeros(1, 3), pre[None, 0], pre[None, 1:].flatten(1))
    x[:, layout.transl] -= torch.tensor(dec.config.translation_offset)
    target = layout.pack(torch.zeros(1, 6), torch.zeros(1, 3), theta[None, 0],
                         theta[None, 1:].flatten(1))
    reached = dec(x).joints
    err = (reached - dec(target, is_gt=True).joints).norm(dim=-1).max()
    assert err < 1e-3  # metres
    wrists = reached[0, [J["left_wrist"], J["right_wrist"]]]
    pelvis, head = reached[0, J["pelvis"]], reached[0, J["head"]]
    if pose == "straight arms at the sides":  # wrists beside the hips
        assert (wrists[:, 1] < pelvis[1] + 0.15).all() and (wrists[:, 0].abs() > 0.15).all()
    if pose == "hands on the belly":  # near the midline, in front of the belly
        assert wrists[:, 0].abs().max() < 0.1 and (wrists[:, 2] > 0.1).all()
    if pose == "arms overhead":
        assert (wrists[:, 1] > head[1]).all()


