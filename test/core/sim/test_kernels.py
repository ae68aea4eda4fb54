"""The generator's launch-saving pieces: the kinematic chain by tree level and CUDA-graph
replay (its eager path here; on CUDA against eager); the tables made once per device are in
test/core/test_constants.py."""

import math
import os

import pytest
import roma
import torch

from disrt_core.body.skeleton import SMPL_PARENTS
from disrt_core.sim import graphs
from disrt_core.sim.kinematics import LEVELS, forward_joints, global_rotations
from disrt_core.sim.poses import _axis_rot


def _chain_joint_by_joint(rest, body_pose, root, transl):
    """The textbook recursion, one joint after the other, in float64."""
    local = roma.rotvec_to_rotmat(body_pose.double().reshape(-1, 23, 3))
    glob, pos = [root.double()], [transl.double()]
    for j in range(1, 24):
        p = SMPL_PARENTS[j]
        glob.append(glob[p] @ local[:, j - 1])
        pos.append(pos[p] + (glob[p] @ (rest[:, j] - rest[:, p]).double()[..., None])[..., 0])
    return torch.stack(glob, 1), torch.stack(pos, 1)


def test_levels_cover_every_joint_once_after_its_parent():
    seen = {0}
    for level in LEVELS:
        assert all(SMPL_PARENTS[j] in seen for j in level)
        seen |= set(level)
    assert seen == set(range(24)) and sum(len(level) for level in LEVELS) == 23


def test_chain_by_level_matches_the_joint_by_joint_recursion():
    g = torch.Generator().manual_seed(0)
    rest = torch.randn(5, 24, 3, generator=g) * 0.3
    pose = torch.randn(5, 69, generator=g) * 0.6
    root = roma.rotvec_to_rotmat(torch.randn(5, 3, generator=g))
    transl = torch.randn(5, 3, generator=g)
    glob_ref, pos_ref = _chain_joint_by_joint(rest, pose, root, transl)
    assert torch.allclose(global_rotations(root, pose).double(), glob_ref, atol=1e-5)
    assert torch.allclose(forward_joints(rest, pose, root, transl).double(), pos_ref, atol=1e-5)


def test_axis_rotations_are_rodrigues_about_each_axis():
    angle = torch.tensor([[-2.0, 0.3], [1e-4, math.pi]])
    for axis in range(3):
        rotvec = torch.zeros(2, 2, 3)
        rotvec[..., axis] = angle
        assert torch.allclose(_axis_rot(axis, angle), roma.rotvec_to_rotmat(rotvec), atol=1e-6)


def test_replay_runs_eagerly_off_cuda_and_leaves_the_inputs_alone():
    x = torch.arange(4.0)

    def double_in_place(t):
        t.mul_(2)
        return [t + 1]

    out = graphs.replay("test-cpu", double_in_place, [x.clone()])
    assert out[0].tolist() == [1.0, 3.0, 5.0, 7.0]
    assert not graphs.enabled(torch.device("cpu"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_replayed_graph_matches_eager_on_cuda(monkeypatch):
    # A loop of small operations with in-place writes into its inputs, replayed for new
    # inputs of the same shape: the same numbers as eager, the caller's tensors untouched.
    def loop(a, b):
        for _ in range(20):
            a.add_(b.sin())
            b = b * 0.9 + a.mean(1, keepdim=True)
        return [a, b]

    monkeypatch.setitem(os.environ, "DISRT_CUDA_GRAPHS", "1")
    for seed in range(3):
        g = torch.Generator(device="cuda").manual_seed(seed)
        a = torch.randn(8, 5, device="cuda", generator=g)
        b = torch.randn(8, 5, device="cuda", generator=g)
        keep = a.clone()
        got = graphs.replay("test-cuda", loop, [a, b])
        want = loop(a.clone(), b.clone())
        assert torch.equal(a, keep)
        for x, y in zip(got, want, strict=True):
            assert torch.allclose(x, y, atol=1e-6)
    assert "test-cuda" not in graphs._FAILED
