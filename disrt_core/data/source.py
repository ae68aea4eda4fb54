"""The one sample interface every dataset source produces, and the base class of sources.

A **sample** is a dict (numpy arrays, so worker processes pass it cheaply; the pipeline
collates batches into torch tensors):

============= ========= ============ ======================================================
key           dtype     shape        meaning
============= ========= ============ ======================================================
depth         float32   [1,128,54]   network input in [0, 1] (SPEC §7.6): bed ≈ 1, body < 1,
                                     0 = ≥715 mm above the bed or no reading; row 0 = head
params        float32   [P]          x0 in the label frame (SPEC §1.1), the body model's
                                     layout (88 for SMPL, 84 for Anny)
joints        float32   [24,3]       joints, label frame, metres (SLP: label[0:72] / 1000)
cover         int64     ()           0 uncover, 1 cover1 (thin sheet), 2 cover2 (blanket)
gender        float32   [2]          one-hot [1,0] female, [0,1] male; [0.5,0.5] when the
                                     body model carries gender in its shape (Anny)
posture       int64     ()           ``disrt_core.posture.POSTURES`` index, -1 unknown
source        str                    source name (``slp``, ``bodypressure``, ``synthetic``)
key           str                    ids for reports, e.g. ``slp/danaLab/00081/cover1/000012``
vertices_gt   float32   [V,3]        optional (SLP with GT vertex files): label frame, m
label         float32   [162]        optional (SLP, BodyPressureSD): SPEC §1.2 label vector
============= ========= ============ ======================================================

Unlabelled sources (SLP simLab) leave out ``params``, ``joints`` and ``label``.

A **source** is a sequence of *units* (a subject, a pickle file, a shard): the pipeline
loads one unit at a time, so a source never has to hold all its samples. Subclasses give
``unit_sizes()``, ``load_unit(i)`` (anything ``sample_from`` understands) and
``sample_from(unit, j)``. ``source[i]`` gives random access through a one-unit cache.
Sources whose units are cheap to open (memory maps) set ``random_access`` so the pipeline
draws their samples in a global random order.

**Files.** Readers load ``.npy`` files through :func:`read_npy` and pickles through
``safe_pickle``, so a missing, truncated or garbage file is a :class:`DataError` naming the
file (which ``skip_bad`` skips). ``check_unit(i)`` lists, cheaply (existence, ``.npy``
headers against file sizes, pickle ends), the files unit ``i`` needs that are missing or
unreadable; ``check_files()`` does so for all units, so a trainer can refuse a split with
missing files before its first step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

COVERS: tuple[str, ...] = ("uncover", "cover1", "cover2")
NEUTRAL_GENDER = np.array([0.5, 0.5], np.float32)
FEMALE = np.array([1.0, 0.0], np.float32)
MALE = np.array([0.0, 1.0], np.float32)
UNKNOWN_POSTURE = -1
REQUIRED_KEYS = ("depth", "params", "joints", "cover", "gender", "posture", "source", "key")


class DataError(ValueError):
    """A file or a sample does not have the expected content (shape, dtype, NaN, missing)."""


def read_npy(path: str | Path, what: str, *, mmap: bool = False, hint: str = "") -> np.ndarray:
    """``np.load`` of one ``.npy`` array (no pickles; memory-mapped read-only with ``mmap``).

    A missing, truncated or garbage file, or one holding pickled objects, raises
    :class:`DataError` naming the file, ``what`` it should hold and the ``hint`` (how to get
    it). With ``mmap`` only the header is read and checked against the file's size.
    """
    path = Path(path)
    tail = f"; {hint}" if hint else ""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found{tail}") from None
    except (OSError, ValueError, EOFError) as exc:
        reason = ("it is not a numeric .npy array (garbage, or pickled objects)"
                  if "pickle" in str(exc) else str(exc))
        raise DataError(f"{path}: cannot read {what} ({reason}); the file is truncated or "
                        f"damaged: copy it again{tail}") from exc


def npy_problem(path: str | Path, what: str, hint: str = "") -> str | None:
    """Why ``path`` cannot be read as ``what`` (missing, header, size), or None; cheap: the
    array is memory-mapped, not read."""
    try:
        read_npy(path, what, mmap=True, hint=hint)
    except DataError as exc:
        return str(exc)
    return None


def pickle_problem(path: str | Path, what: str, hint: str = "") -> str | None:
    """Why ``path`` cannot be a complete pickle of ``what`` (missing, empty, or not ending in
    the STOP opcode ``.`` as every complete pickle does), or None; reads one byte."""
    path = Path(path)
    tail = f"; {hint}" if hint else ""
    if not path.is_file():
        return f"{path}: {what} not found{tail}"
    with path.open("rb") as f:
        size = f.seek(0, 2)
        if size:
            f.seek(-1, 2)
        if not size or f.read(1) != b".":
            return f"{path}: {what} is truncated or not a pickle ({size} bytes){tail}"
    return None


def check_array(value: Any, name: str, shape: tuple, where: str, *,
                dtype: np.dtype | type | None = None, finite: bool = True) -> np.ndarray:
    """``value`` as a numeric array of ``shape`` (None = any size), optionally of ``dtype``
    and finite; else :class:`DataError` naming ``where`` (file/sample) and what was
    expected."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged lists
        raise DataError(f"{where}: '{name}' is not an array ({exc})") from exc
    if array.dtype.kind not in "biuf":
        raise DataError(f"{where}: '{name}' holds {array.dtype} values, expected numbers")
    if array.ndim != len(shape) or any(s is not None and a != s
                                        for a, s in zip(array.shape, shape)):
        expected = tuple("*" if s is None else s for s in shape)
        raise DataError(f"{where}: '{name}' has shape {array.shape}, expected {expected}")
    if dtype is not None and array.dtype != np.dtype(dtype):
        raise DataError(f"{where}: '{name}' is {array.dtype}, expected {np.dtype(dtype)}")
    if finite and array.dtype.kind == "f" and not np.isfinite(array).all():
        raise DataError(f"{where}: '{name}' contains NaN or inf values")
    return array


