"""Chains of elementwise and stencil maths over whole frames, fused by ``torch.compile``.

The sensor model (:mod:`disrt_core.sim.noise`) is ~100 passes of one operation each over
[B,H,W] frames: on a GPU at batch 4,096 each pass moves a few GB, so the stage is bound by
memory traffic, not arithmetic (benchmarks/NOTES.md). :func:`fused` compiles such a function
on CUDA so that its chain runs as a few kernels that read their inputs once.

A fused function must be pure tensor maths: no random numbers (the caller draws them, so
the stream and its order are those of the eager code), no host synchronisation. On the CPU,
and with ``DISRT_SIM_COMPILE=0``, it runs eagerly; a compilation that fails is logged once
and that function runs eagerly from then on. Compiled results equal the eager ones to
rounding (fused multiply-adds, other ``sqrt``/``acos`` implementations), not bit for bit.
Each new input shape compiles once (``dynamic=False``: a generator's batch size is fixed).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable)
_LOCK = threading.Lock()


def enabled(device: torch.device) -> bool:
    """Whether :func:`fused` functions compile on ``device`` (CUDA, unless
    ``DISRT_SIM_COMPILE=0``)."""
    return device.type == "cuda" and os.environ.get("DISRT_SIM_COMPILE", "1") != "0"


def fused(fn: F) -> F:
    """``fn`` compiled on CUDA at its first call there (module docstring); the device is
    that of its first tensor argument (positional, then keyword)."""
    state: dict = {}

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)]
        if not tensors or not enabled(tensors[0].device) or state.get("failed"):
            return fn(*args, **kwargs)
        compiled = state.get("compiled")
        if compiled is None:
            with _LOCK:  # one wrapper per function (Dynamo serialises compilations itself)
                compiled = state.setdefault(
                    "compiled", torch.compile(fn, dynamic=False, fullgraph=True))
        try:
            return compiled(*args, **kwargs)
        except Exception as err:  # a compilation that fails: eager from now on
            state["failed"] = True
            log.warning("torch.compile of %s failed, running it eagerly: %s",
                        fn.__qualname__, err)
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
