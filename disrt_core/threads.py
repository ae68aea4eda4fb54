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


def inference_threads(device: str | torch.device = "cpu") -> int:
    """The torch CPU threads an inference thread takes by default: on the CPU one per core
    less one (at least one), so that a core stays free for the rest of the process (a ROS
    executor decoding frames) and the camera driver; elsewhere torch's own default.

    [choice, 2026-12-06] The bed monitor's ``small`` node on a 2-core machine: with both
    cores 15.6 Hz on one machine (2026-12-03) and 7.1-7.5 Hz on another (2026-12-05/06,
    where the inference thread's OpenMP threads wait for the executor and the camera
    player), with one 12.25 and 12.5 Hz on the same two (``benchmarks/bench_node.py``,
    ``node_small_cpu*``): one thread keeps the ≥ 10 Hz on both."""
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if torch.device(device).type != "cpu":
        return torch.get_num_threads()
    return max(1, torch.get_num_threads() - 1)
