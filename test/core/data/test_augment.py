"""Augmentations (SPEC §5): geometry by hand, label consistency, statistics, determinism."""

import math

import numpy as np
import pytest
import roma
import torch

from disrt_core.body.layout import ParamLayout
from disrt_core.data.augment import (
    AugmentConfig,
    Augmenter,
    erase_boxes,
    resize_depth,
    rotate_images,
    shift_images,
)
from disrt_core.geometry import bedframe as bf

ONLY_ROTATE = AugmentConfig(rotate_p=1.0, translate_p=0.0, erase_p=0.0, dropout_p=0.0)


def batch_of(depth, params=None, joints=None):
    b = depth.shape[0]
    if params is None:
        params = ParamLayout(10).pack(torch.zeros(b, 10), torch.zeros(b, 3), torch.zeros(b, 3),
                                      torch.zeros(b, 69))
    out = {"depth": depth, "params": params, "seed": 1}
    if joints is not None:
        out["joints"] = joints
    return out


def test_rotate_and_shift_images_by_hand():
    image = torch.zeros(1, 1, 5, 5)
    image[0, 0, 2, 4] = 1.0  # right of the centre (x = 2, y = 0)
    turned = rotate_images(image, torch.tensor([math.pi / 2]))
    assert turned[0, 0, 0, 2] == 1.0 and turned.sum() == 1.0  # CCW: now above the centre
    moved = shift_images(torch.eye(20)[None, None], torch.tensor([[2.0, -3.0]]))
    assert moved[0, 0, 12, 7] == 1.0 and moved[0, 0, 12, 9] == 0.0  # (10,10) -> (12,7)
    assert moved[0, 0, :2].sum() == 0  # filled with 0


def test_image_and_root_turn_together():
    """A head-end blob turns with the image by the angle the root orientation got."""
    depth = torch.ones(8, 1, 128, 54)
    depth[:, :, 8:14, 24:30] = 0.3  # "head", straight up the bed from the centre
    out = Augmenter(ONLY_ROTATE)(batch_of(depth), seed=11)
    root = ParamLayout(10).unpack(out["params"]).root_orient
    angle = root[:, 2]  # supine R = I, so Rz(a)·I has rotvec (0, 0, a)
    assert torch.allclose(root[:, :2], torch.zeros(8, 2), atol=1e-6)
    assert angle.abs().max() <= math.radians(30) + 1e-6 and angle.abs().min() > 0
    for i in range(8):
        head = (out["depth"][i, 0] > 0.1) & (out["depth"][i, 0] < 0.5)  # not the 0 fill
        rows, cols = torch.nonzero(head, as_tuple=True)
        x, y = bf.net_to_label(rows.float().mean(), cols.float().mean())
        cx, cy = bf.net_to_label(63.5, 26.5)
        seen = math.atan2(y - cy, x - cx) - math.pi / 2  # measured turn of the head direction
        assert seen == pytest.approx(float(angle[i]), abs=0.03)


def test_consistent_mode_moves_joints_with_the_image():
    cfg = AugmentConfig(rotate_p=1.0, translate_p=1.0, erase_p=0.0, dropout_p=0.0,
                        consistent=True)
    joints = torch.zeros(4, 24, 3)
    joints[:, :, 0], joints[:, :, 1] = bf.net_to_label(40.0, 35.0)
    depth = torch.ones(4, 1, 128, 54)
    depth[:, :, 39:42, 34:37] = 0.2  # a marker under the joints
    out = Augmenter(cfg)(batch_of(depth, joints=joints), seed=3)
    for i in range(4):
        marker = (out["depth"][i, 0] > 0.1) & (out["depth"][i, 0] < 0.5)  # not the 0 fill
        rows, cols = torch.nonzero(marker, as_tuple=True)
        r, c = bf.label_to_net(out["joints"][i, 0, 0], out["joints"][i, 0, 1])
        assert float(r) == pytest.approx(rows.float().mean().item(), abs=1.0)
        assert float(c) == pytest.approx(cols.float().mean().item(), abs=1.0)
    assert not torch.equal(out["params"][:, 10:13], torch.zeros(4, 3))  # translation moved
    reference = Augmenter(AugmentConfig(rotate_p=1.0, translate_p=1.0, erase_p=0.0,
                                        dropout_p=0.0))(batch_of(depth, joints=joints), seed=3)
    assert torch.equal(reference["joints"], joints)  # the reference leaves them alone


