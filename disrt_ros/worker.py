"""Work off the ROS executor thread: one newest-frame slot per camera, batched processing.

:class:`BatchWorker` holds at most one pending job per key (camera). A job submitted while
the previous one for the same key still waits replaces it, and the replaced one is counted
as dropped: memory is bounded by the number of cameras and latency by about two processing
times, however fast frames arrive. A daemon thread takes the waiting jobs, oldest first, up
to ``max_batch`` at a time (at most one per camera, since there is one slot per camera), runs
``process(jobs) -> results`` once for the whole batch (the node: one batched ``predict`` for
all beds), then ``deliver(job, result)`` for each, and records the latency from the job's
``received`` time to the end of its delivery.

The node runs two of them: inference (+ the light outputs) and the display outputs (mesh,
cloud, overlay), so drawing a big mesh never delays the next inference.

Stopping: :meth:`BatchWorker.stop` lets the current batch finish and waits for it at most
``timeout`` seconds; the thread is a daemon, and :func:`running` lists the workers whose
thread is still alive, so that the process can end without waiting for a long torch call
(see :mod:`disrt_ros.process` for why it must then end with ``os._exit``).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_WORKERS: weakref.WeakSet[BatchWorker] = weakref.WeakSet()


def running() -> list[BatchWorker]:
    """The workers whose thread is alive (started and not yet ended)."""
    return [worker for worker in list(_WORKERS) if worker.alive]


@dataclass
class Job:
    """One unit of work: ``key`` names its slot (the camera), ``received`` is monotonic time."""

    key: str
    payload: Any
    received: float = field(default_factory=time.monotonic)


@dataclass
class KeyStats:
    """Counters of one slot."""

    submitted: int = 0
    dropped: int = 0  # replaced in the slot by a newer job before being processed
    processed: int = 0
    failed: int = 0


class LatencyWindow:
    """Percentiles over the last ``size`` latencies (seconds)."""

    def __init__(self, size: int = 500):
        self._values: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._values.append(seconds)

    def percentile(self, q: float) -> float:
        """q-th percentile (0..100) in seconds; NaN before the first value."""
        with self._lock:
            values = np.fromiter(self._values, dtype=np.float64)
        return float(np.percentile(values, q)) if values.size else float("nan")

    def values(self) -> list[float]:
        """The kept latencies, oldest first."""
        with self._lock:
            return list(self._values)

    def __len__(self) -> int:
        return len(self._values)


class BatchWorker:
    """Newest-job-per-key queue drained by one thread in batches (see module docstring).

    process: called on the worker thread with 1..max_batch jobs of distinct keys; returns
        one result per job, in order.
    deliver: called on the worker thread with each job and its result.
    on_error: called with (jobs, exception) when ``process`` or ``deliver`` raises; the
        worker keeps running.
    initializer: called once on the worker thread before the first job (the node sets the
        thread's torch CPU threads and warms the estimator up there); :meth:`start` returns
        when it has finished and re-raises its exception.
    """

    def __init__(self, keys: Iterable[str], process: Callable[[list[Job]], Sequence[Any]],
                 deliver: Callable[[Job, Any], None], *, max_batch: int = 8,
                 on_error: Callable[[list[Job], BaseException], None] | None = None,
                 initializer: Callable[[], None] | None = None,
                 name: str = "disrt-worker", latency_window: int = 500):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.keys = tuple(keys)
        self.max_batch = max_batch
        self.stats = {key: KeyStats() for key in self.keys}
        self.latency = LatencyWindow(latency_window)
        self.deliver_time = LatencyWindow(200)  # s to deliver one batch's results
        self.batches = 0
        self.last_batch_size = 0
        self._process, self._deliver, self._on_error = process, deliver, on_error
        self._initializer = initializer
        self._init_done = threading.Event()
        self._init_error: BaseException | None = None
        self._slots: dict[str, Job] = {}
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        _WORKERS.add(self)

    def start(self) -> BatchWorker:
        """Start the thread; returns once its ``initializer`` ran (raising what it raised,
        in which case the thread has ended). An exception while waiting (a signal's
        KeyboardInterrupt) asks the thread to stop and propagates."""
        try:
            self._thread.start()
            # Timed waits: a signal the kernel hands to another thread does not interrupt a
            # blocking wait here, and its Python handler runs only between two waits.
            while not self._init_done.wait(0.1):
                pass
        except BaseException:
            self.stop(timeout=0.0)
            raise
        if self._init_error is not None:
            raise self._init_error
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        """Ask the thread to finish its current batch and exit; waits up to ``timeout`` s.
        True if the thread has ended (or never started)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(max(timeout, 0.0))
        return not self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, job: Job) -> bool:
        """Queue ``job`` in its key's slot; False if it replaced (dropped) a waiting job."""
        if job.key not in self.stats:
            raise KeyError(f"unknown key {job.key!r}; this worker serves {list(self.keys)}")
        with self._cond:
            stats = self.stats[job.key]
            stats.submitted += 1
            replaced = job.key in self._slots
            if replaced:
                stats.dropped += 1
            self._slots[job.key] = job
            self._cond.notify()
        return not replaced

    def pending(self) -> int:
        with self._cond:
            return len(self._slots)

    def waiting(self, key: str) -> Job | None:
        """The job waiting in ``key``'s slot, if any."""
        with self._cond:
            return self._slots.get(key)

    def _take(self) -> list[Job] | None:
        with self._cond:
            while not self._slots and not self._stop:
                self._cond.wait(0.5)
            if self._stop:
                return None
            jobs = sorted(self._slots.values(), key=lambda j: j.received)[: self.max_batch]
            for job in jobs:
                del self._slots[job.key]
            return jobs

    def _run(self) -> None:
        try:
            if self._initializer is not None:
                self._initializer()
        except BaseException as error:  # handed to start(), which re-raises it
            self._init_error = error
            return
        finally:
            self._init_done.set()
        while (jobs := self._take()) is not None:
            self.batches += 1
            self.last_batch_size = len(jobs)
            try:
                results = self._process(jobs)
                if len(results) != len(jobs):
                    raise RuntimeError(f"process returned {len(results)} results for "
                                       f"{len(jobs)} jobs")
            except Exception as error:  # keep serving: the node reports it in diagnostics
                self._failed(jobs, error)
                continue
            start = time.perf_counter()
            for job, result in zip(jobs, results):
                try:
                    self._deliver(job, result)
                except Exception as error:
                    self._failed([job], error)
                    continue
                self.stats[job.key].processed += 1
                self.latency.add(time.monotonic() - job.received)
            self.deliver_time.add(time.perf_counter() - start)

    def _failed(self, jobs: list[Job], error: Exception) -> None:
        for job in jobs:
            self.stats[job.key].failed += 1
        if self._on_error is not None:
            self._on_error(jobs, error)
