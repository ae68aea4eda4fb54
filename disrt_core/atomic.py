"""Atomic file writes: a crash or a signal never leaves a half-written file behind.

:func:`atomic_write` writes to a temporary file in the target's folder, flushes it to disk
(``fsync``) and renames it over the target (``os.replace``, atomic within a file system);
on any error the temporary file is removed and the old target stays as it was. Used for
checkpoints (:mod:`disrt_core.checkpoint`), training states (:mod:`disrt_core.train.state`)
and the repositioning monitor's state file (:mod:`disrt_core.repositioning`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Replace ``path`` with what ``write(file)`` writes to a binary file object; creates
    the folder. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
