"""The conditional denoiser of DiSRT-In-Bed (SPEC §3): depth image in, noisy parameter vector
x_t and timestep t in, clean parameter vector x̂0 out (x0 prediction).

The depth image is the trunk's input; x_t and t enter only through ``emb = TimeMLP(t) +
ParamMLP(x_t)``, which conditions every res-block (scale-shift GroupNorm) and attention block
(AdaLN-zero). Trunk: stem conv, ``len(channel_mult)`` levels of res-blocks (plus attention at
the configured downsample factors) with a stride-2 convolution between levels, a middle
block (res, attention, res), then Flatten → LayerNorm → SiLU → Linear (zero-initialised).
Head: LayerNorm → Linear → GELU → Dropout → Linear(param_dim).

For sampling, one forward splits in two (same operations, same result): :meth:`encode_depth`,
the part that depends on the depth alone (the stem convolution and the first res-block's
input layers and skip, the costliest layers of the 256×256 level), run once per image, and
:meth:`forward_encoded`, run at every step; and every block's ``Linear(SiLU(emb))`` is one
matrix product over their concatenated weights (:meth:`block_modulations`) instead of one
small product per block.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from disrt_core.geometry.bedframe import NET_SHAPE
from disrt_core.model.blocks import AttentionBlock, Downsample, EmbBlock, ResBlock
from disrt_core.model.config import DenoiserConfig
from disrt_core.model.embed import ParamEmbedder, TimestepEmbedder


class Denoiser(nn.Module):
    """x̂0 = f(x_t, t, depth). ``param_dim`` is the body model's (88 SMPL, 84 Anny)."""

    def __init__(self, config: DenoiserConfig, param_dim: int) -> None:
        super().__init__()
        self.config = config
        self.param_dim = param_dim
        c = config
        self.time_embed = TimestepEmbedder(c.time_freq_dim, c.emb_dim)
        self.param_embed = ParamEmbedder(param_dim, c.emb_dim)

        ch = c.level_channels[0]
        blocks: list[nn.Module] = [nn.Conv2d(c.input_channels, ch, 3, padding=1)]
        for level, (cout, ds) in enumerate(zip(c.level_channels, c.level_ds)):
            for _ in range(c.num_res_blocks):
                blocks.append(ResBlock(ch, cout, c.emb_dim, c.dropout, c.norm_groups))
                ch = cout
                if ds in c.attention_ds:
                    blocks.append(self._attention(ch))
            if level != len(c.channel_mult) - 1:
                blocks.append(Downsample(ch))
        blocks.append(ResBlock(ch, ch, c.emb_dim, c.dropout, c.norm_groups))
        blocks.append(self._attention(ch) if c.attention_ds
                      else ResBlock(ch, ch, c.emb_dim, c.dropout, c.norm_groups))
        blocks.append(ResBlock(ch, ch, c.emb_dim, c.dropout, c.norm_groups))
        self.blocks = nn.ModuleList(blocks)
        if not isinstance(self.blocks[1], ResBlock):
            raise ValueError("the trunk must start with a res-block (num_res_blocks ≥ 1)")

        h, w = c.trunk_hw
        flat = ch * h * w
        self.trunk_out = nn.Sequential(nn.Flatten(), nn.LayerNorm(flat), nn.SiLU(),
                                       nn.Linear(flat, c.trunk_out_dim))
        self.head = nn.Sequential(
            nn.LayerNorm(c.trunk_out_dim), nn.Linear(c.trunk_out_dim, c.head_hidden_dim),
            nn.GELU(), nn.Dropout(c.dropout), nn.Linear(c.head_hidden_dim, param_dim),
        )
        initialize_weights(self)

    def _attention(self, ch: int) -> AttentionBlock:
        c = self.config
        return AttentionBlock(ch, c.emb_dim, c.head_channels, c.checkpoint_attention)

    def prepare_input(self, depth: Tensor) -> Tensor:
        """Normalised depth [N,1,128,54] -> the trunk's input size (bilinear, no antialias,
        SPEC §5 step 2); unchanged when the config works at the native size."""
        if depth.ndim != 4 or depth.shape[1] != self.config.input_channels:
            raise ValueError(f"depth must be [N, {self.config.input_channels}, H, W], "
                             f"got {tuple(depth.shape)}")
        if tuple(depth.shape[-2:]) != tuple(self.config.image_size):
            depth = F.interpolate(depth, size=self.config.image_size, mode="bilinear",
                                  align_corners=False, antialias=False)
        return depth

    def embed(self, x_t: Tensor, t: Tensor) -> Tensor:
        """``emb = TimeMLP(t) + ParamMLP(x_t)`` [N, emb_dim]."""
        return self.time_embed(t) + self.param_embed(x_t)

    def forward(self, x_t: Tensor, t: Tensor, depth: Tensor) -> Tensor:
        """x_t [N,P], t [N] integer timesteps (0..T−1), depth [N,1,128,54] in [0,1] -> x̂0 [N,P]."""
        return self.forward_encoded(x_t, t, self.encode_depth(depth))

    def encode_depth(self, depth: Tensor) -> tuple[Tensor, Tensor]:
        """The trunk's start that does not depend on x_t or t, for depth [N,1,128,54]: the
        stem convolution and the first res-block's skip and input layers (its ``pre``)."""
        return self.blocks[1].pre(self.blocks[0](self.prepare_input(depth)))

    def forward_encoded(self, x_t: Tensor, t: Tensor, code: tuple[Tensor, Tensor]) -> Tensor:
        """x̂0 [N,P] from x_t [N,P], t [N] and ``code = encode_depth(depth)``."""
        if x_t.ndim != 2 or x_t.shape[-1] != self.param_dim:
            raise ValueError(f"x_t must be [N, {self.param_dim}], got {tuple(x_t.shape)}")
        return self.head(self._trunk(self.embed(x_t, t), code))

    def block_modulations(self, emb: Tensor) -> list[Tensor]:
        """Every conditioned block's ``Linear(SiLU(emb))`` [N, 2C], in trunk order, as one
        matrix product over the blocks' concatenated weights (the same values as each block's
        own; one kernel instead of ~20, which is what a batch-1 step is bound by)."""
        linears = [b.modulation for b in self.blocks if isinstance(b, EmbBlock)]
        weight = torch.cat([lin.weight for lin in linears])
        bias = torch.cat([lin.bias for lin in linears])
        return F.linear(F.silu(emb), weight, bias).split([lin.out_features for lin in linears],
                                                         dim=1)

    def _trunk(self, emb: Tensor, code: tuple[Tensor, Tensor]) -> Tensor:
        mods = iter(self.block_modulations(emb))
        h = self.blocks[1].post(code, next(mods))
        for block in self.blocks[2:]:
            h = block.forward_mod(h, next(mods)) if isinstance(block, EmbBlock) else block(h)
        return self.trunk_out(h)


def initialize_weights(model: Denoiser) -> None:
    """Zero-initialise, in one place, every layer the SPEC zero-initialises (§3): each
    res-block's last convolution, each attention block's AdaLN modulation and output
    projection, and the trunk's output Linear. Everything else keeps PyTorch's default
    initialisation, as in the reference. At initialisation every conditioned block is
    therefore the identity on its residual path and the output does not depend on the inputs.
    """
    zero: list[nn.Module] = [model.trunk_out[-1]]
    for block in model.modules():
        if isinstance(block, ResBlock):
            zero.append(block.out_layers[-1])
        elif isinstance(block, AttentionBlock):
            zero += [block.ada[-1], block.proj_out]
    for module in zero:
        for p in module.parameters():
            nn.init.zeros_(p)


def cast_matmul_weights(model: nn.Module, dtype: torch.dtype) -> None:
    """Convolution and Linear parameters of ``model`` to ``dtype`` in place: what autocast
    casts them to anyway (norms stay float32, as autocast runs them)."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.to(dtype)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def native_input_shape() -> tuple[int, int, int]:
    """(channels, H, W) of what the denoiser takes: 1×128×54 normalised depth."""
    return (1, *NET_SHAPE)
