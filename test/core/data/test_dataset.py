"""The mixing / streaming pipeline: coverage, determinism, resume, ratios, locality, skips."""

import numpy as np
import pytest
import torch

from disrt_core.data.bodypressure import BodyPressureSD, FilteredSample
from disrt_core.data.dataset import MixedStream, collate, make_loader
from disrt_core.data.slp import SLPDataset
from disrt_core.data.source import NEUTRAL_GENDER, DataError, Source, make_sample


class Toy(Source):
    """In-memory source: unit u has sizes[u] samples; params = (source id, unit, index)."""

    def __init__(self, name, sizes, ident=0, bad=(), broken=(), filtered=(), param_dim=3):
        self.name, self.sizes, self.ident = name, list(sizes), ident
        self.bad, self.broken, self.filtered = set(bad), set(broken), set(filtered)
        self.param_dim, self.model_id = param_dim, "toy"
        self.loads = []

    def unit_sizes(self):
        return self.sizes

    def load_unit(self, u):
        self.loads.append(u)
        if u in self.broken:
            raise DataError(f"{self.name}/unit{u}: file missing")
        return u

    def sample_from(self, u, i):
        key = f"{self.name}/{u}/{i}"
        if (u, i) in self.bad:
            raise DataError(f"{key}: NaN depth")
        if (u, i) in self.filtered:
            raise FilteredSample(f"{key}: NaN pressure")
        params = np.zeros(self.param_dim, np.float32)
        params[:3] = [self.ident, u, i]
        return make_sample(depth=np.full((1, 128, 54), 0.5), params=params,
                           joints=np.zeros((24, 3)), cover=0, gender=NEUTRAL_GENDER, posture=-1,
                           source=self.name, key=key)


def keys(pipeline, epoch=0, start=0):
    return [b["key"] for b in pipeline.epoch(epoch, start)]


def flat(batches):
    return [k for b in batches for k in b]


def test_every_sample_once_and_evaluation_in_stored_order():
    a, b = Toy("a", [5, 7, 3]), Toy("b", [4, 4], ident=1)
    train = make_loader([a, b], batch_size=4, streams=3, seed=1)
    train.stream.drop_last = False
    seen = flat(keys(train))
    assert len(seen) == 23 and len(set(seen)) == 23
    evaluation = make_loader([a, b], batch_size=4, train=False)
    in_order = flat(keys(evaluation))
    assert in_order[:3] == ["a/0/0", "a/0/1", "a/0/2"] and in_order[-1] == "b/1/3"
    assert len(in_order) == 23 and len(evaluation) == 6  # last batch partial


