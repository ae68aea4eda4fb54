"""Training state files: everything ``--resume`` needs to continue bit-identically.

``<out>/state/step-00001234.pt`` (``torch.save``; read back with ``torch.load(...,
weights_only=True)``, so nothing in it is unpickled as code) holds:

* ``position``: stage index, epoch, next batch index in the epoch, global and stage step;
* ``model``, ``ema``: state dicts; ``optimizer``: AdamW's (moments, step counts);
  ``scheduler``: the LambdaLR's (its factor's parameters included);
* ``rng``: per rank, the global torch CPU state, every CUDA device's, numpy's legacy
  global state and Python's ``random`` state (as plain lists and tensors);
* ``data``: the pipeline's order settings and skip counts (checked on resume);
* ``loss``: the loss normalisers in use; ``config``: the resolved config (plain dict);
  ``body``: model id and parameter layout; ``summary``: samples seen, wall time.

Writes are atomic (temporary file in the same folder, then ``os.replace``), made by rank 0
only. A SIGKILL at any moment leaves either the previous or the new file, never a torn one.
The newest ``keep`` step files are kept; ``stage-<name>.pt`` (the state at the end of a
stage, the starting point of a fine-tune run) is kept always.
"""

from __future__ import annotations

import os
import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from disrt_core.atomic import atomic_write

STATE_DIR = "state"
STEP_RE = re.compile(r"^step-(\d{8})\.pt$")
FORMAT = "disrt-train-state-1"


def rng_state() -> dict[str, Any]:
    """This process's global RNG states, in types ``torch.load(weights_only=True)`` reads."""
    # numpy's legacy global RNG is what user code and old libraries draw from
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    py = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                  "has_gauss": has_gauss, "cached": cached},
        "python": [py[0], list(py[1]), py[2]],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured (loaded with any ``map_location``)."""
    # the setters take CPU byte tensors, while a state loaded onto the training GPU has them there
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        if len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
        else:
            warnings.warn("CUDA device count changed since the checkpoint; CUDA RNG states "
                          "not restored", stacklevel=2)
    n = state["numpy"]
    keys = n["keys"].cpu().numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached"]))  # noqa: NPY002
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def state_dir(out_dir: str | Path) -> Path:
    return Path(out_dir) / STATE_DIR


def step_path(out_dir: str | Path, step: int) -> Path:
    return state_dir(out_dir) / f"step-{step:08d}.pt"


def stage_path(out_dir: str | Path, stage: str) -> Path:
    return state_dir(out_dir) / f"stage-{stage}.pt"


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file next to ``path``, fsync, then rename onto it
    (:func:`disrt_core.atomic.atomic_write`)."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def load_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A state file, read without unpickling code; clear errors for other files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training state not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable training state ({exc})") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path}: not a disrt training state (format "
                         f"{state.get('format') if isinstance(state, dict) else type(state)})")
    return state


def step_files(out_dir: str | Path) -> list[tuple[int, Path]]:
    """(global step, path) of the step files of a run, oldest first."""
    folder = state_dir(out_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := STEP_RE.match(p.name))]
    return sorted(found)


def latest_state(out_dir: str | Path) -> Path | None:
    """The newest readable step file of a run (an unreadable newest one is skipped with a
    warning), or None."""
    for _, path in reversed(step_files(out_dir)):
        try:
            load_state(path)
        except ValueError as exc:
            warnings.warn(f"skipping unreadable state {path} ({exc})", stacklevel=2)
            continue
        return path
    return None


def prune(out_dir: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` step files."""
    files = step_files(out_dir)
    for _, path in files[:max(0, len(files) - keep)]:
        path.unlink(missing_ok=True)


def link_or_copy(src: Path, dst: Path) -> None:
    """``dst`` becomes a copy of ``src`` (hard link where possible), atomically."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        import shutil

        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
