"""Training and evaluation data from the config's data sources (:class:`DataSpec`).

File sources (``shards``, ``slp``, ``bodypressure``) go through the pipeline of
:mod:`disrt_core.data.dataset` (seeded, unit-by-unit streaming over workers, exact resume
at a batch). A ``generator`` source generates a pool of samples on the training device with
:class:`disrt_core.sim.generator.SceneGenerator` (regenerated every ``refresh_every``
epochs, from seeds that depend only on the run seed, the round and the rank) and serves
shuffled batches from it, so no data leaves the GPU.

Batches are the pipeline's dicts (``depth`` [b,1,128,54] in [0,1], ``params`` [b,P],
``joints`` [b,24,3], ``gender`` [b,2], ``cover`` [b], ``index``, ``epoch``, ``seed``).

**DDP** [choice]: ``batch_size`` is the global batch of one optimizer step. Global batch i
is the same set of samples whatever the number of processes; rank r takes the r-th
contiguous slice of it (so the file readers only load their own samples, like a
DistributedSampler, and one process with batch B computes what two with B/2 each do).
A generator pool is made per rank (rank r generates its own 1/world of the pool).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from disrt_core.constants import const
from disrt_core.data import splits
from disrt_core.data.dataset import DataPipeline, MixedStream, batch_seed, make_loader
from disrt_core.data.source import NEUTRAL_GENDER, DataError, Source
from disrt_core.geometry.bedframe import normalize_depth
from disrt_core.train.config import ConfigError, DataSpec, RunSection, StageSection
from disrt_core.train.distributed import DistInfo
from disrt_core.train.prefetch import Prefetcher

MAX_LISTED = 5  # files named in a missing-files error; the count covers the rest


def derive_seed(*words: int) -> int:
    """A 63-bit seed from integers (independent streams per combination)."""
    state = np.random.SeedSequence([int(w) & 0xFFFFFFFF for w in words]).generate_state(
        2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


class UnitSubset(Source):
    """The units ``units`` of another source (whole subjects / files / shards)."""

    def __init__(self, source: Source, units: list[int]) -> None:
        self.source, self.units = source, list(units)
        self.name, self.model_id, self.param_dim = source.name, source.model_id, source.param_dim

    def unit_sizes(self) -> list[int]:
        sizes = self.source.unit_sizes()
        return [sizes[u] for u in self.units]

    def load_unit(self, index: int) -> Any:
        return self.source.load_unit(self.units[index])

    def sample_from(self, unit: Any, index: int) -> dict[str, Any]:
        return self.source.sample_from(unit, index)

    def check_unit(self, index: int) -> list[str]:
        return self.source.check_unit(self.units[index])


def build_source(spec: DataSpec, body, where: str, default_split: str = splits.TRAIN_POOL,
                 skip_bad: bool = False) -> Source:
    """A file source of the config (the body model is checked against its labels).

    Every file the split needs is checked now (:meth:`Source.check_files`: existence,
    headers against sizes, no full read), so a missing fit or a truncated frame stops the
    run before its first step with a :class:`DataError` listing them; with ``skip_bad``
    (the run skips bad samples anyway) that is a warning instead.
    """
    try:
        if spec.type == "shards":
            from disrt_core.data.synthetic import SyntheticShards

            source = SyntheticShards(spec.path, body_model=body)
            if spec.fraction is not None:
                n = len(source.unit_sizes())
                source = UnitSubset(source, list(range(max(1, round(spec.fraction * n)))))
        elif spec.type == "slp":
            from disrt_core.data.slp import N_POSES, SLPDataset

            if spec.subjects is not None:
                subjects = spec.subjects
            elif spec.fraction is not None:
                subjects = splits.fraction_subjects(spec.fraction)
            else:
                subjects = splits.split_subjects(spec.split or default_split)
            source = SLPDataset(spec.path, subjects, covers=spec.covers, depth=spec.depth,
                                vertices=spec.vertices, body_model=body,
                                poses=spec.poses or range(1, N_POSES + 1))
        elif spec.type == "bodypressure":
            from disrt_core.data.bodypressure import BodyPressureSD

            source = BodyPressureSD(spec.path, spec.stems, images=spec.images,
                                    vertices=spec.vertices, body_model=body)
        else:
            raise ConfigError(f"{where}: {spec.type!r} is not a file source")
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{where}.path: {exc}") from exc
    except DataError as exc:  # wrong content, or a body model that does not fit the labels
        raise DataError(f"{where}: {exc}") from exc
    except (KeyError, ValueError) as exc:  # unknown split, bad subjects / covers / options
        raise ConfigError(f"{where}: {exc}") from exc
    source.name = spec.name or spec.type
    problems = source.check_files()
    if problems:
        shown = "\n  ".join(problems[:MAX_LISTED])
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" \
            if len(problems) > MAX_LISTED else ""
        message = (f"{where}: {len(problems)} file(s) the {spec.type} source at {spec.path} "
                   f"needs are missing or unreadable:\n  {shown}{more}\n")
        if not skip_bad:
            raise DataError(f"{message}Fix them, narrow the split (subjects/poses/stems), or "
                            "set run.skip_bad: true to train without their samples")
        warnings.warn(f"{message}run.skip_bad is set: their samples will be skipped",
                      RuntimeWarning, stacklevel=2)
    if len(source) == 0:
        raise DataError(f"{where}: the {spec.type} source at {spec.path} has no samples")
    return source


class RankSlice(MixedStream):
    """A :class:`MixedStream` of global batches of which this process loads only its slice
    (rank r of w: samples ``r·B/w .. (r+1)·B/w`` of each global batch of B)."""

    def __init__(self, *args, rank: int = 0, world: int = 1, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.batch_size % world:
            raise ConfigError(f"batch_size {self.batch_size} must be a multiple of the number "
                              f"of processes ({world})")
        self.rank, self.world = rank, world

    def _make_batch(self, index, refs, cache, capacity):
        per = len(refs) // self.world if self.drop_last else -(-len(refs) // self.world)
        batch = super()._make_batch(index, refs[self.rank * per:(self.rank + 1) * per], cache,
                                    capacity)
        if batch.get("empty") and self.world > 1:
            # Every sample of this process's slice was filtered (NaN) or skipped: a batch
            # the others run and this one would not would hang the gradient all-reduce.
            # Take one valid sample of the whole global batch instead (if it has any; if
            # not, every process skips the batch alike).
            whole = super()._make_batch(index, refs, cache, capacity)
            if not whole.get("empty"):
                batch = {k: (v[:1] if isinstance(v, (torch.Tensor, list)) and k not in
                             ("skipped", "filtered") else v) for k, v in whole.items()}
                batch["skipped"], batch["filtered"] = [], []
        return batch


class FileData:
    """Training batches of one stage from file sources (see the module docstring)."""

    def __init__(self, sources: dict[str, Source], stage: StageSection, seed: int,
                 info: DistInfo, run: RunSection, pin_memory: bool) -> None:
        weights = ({s.name: s.weight for s in stage.data}
                   if stage.samples_per_epoch is not None else None)
        stream = RankSlice(sources, batch_size=stage.batch_size, weights=weights,
                           samples_per_epoch=stage.samples_per_epoch, seed=seed,
                           streams=run.streams, shuffle=True, drop_last=True,
                           skip_bad=run.skip_bad, rank=info.rank, world=info.world)
        self.pipeline = DataPipeline(stream, num_workers=run.num_workers, pin_memory=pin_memory)
        self.num_samples = int(sum(stream.counts()))
        self.batches = len(self.pipeline)

    def __len__(self) -> int:
        return self.batches

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[dict[str, Any]]:
        return self.pipeline.epoch(epoch, start_batch)

    def release(self) -> None:
        pass

    def state_dict(self) -> dict:
        return self.pipeline.state_dict()

    def check_state(self, state: dict) -> None:
        self.pipeline.check_state(state)


def _sim_config(spec: DataSpec, where: str, round_: int = 0, part: int = 0):
    """The SimConfig of a generator source; a list of sensors alternates by pool round, the
    entries of ``mix`` by generator call (``part``) within a pool."""
    from disrt_core.sim.generator import SimConfig

    sim = dict(spec.sim)
    if spec.mix:
        sim.update(spec.mix[part % len(spec.mix)])
    if isinstance(sim.get("sensor"), list):
        if not sim["sensor"]:
            raise ConfigError(f"{where}.sim.sensor: an empty list")
        sim["sensor"] = sim["sensor"][round_ % len(sim["sensor"])]
    try:
        return SimConfig(**sim)
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"{where}.sim: {exc}; SimConfig fields: "
                          f"{list(SimConfig.__dataclass_fields__)}") from None


_GENERATORS: dict[tuple, Any] = {}
_EVAL_SET: dict[str, Any] = {}  # the last generated held-out set (key, pool)


def scene_generator(spec: DataSpec, body, device: torch.device, where: str, round_: int = 0,
                    part: int = 0):
    """A :class:`~disrt_core.sim.generator.SceneGenerator` for the spec's ``sim`` settings
    (with its ``mix`` entry ``part``), shared between sources with the same settings, body
    model and device (building one calibrates the shape sampler, a few seconds on a CPU).
    The generators of one spec's mix are kept together; others are dropped."""
    import json

    from disrt_core.sim.generator import SceneGenerator

    config = _sim_config(spec, where, round_, part)
    key = (json.dumps(config.to_dict(), sort_keys=True, default=str), id(body), str(device))
    if key not in _GENERATORS:
        if len(_GENERATORS) >= max(1, len(spec.mix or ())):
            _GENERATORS.clear()  # they hold the body model and caches
        _GENERATORS[key] = SceneGenerator(config, body, device)
    return _GENERATORS[key]


