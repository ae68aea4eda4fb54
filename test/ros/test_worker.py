"""BatchWorker (newest frame per camera, batching, drops, errors) and the diagnostics helpers."""

from __future__ import annotations

import os
import signal
import threading
import time
from signal import SIGINT

import pytest

from disrt_ros.worker import BatchWorker, Job, LatencyWindow, running

TIMEOUT = 60.0  # generous: only a failing test waits this long (shared, loaded CI machines)


class Gate:
    """A process function that blocks until released, recording the batches it saw."""

    def __init__(self):
        self.batches: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, jobs):
        self.batches.append([job.payload for job in jobs])
        self.entered.set()
        assert self.release.wait(TIMEOUT)
        return [job.payload.upper() for job in jobs]


def wait_until(predicate, timeout=TIMEOUT):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.005)
    return False


def test_newest_frame_wins_and_drops_are_counted():
    gate, delivered = Gate(), []
    worker = BatchWorker(["a"], gate, lambda job, r: delivered.append(r)).start()
    try:
        worker.submit(Job("a", "f0"))
        assert gate.entered.wait(TIMEOUT)  # f0 is being processed; the slot is free again
        assert worker.submit(Job("a", "f1")) is True
        for i in range(2, 6):
            assert worker.submit(Job("a", f"f{i}")) is False  # replaces the waiting frame
        assert worker.pending() == 1
        gate.release.set()
        assert wait_until(lambda: len(delivered) == 2)
    finally:
        worker.stop()
    assert delivered == ["F0", "F5"]
    assert gate.batches == [["f0"], ["f5"]]
    stats = worker.stats["a"]
    assert (stats.submitted, stats.dropped, stats.processed, stats.failed) == (6, 4, 2, 0)
    assert len(worker.latency) == 2


def test_cameras_are_batched_oldest_first_up_to_max_batch():
    gate, delivered = Gate(), []
    keys = ["a", "b", "c"]
    worker = BatchWorker(keys, gate, lambda job, r: delivered.append((job.key, r)),
                         max_batch=2).start()
    try:
        worker.submit(Job("a", "a0"))
        assert gate.entered.wait(TIMEOUT)
        now = time.monotonic()
        worker.submit(Job("c", "c1", now))
        worker.submit(Job("a", "a1", now + 1))
        worker.submit(Job("b", "b1", now + 2))
        gate.release.set()
        assert wait_until(lambda: len(delivered) == 4)
    finally:
        worker.stop()
    assert gate.batches == [["a0"], ["c1", "a1"], ["b1"]]
    assert worker.batches == 3


def test_errors_are_reported_and_the_worker_keeps_serving():
    errors, delivered = [], []

    def process(jobs):
        if jobs[0].payload == "bad":
            raise RuntimeError("boom")
        return [j.payload for j in jobs]

    def deliver(job, result):
        if result == "bad-deliver":
            raise ValueError("cannot publish")
        delivered.append(result)

    worker = BatchWorker(["a"], process, deliver,
                         on_error=lambda jobs, e: errors.append((len(jobs), str(e)))).start()
    try:
        for count, payload in enumerate(("bad", "bad-deliver", "good"), start=1):
            worker.submit(Job("a", payload))
            assert wait_until(lambda n=count: len(errors) + len(delivered) == n)
    finally:
        worker.stop()
    assert errors == [(1, "boom"), (1, "cannot publish")]
    assert delivered == ["good"]
    assert worker.stats["a"].failed == 2 and worker.stats["a"].processed == 1
    with pytest.raises(KeyError, match="unknown key"):
        worker.submit(Job("zzz", "x"))
    with pytest.raises(ValueError, match="max_batch"):
        BatchWorker(["a"], process, deliver, max_batch=0)


def test_stop_ends_the_thread():
    worker = BatchWorker(["a"], lambda jobs: jobs, lambda job, r: None).start()
    worker.stop(timeout=TIMEOUT)
    assert not worker._thread.is_alive()


def test_stop_gives_up_after_its_timeout_and_running_lists_the_busy_worker():
    """A batch that takes long is not waited for past the timeout (the process decides what
    to do with a thread still busy: disrt_ros.process)."""
    gate = Gate()
    worker = BatchWorker(["a"], gate, lambda job, r: None).start()
    worker.submit(Job("a", "f0"))
    assert gate.entered.wait(TIMEOUT)
    assert worker.stop(timeout=0.0) is False and worker.stopping
    assert worker in running()
    gate.release.set()
    assert wait_until(lambda: not worker.alive)
    assert worker not in running() and worker.stop(timeout=0.0) is True


@pytest.fixture
def sigint_raises():
    """Python's own SIGINT handler (KeyboardInterrupt), as the node's process installs one:
    a test run started in the background by a non-interactive shell inherits SIGINT
    ignored, and then no signal would reach the test."""
    previous = signal.signal(SIGINT, signal.default_int_handler)
    yield
    signal.signal(SIGINT, previous)


def test_interrupted_start_stops_the_thread(sigint_raises):
    """A signal (KeyboardInterrupt in the main thread) while start() waits for a long
    initializer (the node's warm-up): start re-raises it and the thread is asked to stop."""
    release = threading.Event()
    entered = threading.Event()

    def init():
        entered.set()
        release.wait(TIMEOUT)

    worker = BatchWorker(["a"], lambda jobs: jobs, lambda job, r: None, initializer=init)
    threading.Thread(target=lambda: (entered.wait(TIMEOUT), os.kill(os.getpid(), SIGINT)),
                     daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        worker.start()
    assert worker.stopping and worker in running()
    release.set()
    assert wait_until(lambda: not worker.alive)  # ends once the initializer returns


def test_initializer_runs_on_the_worker_thread_before_start_returns():
    seen = []

    def init():
        time.sleep(0.05)  # start() must wait for it
        seen.append(threading.current_thread().name)

    def process(jobs):
        seen.append(threading.current_thread().name)
        return [None] * len(jobs)

    worker = BatchWorker(["a"], process, lambda job, r: None, initializer=init,
                         name="infer-thread").start()
    assert seen == ["infer-thread"]
    worker.submit(Job("a", 1))
    assert wait_until(lambda: len(seen) == 2)
    assert seen == ["infer-thread", "infer-thread"]
    worker.stop(timeout=TIMEOUT)


def test_initializer_error_is_raised_by_start_and_ends_the_thread():
    def init():
        raise RuntimeError("no model")

    worker = BatchWorker(["a"], lambda jobs: jobs, lambda job, r: None, initializer=init)
    with pytest.raises(RuntimeError, match="no model"):
        worker.start()
    worker._thread.join(TIMEOUT)
    assert not worker._thread.is_alive()


def test_latency_window_percentiles():
    window = LatencyWindow(size=100)
    assert window.percentile(50) != window.percentile(50)  # NaN before any value
    for i in range(1, 201):  # only the last 100 (101..200) are kept
        window.add(float(i))
    assert window.percentile(50) == pytest.approx(150.5)
    assert window.percentile(99) == pytest.approx(199.01)
    assert len(window) == 100
