import math

import pytest
import torch

from disrt_core.body import SMPL_BONES, SMPL_JOINT_NAMES, SMPL_PARENTS, ParamLayout


def test_smpl_layout_matches_spec():
    layout = ParamLayout(shape_dim=10)
    assert layout.param_dim == 88
    assert (layout.shape, layout.transl) == (slice(0, 10), slice(10, 13))
    assert (layout.root_cos, layout.root_sin) == (slice(13, 16), slice(16, 19))
    assert layout.body_pose == slice(19, 88)


def test_pack_unpack_round_trip_recovers_root_with_atan2():
    layout = ParamLayout(shape_dim=6)
    g = torch.Generator().manual_seed(0)
    shape, transl, pose = (torch.randn(5, n, generator=g) for n in (6, 3, 69))
    root = (torch.rand(5, 3, generator=g) * 2 - 1) * (math.pi - 1e-3)
    params = layout.pack(shape, transl, root, pose)
    assert params.shape == (5, 84)
    p = layout.unpack(params)
    torch.testing.assert_close(p.shape, shape)
    torch.testing.assert_close(p.transl, transl)
    torch.testing.assert_close(p.body_pose, pose)
    torch.testing.assert_close(p.root_cos, torch.cos(root))
    torch.testing.assert_close(p.root_orient, root, atol=1e-5, rtol=0)


def test_root_not_renormalised():
    # SPEC §1.1: r_k = atan2(sin_k, cos_k) with the raw (unnormalised) cos/sin.
    layout = ParamLayout()
    params = torch.zeros(1, 88)
    params[0, layout.root_cos] = torch.tensor([2.0, -1.0, 0.0])
    params[0, layout.root_sin] = torch.tensor([2.0, 0.0, -3.0])
    expected = torch.tensor([[math.pi / 4, math.pi, -math.pi / 2]])
    torch.testing.assert_close(layout.unpack(params).root_orient, expected)


def test_wrong_width_names_the_layout():
    with pytest.raises(ValueError, match="88"):
        ParamLayout().unpack(torch.zeros(2, 84))


def test_skeleton_tables_are_consistent():
    assert len(SMPL_JOINT_NAMES) == len(SMPL_PARENTS) == 24
    assert len(SMPL_BONES) == 23
    assert all(p < c for p, c in SMPL_BONES)  # parents come first
    assert SMPL_JOINT_NAMES[SMPL_PARENTS[SMPL_JOINT_NAMES.index("left_knee")]] == "left_hip"
