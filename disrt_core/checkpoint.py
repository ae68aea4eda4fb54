"""Checkpoint format: the denoiser's weights as safetensors plus a JSON header.

One ``.safetensors`` file. Its tensors are the network's ``state_dict`` (float32, or float16
/ bfloat16 to ship smaller files; loading casts back to float32). Its string metadata holds
one key, ``disrt``, whose JSON value is the header:

=============== =========================================================================
key             content
=============== =========================================================================
format          ``"disrt-checkpoint-1"``
network         :class:`~disrt_core.model.DenoiserConfig` as a dict
param_dim       length of the parameter vector the network predicts
body            ``{"model_id": "anny-0.6" | "smpl-neutral" | ..., "param_layout": {...}}``
diffusion       ``{"num_timesteps": 100, "schedule": "linear"}`` (SPEC §2)
decoder         :class:`~disrt_core.decoder.DecoderConfig` as a dict (offset, squash,
                bounds and their frames)
preprocessing   the input geometry: network grid 128×54, PM grid and zoom, label origin,
                pitches, depth normalisation constants (``geometry.bedframe``)
training        free-form summary from the trainer (data, steps, losses, metrics, seed)
=============== =========================================================================

Writes are atomic (temporary file in the same folder, then ``os.replace``). Nothing is
pickled. Loading a checkpoint made for another body model or parameter layout raises
:class:`CheckpointMismatchError` naming both.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from disrt_core.body.layout import ParamLayout
from disrt_core.decoder import DecoderConfig
from disrt_core.geometry import bedframe
from disrt_core.model import Denoiser, DenoiserConfig

FORMAT = "disrt-checkpoint-1"
META_KEY = "disrt"


class CheckpointMismatchError(ValueError):
    """The checkpoint was made for another body model or parameter layout."""


def preprocessing_geometry() -> dict:
    """The input geometry the network was trained on (``disrt_core.geometry.bedframe``)."""
    return {
        "net_shape": list(bedframe.NET_SHAPE),
        "pm_shape": list(bedframe.PM_SHAPE),
        "pm_cell_m": bedframe.PM_CELL_M,
        "pm_zoom": bedframe.PM_ZOOM,
        "o_t_slp": list(bedframe.O_T_SLP),
        "net_pitch_m": [bedframe.NET_PITCH_X, bedframe.NET_PITCH_Y],
        "min_depth_mm": bedframe.MIN_DEPTH_MM,
        "max_depth_mm": bedframe.MAX_DEPTH_MM,
        "normalisation": "x = (clamp(d + 2215 - bed_mm, 1500, 2215) - 1500) / 715",
    }


@dataclass
class CheckpointHeader:
    """The JSON header of a checkpoint, parsed."""

    network: DenoiserConfig
    param_dim: int
    model_id: str
    param_layout: dict
    decoder: DecoderConfig
    diffusion: dict = field(default_factory=lambda: {"num_timesteps": 100, "schedule": "linear"})
    preprocessing: dict = field(default_factory=preprocessing_geometry)
    training: dict = field(default_factory=dict)
    format: str = FORMAT

    def to_json(self) -> str:
        data = {
            "format": self.format,
            "network": self.network.to_dict(),
            "param_dim": self.param_dim,
            "body": {"model_id": self.model_id, "param_layout": self.param_layout},
            "diffusion": self.diffusion,
            "decoder": self.decoder.to_dict(),
            "preprocessing": self.preprocessing,
            "training": self.training,
        }
        try:
            return json.dumps(data)
        except TypeError as err:
            raise TypeError(f"checkpoint header is not JSON-serialisable ({err}); pass plain "
                            "numbers, strings, lists and dicts in the training summary") from err

    @classmethod
    def from_json(cls, text: str, source: str = "checkpoint") -> CheckpointHeader:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"{source}: format {data.get('format')!r} is not {FORMAT!r}")
        return cls(
            network=DenoiserConfig.from_dict(data["network"]),
            param_dim=int(data["param_dim"]),
            model_id=data["body"]["model_id"],
            param_layout=data["body"]["param_layout"],
            decoder=DecoderConfig.from_dict(data["decoder"]),
            diffusion=data.get("diffusion", {}),
            preprocessing=data.get("preprocessing", {}),
            training=data.get("training", {}),
        )

    def check_compatible(self, model_id: str | None, layout: ParamLayout | None,
                         source: str = "") -> None:
        """Raise :class:`CheckpointMismatchError` unless made for this body model and layout
        (either may be None: not checked)."""
        where = f"{source}: " if source else ""
        if model_id is not None and model_id != self.model_id:
            raise CheckpointMismatchError(
                f"{where}checkpoint was trained for body model {self.model_id!r}, but the "
                f"body model in use is {model_id!r}; load the matching body model (SMPL "
                "files / the pinned anny version) or use a checkpoint trained for this one")
        if layout is not None and layout.to_dict() != self.param_layout:
            raise CheckpointMismatchError(
                f"{where}checkpoint parameter layout {self.param_layout} differs from the body "
                f"model's {layout.to_dict()}")


def save_checkpoint(
    path: str | Path,
    model: Denoiser,
    model_id: str,
    param_layout: ParamLayout,
    decoder: DecoderConfig,
    training: dict | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write ``model`` and its header to ``path`` atomically; returns the path.

    ``dtype`` (e.g. ``torch.float16``) stores floating weights smaller; default float32.
    """
    if model.param_dim != param_layout.param_dim:
        raise ValueError(f"network predicts {model.param_dim} values but the layout has "
                         f"{param_layout.param_dim}")
    header = CheckpointHeader(network=model.config, param_dim=model.param_dim,
                              model_id=model_id, param_layout=param_layout.to_dict(),
                              decoder=decoder, training=dict(training or {}))
    tensors = {}
    for name, value in model.state_dict().items():
        value = value.detach().to("cpu")
        if value.is_floating_point():
            value = value.to(dtype or torch.float32)
        tensors[name] = value.contiguous()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={META_KEY: header.to_json()})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_header(path: str | Path) -> CheckpointHeader:
    """The header of a checkpoint, without loading its weights."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if META_KEY not in meta:
        raise ValueError(f"{path} is a safetensors file without a disrt header "
                         f"(metadata key {META_KEY!r}); was it written by save_checkpoint?")
    return CheckpointHeader.from_json(meta[META_KEY], source=str(path))


def load_checkpoint(
    path: str | Path,
    device: str | torch.device = "cpu",
    model_id: str | None = None,
    param_layout: ParamLayout | None = None,
) -> tuple[Denoiser, CheckpointHeader]:
    """Build the network of a checkpoint and load its weights (float32, eval mode).

    With ``model_id`` and/or ``param_layout`` given, a checkpoint for another body model or
    layout is refused (:class:`CheckpointMismatchError`) before any weight is read.
    """
    header = read_header(path)
    header.check_compatible(model_id, param_layout, source=str(path))
    model = Denoiser(header.network, header.param_dim)
    state = {k: v.float() if v.is_floating_point() else v
             for k, v in load_file(str(path)).items()}
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), header