def _generated(generator, count: int, chunk: int, seeds: list[int],
               stop: Callable[[], bool] | None = None) -> dict[str, torch.Tensor] | None:
    """``count`` samples in chunks of ``chunk`` (seed ``seeds[i]`` for chunk i), network
    depth normalised and stored as float16 (0.35 mm steps), labels float32.
    ``generator(i)`` gives the SceneGenerator of chunk i; None once ``stop()`` is true."""
    parts = []
    for i, start in enumerate(range(0, count, chunk)):
        if stop is not None and stop():
            return None
        out = generator(i).sample(min(chunk, count - start), seeds[i])
        depth = normalize_depth(out["depth"], out["bed_mm"][:, None, None])
        parts.append({"depth": depth[:, None].half(), "params": out["params"].float(),
                      "joints": out["joints"].float(), "cover": out["cover"].long(),
                      "posture": out["posture"].long()})
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def _pool_batch(pool: dict[str, torch.Tensor], idx: torch.Tensor, meta: dict) -> dict:
    n = len(idx)
    gender = const(NEUTRAL_GENDER, idx.device, torch.float32).expand(n, 2)  # no host sync
    return {"depth": pool["depth"][idx].float(), "params": pool["params"][idx],
            "joints": pool["joints"][idx], "cover": pool["cover"][idx],
            "posture": pool["posture"][idx], "gender": gender.contiguous(), **meta}


