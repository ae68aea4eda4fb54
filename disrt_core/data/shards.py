"""Synthetic-data shards: the format the generator writes and the dataset reader streams.

A dataset is a folder with ``manifest.json`` and ``shard-00000.safetensors``, ... Each shard
holds ``count`` samples as stacked arrays (first dimension = sample), so a reader loads one
shard at a time and never the whole set. Safetensors stores only plain arrays (no pickle),
is memory-mappable, and has a string header for the shard's metadata.

Per-sample arrays (``SAMPLE_SCHEMA``; P = body model's ``param_dim``):

============== ========== =========== ===================================================
key            dtype      shape       meaning
============== ========== =========== ===================================================
depth          uint16     128×54      network-grid depth in mm, SLP convention: the bed
                                      surface at ``bed_mm``, 0 = no reading (what SLP's
                                      cleaned depth arrays hold; normalise with
                                      ``geometry.bedframe.normalize_depth``)
bed_mm         float32    ()          camera-to-bed distance ``depth`` is referenced to
params         float32    P           body parameters in the label (bed) frame (SPEC §1.1)
params_cam     float32    P           the same body in the camera optical frame
joints         float32    24×3        joints, label frame, m
cover          uint8      ()          0 uncover, 1 cover1 (thin sheet), 2 cover2 (blanket)
posture        uint8      ()          ``disrt_core.posture.POSTURES`` index
pressure       float16    192×84      pressure on the SLP mat grid, kPa
K              float32    3×3         intrinsics of the raw sensor frame, px
T_cam_bed      float32    4×4         pose of the label frame in the camera optical frame
                                      (``p_cam = T_cam_bed @ p_bed``), m
depth_raw      uint16     H×W         optional: the raw sensor frame, mm, 0 = no reading
============== ========== =========== ===================================================

Shard header metadata (all strings): ``format`` (``FORMAT``), ``count``, ``body_model``
(model_id), ``param_dim``, ``shard_index``. ``manifest.json``: ``format``,
``generator_version``, ``body_model``, ``param_layout``, ``settings`` (every generator
option and the seed), ``shards`` (list of ``{"file", "count"}``), ``total``, ``complete``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file

FORMAT = "disrt-shard-1"
MANIFEST = "manifest.json"

#: key -> (dtype, shape with "P" for param_dim, required)
SAMPLE_SCHEMA: dict[str, tuple[np.dtype, tuple, bool]] = {
    "depth": (np.dtype(np.uint16), (128, 54), True),
    "bed_mm": (np.dtype(np.float32), (), True),
    "params": (np.dtype(np.float32), ("P",), True),
    "params_cam": (np.dtype(np.float32), ("P",), True),
    "joints": (np.dtype(np.float32), (24, 3), True),
    "cover": (np.dtype(np.uint8), (), True),
    "posture": (np.dtype(np.uint8), (), True),
    "pressure": (np.dtype(np.float16), (192, 84), True),
    "K": (np.dtype(np.float32), (3, 3), True),
    "T_cam_bed": (np.dtype(np.float32), (4, 4), True),
    "depth_raw": (np.dtype(np.uint16), (None, None), False),
}


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.safetensors"


def validate(arrays: dict[str, np.ndarray], param_dim: int, source: str = "shard") -> int:
    """Check keys, dtypes and per-sample shapes against ``SAMPLE_SCHEMA``; return the count."""
    missing = [k for k, (_, _, required) in SAMPLE_SCHEMA.items() if required and k not in arrays]
    if missing:
        raise ValueError(f"{source}: missing arrays {missing}")
    unknown = sorted(set(arrays) - set(SAMPLE_SCHEMA))
    if unknown:
        raise ValueError(f"{source}: unknown arrays {unknown}; known: {list(SAMPLE_SCHEMA)}")
    counts = {k: v.shape[0] if v.ndim else -1 for k, v in arrays.items()}
    if len(set(counts.values())) != 1 or -1 in counts.values():
        raise ValueError(f"{source}: arrays disagree on the sample count: {counts}")
    for key, value in arrays.items():
        dtype, shape, _ = SAMPLE_SCHEMA[key]
        expected = tuple(param_dim if s == "P" else s for s in shape)
        got = value.shape[1:]
        if value.dtype != dtype or len(got) != len(expected) or any(
            e is not None and g != e for g, e in zip(got, expected)
        ):
            raise ValueError(f"{source}: '{key}' is {value.dtype}{list(got)} per sample, "
                             f"expected {dtype}{[('*' if e is None else e) for e in expected]}")
    return next(iter(counts.values()))


def write_shard(path: str | Path, arrays: dict[str, np.ndarray], *, body_model: str,
                param_dim: int, shard_index: int) -> int:
    """Validate and write one shard atomically (temp file + rename); return its sample count."""
    path = Path(path)
    count = validate(arrays, param_dim, str(path))
    metadata = {"format": FORMAT, "count": str(count), "body_model": body_model,
                "param_dim": str(param_dim), "shard_index": str(shard_index)}
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return count


def read_shard_metadata(path: str | Path) -> dict[str, str]:
    """The shard's header metadata, without reading its arrays (safetensors checks that the
    header covers the file's size, so a truncated shard fails here already)."""
    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{path}: not a readable shard ({exc}); the file is truncated or "
                         "damaged: generate it again") from exc
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} shard (format={metadata.get('format')!r})")
    return metadata


def read_shard(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """All arrays of one shard and its metadata, validated."""
    metadata = read_shard_metadata(path)
    try:
        arrays = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{path}: cannot read the shard's arrays ({exc}); the file is "
                         "truncated or damaged: generate it again") from exc
    validate(arrays, int(metadata["param_dim"]), str(path))
    return arrays, metadata


def write_manifest(root: str | Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` atomically."""
    path = Path(root) / MANIFEST
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_manifest(root: str | Path) -> dict[str, Any]:
    """The dataset's manifest; a clear error when the folder is not a shard dataset."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{root}: no {MANIFEST}; expected a folder written by "
                                "`disrt-generate --out DIR`")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); the generation was interrupted "
                         "while writing it, or the file was damaged") from exc
