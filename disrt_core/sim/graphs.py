"""Loops of many small kernels, captured once as CUDA graphs and replayed.

The settling (:mod:`disrt_core.sim.rest`) turns ~20 joint chains one after the other, each
a few hundred tensor operations on [B,...] tensors of fixed shape: ~57,000 launches per
batch, whose Python and dispatch overhead (~15 µs each) kept the GPU idle most of the time
(benchmarks/NOTES.md). Replaying a captured graph launches them all from the driver.

:func:`replay` runs ``fn(*tensors)`` eagerly on the CPU (and when disabled); on CUDA it
captures it once per key and input shapes into a graph with its own static inputs, then
copies the inputs in, replays, and returns clones of the outputs
(:class:`disrt_core.cuda_graphs.GraphCache`). ``fn`` must be pure
tensor work: no host synchronisation (``.item()``, ``bool(t)``, boolean-mask indexing), no
tensors built from Python lists (:mod:`disrt_core.constants`), no random numbers. A
capture that fails (some operation the graph cannot hold) is logged once and that key runs
eagerly from then on. ``DISRT_CUDA_GRAPHS=0`` turns graphs off.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Hashable, Sequence

import torch
from torch import Tensor

from disrt_core.cuda_graphs import GraphCache

log = logging.getLogger(__name__)

MAX_GRAPHS = 16  # kept (batch sizes × keys); each holds its own memory pool
_GRAPHS = GraphCache(MAX_GRAPHS)
_FAILED: set[Hashable] = set()
_LOCK = threading.Lock()


def enabled(device: torch.device) -> bool:
    """Whether graphs are used on ``device`` (CUDA, unless ``DISRT_CUDA_GRAPHS=0``)."""
    return device.type == "cuda" and os.environ.get("DISRT_CUDA_GRAPHS", "1") != "0"


def replay(key: Hashable, fn: Callable[..., Sequence[Tensor]],
           tensors: Sequence[Tensor]) -> list[Tensor]:
    """``fn(*tensors)`` (a sequence of tensors), through a CUDA graph captured for ``key``
    and the inputs' shapes and dtypes (module docstring). ``fn`` may write into its inputs;
    the caller's tensors are never written."""
    if not tensors or not enabled(tensors[0].device) or key in _FAILED:
        return list(fn(*tensors))
    sig = (key, tensors[0].device, tuple((t.shape, t.dtype) for t in tensors))
    with _LOCK:
        try:
            return list(_GRAPHS(sig, fn, list(tensors)))
        except Exception as err:  # any capture failure: run eagerly from now on
            _FAILED.add(key)
            log.warning("CUDA graph capture of %s failed, running it eagerly: %s", key, err)
    return list(fn(*tensors))
