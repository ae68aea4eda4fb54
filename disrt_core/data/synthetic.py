"""Own synthetic data: the generator's shard folders as a dataset source.

A folder written by the generator (``manifest.json`` + ``shard-*.safetensors``, format in
:mod:`disrt_core.data.shards`) is read one shard (= one unit) at a time. Samples follow the
interface of :mod:`disrt_core.data.source`:

* ``depth``: the stored network-grid depth (mm, SLP convention, bed at ``bed_mm``) through
  the *real* branch of SPEC §7.6, ``normalize_depth(depth, bed_mm)``; the last row is kept
  (the generator's images come from the same preprocessing as real cameras, unlike
  BodyPressureSD's renders, whose row 127 DiSRT zeroes);
* ``params``/``joints`` as stored (label frame), ``cover``/``posture`` as stored;
* ``gender`` [0.5, 0.5]: the generator's bodies carry gender in their shape (Anny) or are
  neutral;
* ``key`` = ``<folder name>/<shard file>/<index>``.

Further stored arrays can be passed through with ``extras`` (``pressure``, ``K``,
``T_cam_bed``, ``params_cam``, ``depth_raw``, and ``depth_mm`` = the stored uint16 depth).

>>> source = SyntheticShards("data/synth", body_model=model)   # checks the model matches
>>> len(source), source.unit_sizes()[:3]
>>> for sample in source.iter_samples(): ...                   # shard by shard
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from disrt_core.data import shards
from disrt_core.data.source import (
    NEUTRAL_GENDER,
    DataError,
    Source,
    check_body_model,
    make_sample,
)
from disrt_core.geometry.bedframe import normalize_depth

EXTRAS = ("pressure", "K", "T_cam_bed", "params_cam", "depth_raw", "depth_mm")


class SyntheticShards(Source):
    """A generator shard folder (see the module docstring).

    root: the folder holding ``manifest.json``. body_model: optional; refused with a clear
    error when it is not the model the shards were generated with. extras: stored arrays
    to add to each sample. allow_incomplete: read a folder whose generation has not
    finished (``complete`` false in the manifest): only the shards listed so far.
    """

    name = "synthetic"

    def __init__(self, root: str | Path, *, body_model=None, extras: Sequence[str] = (),
                 allow_incomplete: bool = True) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: synthetic data folder not found; expected "
                                    "a folder written by `disrt-generate --out DIR`")
        try:
            manifest = shards.read_manifest(self.root)
        except ValueError as exc:
            raise DataError(str(exc)) from exc
        unknown = sorted(set(extras) - set(EXTRAS))
        if unknown:
            raise ValueError(f"unknown extras {unknown}; choose from {list(EXTRAS)}")
        if not manifest.get("complete", True) and not allow_incomplete:
            raise DataError(f"{self.root}: generation not complete (manifest says so); "
                            "wait for the generator or pass allow_incomplete=True")
        try:
            self.model_id = str(manifest["body_model"])
            listed = manifest["shards"]
            self.files = [self.root / entry["file"] for entry in listed]
            self.counts = [int(entry["count"]) for entry in listed]
        except (KeyError, TypeError) as exc:
            raise DataError(f"{self.root / shards.MANIFEST}: missing or malformed entry "
                            f"{exc}; expected 'body_model' and 'shards' [{{file, count}}]") from exc
        layout = manifest.get("param_layout") or {}
        self.param_dim = int(layout.get("param_dim", 0)) if isinstance(layout, dict) else 0
        if not self.files:
            raise DataError(f"{self.root}: the manifest lists no shards")
        missing = [f.name for f in self.files if not f.is_file()]
        if missing:
            raise FileNotFoundError(f"{self.root}: shard files listed in the manifest are "
                                    f"missing: {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if not self.param_dim:
            try:
                self.param_dim = int(shards.read_shard_metadata(self.files[0])["param_dim"])
            except (ValueError, KeyError) as exc:
                raise DataError(f"{self.files[0]}: {exc}") from exc
        check_body_model(body_model, model_id=self.model_id, param_dim=self.param_dim,
                         what=f"synthetic data {self.root}")
        self.extras = tuple(extras)
        self.manifest = manifest

    def unit_sizes(self) -> list[int]:
        return list(self.counts)

    def check_unit(self, index: int) -> list[str]:
        """A missing or unreadable shard (its header against its size; arrays not read)."""
        try:
            shards.read_shard_metadata(self.files[index])
        except (ValueError, OSError) as exc:
            return [str(exc)]
        return []

    def load_unit(self, index: int) -> dict[str, np.ndarray]:
        """All arrays of shard ``index``, checked against the schema and the manifest."""
        path = self.files[index]
        try:
            arrays, metadata = shards.read_shard(path)
        except ValueError as exc:
            raise DataError(str(exc)) from exc
        if int(metadata["param_dim"]) != self.param_dim or metadata["body_model"] != \
                self.model_id:
            raise DataError(f"{path}: shard holds {metadata['body_model']} parameters "
                            f"({metadata['param_dim']}), the manifest says {self.model_id} "
                            f"({self.param_dim})")
        if int(metadata["count"]) != self.counts[index]:
            raise DataError(f"{path}: {metadata['count']} samples, the manifest lists "
                            f"{self.counts[index]}")
        arrays["_file"] = np.array(path.name)
        return arrays

    def sample_from(self, unit: dict[str, np.ndarray], index: int) -> dict[str, Any]:
        key = f"{self.root.name}/{unit['_file']}/{index}"
        depth_mm = unit["depth"][index]
        depth = normalize_depth(depth_mm.astype(np.float32), np.float32(unit["bed_mm"][index]))
        extra = {}
        for name in self.extras:
            if name == "depth_mm":
                extra[name] = depth_mm
            elif name in unit:
                extra[name] = unit[name][index]
            else:
                raise DataError(f"{self.root}/{unit['_file']}: no '{name}' array stored "
                                "(generate with the option that writes it)")
        return make_sample(depth=depth[None], params=unit["params"][index],
                           joints=unit["joints"][index], cover=int(unit["cover"][index]),
                           gender=NEUTRAL_GENDER, posture=int(unit["posture"][index]),
                           source=self.name, key=key, **extra)

    def iter_samples(self) -> Iterator[dict[str, Any]]:
        """Every sample in stored order, one shard in memory at a time."""
        for index, count in enumerate(self.counts):
            unit = self.load_unit(index)
            for j in range(count):
                yield self.sample_from(unit, j)
