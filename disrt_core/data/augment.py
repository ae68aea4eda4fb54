"""Training augmentations of SPEC §5, batched on CPU or GPU, seeded per batch.

In DiSRT's order, on the normalised depth (0 = ≥715 mm above the bed or no reading):

1. **rotation** (p 0.9): ``a = clip(N(0,1), −2, 2)·15°``; the image turns by ``+a``
   (counter-clockwise as displayed, row 0 at the top) about its centre, nearest neighbour,
   fill 0, same canvas, **at 128×54**; the root orientation becomes ``Rz(a)·R`` (label z);
2. **resize** to ``out_size`` (the paper: 256×256; bilinear, no antialias), when set; this
   step also runs at test time: :func:`resize_depth`;
3. **translation** (p 0.7): by ``(tx·W, ty·H)`` pixels, ``tx, ty ~ U(−0.15, 0.15)``,
   nearest, fill 0;
4. **random erasing** (conditioning image): 5 independent tries, each p 0.6, of
   torchvision's ``RandomErasing(scale=(0.02, 0.12), ratio=(0.3, 3.3), value=0)``;
5. **pixel dropout** (p 0.5): each pixel zeroed with probability 0.005.

Steps 3-5 run at whatever size step 2 left (128×54 when ``out_size`` is None); their
parameters are fractions of the image, except dropout, which is per pixel (so at 128×54 a
dropped pixel covers ~9× the area it does at 256×256).

Labels: as in the reference, only the root orientation follows the rotation; translation,
joints and vertices do not follow the rotation or the shift (``consistent=False``).
``consistent=True`` [choice, SPEC §11] also rotates ``params`` translation, ``joints``,
``vertices_gt`` (and ``label``) about the image centre and shifts them with the image.

Randomness: every per-sample draw comes from a CPU ``torch.Generator`` seeded with the
batch's ``seed`` (identical on any device); the dropout mask is drawn on the batch's device
from a generator seeded from it (identical across runs on one device type). The input batch
is never modified (gotcha §8.2): the result holds new tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import roma
import torch
import torch.nn.functional as F
from torch import Tensor

from disrt_core.body.layout import ParamLayout
from disrt_core.constants import const
from disrt_core.geometry.bedframe import NET_PITCH_X, NET_PITCH_Y, NET_SHAPE, net_to_label
from disrt_core.host_copy import to_device


@dataclass(frozen=True)
class AugmentConfig:
    """DiSRT's training augmentation (defaults = the released scripts, SPEC §5)."""

    rotate_p: float = 0.9
    rotate_deg: float = 15.0
    rotate_clip: float = 2.0
    translate_p: float = 0.7
    translate: float = 0.15
    erase_p: float = 0.6
    erase_scale: tuple[float, float] = (0.02, 0.12)
    erase_ratio: tuple[float, float] = (0.3, 3.3)
    erase_tries: int = 5
    dropout_p: float = 0.5
    dropout_prob: float = 0.005
    out_size: tuple[int, int] | None = None
    consistent: bool = False


def resize_depth(depth: Tensor, size: tuple[int, int]) -> Tensor:
    """[B,1,H,W] -> [B,1,*size], bilinear, no antialias (torchvision ``Resize(antialias=None)``
    on tensors, as DiSRT at train and test time)."""
    return F.interpolate(depth, size=size, mode="bilinear", align_corners=False, antialias=False)


def _resample_nearest(image: Tensor, src_rc: Tensor) -> Tensor:
    """Sample ``image`` [B,1,H,W] at source pixels (row, col) [B,H,W,2], nearest, fill 0."""
    h, w = image.shape[-2:]
    grid = torch.stack([src_rc[..., 1] / (w - 1), src_rc[..., 0] / (h - 1)], -1) * 2 - 1
    return F.grid_sample(image, grid.to(image.dtype), mode="nearest", padding_mode="zeros",
                         align_corners=True)


