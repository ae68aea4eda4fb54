"""Generator pools made ahead in the background (``disrt_core.train.prefetch``): the same data
as made in line, made in the background thread, errors handed over, stopped when not needed."""

import threading

import pytest
import torch

from disrt_core.train import data as train_data
from disrt_core.train.config import DataSpec
from disrt_core.train.distributed import DistInfo
from disrt_core.train.prefetch import Prefetcher

SPEC = DataSpec(type="generator", samples=8, gen_batch=4, refresh_every=1,
                sim={"covers": [0], "sensor": "kinect2"})


def _pool(body, prefetch: bool, epochs: int = 3):
    return train_data.GeneratorPool(SPEC, body, torch.device("cpu"), batch_size=4, seed=3,
                                    info=DistInfo(), where="test", epochs=epochs,
                                    prefetch=prefetch)


def test_pools_made_ahead_equal_those_made_in_line(anny_body, monkeypatch):
    threads = []
    real = train_data.scene_generator

    def spy(*args, **kwargs):
        threads.append((args[4] if len(args) > 4 else kwargs.get("round_", 0),
                        threading.current_thread().name))
        return real(*args, **kwargs)

    monkeypatch.setattr(train_data, "scene_generator", spy)
    inline, ahead = _pool(anny_body, False), _pool(anny_body, True)
    for epoch in range(3):
        a = [b["params"] for b in inline.epoch(epoch)]
        b = [b["params"] for b in ahead.epoch(epoch)]
        assert all(torch.equal(x, y) for x, y in zip(a, b)) and len(a) == len(b) == 2
        # the next round is under way once this one serves batches; none after the last
        assert ahead._prefetch.pending == (epoch + 1 if epoch < 2 else None)
    made_ahead = {r for r, name in threads if name.startswith("pool-prefetch")}
    assert made_ahead == {1, 2}  # round 0 is needed at once; 1 and 2 were made ahead
    ahead.release()
    assert ahead._prefetch.pending is None


def test_an_error_while_making_ahead_reaches_the_training_thread(anny_body, monkeypatch):
    pool = _pool(anny_body, True, epochs=2)
    next(iter(pool.epoch(0)))
    pool.release()  # the round made ahead is dropped; make it again, failing
    real = pool._make

    def failing(round_, stop=None):
        if threading.current_thread().name.startswith("pool-prefetch"):
            raise RuntimeError("generator broke in the background")
        return real(round_, stop)

    pool._make = failing
    pool._prefetch.make = failing
    next(iter(pool.epoch(0)))
    with pytest.raises(RuntimeError, match="broke in the background"):
        next(iter(pool.epoch(1)))


def test_close_stops_a_pool_that_will_not_be_taken():
    """``make`` runs until told to stop (or gives up after very many chunks): ``close``
    must tell it, then wait for it."""
    ended, go = [], threading.Event()

    def make(round_, stop):
        for _ in range(10**8):
            go.set()
            if stop():
                ended.append("stopped")
                return None
        ended.append("ran out")
        return {"x": torch.zeros(1)}

    ahead = Prefetcher(make, torch.device("cpu"))
    ahead.start(1)
    assert go.wait(60)
    ahead.close()  # returns once the thread has stopped
    assert ended == ["stopped"]
    assert ahead.pending is None and ahead.take(1) is None
