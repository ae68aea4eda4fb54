"""A generator pool that mixes scene kinds and sensors (``mix``) in every pool."""

import torch

from disrt_core.train import data as train_data
from disrt_core.train.config import DataSpec
from disrt_core.train.distributed import DistInfo


def test_pool_chunks_take_the_mix_entries_in_turn(anny_body, monkeypatch):
    made = []
    real = train_data.scene_generator

    def spy(spec, body, device, where, round_=0, part=0):
        gen = real(spec, body, device, where, round_, part)
        made.append((part, gen.config.scene, gen.config.sensor))
        return gen

    monkeypatch.setattr(train_data, "scene_generator", spy)
    spec = DataSpec(type="generator", samples=12, gen_batch=4, sim={"covers": [0]},
                    mix=[{"scene": "room", "sensor": "d435_424x240"},
                         {"scene": "bed", "sensor": "kinect2"}])
    pool = train_data.GeneratorPool(spec, anny_body, torch.device("cpu"), batch_size=4,
                                    seed=0, info=DistInfo(), where="test")
    batch = next(iter(pool.epoch(0)))
    assert batch["depth"].shape == (4, 1, 128, 54)
    assert made == [(0, "room", "d435_424x240"), (1, "bed", "kinect2"),
                    (2, "room", "d435_424x240")]
    assert torch.isfinite(pool.pool(0)["params"]).all()