def test_order_is_seeded_and_independent_of_the_worker_count():
    def pipeline(workers, seed=3):
        return make_loader([Toy("a", [20, 30, 10]), Toy("b", [25], ident=1)], batch_size=8,
                           streams=2, num_workers=workers, seed=seed)

    main = keys(pipeline(0))
    assert main == keys(pipeline(0))
    assert main != keys(pipeline(0), epoch=1) and main != keys(pipeline(0, seed=4))
    assert keys(pipeline(2)) == main  # two worker processes, same global order
    assert len(main) == len(pipeline(0)) == 2 * (42 // 8)  # drop_last per stream


def test_resume_at_a_batch_gives_the_same_tail():
    pipe = make_loader([Toy("a", [40, 30]), Toy("b", [33], ident=1)], batch_size=5, streams=3,
                       seed=7)
    full = list(pipe.epoch(2))
    tail = list(pipe.epoch(2, start_batch=7))
    assert [b["index"] for b in tail] == list(range(7, len(full)))
    for x, y in zip(full[7:], tail, strict=True):
        assert x["key"] == y["key"] and x["seed"] == y["seed"]
        torch.testing.assert_close(x["params"], y["params"])


def test_weights_fix_the_mix_and_cycle_a_short_source():
    big, small = Toy("big", [100] * 4), Toy("small", [30], ident=1)
    pipe = make_loader([big, small], batch_size=10, weights={"big": 3, "small": 1},
                       samples_per_epoch=400, seed=0)
    batches = list(pipe.epoch(0))
    sources = [s for b in batches for s in b["source"]]
    assert len(sources) == 400 and sources.count("small") == 100
    counts = np.bincount([int(k.split("/")[2]) for k in flat(b["key"] for b in batches)
                          if k.startswith("small")], minlength=30)
    assert counts.min() >= 3 and counts.max() <= 4  # 100 draws cycle the 30 samples
    mixed = sum(1 for b in batches if len(set(b["source"])) == 2)
    assert mixed >= 0.8 * len(batches)  # sources are interleaved within batches


def test_streams_load_few_units_at_a_time():
    source = Toy("s", [50] * 10)
    pipe = make_loader([source], batch_size=10, streams=2, shuffle_window=2, seed=5)
    batches = list(pipe.epoch(0))
    assert len(source.loads) <= 10 + 1  # each unit once per stream touching it
    for batch in batches:  # a batch draws from one window of <= 2 (+1 straddling) units
        units = {int(k.split("/")[1]) for k in batch["key"]}
        assert len(units) <= 3
    shuffled = flat(b["key"] for b in batches)
    assert shuffled != sorted(shuffled, key=lambda k: tuple(map(int, k.split("/")[1:])))


def test_random_access_sources_are_shuffled_across_units():
    source = Toy("r", [50] * 10)
    source.random_access = True
    pipe = make_loader([source], batch_size=10, streams=2, shuffle_window=1, seed=5)
    batches = list(pipe.epoch(0))
    spread = [len({k.split("/")[1] for k in b["key"]}) for b in batches]
    assert np.mean(spread) > 5  # ~6.5 distinct units of 10 in a batch of 10 draws
    assert len(source.loads) == 10  # each unit opened once, kept open
    assert sorted(flat(b["key"] for b in batches)) == sorted(
        f"r/{u}/{i}" for u in range(10) for i in range(50))


def test_bad_samples_raise_or_are_skipped_and_counted():
    def toy():
        return Toy("t", [6, 6], bad={(0, 2), (1, 5)}, filtered={(0, 4)})

    with pytest.raises(DataError, match=r"t/\d/\d: NaN depth .*pass skip_bad=True"):
        keys(make_loader([toy()], batch_size=4, seed=0))
    pipe = make_loader([toy()], batch_size=4, seed=0, skip_bad=True)
    with pytest.warns(UserWarning, match=r"skipped 2 bad samples \{'t': 2\}, filtered 1"):
        batches = list(pipe.epoch(0))
    assert sum(len(b["key"]) for b in batches) == 12 - 3
    assert sorted(len(b["key"]) for b in batches) == [3, 3, 3]  # boundaries kept
    assert any("t/1/5: NaN depth" in s for b in batches for s in b["skipped"])
    # A unit that cannot be loaded: all its samples skipped, reported once each.
    broken = make_loader([Toy("t", [6, 6], broken={1})], batch_size=6, skip_bad=True,
                         train=False)
    with pytest.warns(UserWarning, match="skipped 6"):
        assert flat(keys(broken)) == [f"t/0/{i}" for i in range(6)]
    assert "t/unit1: file missing" in broken.report()


def test_collate_and_layout_checks():
    batch = collate([Toy("a", [2]).sample_from(0, i) for i in range(2)])
    assert batch["depth"].shape == (2, 1, 128, 54) and batch["depth"].dtype == torch.float32
    assert batch["cover"].dtype == torch.int64 and batch["key"] == ["a/0/0", "a/0/1"]
    with pytest.raises(DataError, match="different parameter layouts"):
        MixedStream([Toy("a", [2]), Toy("b", [2], param_dim=5)], batch_size=2)
    with pytest.raises(ValueError, match="weights must be non-negative"):
        MixedStream([Toy("a", [2])], batch_size=2, weights={"zzz": 1})
    with pytest.raises(ValueError, match="multiple of num_workers"):
        make_loader([Toy("a", [2])], batch_size=2, num_workers=2, streams=3)
    pipe = make_loader([Toy("a", [20])], batch_size=2, seed=1)
    state = pipe.state_dict()
    make_loader([Toy("a", [20])], batch_size=2, seed=1).check_state(state)
    with pytest.raises(ValueError, match="would not be restored"):
        make_loader([Toy("a", [20])], batch_size=2, seed=2).check_state(state)


def test_real_readers_through_worker_processes(slp_fixture, bodypressure_fixture):
    slp = SLPDataset(slp_fixture.root, [1, 81], poses=slp_fixture.poses)
    bpsd = BodyPressureSD(bodypressure_fixture.root, bodypressure_fixture.stems,
                          cache=bodypressure_fixture.root / "cache")
    pipe = make_loader({"slp": slp, "bpsd": bpsd}, batch_size=5, num_workers=2, seed=0)
    pipe.stream.drop_last = False
    batches = list(pipe.epoch(0))
    n = sum(len(b["key"]) for b in batches)
    assert n == 18 + 6 and pipe.filtered == {"bpsd": 1}  # BodyPressureSD's NaN sample
    for b in batches:
        assert b["params"].shape == (len(b["key"]), 88) and b["depth"].shape[1:] == (1, 128, 54)
        assert b["label"].shape[1] == 162 and b["gender"].shape[1] == 2