def test_erasing_and_dropout_statistics():
    gen = torch.Generator().manual_seed(0)
    boxes = erase_boxes(256, 256, 2000, 5, AugmentConfig(), gen)
    taken = boxes[..., 2] > 0
    assert abs(taken.float().mean().item() - 0.6) < 0.02
    share = (boxes[..., 2] * boxes[..., 3])[taken] / 256**2
    assert share.min() > 0.015 and share.max() < 0.13
    ratio = (boxes[..., 2] / boxes[..., 3])[taken]
    assert ratio.min() > 0.25 and ratio.max() < 3.8
    assert (boxes[..., 0] + boxes[..., 2] <= 256).all() and (boxes[..., 1] >= 0).all()
    cfg = AugmentConfig(rotate_p=0.0, translate_p=0.0, erase_p=0.0, dropout_p=1.0,
                        out_size=(256, 256))
    out = Augmenter(cfg)(batch_of(torch.ones(16, 1, 128, 54)), seed=5)
    assert out["depth"].shape == (16, 1, 256, 256)
    dropped = (out["depth"] == 0).float().mean().item()
    assert abs(dropped - 0.005) < 0.0006  # binomial sd ~ 7e-5


def test_seeded_input_untouched_and_resize():
    depth = torch.rand(4, 1, 128, 54)
    batch = batch_of(depth.clone())
    before = {k: v.clone() for k, v in batch.items() if torch.is_tensor(v)}
    augment = Augmenter(AugmentConfig(out_size=(256, 256)))
    first, again = augment(batch, seed=9), augment(batch, seed=9)
    assert torch.equal(first["depth"], again["depth"])
    assert torch.equal(first["params"], again["params"])
    assert not torch.equal(first["depth"], augment(batch, seed=10)["depth"])
    for key, value in before.items():
        assert torch.equal(batch[key], value)  # gotcha §8.2: the input is never modified
    torch.testing.assert_close(resize_depth(depth, (256, 256)),
                               torch.nn.functional.interpolate(depth, (256, 256),
                                                               mode="bilinear"))
    with pytest.raises(ValueError, match=r"\[B,1,128,54\]"):
        augment({"depth": torch.zeros(2, 1, 256, 256), "seed": 1})


def test_root_update_matches_a_rotation_matrix_product():
    params = ParamLayout(10).pack(torch.zeros(6, 10), torch.zeros(6, 3),
                                  torch.randn(6, 3) * 0.8, torch.zeros(6, 69))
    out = Augmenter(ONLY_ROTATE)(batch_of(torch.ones(6, 1, 128, 54), params), seed=4)
    before = roma.rotvec_to_rotmat(ParamLayout(10).unpack(params).root_orient)
    after = roma.rotvec_to_rotmat(ParamLayout(10).unpack(out["params"]).root_orient)
    rz = after @ before.transpose(-1, -2)  # must be a rotation about z only
    np.testing.assert_allclose(rz[:, 2, 2].numpy(), 1.0, atol=1e-5)
    np.testing.assert_allclose(rz[:, :2, 2].numpy(), 0.0, atol=1e-5)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu_except_dropout():
    cfg = AugmentConfig(dropout_p=0.0, out_size=(256, 256))
    batch = batch_of(torch.rand(4, 1, 128, 54))
    cpu = Augmenter(cfg)(batch, seed=2)
    gpu = Augmenter(cfg)({k: v.cuda() if torch.is_tensor(v) else v for k, v in batch.items()},
                         seed=2)
    torch.testing.assert_close(gpu["depth"].cpu(), cpu["depth"])
    torch.testing.assert_close(gpu["params"].cpu(), cpu["params"], atol=1e-5, rtol=0)
