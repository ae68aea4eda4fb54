"""Embedders of the timestep and of the noisy parameter vector (SPEC §2 time embedding, §3
conditioning). Their sum ``emb`` drives every block of the trunk."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def timestep_features(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal features of integer timesteps t [N] -> [N, dim] (SPEC §2).

    ``f_i = exp(−ln(max_period)·i/(dim/2))``, i = 0..dim/2−1, features ``[cos(t·f), sin(t·f)]``
    (cosines first, as in the reference).
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device,
                                                            dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    out = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        out = torch.cat([out, torch.zeros_like(out[:, :1])], dim=-1)
    return out


class TimestepEmbedder(nn.Module):
    """t [N] -> [N, emb_dim]: sinusoidal features -> Linear -> SiLU -> Linear (TimeMLP)."""

    def __init__(self, freq_dim: int, emb_dim: int) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, emb_dim), nn.SiLU(),
                                 nn.Linear(emb_dim, emb_dim))

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(timestep_features(t, self.freq_dim))


class ParamEmbedder(nn.Module):
    """x_t [N, P] -> [N, emb_dim]: Linear -> SiLU -> Linear (ParamMLP, SPEC §3)."""

    def __init__(self, param_dim: int, emb_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(param_dim, emb_dim), nn.SiLU(),
                                 nn.Linear(emb_dim, emb_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(x)
