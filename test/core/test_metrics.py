import pytest
import torch

from disrt_core.metrics import group_means, measurement_errors_cm, mpjpe_mm, pve_mm


def test_known_offsets_give_exact_millimetres():
    g = torch.Generator().manual_seed(0)
    joints = torch.randn(3, 24, 3, generator=g)
    shift = torch.tensor([[0.010, 0.0, 0.0], [0.0, -0.006, 0.008], [0.0, 0.0, 0.0]])
    out = mpjpe_mm(joints + shift[:, None], joints)
    # float32 inputs: exact to well under a micrometre
    torch.testing.assert_close(out, torch.tensor([10.0, 10.0, 0.0], dtype=torch.float64),
                               atol=1e-4, rtol=0)
    verts = torch.randn(2, 6890, 3, generator=g)
    torch.testing.assert_close(pve_mm(verts, verts + torch.tensor([0.0, 0.0, 0.010])),
                               torch.tensor([10.0, 10.0], dtype=torch.float64),
                               atol=1e-4, rtol=0)


def test_no_alignment_is_applied():
    # a body rotated about its pelvis keeps its pelvis but its other joints move: the error
    # is the mean distance, not 0 as after a Procrustes alignment
    joints = torch.zeros(1, 24, 3)
    joints[0, 1:, 0] = 0.1
    rotated = joints.clone()
    rotated[0, 1:] = torch.tensor([0.0, 0.1, 0.0])
    assert mpjpe_mm(rotated, joints).item() == pytest.approx(23 / 24 * 100 * 2**0.5, rel=1e-6)


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match="MPJPE"):
        mpjpe_mm(torch.zeros(1, 24, 3), torch.zeros(1, 23, 3))


def test_measurement_errors_and_groups():
    errs = measurement_errors_cm({"height": torch.tensor([170.0, 160.0]), "chest": torch.ones(2)},
                                 {"height": torch.tensor([172.5, 160.0]), "waist": torch.ones(2)})
    assert set(errs) == {"height"}
    torch.testing.assert_close(errs["height"], torch.tensor([2.5, 0.0], dtype=torch.float64))
    means = group_means(torch.tensor([1.0, 2.0, 3.0, 6.0]), torch.tensor([0, 0, 2, 2]),
                        names=("uncover", "cover1", "cover2"))
    assert means == {"uncover": 1.5, "cover2": 4.5, "all": 3.0}
