"""Trunk blocks of the denoiser (SPEC §3): a scale-shift conditioned residual block, the
stride-2 downsampling convolution and an AdaLN-zero self-attention block.

Every block that takes ``emb`` [N, emb_dim] (the summed time and parameter embeddings) is an
:class:`EmbBlock`: ``forward(h, emb)`` is ``forward_mod(h, modulation(emb))``, so that the
denoiser can compute every block's ``Linear(SiLU(emb))`` in one matrix product
(:meth:`disrt_core.model.denoiser.Denoiser.block_modulations`). Zero initialisation of the
output layers lives in :func:`disrt_core.model.denoiser.initialize_weights`, not here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """Scale-shift modulation ``x·(1 + scale) + shift`` (identity when both are zero)."""
    return x * (1 + scale) + shift


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    """GroupNorm(min(groups, channels), channels, eps 1e-5) (reference: 32 groups)."""
    groups = min(groups, channels)
    if channels % groups:
        raise ValueError(f"{channels} channels do not split into {groups} norm groups")
    return nn.GroupNorm(groups, channels, eps=1e-5)


class StatsGroupNorm(nn.GroupNorm):
    """:class:`nn.GroupNorm` computed from each channel's mean and mean square over H, W,
    then pooled per group (var = E[x²] − E[x]², float32), applied as one per-channel scale
    and shift, output in the input's dtype. The same function to float round-off; written
    for speed [experiment, issue 23]: with channels-last activations the per-channel sums
    reduce along the tensor's contiguous channel rows, where GroupNorm's own reduction over
    (C/G, H, W) strides across them (the compiled training step's GroupNorm statistics ran
    at ~10 % of the memory bandwidth, benchmarks/NOTES.md). :func:`use_stats_group_norm`
    switches a network's GroupNorms to it in place (``bench_train.py --gn-stats``)."""

    def forward(self, x: Tensor) -> Tensor:
        n, c, g = x.shape[0], x.shape[1], self.num_groups
        xf = x.float()
        mean_c, sq_c = xf.mean((2, 3)), (xf * xf).mean((2, 3))  # [N, C]
        mean = mean_c.view(n, g, -1).mean(-1)
        var = (sq_c.view(n, g, -1).mean(-1) - mean * mean).clamp(min=0)
        rstd = torch.rsqrt(var + self.eps).repeat_interleave(c // g, 1)  # [N, C]
        scale = rstd * self.weight if self.affine else rstd
        shift = -mean.repeat_interleave(c // g, 1) * scale
        if self.affine:
            shift = shift + self.bias
        return x * scale[..., None, None].to(x.dtype) + shift[..., None, None].to(x.dtype)


def use_stats_group_norm(model: nn.Module) -> int:
    """Turn every :class:`nn.GroupNorm` of ``model`` into a :class:`StatsGroupNorm` in place
    (same parameters, same optimiser state); returns how many."""
    count = 0
    for module in model.modules():
        if type(module) is nn.GroupNorm:
            module.__class__ = StatsGroupNorm
            count += 1
    return count


class EmbBlock(nn.Module):
    """A block whose forward takes the conditioning embedding: ``forward(h, emb)``.

    Subclasses hold ``Sequential(SiLU, Linear(emb_dim, 2C))`` as the attribute named by
    ``MODULATION`` and implement ``forward_mod(h, mod)`` for ``mod`` = its output [N, 2C]
    (scale | shift).
    """

    MODULATION = ""  # attribute name of the Sequential(SiLU, Linear); its keys are the state's

    @property
    def modulation(self) -> nn.Linear:
        """The Linear of ``Linear(SiLU(emb))`` (scale | shift)."""
        return getattr(self, self.MODULATION)[1]

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        return self.forward_mod(h, getattr(self, self.MODULATION)(emb))

    def forward_mod(self, h: Tensor, mod: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class ResBlock(EmbBlock):
    """GN→SiLU→Conv3×3, then ``GN(h)·(1+s)+b`` with ``[s,b] = Linear(SiLU(emb))``, SiLU,
    Dropout, Conv3×3 (zero-initialised); skip = identity or Conv1×1 (SPEC §3).

    ``pre(h)`` is the part that does not depend on ``emb`` (the input layers and the skip),
    ``post(pre(h), mod)`` the rest: a sampler can run ``pre`` on the depth trunk's first
    block once per image instead of once per step.
    """

    MODULATION = "emb_layers"

    def __init__(self, cin: int, cout: int, emb_dim: int, dropout: float, groups: int) -> None:
        super().__init__()
        self.in_layers = nn.Sequential(group_norm(cin, groups), nn.SiLU(),
                                       nn.Conv2d(cin, cout, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, 2 * cout))
        self.out_norm = group_norm(cout, groups)
        self.out_layers = nn.Sequential(nn.SiLU(), nn.Dropout(dropout),
                                        nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def pre(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """(skip(h), in_layers(h)): what ``emb`` does not change."""
        return self.skip(h), self.in_layers(h)

    def post(self, pre: tuple[Tensor, Tensor], mod: Tensor) -> Tensor:
        skip, out = pre
        scale, shift = mod.to(out.dtype)[..., None, None].chunk(2, dim=1)
        return skip + self.out_layers(modulate(self.out_norm(out), shift, scale))

    def forward_mod(self, h: Tensor, mod: Tensor) -> Tensor:
        return self.post(self.pre(h), mod)


class Downsample(nn.Module):
    """One 3×3 convolution with stride 2 (padding 1): H -> ceil(H/2) (SPEC §3)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, h: Tensor) -> Tensor:
        return self.op(h)


class AttentionBlock(EmbBlock):
    """Self-attention over the H·W positions with AdaLN-zero conditioning (SPEC §3).

    ``LayerNorm(C, no affine, eps 1e-6)·(1+s)+b`` with ``[s,b] = Linear(SiLU(emb))``
    (zero-initialised), a 1×1 qkv projection (``Linear`` on tokens, the same weights as the
    reference's ``Conv1d``; channels are split head-major: per head q|k|v), multi-head
    attention with scale ch^−½ (the reference's q·ch^−¼, k·ch^−¼) and a zero-initialised
    output projection, added to the input.
    """

    MODULATION = "ada"

    def __init__(self, channels: int, emb_dim: int, head_channels: int,
                 use_checkpoint: bool = False) -> None:
        super().__init__()
        self.heads = channels // head_channels
        self.norm = nn.LayerNorm(channels, elementwise_affine=False, eps=1e-6)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, 2 * channels))
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj_out = nn.Linear(channels, channels)
        self.use_checkpoint = use_checkpoint

    def forward_mod(self, h: Tensor, mod: Tensor) -> Tensor:
        if self.use_checkpoint and self.training:
            return checkpoint(self._forward, h, mod, use_reentrant=False)
        return self._forward(h, mod)

    def _forward(self, h: Tensor, mod: Tensor) -> Tensor:
        b, c, height, width = h.shape
        tokens = h.flatten(2).transpose(1, 2)  # [B, L, C]
        scale, shift = mod.to(tokens.dtype)[:, None].chunk(2, dim=-1)
        x = modulate(self.norm(tokens), shift, scale)
        qkv = self.qkv(x).view(b, -1, self.heads, 3, c // self.heads)
        q, k, v = qkv.permute(3, 0, 2, 1, 4).unbind(0)  # each [B, heads, L, ch]
        a = F.scaled_dot_product_attention(q, k, v)
        a = a.transpose(1, 2).reshape(b, -1, c)
        out = tokens + self.proj_out(a)
        return out.transpose(1, 2).reshape(b, c, height, width)
