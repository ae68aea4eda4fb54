"""CPU thread count as a scoped setting.

torch's CPU reductions split work by thread, so the last bits of a float32 result depend
on ``torch.get_num_threads()``. Code whose output must not depend on the calling process
(body-model rest measurements, generator shards that must be identical whatever the
number of worker processes) runs its arithmetic inside :func:`cpu_threads`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def cpu_threads(device: str | torch.device = "cpu", threads: int = 1) -> Iterator[None]:
    """Run torch on ``threads`` CPU threads inside the block when ``device`` is the CPU
    (on a GPU the block runs unchanged); the previous count is restored on exit."""
    if torch.device(device).type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
