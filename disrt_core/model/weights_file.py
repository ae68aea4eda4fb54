"""The weights files of the small networks beside the denoiser (the learned pressure map,
the posture classifier): safetensors with one JSON header under a metadata key, written
atomically, read with errors that name the file and the fix. Nothing is pickled.

``what`` names the kind of file in messages (``"pressure-net weights"``), ``fix`` says how
to get a good one.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save
from torch import nn

from disrt_core.atomic import atomic_write


def save_weights(path: str | Path, net: nn.Module, meta_key: str, header: dict,
                 dtype: torch.dtype = torch.float32) -> Path:
    """Write ``net``'s state (floating tensors as ``dtype``) and ``header`` to ``path``."""
    tensors = {k: (v.detach().to(dtype) if v.is_floating_point() else v.detach())
               .contiguous().cpu() for k, v in net.state_dict().items()}
    data = save(tensors, metadata={meta_key: json.dumps(header)})
    return atomic_write(path, lambda f: f.write(data))


def read_header(path: str | Path, meta_key: str, fmt: str, what: str, fix: str) -> dict:
    """The JSON header of a weights file whose format must be ``fmt``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}; {fix}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{what} {path}: not a readable safetensors file ({err}); the file "
                         f"is truncated or damaged: {fix}") from err
    try:
        header = json.loads(meta[meta_key])
    except (KeyError, json.JSONDecodeError) as err:
        raise ValueError(f"{what} {path}: no valid {meta_key!r} header (is it a denoiser "
                         f"checkpoint?); {fix}") from err
    if header.get("format") != fmt:
        raise ValueError(f"{what} {path}: format {header.get('format')!r}, this code reads "
                         f"{fmt!r}; {fix}")
    return header


def load_weights(net: nn.Module, path: str | Path, what: str, fix: str) -> nn.Module:
    """``net`` with the file's tensors (float32), refused where they are not finite or do
    not fit it."""
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{what} {path}: cannot be read ({err}); {fix}") from err
    state = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    if any(v.is_floating_point() and not torch.isfinite(v).all() for v in state.values()):
        raise ValueError(f"{what} {path}: NaN or infinite values; {fix}")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{what} {path}: do not fit the network the header describes "
                         f"({err}); {fix}") from err
    return net
