"""CUDA graphs: a function of tensors captured once per key and replayed.

One mechanism for the two places that launch many small kernels with fixed shapes: the
estimator's DDIM loop and body-model decoding (:mod:`disrt_core.infer`) and the generator's
settling and drape sweeps (:mod:`disrt_core.sim.graphs`). Replaying a captured graph
launches all its kernels from the driver, without Python and dispatch overhead (~15 µs a
launch).

A captured function must be pure tensor work: no host synchronisation (``.item()``,
``bool(t)``, boolean-mask indexing), no tensors built from Python lists, no random numbers
drawn inside. Its arguments are a tree of tensors (tensors, lists or tuples of them,
``None``); the graph holds its own static copies, into which every call's values are
copied before the replay, and every call returns clones of the outputs, so neither the
caller's inputs nor its results alias graph memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable

import torch
from torch import Tensor


def tree_map(fn: Callable[[Tensor], Tensor], tree):
    """``fn`` on every tensor of a tensor / list / tuple / None tree, same structure."""
    if tree is None:
        return None
    if isinstance(tree, Tensor):
        return fn(tree)
    return type(tree)(tree_map(fn, t) for t in tree)


def tree_copy_(dst, src) -> None:
    """Copy the tensors of ``src`` into the same-structured ``dst`` in place."""
    if isinstance(dst, Tensor):
        dst.copy_(src)
    elif dst is not None:
        for d, s in zip(dst, src, strict=True):
            tree_copy_(d, s)


def _first_tensor(tree) -> Tensor | None:
    if isinstance(tree, Tensor):
        return tree
    for t in tree or ():
        found = _first_tensor(t)
        if found is not None:
            return found
    return None


class GraphCache:
    """Captured graphs by key, the least recently used dropped beyond ``max_graphs``
    (each graph keeps its own memory pool). The caller owns locking and the key: it must
    change whenever the shapes, dtypes or the captured function's behaviour change."""

    def __init__(self, max_graphs: int | None = None, warmup: int = 1) -> None:
        self.max_graphs = max_graphs
        self.warmup = warmup  # eager runs before the capture: lazy handles, autotuning
        self._graphs: OrderedDict[Hashable, tuple] = OrderedDict()

    def __len__(self) -> int:
        return len(self._graphs)

    def __call__(self, key: Hashable, fn: Callable, args):
        """``fn(*args)`` through the graph captured for ``key`` (captured now if new).
        A failed capture raises, and nothing is kept for ``key``."""
        entry = self._graphs.get(key)
        if entry is None:
            entry = self._capture(fn, args)
            self._graphs[key] = entry
            while self.max_graphs is not None and len(self._graphs) > self.max_graphs:
                self._graphs.popitem(last=False)
        self._graphs.move_to_end(key)
        graph, static, out = entry
        tree_copy_(static, args)
        graph.replay()
        return tree_map(lambda t: t.clone(), out)

    def _capture(self, fn: Callable, args) -> tuple:
        static = tree_map(lambda t: t.clone(), args)
        device = _first_tensor(static).device
        side = torch.cuda.Stream(device=device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side), torch.no_grad():
            for _ in range(self.warmup):  # on copies: fn may write into its inputs
                fn(*tree_map(lambda t: t.clone(), static))
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # thread_local: another thread (the trainer beside a pool being made, the node's
        # ROS callbacks) may allocate and synchronise while this one captures.
        try:
            with torch.no_grad(), torch.cuda.graph(graph, capture_error_mode="thread_local"):
                out = fn(*static)
        except BaseException:
            torch.cuda.synchronize(device)  # a broken capture leaves work in flight
            raise
        return graph, static, out
