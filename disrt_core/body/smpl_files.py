"""Reading the official SMPL model files without chumpy, and caching them as float32 .npz.

The official pickles (``basicModel_{f,m,neutral}_lbs_10_207_0_v1.0.0.pkl``,
``basicmodel_*``, ``SMPL_{FEMALE,MALE,NEUTRAL}.pkl``) hold chumpy objects and a scipy
sparse matrix. chumpy does not run on Python 3.11, and a pickle must never be trusted, so
they are read by :mod:`disrt_core.safe_pickle` with inert stand-ins for those classes: a
chumpy ``Ch`` yields its stored value ``x``, a scipy ``csc/csr_matrix`` is densified from
its arrays. The result is converted once to a float32 .npz in the user cache
(``disrt_core.cache``), keyed by the file's SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from disrt_core.cache import cache_dir
from disrt_core.safe_pickle import Stub, load_pickle

SMPL_DOWNLOAD_HINT = (
    "SMPL is a licensed download: register at https://smpl.is.tue.mpg.de, download "
    "'SMPL for Python' (v1.0.0 or v1.1.0) and put its .pkl files (e.g. "
    "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl or SMPL_NEUTRAL.pkl) in one folder, then "
    "pass it as --smpl-dir / model_dir or set DISRT_SMPL_DIR. Without SMPL, use the open "
    "default body model: kind='anny'."
)

GENDERS = ("neutral", "female", "male")
_SHORT = {"neutral": "neutral", "female": "f", "male": "m"}

#: The arrays a SMPL model needs.
SMPL_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")


def smpl_file_names(gender: str) -> list[str]:
    """Accepted file names for one gender, official spellings first."""
    g = _SHORT[gender]
    names = []
    for version in ("1.0.0", "1.1.0"):
        names += [f"basicModel_{g}_lbs_10_207_0_v{version}.pkl",
                  f"basicmodel_{g}_lbs_10_207_0_v{version}.pkl"]
    names.append(f"SMPL_{gender.upper()}.pkl")
    return names


def find_smpl_file(model_dir: str | Path, gender: str) -> Path:
    """The SMPL pickle of ``gender`` in ``model_dir`` (or its ``smpl/`` subfolder).

    Names match case-insensitively. Raises FileNotFoundError with download instructions.
    """
    if gender not in GENDERS:
        raise ValueError(f"gender must be one of {GENDERS}, got {gender!r}")
    model_dir = Path(model_dir).expanduser()
    wanted = {n.lower() for n in smpl_file_names(gender)}
    for folder in (model_dir, model_dir / "smpl"):
        if folder.is_dir():
            for entry in sorted(folder.iterdir()):
                if entry.name.lower() in wanted and entry.is_file():
                    return entry
    where = "does not exist" if not model_dir.is_dir() else "has none of them"
    raise FileNotFoundError(
        f"No SMPL model file for gender '{gender}' in {model_dir} (the folder {where}); "
        f"expected one of {smpl_file_names(gender)}. {SMPL_DOWNLOAD_HINT}"
    )


class ChumpyStub(Stub):
    """Stand-in for a chumpy object: keeps the pickled state, whose 'x' is the value."""


class CscStub(Stub):
    """Stand-in for scipy.sparse.csc_matrix (data/indices/indptr kept from the state)."""


class CsrStub(Stub):
    """Stand-in for scipy.sparse.csr_matrix."""


_SMPL_STUBS = [
    (lambda module, name: module == "chumpy" or module.startswith("chumpy."), ChumpyStub),
    (lambda module, name: module.startswith("scipy.sparse") and name == "csc_matrix", CscStub),
    (lambda module, name: module.startswith("scipy.sparse") and name == "csr_matrix", CsrStub),
]


def _as_array(value: Any, key: str, source: Path) -> np.ndarray:
    """The numeric array behind a pickled value (ndarray, chumpy Ch, scipy sparse)."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, ChumpyStub):
        state = value.state if isinstance(value.state, dict) else {}
        if "x" not in state:
            raise ValueError(
                f"{source}: '{key}' is a chumpy expression without a stored value; this is "
                f"not an official SMPL model file. {SMPL_DOWNLOAD_HINT}"
            )
        return _as_array(state["x"], key, source)
    if isinstance(value, CscStub | CsrStub):
        state = value.state if isinstance(value.state, dict) else {}
        shape = state.get("_shape", state.get("shape"))
        try:
            data, indices, indptr = (np.asarray(state[k]) for k in ("data", "indices", "indptr"))
        except KeyError as err:
            raise ValueError(f"{source}: sparse matrix '{key}' lacks {err}") from None
        dense = np.zeros(tuple(int(s) for s in shape), dtype=np.float64)
        major = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        if isinstance(value, CscStub):
            dense[indices, major] = data
        else:
            dense[major, indices] = data
        return dense
    raise ValueError(f"{source}: '{key}' has type {type(value).__name__}, expected an array")


