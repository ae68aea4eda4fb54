"""The trainer's diffusion space (issue 21): made from the data, carried by resume states
and checkpoints, and a warm start for a raw-space network that continues in a normalised
space. See :mod:`disrt_core.diffusion_space` for what the spaces are.
"""

from __future__ import annotations

import torch

from disrt_core.diffusion import GaussianDiffusion
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


#: Bounds of a measured σ_d [choice]: below 0.1 the skip would let go of z_t even at t = 0
#: (c_skip(t=0) = 0.91 at σ_d = 0.1), above 1 the data's own spread is the better prior.
SIGMA_DATA_RANGE = (0.1, 1.0)


def image_only_residual(model: Denoiser, space: DiffusionSpace, diffusion: GaussianDiffusion,
                        batches, to_net, samples: int, device: torch.device) -> torch.Tensor:
    """RMS per dimension [P] of ẑ0 − z0 at t = T−1, where x_t holds almost nothing and the
    answer comes from the depth image alone: the σ_d of ``diffusion.sigma_data: residual``
    (x_t drawn with noise seed 0, the network in eval mode), bounded to
    :data:`SIGMA_DATA_RANGE`."""
    was_training = model.training
    model.eval()
    gen = torch.Generator(device="cpu").manual_seed(0)
    abar = torch.as_tensor(diffusion.alphas_cumprod, dtype=torch.float32, device=device)
    last = diffusion.num_timesteps - 1
    squares, count = None, 0
    try:
        with torch.no_grad():
            for batch in batches:
                z0 = space.to_z(to_net(batch["params"].float().to(device)))
                n = min(len(z0), samples - count)
                z0, depth = z0[:n], batch["depth"][:n].to(device=device, dtype=torch.float32)
                t = torch.full((n,), last, dtype=torch.long, device=device)
                z_t = diffusion.q_sample(z0, t, torch.randn(z0.shape, generator=gen).to(device))
                z_hat = space.x0_from_output(model(z_t, t, depth).float(), z_t, t, abar)
                part = ((z_hat - z0) ** 2).sum(0)
                squares = part if squares is None else squares + part
                count += n
                if count >= samples:
                    break
    finally:
        model.train(was_training)
    if not count:
        raise ValueError("no training sample to measure the image-only residual on")
    lo, hi = SIGMA_DATA_RANGE
    return (squares / count).sqrt().clamp(lo, hi).cpu()


def refold_sigma(model: Denoiser, old: DiffusionSpace, new: DiffusionSpace,
                 alphas_cumprod: torch.Tensor) -> None:
    """Rescale the head's last Linear, in place, so that the skip network's answer at
    t = T−1 (where c_skip ≈ 0) is the same under ``new``'s σ_d as under ``old``'s:
    F_new = F_old · c_out_old(T−1) / c_out_new(T−1)."""
    t = torch.tensor([len(alphas_cumprod) - 1])
    abar = torch.as_tensor(alphas_cumprod, dtype=torch.float32)
    ratio = (old.skip_coefficients(abar, t)[1] / new.skip_coefficients(abar, t)[1]).reshape(-1)
    last = model.head[-1]
    ratio = ratio.to(last.weight.device, last.weight.dtype).expand(last.out_features)
    with torch.no_grad():
        last.weight.mul_(ratio[:, None])
        last.bias.mul_(ratio)
