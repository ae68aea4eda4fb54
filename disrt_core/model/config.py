"""Network configuration: one dataclass, named presets (SPEC §3, §11).

Presets (parameter counts for the 88-value SMPL layout / the 84-value Anny layout, and fp32
FLOPs of one forward at batch 1 counted with ``torch.utils.flop_counter``; both tested or
benchmarked):

================ ========== ============== ============== ===================
preset           trunk in   params (SMPL)  params (Anny)  GFLOP per forward
================ ========== ============== ============== ===================
``paper``        256×256    64,243,736     64,240,660     56.14
``paper_native`` 128×54     34,826,264     34,823,188     5.84
``small``        128×54     3,385,544      3,382,468      0.374
================ ========== ============== ============== ===================

``paper`` is the released DiSRT-In-Bed network (model_channels 64, channel_mult
(1,2,2,4,4,8), 2 res-blocks per level, attention at downsample factors 8 and 16, 64 channels
per head, dropout 0.1, emb dim 256). The reference counts 64,288,880 parameters with its
never-used "learned variance" output row; we output the 88 used values only (−45,144 =
513·88, SPEC §11), and 56.1 GFLOP per forward, which ours reproduces. ``paper_native`` is
the same network on the native 128×54 bed image (no upsampling to 256×256; about 9× fewer
pixels). ``small`` is the CPU variant: see :func:`small`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace


@dataclass(frozen=True)
class DenoiserConfig:
    """Everything that shapes the denoiser. ``param_dim`` comes from the body model's layout.

    image_size: (H, W) the trunk works at; the 128×54 input is resized to it (bilinear, no
        antialias, SPEC §5 step 2) when different, else used as is.
    model_channels, channel_mult: widths per level (``model_channels·mult``); one
        stride-2 3×3 convolution between consecutive levels (len(channel_mult) − 1 of them).
    num_res_blocks: residual blocks per level.
    attention_ds: downsample factors (1, 2, 4, ...) of the levels whose res-blocks are each
        followed by an attention block; the middle block has one attention block when this
        is non-empty (else a third res-block), as in the reference.
    head_channels: channels per attention head.
    emb_dim: width of the summed time + parameter embedding fed to every block.
    time_freq_dim: width of the sinusoidal timestep features (reference: model_channels).
    trunk_out_dim, head_hidden_dim: trunk output (reference 2·C_last = 1024) and the head's
        hidden width (reference 2·emb_dim = 512).
    norm_groups: GroupNorm groups (reference 32); capped at the channel count for narrow nets.
    dropout: in res-blocks and the head.
    checkpoint_attention: gradient checkpointing in attention blocks (reference: always on,
        which is slow; off here unless memory demands it).
    """

    name: str = "paper"
    image_size: tuple[int, int] = (256, 256)
    model_channels: int = 64
    channel_mult: tuple[int, ...] = (1, 2, 2, 4, 4, 8)
    num_res_blocks: int = 2
    attention_ds: tuple[int, ...] = (8, 16)
    head_channels: int = 64
    emb_dim: int = 256
    time_freq_dim: int = 64
    trunk_out_dim: int = 1024
    head_hidden_dim: int = 512
    norm_groups: int = 32
    dropout: float = 0.1
    checkpoint_attention: bool = False
    input_channels: int = 1
    extra: dict = field(default_factory=dict)  # free-form notes kept with checkpoints

    def __post_init__(self) -> None:
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            raise ValueError(f"image_size must be (H, W), got {self.image_size}")
        if not self.channel_mult:
            raise ValueError("channel_mult must name at least one level")
        for ds in self.attention_ds:
            if ds not in self.level_ds:
                raise ValueError(f"attention_ds {ds} is not a level's downsample factor "
                                 f"{self.level_ds}")
        for ch in self.attention_channels:
            if ch % self.head_channels:
                raise ValueError(f"attention over {ch} channels does not split into heads of "
                                 f"{self.head_channels} channels")

    @property
    def level_ds(self) -> tuple[int, ...]:
        """Downsample factor of each level (1, 2, 4, ...)."""
        return tuple(2**i for i in range(len(self.channel_mult)))

    @property
    def level_channels(self) -> tuple[int, ...]:
        return tuple(self.model_channels * m for m in self.channel_mult)

    @property
    def attention_channels(self) -> tuple[int, ...]:
        """Channel counts of every attention block (levels in ``attention_ds``, middle)."""
        chans = [c for c, ds in zip(self.level_channels, self.level_ds) if ds in self.attention_ds]
        return (*chans, self.level_channels[-1]) if self.attention_ds else ()

    @property
    def trunk_hw(self) -> tuple[int, int]:
        """Spatial size after the last downsampling (stride-2, padding-1 convolutions)."""
        h, w = self.image_size
        for _ in range(len(self.channel_mult) - 1):
            h, w = (h + 1) // 2, (w + 1) // 2
        return h, w

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DenoiserConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error (a newer checkpoint)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown network config keys {unknown}; this disrt_core knows "
                             f"{sorted(known)} (was the checkpoint written by a newer version?)")
        data = dict(data)
        for key in ("image_size", "channel_mult", "attention_ds"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    def replace(self, **changes) -> DenoiserConfig:
        return replace(self, **changes)


def paper() -> DenoiserConfig:
    """The released DiSRT-In-Bed network (SPEC §3): 256×256 trunk, 64.2 M parameters."""
    return DenoiserConfig()


def paper_native() -> DenoiserConfig:
    """The paper network on the native 128×54 bed image (no upsampling): ~9× fewer pixels."""
    return DenoiserConfig(name="paper_native", image_size=(128, 54))


def small() -> DenoiserConfig:
    """CPU variant: the same code at the native 128×54 image with 16 base channels.

    Chosen for the ≤ 60 ms per 5-step image goal on a 2-core CPU (≲ 0.9 GFLOP per forward):
    widths (16, 32, 32, 64, 64, 128), attention at factors 8 and 16 (16×7 and 8×4 tokens)
    with 32 channels per head, the full 256-wide embedding so that x_t still reaches every
    block unsqueezed, trunk output 512. 0.374 GFLOP and about 6 ms per forward on 2 cores
    (channels-last, quiet machine). Measured alternatives (2 cores, batch 1, eager):
    24 base channels 0.82 GFLOP / ~10 ms; 32 channels 1.46 GFLOP / ~12 ms (over budget);
    16 channels with widths (16, 32, 64, 64, 128, 128) 0.50 GFLOP / ~9 ms. Their accuracy
    has to be measured after training (issue 10); see BENCHMARKS.md.
    """
    return DenoiserConfig(
        name="small",
        image_size=(128, 54),
        model_channels=16,
        head_channels=32,
        trunk_out_dim=512,
        head_hidden_dim=512,
        norm_groups=16,
    )


PRESETS = {"paper": paper, "paper_native": paper_native, "small": small}


def preset(name: str) -> DenoiserConfig:
    """A named preset (``paper``, ``paper_native``, ``small``)."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown network preset {name!r}; choose one of "
                         f"{sorted(PRESETS)}") from None
