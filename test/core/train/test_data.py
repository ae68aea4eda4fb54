import numpy as np
import pytest
import torch

from disrt_core.data.bodypressure import FilteredSample
from disrt_core.data.source import DataError, Source, make_sample
from disrt_core.train.config import ConfigError, DataSpec
from disrt_core.train.data import RankSlice, UnitSubset, build_source, derive_seed


class Numbers(Source):
    """16 samples in 2 units; sample i has params [i]; the ones in ``filtered`` are NaN."""

    name, model_id, param_dim = "numbers", "smpl", 1

    def __init__(self, filtered=()):
        self.filtered = set(filtered)

    def unit_sizes(self):
        return [8, 8]

    def load_unit(self, index):
        return index

    def sample_from(self, unit, index):
        i = unit * 8 + index
        if i in self.filtered:
            raise FilteredSample(f"sample {i}")
        return make_sample(depth=np.zeros((1, 128, 54)), params=np.array([i]),
                           joints=np.zeros((24, 3)), cover=0, gender=np.array([0.5, 0.5]),
                           posture=0, source=self.name, key=str(i))


def _ids(stream, epoch=0):
    stream.set_epoch(epoch)
    return [b["params"][:, 0].long().tolist() for b in stream if not b.get("empty")]


@pytest.mark.parametrize("shuffle", [False, True])
def test_ranks_split_every_global_batch(shuffle):
    """Like a DistributedSampler: the ranks' slices of global batch i are disjoint and
    together are batch i of one process."""
    kwargs = {"batch_size": 4, "seed": 3, "shuffle": shuffle, "drop_last": True}
    single = _ids(RankSlice({"n": Numbers()}, **kwargs))
    parts = [_ids(RankSlice({"n": Numbers()}, rank=r, world=2, **kwargs)) for r in (0, 1)]
    assert len(single) == 4
    for whole, a, b in zip(single, *parts):
        assert len(a) == len(b) == 2 and a + b == whole
    if shuffle:
        assert sorted(i for part in single for i in part) == list(range(16))
        assert single[0] != [0, 1, 2, 3]
    with pytest.raises(ConfigError, match="multiple of the number of processes"):
        RankSlice({"n": Numbers()}, batch_size=3, world=2)


def test_a_rank_with_only_filtered_samples_still_gets_a_batch():
    kwargs = {"batch_size": 4, "shuffle": False, "drop_last": True}
    rank1 = _ids(RankSlice({"n": Numbers(filtered={2, 3})}, rank=1, world=2, **kwargs))
    assert rank1[0] == [0]  # the first valid sample of the global batch
    everything = Numbers(filtered=set(range(4)))
    ranks = [_ids(RankSlice({"n": everything}, rank=r, world=2, **kwargs)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 3  # a fully filtered batch is skipped by all


def test_unit_subset_and_seeds():
    sub = UnitSubset(Numbers(), [1])
    assert len(sub) == 8 and sub[0]["key"] == "8"
    assert derive_seed(1, 2) == derive_seed(1, 2) != derive_seed(2, 1)
    assert 0 <= derive_seed(2**40, -1) < 2**63
    torch.manual_seed(derive_seed(0, 0))  # a valid torch seed


def test_generator_sensor_list_alternates_by_round():
    from disrt_core.train.config import DataSpec
    from disrt_core.train.data import _sim_config

    spec = DataSpec(type="generator", sim={"sensor": ["kinect2", "d435"], "noise": False})
    assert [_sim_config(spec, "x", r).sensor for r in range(3)] == ["kinect2", "d435", "kinect2"]
    with pytest.raises(ConfigError, match=r"x.sim: .*SimConfig fields"):
        _sim_config(DataSpec(type="generator", sim={"sensr": "d435"}), "x")


def test_a_split_with_missing_files_is_refused_when_built(data_root, smpl_both):
    """Seven subjects' fits of pose 45 are missing (the fixture has pose 1 only): named
    (five, then the count) before any sample is read, or a warning with skip_bad."""
    spec = DataSpec(type="slp", path=str(data_root["root"]), subjects=[1, 2, 3, 4, 5, 6, 8],
                    poses=[1, 45])
    with pytest.raises(DataError, match=r"^here: 7 file\(s\) the slp source at .* needs are "
                       r"missing or unreadable:\n(  .*/proc_45.pkl: SMPL fit not found.*\n){5}"
                       r"  \.\.\. and 2 more\n.*run.skip_bad: true") as info:
        build_source(spec, smpl_both, "here")
    assert "p001/proc_45.pkl" in str(info.value) and "p006/proc_45.pkl" not in str(info.value)
    with pytest.warns(RuntimeWarning, match=r"7 file\(s\)(.|\n)*samples will be skipped"):
        source = build_source(spec, smpl_both, "here", skip_bad=True)
    assert len(source) == 7 * 2 * 3
    spec.poses = [1]
    assert len(build_source(spec, smpl_both, "here")) == 7 * 3
