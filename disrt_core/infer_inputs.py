"""What one :meth:`disrt_core.infer.Estimator.predict` call feeds its sampler: the depth
batch, checked and on the device, and the sampler's noise.

Pure functions, apart from :mod:`disrt_core.infer` which keeps the estimator's state (its
device, sampler settings and seed) and passes it in.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from disrt_core.geometry.bedframe import NET_SHAPE

__all__ = ["as_depth_batch", "draw_noise"]


def as_depth_batch(depth, device: torch.device, check: bool = True) -> Tensor:
    """[B,1,128,54] float32 on ``device`` from a tensor or array [B,1,128,54] or [B,128,54];
    ``check``: refuse values outside [0, 1] (one wait for the device)."""
    if isinstance(depth, np.ndarray):
        depth = torch.from_numpy(np.ascontiguousarray(depth))
    if not isinstance(depth, Tensor):
        raise TypeError(f"depth must be a torch tensor or numpy array, got {type(depth).__name__}")
    if depth.ndim == 3:
        depth = depth[:, None]
    if depth.ndim != 4 or depth.shape[1] != 1 or tuple(depth.shape[-2:]) != NET_SHAPE:
        raise ValueError(
            f"depth must be [B,1,{NET_SHAPE[0]},{NET_SHAPE[1]}] or [B,{NET_SHAPE[0]},"
            f"{NET_SHAPE[1]}] on the network grid, got {tuple(depth.shape)}; resample camera "
            "frames with disrt_core.geometry.camera.raw_to_network first")
    depth = depth.to(device=device, dtype=torch.float32, non_blocking=True)
    if not check:
        return depth
    lo, hi = torch.stack(torch.aminmax(depth)).tolist()  # one wait for the device, not two
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("depth holds NaN or infinite values; set missing readings to 0 "
                         "before normalising")
    if lo < -1e-3 or hi > 1.0 + 1e-3:
        raise ValueError(
            f"depth must be normalised to [0, 1] (bed = 1), got values in [{lo:g}, {hi:g}]; "
            "millimetres go through disrt_core.geometry.bedframe.normalize_depth first")
    return depth


def draw_noise(images: int, hypotheses: int, param_dim: int, steps: int, eta: float,
               device: torch.device, generator: torch.Generator | None,
               ) -> tuple[Tensor, list[Tensor]]:
    """Initial and per-step noise for ``images``·K rows (K = ``hypotheses``; image-major,
    hypotheses of one image adjacent); per-step noise only when η > 0. With a (seeded)
    generator: [K, P] drawn on the CPU and repeated for every image, so an image's noise
    depends neither on the batch size nor on its position, nor on the device. Without one:
    every row drawn on the device from its global RNG."""
    k, p = hypotheses, param_dim
    n_step = steps - 1 if eta > 0 else 0
    if generator is None:
        return (torch.randn(images * k, p, device=device),
                [torch.randn(images * k, p, device=device) for _ in range(n_step)])
    draws = [torch.randn(k, p, generator=generator).to(device).repeat(images, 1)
             for _ in range(1 + n_step)]
    return draws[0], draws[1:]
