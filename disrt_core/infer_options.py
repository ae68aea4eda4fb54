"""The speed options of :class:`disrt_core.infer.Estimator`: their checks, the network
prepared for them, and the autocast context every network call runs under.

Held apart from :mod:`disrt_core.infer` so that the estimator keeps the state (which network,
which sampler settings, which graphs) and this module the option rules: pure functions that
take the options and return what the estimator stores.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from disrt_core.model import Denoiser
from disrt_core.model.blocks import use_stats_group_norm
from disrt_core.model.denoiser import cast_matmul_weights

__all__ = ["COMPILE_MODES", "PRECISIONS", "autocast", "check_options", "prepare_network"]


PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune",
                 "max-autotune-no-cudagraphs")


def check_options(device: torch.device, precision: str, compile: str | None,
                  cuda_graphs: bool) -> str:
    """Refuse an unknown or conflicting precision, compile mode or ``cuda_graphs``; returns
    the precision with ``"auto"`` resolved (bf16 on CUDA, fp32 on the CPU)."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be auto, {', '.join(PRECISIONS)}; got {precision!r}")
    if compile not in COMPILE_MODES:
        raise ValueError(f"compile must be one of {COMPILE_MODES}, got {compile!r}")
    if cuda_graphs and device.type != "cuda":
        raise ValueError("cuda_graphs needs device='cuda'")
    if cuda_graphs and compile in ("reduce-overhead", "max-autotune"):
        raise ValueError(f"compile mode {compile!r} brings its own CUDA graphs; pair "
                         "cuda_graphs=True with 'default' or 'max-autotune-no-cudagraphs'")
    return precision


def prepare_network(model: Denoiser, device: torch.device, precision: str,
                    compile: str | None, channels_last: bool, cast_weights: bool,
                    stats_group_norm: bool | None) -> tuple[Denoiser, Callable, Callable]:
    """``model`` on ``device`` (in place) with the speed options applied, and its two calls:
    (network, depth-only start, per-step rest), both compiled when ``compile`` is set.
    ``precision`` is a resolved one (:func:`check_options`)."""
    model = model.to(device)  # predict() runs a training-mode network in eval
    if stats_group_norm or (stats_group_norm is None and compile and device.type == "cuda"):
        use_stats_group_norm(model)
    if channels_last:  # faster inference on both: ~30% for `small` on 2 CPU cores
        model = model.to(memory_format=torch.channels_last)
    if cast_weights and PRECISIONS[precision] != torch.float32:
        cast_matmul_weights(model, PRECISIONS[precision])
    # the depth-only start of the trunk once per call, the rest at every step
    encode_net, step_net = model.encode_depth, model.forward_encoded
    if compile:
        encode_net = torch.compile(encode_net, mode=compile, dynamic=False)
        step_net = torch.compile(step_net, mode=compile, dynamic=False)
    return model, encode_net, step_net


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """The autocast context of one network call at ``precision`` (off for fp32)."""
    dtype = PRECISIONS[precision]
    # no weight-cast cache: it would outlive a CUDA-graph capture (weights that are cast
    # for good, ``cast_weights``, need none)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32,
                          cache_enabled=False)
