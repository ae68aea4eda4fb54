"""BodyPressureSD, the paper's synthetic training set, as a dataset source (SPEC §7.5).

Files (per stem ``train_slp_{lay,lside,rside}_{f,m}_{1to40,41to70,71to80}_{N}``)::

    <data>/synth/<stem>.p                 Python-2 pickle: images, markers_xyz_m, body_shape,
                                          joint_angles, root_xyz_shift, body_volume, body_height
    <data>/synth_depth/<stem>_depthims.p  overhead_depthcam (blanket),
                                          overhead_depthcam_noblanket, ..._onlyhuman: (128,54) u16
    <data>/GT_BP_data/bp2/<stem>_gt_vertices.npy   (N_valid, 6890, 3) vertex frame, optional

Pickles are read with the restricted unpickler (latin1, numpy arrays and builtins only).
One unit = one stem; ``N`` comes from the file name and is checked on load. As DiSRT:

* sample ``i`` shows the blanket image unless ``(i+1) % 3 == 0`` (2:1), ``images="disrt"``;
  ``"blanket"``, ``"noblanket"`` or ``"both"`` (2 samples per index) are options;
* the last image row is zeroed (``zero_last_row``) and the *synthetic* branch of SPEC §7.6
  normalises with the max over the pair (no-blanket image, shown image);
* a sample whose pressure image sums to NaN is skipped: it raises :class:`FilteredSample`,
  which the pipeline always drops and counts as "filtered" (not an error).

Cover: 0 for the no-blanket image, 1 for the blanket (DiSRT calls it ``cover1``). Gender from
the ``_f_``/``_m_`` token; posture from the label's root orientation.

Cache [choice]: each file holds one posture and gender, and unpickling one takes seconds, so
by default every stem is converted once into plain ``.npy`` arrays (labels, NaN flags, the
two depth stacks; ~2.8 GB for the 18 files) under ``cache`` (default
``<data>/synth_cache``, or the user cache ``~/.cache/disrt_ros/bodypressure`` when
``<data>`` is read-only), keyed by the pickles' sizes and times. They are memory-mapped, so
the source is ``random_access`` and the pipeline mixes all files in every batch, as DiSRT's
in-memory shuffle does. ``cache=False`` reads the pickles unit by unit instead.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from disrt_core.cache import cache_dir
from disrt_core.data import labels
from disrt_core.data.source import (
    DataError,
    Source,
    check_body_model,
    make_sample,
    npy_problem,
    pickle_problem,
    read_npy,
)
from disrt_core.geometry.bedframe import normalize_depth
from disrt_core.posture import posture_from_axis_angle
from disrt_core.safe_pickle import load_pickle

STEM_RE = re.compile(r"^(?P<split>[a-z]+)_slp_(?P<posture>lay|lside|rside)_(?P<gender>[fm])_"
                     r"(?P<range>\d+to\d+)_(?P<count>\d+)$")
#: The 18 training files of the paper (SPEC §7.5), 97,495 samples in all.
PAPER_COUNTS = {
    ("lay", "f"): (8549, 6608, 2184), ("lay", "m"): (8493, 6597, 2188),
    ("lside", "f"): (8136, 6158, 2058), ("lside", "m"): (7761, 5935, 2002),
    ("rside", "f"): (7677, 6006, 2010), ("rside", "m"): (7377, 5817, 1939),
}  # fmt: skip
RANGES = ("1to40", "41to70", "71to80")
PAPER_STEMS = tuple(f"train_slp_{posture}_{g}_{r}_{n}"
                    for (posture, g), counts in PAPER_COUNTS.items()
                    for r, n in zip(RANGES, counts, strict=True))
SYNTH_KEYS = ("images", "markers_xyz_m", "body_shape", "joint_angles", "root_xyz_shift",
              "body_volume", "body_height")
DEPTH_KEYS = ("overhead_depthcam", "overhead_depthcam_noblanket")
IMAGE_MODES = ("disrt", "blanket", "noblanket", "both")
CACHE_VERSION = 1
CACHED_ARRAYS = ("label", "nan", *DEPTH_KEYS)
GT_HINT = "BodyMAP's GT_BP_data (github.com/RCHI-Lab/BodyMAP)"
CACHE_HINT = "or delete that folder of the conversion cache to have it made again"
HINT = ("download BodyPressureSD (Healthcare-Robotics/BodyPressure, "
        "data_BP/download_BodyPressureSD.sh) into <data>/synth and <data>/synth_depth")


class FilteredSample(DataError):
    """A sample the reference pipeline leaves out (NaN pressure image); always skipped."""


def parse_stem(stem: str) -> dict[str, str]:
    """Fields of a BodyPressureSD stem (``train_slp_lay_f_1to40_8549``); ValueError if not."""
    match = STEM_RE.match(stem)
    if not match:
        raise ValueError(f"{stem!r} is not a BodyPressureSD file stem "
                         "(train_slp_<lay|lside|rside>_<f|m>_<a>to<b>_<N>)")
    return match.groupdict()


def _as_stack(value: Any, name: str, where: str, count: int, dtype=None) -> np.ndarray:
    try:
        array = np.asarray(value) if dtype is None else np.asarray(value, dtype)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{where}: '{name}' is not a stack of equal-shaped arrays ({exc})") \
            from exc
    if array.ndim == 0 or len(array) != count:
        raise DataError(f"{where}: '{name}' has {len(array) if array.ndim else 0} entries, "
                        f"the file name says {count}")
    return array


class BodyPressureSD(Source):
    """BodyPressureSD files under ``root`` (the ``<data>`` folder); see the module docstring.

    stems: file stems to read (default: the 18 paper files, which must all be present).
    vertices: add ``vertices_gt`` (label frame) from ``GT_BP_data/bp2``. cache: folder of
    the converted arrays, ``"auto"`` (``<data>/synth_cache``, or the user cache if ``<data>``
    is read-only) or False (read the pickles each time);
    missing conversions are made in the constructor (``prepare``), one file at a time.
    """

    name = "bodypressure"
    model_id = "smpl"
    param_dim = 88

    def __init__(self, root: str | Path, stems: Sequence[str] | None = None, *,
                 images: str = "disrt", zero_last_row: bool = True, vertices: bool = False,
                 body_model=None, cache: str | Path | bool = "auto",
                 prepare: bool = True) -> None:
        self.root = Path(root)
        if images not in IMAGE_MODES:
            raise ValueError(f"images must be one of {IMAGE_MODES}, got {images!r}")
        self.stems = list(PAPER_STEMS if stems is None else stems)
        if not self.stems:
            raise ValueError("no BodyPressureSD stems given")
        self.fields = [parse_stem(s) for s in self.stems]
        for folder in ("synth", "synth_depth"):
            if not (self.root / folder).is_dir():
                raise FileNotFoundError(f"{self.root / folder}: not found; {HINT}")
        missing = [p.name for s in self.stems for p in self.files(s)[:2] if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{self.root}: BodyPressureSD files missing: {missing[:4]}"
                                    f"{' ...' if len(missing) > 4 else ''}; {HINT}")
        self.images, self.zero_last_row, self.vertices = images, zero_last_row, vertices
        check_body_model(body_model, model_id="smpl", param_dim=88, what="BodyPressureSD")
        if cache is False or cache is None:
            self.cache = None
        else:
            if cache == "auto":
                cache = (self.root / "synth_cache" if os.access(self.root, os.W_OK)
                         else cache_dir("bodypressure"))
            self.cache = Path(cache)
        self.random_access = self.cache is not None
        if self.cache is not None and prepare:
            for stem in self.stems:
                self._cached(stem)

    def _cache_path(self, stem: str) -> Path:
        stat = [(p.stat().st_size, p.stat().st_mtime_ns) for p in self.files(stem)[:2]]
        key = hashlib.sha1(repr((CACHE_VERSION, stat)).encode()).hexdigest()[:16]
        return self.cache / f"{stem}-{key}"

    def _cached(self, stem: str) -> Path:
        """The stem's converted arrays, made now if missing (atomically: temp dir + rename)."""
        path = self._cache_path(stem)
        if path.is_dir():
            return path
        unit = self._read_pickles(stem)
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        for key in CACHED_ARRAYS:
            np.save(tmp / f"{key}.npy", np.ascontiguousarray(unit[key]))
        try:
            os.rename(tmp, path)
        except OSError:  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
        return path

    def files(self, stem: str) -> tuple[Path, Path, Path]:
        """(synth pickle, depth pickle, GT vertices) of a stem."""
        return (self.root / "synth" / f"{stem}.p",
                self.root / "synth_depth" / f"{stem}_depthims.p",
                self.root / "GT_BP_data" / "bp2" / f"{stem}_gt_vertices.npy")

    def unit_sizes(self) -> list[int]:
        per_index = 2 if self.images == "both" else 1
        return [per_index * int(f["count"]) for f in self.fields]

    def check_unit(self, index: int) -> list[str]:
        """Missing or unreadable files of one stem: its converted arrays (headers) when
        cached, else the ends of its two pickles; GT vertices when asked."""
        stem = self.stems[index]
        try:
            cached = self._cache_path(stem) if self.cache is not None else None
        except OSError:  # a pickle went missing: named below
            cached = None
        if cached is not None and cached.is_dir():
            problems = [npy_problem(cached / f"{key}.npy", f"the converted '{key}' array",
                                    CACHE_HINT) for key in CACHED_ARRAYS]
        else:
            problems = [pickle_problem(path, "BodyPressureSD pickle", HINT)
                        for path in self.files(stem)[:2]]
        if self.vertices:
            problems.append(npy_problem(self.files(stem)[2], "GT vertices", GT_HINT))
        return [p for p in problems if p]

    def load_unit(self, index: int) -> dict[str, Any]:
        """One stem: its cached arrays (memory-mapped) or its pickles, and GT vertices."""
        stem = self.stems[index]
        if self.cache is not None:
            path = self._cached(stem)
            unit = {"stem": stem, "gender": self.fields[index]["gender"]}
            for key in CACHED_ARRAYS:
                unit[key] = read_npy(path / f"{key}.npy", f"the converted '{key}' array",
                                     mmap=True, hint=CACHE_HINT)
        else:
            unit = self._read_pickles(stem)
        if self.vertices:
            verts_path = self.files(stem)[2]
            unit["vertices"] = read_npy(verts_path, "GT vertices", mmap=True, hint=GT_HINT)
            if unit["vertices"].ndim != 3 or unit["vertices"].dtype.kind != "f":
                raise DataError(f"{verts_path}: GT vertices are {unit['vertices'].dtype}"
                                f"{list(unit['vertices'].shape)}, expected float [N, V, 3]")
            valid = int((~np.asarray(unit["nan"])).sum())
            if unit["vertices"].shape[0] != valid:
                raise DataError(f"{verts_path}: {unit['vertices'].shape[0]} meshes, expected "
                                f"{valid} (one per valid sample)")
            unit["valid_index"] = np.cumsum(~np.asarray(unit["nan"])) - 1
        return unit

    def _read_pickles(self, stem: str) -> dict[str, Any]:
        """Both pickles of one stem, checked, with labels computed for all samples."""
        count = int(parse_stem(stem)["count"])
        synth_path, depth_path, _ = self.files(stem)
        synth, depth = (self._load_dict(p, keys) for p, keys in
                        ((synth_path, SYNTH_KEYS), (depth_path, DEPTH_KEYS)))
        where = str(synth_path)
        images = _as_stack(synth["images"], "images", where, count, np.float64)
        arrays = {k: _as_stack(synth[k], k, where, count, np.float64) for k in SYNTH_KEYS[1:]}
        gender = parse_stem(stem)["gender"]
        label = labels.bodypressure_label(**arrays, gender=gender)
        unit = {"stem": stem, "label": label,
                "nan": np.isnan(images.reshape(count, -1).sum(axis=1)), "gender": gender}
        for key in DEPTH_KEYS:
            stack = _as_stack(depth[key], key, str(depth_path), count)
            if stack.shape[1:] != (128, 54):
                raise DataError(f"{depth_path}: '{key}' images are {stack.shape[1:]}, "
                                "expected (128, 54)")
            unit[key] = stack
        return unit

    @staticmethod
    def _load_dict(path: Path, keys: Sequence[str]) -> dict:
        try:
            data = load_pickle(path, encoding="latin1")
        except Exception as exc:
            raise DataError(f"{path}: cannot read the pickle ({exc})") from exc
        if not isinstance(data, dict):
            raise DataError(f"{path}: expected a dict, got {type(data).__name__}")
        missing = [k for k in keys if k not in data]
        if missing:
            raise DataError(f"{path}: missing keys {missing}; has {sorted(data)}")
        return data

    def sample_from(self, unit: dict[str, Any], index: int) -> dict[str, Any]:
        if self.images == "both":
            i, blanket = index // 2, index % 2 == 1
        else:
            i = index
            blanket = {"blanket": True, "noblanket": False}.get(self.images, (i + 1) % 3 != 0)
        cover_name = "cover1" if blanket else "uncover"
        key = f"bodypressure/{unit['stem']}/{i}/{cover_name}"
        if unit["nan"][i]:
            raise FilteredSample(f"{self.name}:{key}: pressure image sums to NaN (left out "
                                 "as in BodyPressure/DiSRT)")
        reference = unit["overhead_depthcam_noblanket"][i].astype(np.float32)
        shown = unit["overhead_depthcam"][i].astype(np.float32) if blanket else reference.copy()
        if self.zero_last_row:
            reference[127:] = 0.0
            shown[127:] = 0.0
        bed = np.float32(max(reference.max(), shown.max()))  # synthetic branch, SPEC §7.6
        label = np.array(unit["label"][i], np.float64)  # a copy: memory maps are read-only
        root = torch.from_numpy(label[labels.ROOT])[None]
        extra = {"label": label.astype(np.float32)}
        if self.vertices:
            extra["vertices_gt"] = labels.vertex_frame_to_label(
                np.asarray(unit["vertices"][unit["valid_index"][i]], np.float32))
        return make_sample(depth=normalize_depth(shown, bed)[None],
                           params=labels.label_to_params(label),
                           joints=labels.label_joints_m(label), cover=int(blanket),
                           gender=label[labels.GENDER],
                           posture=int(posture_from_axis_angle(root)[0]), source=self.name,
                           key=key, **extra)
