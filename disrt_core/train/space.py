"""The trainer's diffusion space (issue 21): made from the data, carried by resume states
and checkpoints, and a warm start for a raw-space network that continues in a normalised
space. See :mod:`disrt_core.diffusion_space` for what the spaces are.
"""

from __future__ import annotations

import torch

from disrt_core.diffusion_space import DiffusionSpace
from disrt_core.model import Denoiser


def space_from_batches(batches, to_net, samples: int, parametrisation: str,
                       std_floor: float) -> DiffusionSpace:
    """The normalised space of the first ``samples`` training vectors of ``batches`` (dicts
    with ``params`` [B, P], label frame), in the network's space ``to_net(x0)`` (x0 − offset,
    or the decoder's inverse).
    The data are read before augmentation: the rotation augmentation changes the root's
    cos/sin only within the range they already cover."""
    parts, count = [], 0
    for batch in batches:
        parts.append(batch["params"].float().cpu())
        count += len(parts[-1])
        if count >= samples:
            break
    if not parts:
        raise ValueError("no training sample to compute the diffusion space from")
    x = to_net(torch.cat(parts)[:samples])
    return DiffusionSpace.from_data(x.cpu(), parametrisation, std_floor)


def fold_into_head(model: Denoiser, space: DiffusionSpace) -> None:
    """Re-express a raw-space network's output in the normalised space, in place:
    the head's last Linear W, b -> W/std, (b − mean)/std, so that F = (x̂0 − mean)/std.
    With the skip parametrisation ẑ0 = √ᾱ·z_t + √(1−ᾱ)·F this reproduces the old x̂0 at
    large t (√ᾱ → 0), where the old network was a regressor from the depth image; at small
    t the skip path takes over. The embedding of x_t is left as it is (its input changes
    meaning; the old network hardly used it, docs/diffusion_xt.md)."""
    if space.kind != "normalised":
        return
    last = model.head[-1]
    mean = space.mean.to(last.weight.device, last.weight.dtype)
    std = space.std.to(last.weight.device, last.weight.dtype)
    with torch.no_grad():
        last.weight.div_(std[:, None])
        last.bias.sub_(mean).div_(std)