class GeneratorPool:
    """Training batches generated on the device (see the module docstring). With
    ``prefetch``, the next round's pool is made in the background (:mod:`prefetch`) while
    this one serves batches, up to the round of the stage's last epoch (``epochs`` and
    ``max_steps`` of the stage; without ``epochs`` nothing is made ahead)."""

    def __init__(self, spec: DataSpec, body, device: torch.device, batch_size: int, seed: int,
                 info: DistInfo, where: str, epochs: int | None = None,
                 max_steps: int | None = None, prefetch: bool = False) -> None:
        if batch_size % info.world:
            raise ConfigError(f"{where}: batch_size {batch_size} must be a multiple of the "
                              f"number of processes ({info.world})")
        self.spec, self.seed, self.info, self.device = spec, seed, info, device
        self.local_batch = batch_size // info.world
        self.local_samples = spec.samples // info.world
        if self.local_samples < self.local_batch:
            raise DataError(f"{where}: a pool of {spec.samples} samples gives no batch of "
                            f"{batch_size}; raise samples")
        sensors = spec.sim.get("sensor")
        for round_ in range(len(sensors) if isinstance(sensors, list) and sensors else 1):
            for part in range(len(spec.mix or [None])):
                _sim_config(spec, where, round_, part)  # check now, build when needed
        self.body, self.where = body, where
        self.model_id, self.param_dim = body.model_id, body.param_dim
        self.num_samples = self.local_samples * info.world
        self._round: int | None = None
        self._pool: dict[str, torch.Tensor] | None = None
        self.last_round: int | None = None
        if epochs:
            steps = epochs * len(self)
            steps = min(steps, max_steps) if max_steps else steps
            self.last_round = (-(-steps // len(self)) - 1) // spec.refresh_every
        self._prefetch = Prefetcher(self._make, device) if prefetch else None

    def __len__(self) -> int:
        return self.local_samples // self.local_batch

    def _make(self, round_: int, stop: Callable[[], bool] | None = None
              ) -> dict[str, torch.Tensor] | None:
        chunk = self.spec.gen_batch
        n_chunks = -(-self.local_samples // chunk)
        seeds = [derive_seed(self.seed, self.spec.seed, round_, self.info.rank, c, 0x9E)
                 for c in range(n_chunks)]

        def generator(part: int):
            return scene_generator(self.spec, self.body, self.device, self.where, round_,
                                   part)

        return _generated(generator, self.local_samples, chunk, seeds, stop)

    def pool(self, round_: int) -> dict[str, torch.Tensor]:
        if self._round != round_:
            self._pool = None  # free the old pool first
            made = self._prefetch.take(round_) if self._prefetch else None
            self._pool = made if made is not None else self._make(round_)
            self._round = round_
        if self._prefetch and self.last_round is not None and round_ < self.last_round:
            self._prefetch.start(round_ + 1)
        return self._pool

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[dict[str, Any]]:
        pool = self.pool(epoch // self.spec.refresh_every)
        gen = torch.Generator().manual_seed(derive_seed(self.seed, epoch, self.info.rank, 0x51))
        order = torch.randperm(self.local_samples, generator=gen).to(self.device)
        for i in range(start_batch, len(self)):
            idx = order[i * self.local_batch:(i + 1) * self.local_batch]
            yield _pool_batch(pool, idx, {"index": i, "epoch": epoch,
                                          "seed": batch_seed(self.seed, epoch, i)})

    def release(self) -> None:
        """Free the pool (end of the stage) and stop one being made ahead."""
        if self._prefetch:
            self._prefetch.close()
        self._pool, self._round = None, None

    def state_dict(self) -> dict:
        return {"seed": self.seed, "samples": self.spec.samples, "world": self.info.world,
                "batch": self.local_batch}

    def check_state(self, state: dict) -> None:
        mine = self.state_dict()
        diff = {k: (state.get(k), v) for k, v in mine.items() if k != "world"
                and state.get(k) != v}
        if diff:
            raise ValueError(f"the generator pool differs from the checkpoint's (saved, now): "
                             f"{diff}")


def build_train_data(stage: StageSection, body, device: torch.device, seed: int,
                     info: DistInfo, run: RunSection):
    """The training data of a stage (validated: paths, body model, non-empty)."""
    where = f"stages.{stage.name}.data"
    if stage.data[0].type == "generator":
        prefetch = run.prefetch_pools if run.prefetch_pools is not None else \
            device.type == "cuda"
        return GeneratorPool(stage.data[0], body, device, stage.batch_size, seed, info,
                             f"{where}.0", stage.epochs, stage.max_steps, prefetch)
    sources = {spec.name: build_source(spec, body, f"{where}.{i}", skip_bad=run.skip_bad)
               for i, spec in enumerate(stage.data)}
    pin = run.pin_memory if run.pin_memory is not None else device.type == "cuda"
    data = FileData(sources, stage, seed, info, run, pin)
    if len(data) == 0:
        raise DataError(f"{where}: {data.num_samples} samples per epoch give no full batch "
                        f"of {stage.batch_size}; lower stages.{stage.name}.batch_size")
    return data


def eval_batches(spec: DataSpec, body, device: torch.device, batch_size: int,
                 max_samples: int | None = None, num_workers: int = 0,
                 where: str = "eval.data") -> Iterator[dict[str, Any]]:
    """Every sample of a held-out set once, in stored order (SLP: the test split
    ``real_81_102`` unless the spec says otherwise; generator: ``spec.samples`` samples
    generated from ``spec.seed``, the same set on every call)."""
    if spec.type == "generator":
        count = min(spec.samples, max_samples or spec.samples)
        key = (repr(spec), count, id(body), str(device))
        if _EVAL_SET.get("key") != key:  # the same held-out set at every evaluation
            _EVAL_SET.clear()
            def generator(part: int):
                return scene_generator(spec, body, device, where, 0, part)

            chunk = spec.gen_batch
            seeds = [derive_seed(spec.seed, c, 0xE7A1) for c in range(-(-count // chunk))]
            _EVAL_SET.update(key=key, pool=_generated(generator, count, chunk, seeds))
        pool = _EVAL_SET["pool"]
        for i, start in enumerate(range(0, count, batch_size)):
            idx = torch.arange(start, min(start + batch_size, count), device=device)
            batch = _pool_batch(pool, idx, {"index": i, "epoch": 0, "seed": 0})
            batch["key"] = [f"generated/{spec.seed}/{int(j)}" for j in idx]
            batch["source"] = ["generator"] * len(idx)
            yield batch
        return
    source = build_source(spec, body, where, default_split=splits.TEST_SPLIT)
    pipeline = make_loader({source.name: source}, batch_size=batch_size, train=False,
                           num_workers=num_workers)
    seen = 0
    for batch in pipeline.epoch(0):
        if max_samples is not None and seen >= max_samples:
            return
        if max_samples is not None and seen + len(batch["key"]) > max_samples:
            keep = max_samples - seen
            batch = {k: (v[:keep] if isinstance(v, (torch.Tensor, list)) else v)
                     for k, v in batch.items()}
        seen += len(batch["key"])
        yield batch