def rotate_images(image: Tensor, angle_rad: Tensor) -> Tensor:
    """Turn each image [B,1,H,W] counter-clockwise (as displayed) by ``angle_rad`` [B] about
    its centre ((H−1)/2, (W−1)/2); nearest, fill 0, same canvas."""
    b, _, h, w = image.shape
    rows = torch.arange(h, device=image.device, dtype=torch.float32) - (h - 1) / 2
    cols = torch.arange(w, device=image.device, dtype=torch.float32) - (w - 1) / 2
    rr, cc = torch.meshgrid(rows, cols, indexing="ij")
    x, y = cc, -rr  # display axes: x right, y up
    cos, sin = torch.cos(angle_rad).view(b, 1, 1), torch.sin(angle_rad).view(b, 1, 1)
    src_x, src_y = cos * x + sin * y, -sin * x + cos * y  # R(−a)·p
    src = torch.stack([-src_y + (h - 1) / 2, src_x + (w - 1) / 2], -1)
    return _resample_nearest(image, src)


def shift_images(image: Tensor, shift_rc: Tensor) -> Tensor:
    """Move each image [B,1,H,W] by ``shift_rc`` [B,2] pixels (rows down, cols right)."""
    b, _, h, w = image.shape
    rows = torch.arange(h, device=image.device, dtype=torch.float32)
    cols = torch.arange(w, device=image.device, dtype=torch.float32)
    rr, cc = torch.meshgrid(rows, cols, indexing="ij")
    src = torch.stack([rr.expand(b, h, w) - shift_rc[:, 0, None, None],
                       cc.expand(b, h, w) - shift_rc[:, 1, None, None]], -1)
    return _resample_nearest(image, src)


def erase_boxes(h: int, w: int, batch: int, tries: int, cfg: AugmentConfig,
                gen: torch.Generator) -> Tensor:
    """Boxes (top, left, height, width) [B, tries, 4] of torchvision's RandomErasing
    (10 attempts each; a try with no valid attempt or not taken has height 0)."""
    attempts = 10
    area = h * w * torch.empty(batch, tries, attempts).uniform_(*cfg.erase_scale, generator=gen)
    log_r = torch.empty(batch, tries, attempts).uniform_(
        math.log(cfg.erase_ratio[0]), math.log(cfg.erase_ratio[1]), generator=gen)
    eh = torch.sqrt(area * torch.exp(log_r)).round()
    ew = torch.sqrt(area / torch.exp(log_r)).round()
    valid = (eh < h) & (ew < w)
    first = torch.argmax(valid.int(), dim=-1, keepdim=True)
    eh, ew = eh.gather(-1, first)[..., 0], ew.gather(-1, first)[..., 0]
    u = torch.rand(batch, tries, 2, generator=gen)
    top = (u[..., 0] * (h - eh + 1)).floor()
    left = (u[..., 1] * (w - ew + 1)).floor()
    take = (torch.rand(batch, tries, generator=gen) < cfg.erase_p) & valid.any(-1)
    return torch.stack([top, left, eh * take, ew * take], -1)


