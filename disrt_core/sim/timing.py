"""Stage timing of the scene generators."""

from __future__ import annotations

import contextlib
import time

import torch


class StageTimer:
    """``with timer("stage"):`` adds the stage's wall time (CUDA-synchronised) to a dict, and
    marks the stage for the torch profiler (``generator.<stage>``)."""

    def __init__(self, timings: dict[str, float] | None, device: torch.device) -> None:
        self.timings, self.cuda = timings, device.type == "cuda"

    @contextlib.contextmanager
    def __call__(self, name: str):
        with torch.profiler.record_function(f"generator.{name}"):
            if self.timings is None:
                yield
                return
            if self.cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            yield
            if self.cuda:
                torch.cuda.synchronize()
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start
