"""One sample interface for every source, and the pipeline that mixes and streams them.

**Samples** (:mod:`disrt_core.data.source`): a dict with ``depth`` float32 [1,128,54] in
[0,1] (SPEC §7.6), ``params`` float32 [P] (x0, label frame, SPEC §1.1), ``joints`` float32
[24,3] m, ``cover`` (0/1/2), ``gender`` float32 [2], ``posture`` (-1 unknown), ``source``,
``key``, and where available ``label`` [162] and ``vertices_gt`` [V,3] (label frame).
Sources: :class:`~disrt_core.data.slp.SLPDataset`,
:class:`~disrt_core.data.bodypressure.BodyPressureSD`,
:class:`~disrt_core.data.synthetic.SyntheticShards`.

**Batches** (:class:`MixedStream`, :func:`make_loader`): the samples' arrays stacked into
torch tensors (``cover``/``posture`` int64; ``source``/``key`` lists of str; a key missing
from any sample of the batch is left out), plus ``index`` (the batch's position in the
epoch), ``epoch``, ``seed`` (for the batch's augmentation, :mod:`disrt_core.data.augment`)
and ``skipped`` (``"key: reason"`` of the samples left out of this batch).

**Order** [choice]. Per epoch, each source's samples are drawn unit by unit (a unit = a
shard, a BodyPressureSD file, an SLP subject) in a seeded order of units and of samples
within a unit, and cut into ``streams`` contiguous pieces. A stream mixes its pieces of
every source (seeded interleaving) after shuffling within windows of ``shuffle_window``
consecutive units, so it holds only a few units in memory at a time. Sources whose units
are memory maps (``random_access``: SLP, cached BodyPressureSD) are instead shuffled
globally, across all their units, as an in-memory dataset would be. Global batch ``i`` is
batch ``i // streams`` of stream ``i % streams``; DataLoader worker ``w`` runs the streams
``s ≡ w (mod num_workers)`` and the DataLoader's round-robin restores the global order. The
order depends only on ``(seed, epoch, streams)``, not on the number of workers, and
``start_batch`` resumes an epoch at any batch without loading what comes before.

**Mixing.** ``weights=None``: every sample of every source once per epoch. With weights
``{name: w}``, an epoch has ``samples_per_epoch`` samples (default: all sources' total),
``round(n·w/Σw)`` of them from each source, cycling through a source (a fresh permutation
each cycle) when it is shorter.

**Bad samples.** A :class:`~disrt_core.data.source.DataError` (missing file, wrong shape,
NaN) stops the epoch with its message, or with ``skip_bad=True`` drops the sample from its
batch and counts it (``DataPipeline.skips``); BodyPressureSD's NaN-pressure samples
(``FilteredSample``) are always dropped and counted apart as ``filtered``. Batches keep
their boundaries, so a batch can be smaller than ``batch_size``; one with no sample left
is not yielded (its ``index`` is skipped).
"""

from __future__ import annotations

import warnings
from collections import Counter, OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from disrt_core.data.bodypressure import FilteredSample
from disrt_core.data.source import REQUIRED_KEYS, DataError, Source

__all__ = ["REQUIRED_KEYS", "DataPipeline", "MixedStream", "collate", "make_loader"]


def _rng(*words: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(w) & 0xFFFFFFFF for w in words]))


def batch_seed(seed: int, epoch: int, index: int) -> int:
    """The augmentation seed of global batch ``index`` of ``epoch`` (63-bit int)."""
    state = np.random.SeedSequence([seed & 0xFFFFFFFF, epoch, index, 0xA6]).generate_state(2)
    return int(state[0]) << 31 ^ int(state[1])


def collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples into a batch (see the module docstring); keys missing from any sample
    are left out."""
    keys = [k for k in samples[0] if all(k in s for s in samples)]
    batch: dict[str, Any] = {}
    for key in keys:
        values = [s[key] for s in samples]
        if isinstance(values[0], str):
            batch[key] = values
        elif isinstance(values[0], (int, np.integer)):
            batch[key] = torch.tensor(values, dtype=torch.int64)
        else:
            batch[key] = torch.from_numpy(np.stack(values))
    return batch


class MixedStream(IterableDataset):
    """Batches mixed from several sources (see the module docstring).

    sources: ``{name: Source}`` (or a sequence, named by ``source.name``). weights: None
    (each sample once per epoch) or ``{name: weight}``. batch_size: samples per batch.
    streams: independent sample streams (a multiple of the DataLoader's workers).
    shuffle: seeded order (else stored order, e.g. for evaluation). drop_last: leave out
    each stream's last partial batch. skip_bad: drop and count bad samples.
    """

    def __init__(self, sources: Mapping[str, Source] | Sequence[Source], *, batch_size: int,
                 weights: Mapping[str, float] | None = None,
                 samples_per_epoch: int | None = None, seed: int = 0, streams: int = 1,
                 shuffle: bool = True, shuffle_window: int = 4, drop_last: bool = True,
                 skip_bad: bool = False) -> None:
        super().__init__()
        if not isinstance(sources, Mapping):
            sources = {s.name: s for s in sources}
        if not sources:
            raise ValueError("no sources given")
        self.names = list(sources)
        self.sources = [sources[n] for n in self.names]
        dims = {n: getattr(s, "param_dim", None) for n, s in zip(self.names, self.sources)}
        if len({d for d in dims.values() if d is not None}) > 1:
            raise DataError(f"sources have different parameter layouts {dims}: labels of one "
                            "body model only (SMPL: SLP + BodyPressureSD; Anny: own shards)")
        if weights is not None:
            unknown = set(weights) - set(self.names)
            if unknown or any(w < 0 for w in weights.values()) or not sum(weights.values()):
                raise ValueError(f"weights must be non-negative for sources {self.names}, "
                                 f"not all zero; got {dict(weights)}")
        if batch_size < 1 or streams < 1 or shuffle_window < 1:
            raise ValueError("batch_size, streams and shuffle_window must be >= 1")
        self.weights = None if weights is None else {n: float(weights.get(n, 0.0))
                                                     for n in self.names}
        self.sizes = [s.unit_sizes() for s in self.sources]
        self.samples_per_epoch = samples_per_epoch
        self.batch_size, self.seed, self.streams = batch_size, seed, streams
        self.shuffle, self.shuffle_window = shuffle, shuffle_window
        self.drop_last, self.skip_bad = drop_last, skip_bad
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Choose the epoch's order and the global batch to start from (resume)."""
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    # --- the plan: which sample goes where -------------------------------------------------

    def counts(self) -> list[int]:
        """Samples per source in one epoch."""
        totals = [int(sum(s)) for s in self.sizes]
        if self.weights is None:
            return totals
        n = self.samples_per_epoch or sum(totals)
        weight_sum = sum(self.weights.values())
        return [round(n * self.weights[name] / weight_sum) for name in self.names]

    def _source_refs(self, k: int, epoch: int, count: int) -> np.ndarray:
        """``count`` (unit, index) refs [count, 2] of source ``k``: unit-major, or in a global
        random order for a ``random_access`` source."""
        sizes = self.sizes[k]
        if count and not any(sizes):
            raise DataError(f"source {self.names[k]!r} has no samples")
        everywhere = self.shuffle and getattr(self.sources[k], "random_access", False)
        refs, total, cycle = [], 0, 0
        while total < count:
            rng = _rng(self.seed, epoch, k, cycle)
            units = rng.permutation(len(sizes)) if self.shuffle else np.arange(len(sizes))
            block = []
            for u in units:
                local = rng.permutation(sizes[u]) if self.shuffle else np.arange(sizes[u])
                block.append(np.stack([np.full(sizes[u], u), local], 1))
            block = np.concatenate(block)
            if everywhere:
                block = block[rng.permutation(len(block))]
            refs.append(block)
            total += len(block)
            cycle += 1
        return np.concatenate(refs)[:count] if refs else np.zeros((0, 2), np.int64)

    def stream_plan(self, epoch: int) -> list[np.ndarray]:
        """Per stream, its samples in order as rows (source, unit, index)."""
        pieces: list[list[np.ndarray]] = [[] for _ in range(self.streams)]
        for k, count in enumerate(self.counts()):
            refs = self._source_refs(k, epoch, count)
            bounds = np.linspace(0, len(refs), self.streams + 1).round().astype(int)
            for s in range(self.streams):
                piece = refs[bounds[s]:bounds[s + 1]]
                windowed = not getattr(self.sources[k], "random_access", False)
                if self.shuffle and windowed and len(piece):
                    rng = _rng(self.seed, epoch, k, s, 1)
                    starts = np.flatnonzero(np.r_[True, piece[1:, 0] != piece[:-1, 0]])
                    windows = np.zeros(len(piece), int)
                    windows[starts[::self.shuffle_window]] = 1
                    groups = np.split(piece, np.flatnonzero(windows)[1:])
                    piece = np.concatenate([g[rng.permutation(len(g))] for g in groups])
                pieces[s].append(np.column_stack([np.full(len(piece), k), piece]))
        plans = []
        for s in range(self.streams):
            merged = np.concatenate(pieces[s]) if pieces[s] else np.zeros((0, 3), np.int64)
            if self.shuffle and len(self.sources) > 1:
                # Interleave the sources at random, keeping each source's own order.
                labels = merged[:, 0].copy()
                _rng(self.seed, epoch, s, 2).shuffle(labels)
                order = np.concatenate([np.flatnonzero(merged[:, 0] == k)
                                        for k in range(len(self.sources))])
                slots = np.concatenate([np.flatnonzero(labels == k)
                                        for k in range(len(self.sources))])
                interleaved = np.empty_like(merged)
                interleaved[slots] = merged[order]
                merged = interleaved
            plans.append(merged)
        return plans

    def _stream_batches(self, plan: np.ndarray) -> int:
        if self.drop_last:
            return len(plan) // self.batch_size
        return -(-len(plan) // self.batch_size)

    def batch_layout(self, epoch: int | None = None,
                     plans: list[np.ndarray] | None = None) -> list[tuple[int, int]]:
        """(stream, batch in stream) of every global batch of the epoch, in order."""
        if plans is None:
            plans = self.stream_plan(self.epoch if epoch is None else epoch)
        per_stream = [self._stream_batches(p) for p in plans]
        if self.drop_last:
            per_stream = [min(per_stream)] * self.streams
        return [(s, j) for j in range(max(per_stream, default=0)) for s in range(self.streams)
                if j < per_stream[s]]

    def __len__(self) -> int:
        """Global batches in an epoch (the plan of epoch 0 when sizes do not vary)."""
        return len(self.batch_layout())

    # --- loading ------------------------------------------------------------------------

    def __iter__(self) -> Iterator[dict[str, Any] | None]:
        info = get_worker_info()
        workers, worker = (1, 0) if info is None else (info.num_workers, info.id)
        if self.streams % workers:
            raise ValueError(f"streams ({self.streams}) must be a multiple of the DataLoader's "
                             f"num_workers ({workers})")
        plans = self.stream_plan(self.epoch)
        layout = self.batch_layout(plans=plans)
        cache: OrderedDict[tuple[int, int], Any] = OrderedDict()
        capacity = (self.shuffle_window + 1) * len(self.sources) * (self.streams // workers)
        for index, (s, j) in enumerate(layout):
            if index < self.start_batch or s % workers != worker:
                continue
            refs = plans[s][j * self.batch_size:(j + 1) * self.batch_size]
            yield self._make_batch(index, refs, cache, capacity)

    def _unit(self, cache: OrderedDict, capacity: int, k: int, u: int) -> Any:
        """Unit ``u`` of source ``k``: LRU-cached, except random-access units (cheap memory
        maps), which stay open."""
        if (k, u) in cache:
            cache.move_to_end((k, u))
            return cache[(k, u)]
        try:
            unit = self.sources[k].load_unit(u)
        except DataError as exc:
            unit = exc  # remembered: every sample of a broken unit fails the same way
        cache[(k, u)] = unit
        evictable = [key for key in cache
                     if not getattr(self.sources[key[0]], "random_access", False)]
        for key in evictable[:max(0, len(evictable) - capacity)]:
            del cache[key]
        return unit

    def _make_batch(self, index: int, refs: np.ndarray, cache: OrderedDict,
                    capacity: int) -> dict[str, Any] | None:
        samples, skipped, filtered = [], [], []
        for k, u, i in refs:
            try:
                unit = self._unit(cache, capacity, int(k), int(u))
                if isinstance(unit, DataError):
                    raise unit
                samples.append(self.sources[k].sample_from(unit, int(i)))
            except FilteredSample as exc:
                filtered.append(f"{self.names[k]}: {exc}")
            except DataError as exc:
                if not self.skip_bad:
                    raise DataError(f"{exc} (pass skip_bad=True to skip bad samples and count "
                                    "them)") from exc
                skipped.append(f"{self.names[k]}: {exc}")
        meta = {"index": index, "epoch": self.epoch, "skipped": skipped, "filtered": filtered,
                "seed": batch_seed(self.seed, self.epoch, index)}
        if not samples:
            return {"empty": True, **meta}
        return {**collate(samples), **meta}


class DataPipeline:
    """A :class:`MixedStream` behind a ``torch.utils.data.DataLoader``, with skip counts.

    ``for batch in pipeline.epoch(e, start_batch=b)`` yields the batches of epoch ``e``
    from global batch ``b`` on (resume with ``b = last batch["index"] + 1``). Workers are
    started per epoch (so each sees the epoch's plan). ``pin_memory`` for GPU training.
    Workers are forked and run with one torch thread (DataLoader's default); do not call
    ``cv2.setNumThreads`` in a forked worker: it deadlocks once the parent used OpenCV.
    """

    def __init__(self, stream: MixedStream, *, num_workers: int = 0, pin_memory: bool = False,
                 prefetch_factor: int | None = 2) -> None:
        if num_workers and stream.streams % num_workers:
            raise ValueError(f"streams ({stream.streams}) must be a multiple of num_workers "
                             f"({num_workers})")
        self.stream, self.num_workers, self.pin_memory = stream, num_workers, pin_memory
        self.prefetch_factor = prefetch_factor if num_workers else None
        self.skips: Counter[str] = Counter()
        self.filtered: Counter[str] = Counter()
        self.examples: list[str] = []

    def __len__(self) -> int:
        return len(self.stream)

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[dict[str, Any]]:
        self.stream.set_epoch(epoch, start_batch)
        loader = DataLoader(self.stream, batch_size=None, num_workers=self.num_workers,
                            pin_memory=self.pin_memory, prefetch_factor=self.prefetch_factor)
        for batch in loader:
            for line in batch["skipped"]:
                self.skips[line.split(":", 1)[0]] += 1
                if len(self.examples) < 20:
                    self.examples.append(line)
            for line in batch["filtered"]:
                self.filtered[line.split(":", 1)[0]] += 1
            if not batch.get("empty"):
                yield batch
        if self.skips:
            warnings.warn(self.report(), stacklevel=2)

    def report(self) -> str:
        """One line (plus examples) on skipped and filtered samples so far."""
        lines = [f"skipped {sum(self.skips.values())} bad samples {dict(self.skips)}, "
                 f"filtered {sum(self.filtered.values())} {dict(self.filtered)}"]
        return "\n".join(lines + [f"  {e}" for e in self.examples])

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to restore the data order (with the same sources)."""
        s = self.stream
        return {"seed": s.seed, "streams": s.streams, "batch_size": s.batch_size,
                "shuffle_window": s.shuffle_window, "weights": s.weights,
                "samples_per_epoch": s.samples_per_epoch, "sizes": [int(sum(z)) for z in s.sizes],
                "skips": dict(self.skips), "filtered": dict(self.filtered)}

    def check_state(self, state: Mapping[str, Any]) -> None:
        """Refuse to resume with settings that would change the data order."""
        mine = self.state_dict()
        diff = {k: (state[k], mine[k]) for k in ("seed", "streams", "batch_size",
                                                 "shuffle_window", "weights",
                                                 "samples_per_epoch", "sizes")
                if k in state and state[k] != mine[k]}
        if diff:
            raise ValueError(f"the data pipeline differs from the checkpoint's (saved, now): "
                             f"{diff}; the batch order would not be restored")
        self.skips.update(state.get("skips", {}))
        self.filtered.update(state.get("filtered", {}))


def make_loader(sources: Mapping[str, Source] | Sequence[Source], *, batch_size: int = 32,
                weights: Mapping[str, float] | None = None, samples_per_epoch: int | None = None,
                seed: int = 0, train: bool = True, num_workers: int = 0,
                streams: int | None = None, pin_memory: bool = False, shuffle_window: int = 4,
                skip_bad: bool = False) -> DataPipeline:
    """The training (``train=True``: shuffled, full batches) or evaluation (stored order,
    every sample once, last batch partial) pipeline over ``sources``.
    ``streams`` defaults to ``max(1, num_workers)``; keep it fixed to keep the order."""
    stream = MixedStream(sources, batch_size=batch_size, weights=weights if train else None,
                         samples_per_epoch=samples_per_epoch if train else None, seed=seed,
                         streams=streams or max(1, num_workers), shuffle=train,
                         shuffle_window=shuffle_window, drop_last=train, skip_bad=skip_bad)
    return DataPipeline(stream, num_workers=num_workers, pin_memory=pin_memory)