class Augmenter:
    """Callable ``augment(batch, seed) -> new batch`` (see the module docstring).

    ``layout``: the body model's :class:`ParamLayout` (to find the root orientation in
    ``params``); default SMPL's (10 betas).
    """

    def __init__(self, config: AugmentConfig | None = None,
                 layout: ParamLayout | None = None) -> None:
        self.config = config or AugmentConfig()
        self.layout = layout or ParamLayout(shape_dim=10)

    def __call__(self, batch: dict[str, Any], seed: int | None = None) -> dict[str, Any]:
        cfg = self.config
        seed = int(batch["seed"]) if seed is None and "seed" in batch else seed
        if seed is None:
            raise ValueError("give a seed (or a batch with 'seed', as the data pipeline makes)")
        gen = torch.Generator().manual_seed(seed)
        out = dict(batch)
        depth = batch["depth"]
        if depth.ndim != 4 or depth.shape[1] != 1 or tuple(depth.shape[-2:]) != NET_SHAPE:
            raise ValueError(f"depth must be [B,1,128,54] (network grid), got "
                             f"{tuple(depth.shape)}")
        b, device = depth.shape[0], depth.device

        # 1. rotation at 128x54, root orientation Rz(a)·R.
        angle = torch.randn(b, generator=gen).clamp(-cfg.rotate_clip, cfg.rotate_clip)
        angle = torch.deg2rad(angle * cfg.rotate_deg) * (torch.rand(b, generator=gen)
                                                          < cfg.rotate_p)
        angle = to_device(angle, device)
        depth = rotate_images(depth, angle)
        rz = roma.rotvec_to_rotmat(torch.stack([torch.zeros_like(angle)] * 2 + [angle], -1))
        centre = const([*net_to_label((NET_SHAPE[0] - 1) / 2, (NET_SHAPE[1] - 1) / 2), 0.0],
                       device, torch.float32)
        if "params" in batch:
            out["params"] = self._rotate_root(batch["params"], rz)
        if "label" in batch:
            label = batch["label"].clone()
            root = roma.rotmat_to_rotvec(rz.to(label) @ roma.rotvec_to_rotmat(label[:, 82:85]))
            label[:, 82:85] = root
            out["label"] = label

        # 2. resize.
        if cfg.out_size is not None:
            depth = resize_depth(depth, tuple(cfg.out_size))
        h, w = depth.shape[-2:]

        # 3. translation.
        frac = torch.empty(b, 2).uniform_(-cfg.translate, cfg.translate, generator=gen)
        frac = frac * (torch.rand(b, 1, generator=gen) < cfg.translate_p)
        shift_rc = to_device(torch.stack([frac[:, 1] * h, frac[:, 0] * w], -1), device)
        depth = shift_images(depth, shift_rc)
        if cfg.consistent:
            scale = const([NET_SHAPE[0] / h, NET_SHAPE[1] / w], device, torch.float32)
            net_shift = shift_rc * scale  # in network-grid pixels
            move = torch.stack([net_shift[:, 1] * NET_PITCH_X, -net_shift[:, 0] * NET_PITCH_Y,
                                torch.zeros_like(net_shift[:, 0])], -1)
            self._move_points(out, batch, rz, centre, move)

        # 4. random erasing, 5. pixel dropout (conditioning image).
        boxes = to_device(erase_boxes(h, w, b, cfg.erase_tries, cfg, gen), device)
        rows = torch.arange(h, device=device).view(1, 1, h, 1)
        cols = torch.arange(w, device=device).view(1, 1, 1, w)
        top, left, eh, ew = (boxes[..., i].view(b, -1, 1, 1) for i in range(4))
        erased = ((rows >= top) & (rows < top + eh) & (cols >= left) & (cols < left + ew)).any(1)
        depth = depth.masked_fill(erased[:, None], 0.0)
        drop_on = to_device(torch.rand(b, generator=gen) < cfg.dropout_p, device)
        dev_gen = torch.Generator(device=device).manual_seed(seed ^ 0x5DEECE66D)
        drop = torch.rand(depth.shape, generator=dev_gen, device=device) < cfg.dropout_prob
        depth = depth.masked_fill(drop & drop_on.view(b, 1, 1, 1), 0.0)
        out["depth"] = depth
        return out

    def _rotate_root(self, params: Tensor, rz: Tensor) -> Tensor:
        p = self.layout.unpack(params)
        root = roma.rotmat_to_rotvec(rz.to(params) @ roma.rotvec_to_rotmat(p.root_orient))
        out = params.clone()
        out[:, self.layout.root_cos] = torch.cos(root)
        out[:, self.layout.root_sin] = torch.sin(root)
        return out

    def _move_points(self, out: dict, batch: dict, rz: Tensor, centre: Tensor,
                     move: Tensor) -> None:
        """consistent=True: rotate about the image centre, then shift, every position label."""
        def apply(points: Tensor) -> Tensor:  # [B, N, 3]
            rot = rz.to(points)
            return (points - centre) @ rot.transpose(-1, -2) + centre + move[:, None].to(points)

        if "params" in out:
            params = out["params"].clone()
            params[:, self.layout.transl] = apply(params[:, None, self.layout.transl])[:, 0]
            out["params"] = params
        for key in ("joints", "vertices_gt"):
            if key in batch:
                out[key] = apply(batch[key])
        if "label" in out:
            label = out["label"].clone()
            label[:, :72] = (apply(label[:, :72].view(-1, 24, 3) / 1000.0) * 1000.0).flatten(1)
            label[:, 154:157] = apply(label[:, None, 154:157])[:, 0]
            out["label"] = label
