"""Constant tensors made once per device.

``torch.tensor(python_list, device="cuda")`` is a copy from pageable host memory, which
waits for the GPU's queue to drain: in the settling's inner loop such index and radius
tables were most of the generator's ~1,700 host synchronisations per batch (benchmarks/
NOTES.md), and a CUDA graph cannot hold them at all (the estimator captures the presence
decision, :mod:`disrt_core.occupancy`, in its graph). Tables are keyed by their values, so
each is built once per device and dtype.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor


def _frozen(values):
    if hasattr(values, "tolist"):  # a numpy array or CPU tensor of the values: its numbers
        values = values.tolist()
    if isinstance(values, (list, tuple)):
        return tuple(_frozen(v) for v in values)
    return values


@functools.lru_cache(maxsize=1024)
def _made(values: tuple, device: torch.device, dtype: torch.dtype | None) -> Tensor:
    # A normal tensor even when first asked for under torch.inference_mode (an inference
    # tensor could not be saved for backward by a later caller).
    with torch.inference_mode(False):
        return torch.tensor(values, device=device, dtype=dtype)


def const(values, device: torch.device | str, dtype: torch.dtype | None = None) -> Tensor:
    """``torch.tensor(values, device=device, dtype=dtype)`` made once (values: numbers or
    nested lists / tuples of them). The tensor is shared: never write into it."""
    return _made(_frozen(values), torch.device(device), dtype)


_COPIES: dict[tuple, tuple[Tensor, Tensor]] = {}


def on_device(table: Tensor, like: Tensor) -> Tensor:
    """A constant module-level CPU ``table`` on ``like``'s device and dtype, copied once."""
    key = (id(table), like.device, like.dtype)
    kept = _COPIES.get(key)
    if kept is None or kept[0] is not table:
        with torch.inference_mode(False):
            kept = _COPIES[key] = (table, table.to(like.device, like.dtype))
    return kept[1]
