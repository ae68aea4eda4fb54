"""Restricted unpickling: the only way disrt_core reads a pickle.

A pickle can run arbitrary code when loaded, so every pickle the project reads (dataset
files, the official SMPL model files) goes through :class:`RestrictedUnpickler`, which
admits numpy arrays, numpy scalars and plain builtins, and nothing else unless a caller
maps a named class to an inert stand-in (``stubs``), as the SMPL loader does for chumpy
and scipy.sparse. Checkpoints are never pickles (safetensors only).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # numpy 1.x: Ubuntu 24.04's python3-numpy, which ROS 2 Jazzy uses
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

# (module, name) pairs a pickle may reference. Python-2 and numpy<2 module paths are listed
# next to their numpy>=2 homes; they resolve to the same objects.
_NUMPY_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy.core.numeric", "_frombuffer"): _numeric._frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _numeric._frombuffer,
}
_BUILTIN_NAMES = {
    "set", "frozenset", "list", "dict", "tuple", "bytearray", "bytes", "complex",
    "slice", "range", "int", "float", "bool", "str",
}


class Stub:
    """An inert stand-in for a class a pickle names but that must not be imported.

    It records the arguments it was created with and the state the pickle sets, and does
    nothing else. Subclasses say what the stand-in means (e.g. ``ChumpyStub``).
    """

    args: tuple = ()
    state: Any = None

    def __init__(self, *args: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that admits only numpy arrays/scalars, builtins and explicit stubs.

    ``stubs`` maps a predicate on ``(module, name)`` to a :class:`Stub` subclass that
    replaces the class; any other global raises ``pickle.UnpicklingError`` naming it.
    """

    def __init__(
        self,
        file: BinaryIO,
        *,
        stubs: list[tuple[Callable[[str, str], bool], type[Stub]]] | None = None,
        source: str = "<pickle>",
        **kwargs: Any,
    ) -> None:
        super().__init__(file, **kwargs)
        self._stubs = stubs or []
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_GLOBALS:
            return _NUMPY_GLOBALS[(module, name)]
        if module in ("builtins", "__builtin__") and name in _BUILTIN_NAMES:
            return getattr(__import__("builtins"), name)
        if (module, name) == ("_codecs", "encode"):
            # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(str, "latin1").
            return _codecs_encode
        if module in ("copyreg", "copy_reg") and name == "_reconstructor":
            return _stub_reconstructor
        for matches, stub in self._stubs:
            if matches(module, name):
                return stub
        raise pickle.UnpicklingError(
            f"{self._source}: refusing to load '{module}.{name}': only numpy arrays and "
            "builtins are admitted from pickles (a pickle can run code when loaded). "
            "If this file should be readable, convert it to .npz or safetensors."
        )


def _codecs_encode(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` limited to str -> bytes (what pickle protocol 2 uses it for)."""
    if not isinstance(text, str) or not isinstance(encoding, str):
        raise pickle.UnpicklingError("refusing _codecs.encode on non-text arguments")
    return text.encode(encoding)


def _stub_reconstructor(cls: type, base: type, state: Any) -> Any:
    """copyreg's protocol-0/1 object constructor, limited to stubs (it can build nothing else)."""
    if not (isinstance(cls, type) and issubclass(cls, Stub)) or base is not object:
        raise pickle.UnpicklingError(f"refusing copyreg._reconstructor for {cls!r}")
    return cls.__new__(cls)


def load_pickle(
    path: str | Path,
    *,
    encoding: str = "latin1",
    stubs: list[tuple[Callable[[str, str], bool], type[Stub]]] | None = None,
) -> Any:
    """Load a pickle file through :class:`RestrictedUnpickler`.

    ``encoding='latin1'`` reads Python-2 pickles with numpy arrays (BodyPressureSD, SMPL).
    """
    path = Path(path)
    with path.open("rb") as f:
        return RestrictedUnpickler(f, stubs=stubs, source=str(path), encoding=encoding).load()