def make_sample(*, depth: np.ndarray, params: np.ndarray | None, joints: np.ndarray | None,
                cover: int, gender: np.ndarray, posture: int, source: str, key: str,
                **extra: np.ndarray) -> dict[str, Any]:
    """Build a sample dict with the interface's dtypes and shapes, checking them (and NaN).

    ``params``/``joints`` None: an unlabelled sample (SLP simLab); the keys are left out.
    """
    where = f"{source}:{key}"
    sample: dict[str, Any] = {
        "depth": check_array(depth, "depth", (1, 128, 54), where).astype(np.float32)}
    if params is not None:
        sample["params"] = check_array(params, "params", (None,), where).astype(np.float32)
    if joints is not None:
        sample["joints"] = check_array(joints, "joints", (24, 3), where).astype(np.float32)
    sample.update({
        "cover": int(cover),
        "gender": check_array(gender, "gender", (2,), where).astype(np.float32),
        "posture": int(posture),
        "source": source,
        "key": key,
    })
    if sample["cover"] not in (0, 1, 2):
        raise DataError(f"{where}: cover {cover} is not 0, 1 or 2")
    for name, value in extra.items():
        sample[name] = check_array(value, name, (None,) * np.ndim(value), where)
    return sample


def model_family(model_id: str) -> str:
    """``smpl`` for ``smpl-both``/``smpl-female``..., ``anny`` for ``anny-0.6``."""
    return model_id.split("-", 1)[0]


def check_body_model(body_model, *, model_id: str, param_dim: int, what: str) -> None:
    """Refuse a body model whose parameters do not match a dataset's labels.

    ``body_model`` is a ``disrt_core.body.BodyModel`` (or None: no check). SMPL genders share
    a layout; Anny ids must match exactly (the mesh and rig change between minor versions).
    """
    if body_model is None:
        return
    same = (model_family(body_model.model_id) == model_family(model_id)
            and (model_family(model_id) == "smpl" or body_model.model_id == model_id))
    if not same or body_model.param_dim != param_dim:
        hint = ("its labels are SMPL parameters (10 betas): load the SMPL body model "
                "(load_body_model(kind='smpl', model_dir=..., gender='both'))"
                if model_family(model_id) == "smpl"
                else f"load the body model it was generated with ({model_id})")
        raise DataError(f"{what} has {model_id} labels ({param_dim} parameters) but the body "
                        f"model is {body_model.model_id} ({body_model.param_dim}); {hint}")


class Source:
    """Base class of dataset sources (see the module docstring)."""

    name: str = "source"
    #: True when ``load_unit`` is cheap (memory maps, per-sample files): the pipeline then
    #: shuffles such a source's samples across all its units, not unit by unit.
    random_access: bool = False
    #: Parameter-vector length of the labels and the body-model id they belong to.
    param_dim: int
    model_id: str

    def unit_sizes(self) -> list[int]:
        raise NotImplementedError

    def load_unit(self, index: int) -> Any:
        raise NotImplementedError

    def sample_from(self, unit: Any, index: int) -> dict[str, Any]:
        raise NotImplementedError

    def check_unit(self, index: int) -> list[str]:
        """The files unit ``index`` needs that are missing or unreadable, one line each
        naming the file; found cheaply (no full read). Default: none known."""
        return []

    def check_files(self) -> list[str]:
        """:meth:`check_unit` over every unit."""
        return [line for unit in range(len(self.unit_sizes())) for line in self.check_unit(unit)]

    def __len__(self) -> int:
        return int(sum(self.unit_sizes()))

    def locate(self, index: int) -> tuple[int, int]:
        """(unit, index in unit) of a flat sample index."""
        if not 0 <= index < len(self):
            raise IndexError(f"{self.name}: index {index} outside 0..{len(self) - 1}")
        ends = np.cumsum(self.unit_sizes())
        unit = int(np.searchsorted(ends, index, side="right"))
        return unit, int(index - (ends[unit - 1] if unit else 0))

    def __getitem__(self, index: int) -> dict[str, Any]:
        unit, local = self.locate(index)
        cached = getattr(self, "_cache_unit", None)
        if cached is None or cached[0] != unit:
            cached = (unit, self.load_unit(unit))
            self._cache_unit = cached
        return self.sample_from(cached[1], local)

    def __getstate__(self) -> dict[str, Any]:
        # Never ship loaded data or open memory maps (attributes "_cache*") to workers.
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_cache")}
