"""The next generator pool made in the background while training runs on the current one.

A ``generator`` training source (:class:`disrt_core.train.data.GeneratorPool`) regenerates
its pool every ``refresh_every`` epochs. Made in line, training stops for it: room scenes
through high-resolution sensors are generated at ~165 samples/s on an H200, so a 40,000-scene
pool held the GPU's training for ~4 minutes, about half of a rooms run's wall time
(``benchmarks/NOTES.md``). The generator is a long chain of small kernels and host
synchronisations; the training step is a few large ones: run side by side they share the GPU
well. :class:`Prefetcher` makes round r+1's pool in a thread, on its own CUDA stream, from
the moment round r's is in use.

The pool is the same either way: the generator draws only from its own seeded generators
(never the global RNG, which the training step uses), so a pool made in the background
equals the one made in line, and a resumed run gets the same data.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch
from torch import Tensor

Pool = dict[str, Tensor]


class Prefetcher:
    """One pool at a time made in a background thread: ``start(r)``, then ``take(r)``.

    ``make(round_, stop)`` builds round ``round_``'s pool; it should return None soon after
    ``stop()`` turns true (:meth:`close` asks it to, when the pool will not be needed)."""

    def __init__(self, make: Callable[[int, Callable[[], bool]], Pool | None],
                 device: torch.device) -> None:
        self.make, self.device = make, device
        self._round: int | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._pool: Pool | None = None
        self._error: BaseException | None = None

    @property
    def pending(self) -> int | None:
        """The round being made (or made and not yet taken), None if none."""
        return self._round

    def start(self, round_: int) -> None:
        """Begin making ``round_``'s pool (nothing if it is already under way)."""
        if self._round == round_:
            return
        self.close()
        self._round, self._pool, self._error = round_, None, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, args=(round_, self._stop),
                                        name=f"pool-prefetch-{round_}", daemon=True)
        self._thread.start()

    def _work(self, round_: int, stop: threading.Event) -> None:
        try:
            # No autograd graph for generated data (grad mode is per thread).
            with torch.no_grad():
                if self.device.type == "cuda":
                    stream = torch.cuda.Stream(self.device)
                    with torch.cuda.device(self.device), torch.cuda.stream(stream):
                        pool = self.make(round_, stop.is_set)
                    stream.synchronize()
                else:
                    pool = self.make(round_, stop.is_set)
            self._pool = pool
        except BaseException as error:  # handed to the training thread by take()
            self._error = error

    def take(self, round_: int) -> Pool | None:
        """``round_``'s pool, waiting for it if it is still being made; None if it was not
        started. An error raised while making it is raised here."""
        if self._thread is None or self._round != round_:
            return None
        self._thread.join()
        pool, error = self._pool, self._error
        self._thread, self._round, self._pool, self._error = None, None, None, None
        if error is not None:
            raise error
        if pool is not None and self.device.type == "cuda":
            # Made on the side stream: its memory must not be reused by that stream's later
            # allocations while the training stream still reads it.
            main = torch.cuda.current_stream(self.device)
            for tensor in pool.values():
                tensor.record_stream(main)
        return pool

    def close(self) -> None:
        """Stop a pool that will not be taken (at its next chunk) and forget it."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        self._thread, self._round, self._pool, self._error = None, None, None, None
