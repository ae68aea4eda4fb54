"""Where disrt_core keeps what it builds slowly (converted SMPL arrays, Anny's model data)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """The user cache directory of disrt_ros, created on demand.

    ``$DISRT_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/disrt_ros``, else
    ``~/.cache/disrt_ros``; ``parts`` name a subfolder.
    """
    root = os.environ.get("DISRT_CACHE_DIR")
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "disrt_ros"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