def read_smpl_pickle(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of an official SMPL pickle, checked: float32 except int64 faces/kintree."""
    path = Path(path)
    try:
        raw = load_pickle(path, encoding="latin1", stubs=_SMPL_STUBS)
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise ValueError(f"{path} is not a readable SMPL model file ({err}) "
                         f"{SMPL_DOWNLOAD_HINT}") from err
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a dict of SMPL arrays, got {type(raw).__name__}")
    missing = [k for k in SMPL_KEYS if k not in raw]
    if missing:
        raise ValueError(f"{path}: not a SMPL model file, keys {missing} are missing. "
                         f"{SMPL_DOWNLOAD_HINT}")
    arrays = {k: _as_array(raw[k], k, path) for k in SMPL_KEYS}
    return validate_smpl_arrays(arrays, path)


def validate_smpl_arrays(arrays: dict[str, np.ndarray], source: Path) -> dict[str, np.ndarray]:
    """Check shapes and consistency; return float32 arrays (int64 for ``f``, ``kintree_table``)."""
    num_verts = arrays["v_template"].shape[0]
    expected_shapes: dict[str, tuple[int | None, ...]] = {
        "v_template": (num_verts, 3),
        "shapedirs": (num_verts, 3, None),
        "posedirs": (num_verts, 3, 207),
        "J_regressor": (24, num_verts),
        "weights": (num_verts, 24),
        "kintree_table": (2, 24),
        "f": (None, 3),
    }
    for key, expected in expected_shapes.items():
        shape = arrays[key].shape
        if len(shape) != len(expected) or any(
            e is not None and s != e for s, e in zip(shape, expected)
        ):
            shown = tuple("*" if e is None else e for e in expected)
            raise ValueError(f"{source}: '{key}' has shape {shape}, expected {shown}")
    if arrays["shapedirs"].shape[2] < 10:
        raise ValueError(f"{source}: shapedirs has {arrays['shapedirs'].shape[2]} components, "
                         "expected at least 10")
    faces = arrays["f"].astype(np.int64)
    if faces.min() < 0 or faces.max() >= num_verts:
        raise ValueError(f"{source}: face indices outside 0..{num_verts - 1}")
    out = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()
           if k not in ("f", "kintree_table")}
    out["shapedirs"] = np.ascontiguousarray(out["shapedirs"][:, :, :10])
    out["f"] = faces
    kintree = arrays["kintree_table"].astype(np.int64)
    kintree[kintree > 2**31] = -1  # uint32 "no parent" marker of the root
    out["kintree_table"] = kintree
    return out


def load_smpl_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """SMPL arrays of ``path``, from the .npz cache when it has them (converted on first use)."""
    path = Path(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    cached = cache_dir("smpl") / f"{path.stem}-{digest}.npz"
    if cached.exists():
        with np.load(cached, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    arrays = read_smpl_pickle(path)
    tmp = cached.with_name(cached.name + f".tmp{os.getpid()}")
    with tmp.open("wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, cached)  # atomic: a crash never leaves a half-written cache
    return arrays
