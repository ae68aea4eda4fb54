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
diffusion       ``{"num_timesteps": 100, "schedule": "linear"}`` (SPEC §2); optionally the
                diffusion space (``space``, ``parametrisation``, ``mean``, ``std``:
                :mod:`disrt_core.diffusion_space`; ``invert_bounds``: the diffused truth
                was the decoder's inverse) and validated sampler ``timesteps``
                (:func:`disrt_core.diffusion.check_timesteps`); absent = the SPEC's
decoder         :class:`~disrt_core.decoder.DecoderConfig` as a dict (offset, squash,
                bounds and their frames)
preprocessing   the input geometry: network grid 128×54, PM grid and zoom, label origin,
                pitches, depth normalisation constants (``geometry.bedframe``)
training        free-form summary from the trainer (data, steps, losses, metrics, seed)
=============== =========================================================================

Writes are atomic (temporary file in the same folder, then ``os.replace``). Nothing is
pickled. Every file that cannot be used raises :class:`CheckpointError` (a ``ValueError``)
naming the file, the problem and the fix: not a (complete) safetensors file, a header that
is not JSON or lacks required keys, diffusion settings this code does not implement (only
the linear schedule exists, :func:`disrt_core.diffusion.linear_betas`), weights that do not
fit the network the header describes, NaN or infinite weights. A checkpoint made for
another body model or parameter layout raises :class:`CheckpointMismatchError` (a
``CheckpointError``) naming both. A missing file is a ``FileNotFoundError``.
:func:`load_body_for` loads the body model a header names.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from disrt_core.atomic import atomic_write
from disrt_core.body.base import BodyModel
from disrt_core.body.layout import ParamLayout
from disrt_core.decoder import DecoderConfig
from disrt_core.diffusion import check_timesteps
from disrt_core.diffusion_space import DiffusionSpace
from disrt_core.geometry import bedframe
from disrt_core.model import Denoiser, DenoiserConfig

FORMAT = "disrt-checkpoint-1"
META_KEY = "disrt"


#: Diffusion settings a checkpoint may name, and the values this code implements.
DIFFUSION_DEFAULTS = {"num_timesteps": 100, "schedule": "linear"}
#: Optional diffusion keys (issue 21): absent means the SPEC's raw space, x0 output and the
#: round(linspace(T−1, 0, N)) timesteps.
DIFFUSION_OPTIONAL = ("space", "parametrisation", "mean", "std", "timesteps", "invert_bounds",
                      "sigma_data", "interval")  # interval: disrt_core.uncertainty
SUPPORTED_SCHEDULES = ("linear",)  # GaussianDiffusion builds linear_betas only


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"checkpoint {path}: {problem}")
        self.path = str(path)


class CheckpointMismatchError(CheckpointError):
    """The checkpoint was made for another body model or parameter layout."""

    def __init__(self, message: str, path: str | Path = "") -> None:
        ValueError.__init__(self, message)
        self.path = str(path)


def check_diffusion(settings, path: str | Path = "checkpoint") -> dict:
    """``settings`` with defaults filled in, or :class:`CheckpointError` for keys or values
    this code does not implement (the sampler would silently use something else)."""
    if not isinstance(settings, dict):
        raise CheckpointError(path, f"header 'diffusion' must be an object, got {settings!r}")
    known = {*DIFFUSION_DEFAULTS, *DIFFUSION_OPTIONAL}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise CheckpointError(path, f"unknown diffusion settings {unknown}; this disrt_core "
                              f"knows {sorted(known)} (written by a newer version?)")
    out = {**DIFFUSION_DEFAULTS, **settings}
    if out["schedule"] not in SUPPORTED_SCHEDULES:
        raise CheckpointError(path, f"diffusion schedule {out['schedule']!r} is not supported; "
                              f"this disrt_core implements {list(SUPPORTED_SCHEDULES)}: "
                              "retrain with the linear schedule or add the schedule to "
                              "disrt_core.diffusion first")
    steps = out["num_timesteps"]
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise CheckpointError(path, f"diffusion num_timesteps must be an integer >= 1, got "
                              f"{steps!r}")
    try:
        DiffusionSpace.from_dict(out)
        out["timesteps"] = check_timesteps(out.get("timesteps"), steps)
    except (TypeError, ValueError) as err:
        raise CheckpointError(path, f"diffusion settings: {err}") from err
    if out["timesteps"] is None:
        del out["timesteps"]
    if "interval" in out:
        from disrt_core.uncertainty import check_interval

        try:
            check_interval(out["interval"])
        except ValueError as err:
            raise CheckpointError(path, f"diffusion settings: {err}") from err
    if not isinstance(out.get("invert_bounds", False), bool):
        raise CheckpointError(path, f"diffusion invert_bounds must be true or false, got "
                              f"{out['invert_bounds']!r}")
    return out


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
    diffusion: dict = field(default_factory=lambda: dict(DIFFUSION_DEFAULTS))
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
        """Parse and check a header; :class:`CheckpointError` names ``source`` and what is
        wrong (not JSON, another format, missing or malformed keys, unsupported diffusion)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise CheckpointError(source, f"the {META_KEY!r} header is not valid JSON ({err}); "
                                  "the file was damaged or not written by save_checkpoint") \
                from err
        if not isinstance(data, dict):
            raise CheckpointError(source, f"the {META_KEY!r} header must be a JSON object, got "
                                  f"{type(data).__name__}")
        if data.get("format") != FORMAT:
            raise CheckpointError(source, f"format {data.get('format')!r} is not {FORMAT!r}")
        body = data.get("body")
        missing = [k for k in ("network", "param_dim", "body", "decoder") if k not in data]
        if isinstance(body, dict):
            missing += [f"body.{k}" for k in ("model_id", "param_layout") if k not in body]
        elif body is not None:
            raise CheckpointError(source, f"header 'body' must be an object, got {body!r}")
        if missing:
            raise CheckpointError(source, f"header lacks required keys {missing}; the file was "
                                  "not written by save_checkpoint (or edited by hand)")
        try:
            header = cls(
                network=DenoiserConfig.from_dict(data["network"]),
                param_dim=_positive_int(data["param_dim"], "param_dim"),
                model_id=_string(body["model_id"], "body.model_id"),
                param_layout=dict(body["param_layout"]),
                decoder=DecoderConfig.from_dict(data["decoder"]),
                diffusion=check_diffusion(data.get("diffusion", {}), source),
                preprocessing=data.get("preprocessing", {}),
                training=data.get("training", {}),
            )
        except CheckpointError:
            raise
        except (TypeError, ValueError, AttributeError) as err:
            raise CheckpointError(source, f"malformed header: {err}") from err
        mean = header.diffusion.get("mean")
        if mean is not None and len(mean) != header.param_dim:
            raise CheckpointError(source, f"diffusion space has {len(mean)} values, param_dim "
                                  f"is {header.param_dim}")
        if header.param_layout.get("param_dim", header.param_dim) != header.param_dim:
            raise CheckpointError(source, f"header param_dim {header.param_dim} disagrees with "
                                  f"body.param_layout {header.param_layout}")
        return header

    def check_compatible(self, model_id: str | None, layout: ParamLayout | None,
                         source: str = "") -> None:
        """Raise :class:`CheckpointMismatchError` unless made for this body model and layout
        (either may be None: not checked)."""
        where = f"{source}: " if source else ""
        if model_id is not None and model_id != self.model_id:
            raise CheckpointMismatchError(
                f"{where}checkpoint was trained for body model {self.model_id!r}, but the "
                f"body model in use is {model_id!r}; load the matching body model (SMPL "
                "files / the pinned anny version) or use a checkpoint trained for this one",
                source)
        if layout is not None and layout.to_dict() != self.param_layout:
            raise CheckpointMismatchError(
                f"{where}checkpoint parameter layout {self.param_layout} differs from the body "
                f"model's {layout.to_dict()}", source)


def save_checkpoint(
    path: str | Path,
    model: Denoiser,
    model_id: str,
    param_layout: ParamLayout,
    decoder: DecoderConfig,
    training: dict | None = None,
    dtype: torch.dtype | None = None,
    diffusion: dict | None = None,
) -> Path:
    """Write ``model`` and its header to ``path`` atomically; returns the path.

    ``dtype`` (e.g. ``torch.float16``) stores floating weights smaller; default float32.
    ``diffusion``: the settings the network was trained with (default
    :data:`DIFFUSION_DEFAULTS`); unsupported ones are refused here already.
    """
    if model.param_dim != param_layout.param_dim:
        raise ValueError(f"network predicts {model.param_dim} values but the layout has "
                         f"{param_layout.param_dim}")
    header = CheckpointHeader(network=model.config, param_dim=model.param_dim,
                              model_id=model_id, param_layout=param_layout.to_dict(),
                              decoder=decoder, training=dict(training or {}),
                              diffusion=check_diffusion(dict(diffusion or {}), path))
    tensors = {}
    for name, value in model.state_dict().items():
        value = value.detach().to("cpu")
        if value.is_floating_point():
            value = value.to(dtype or torch.float32)
        tensors[name] = value.contiguous()
    return _write(path, tensors, header)


def rewrite_header(path: str | Path, out: str | Path | None = None,
                   diffusion: dict | None = None, training: dict | None = None) -> Path:
    """Copy a checkpoint's weights unchanged (same dtype) with an updated header: the
    ``diffusion`` keys given replace the header's (checked), ``training`` keys are merged
    in. Written atomically to ``out`` (default: in place); returns the path."""
    header = read_header(path)
    if diffusion:
        header.diffusion = check_diffusion({**header.diffusion, **diffusion}, path)
    if training:
        header.training = {**header.training, **training}
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(path, f"weights cannot be read ({err})") from err
    return _write(out or path, tensors, header)


def _write(path: str | Path, tensors: dict[str, torch.Tensor],
           header: CheckpointHeader) -> Path:
    """The safetensors file of ``tensors`` with ``header`` in its metadata, atomically."""
    data = save(tensors, metadata={META_KEY: header.to_json()})
    return atomic_write(path, lambda f: f.write(data))


def read_header(path: str | Path) -> CheckpointHeader:
    """The header of a checkpoint, without loading its weights (checked: see the module)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise CheckpointError(path, f"not a readable safetensors file ({err}); it is "
                              "truncated, damaged or not a checkpoint: copy or export it "
                              "again") from err
    if META_KEY not in meta:
        raise CheckpointError(path, f"a safetensors file without a disrt header (metadata key "
                              f"{META_KEY!r}); was it written by save_checkpoint?")
    return CheckpointHeader.from_json(meta[META_KEY], source=str(path))


def load_checkpoint(
    path: str | Path,
    device: str | torch.device = "cpu",
    model_id: str | None = None,
    param_layout: ParamLayout | None = None,
) -> tuple[Denoiser, CheckpointHeader]:
    """Build the network of a checkpoint and load its weights (float32, eval mode).

    With ``model_id`` and/or ``param_layout`` given, a checkpoint for another body model or
    layout is refused (:class:`CheckpointMismatchError`) before any weight is read. Weights
    that do not fit the header's network, or hold NaN/inf, raise :class:`CheckpointError`.
    """
    header = read_header(path)
    header.check_compatible(model_id, param_layout, source=str(path))
    model = Denoiser(header.network, header.param_dim)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(path, f"weights cannot be read ({err}); the file is truncated "
                              "or damaged: copy or export it again") from err
    state = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(path, f"{len(bad)} weight tensor(s) hold NaN or infinite values "
                              f"({', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''}); the "
                              "training diverged: use an earlier checkpoint or the EMA weights")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(path, f"weights do not fit the network its header describes "
                              f"({err})") from err
    return model.to(device).eval(), header


def _positive_int(value, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be an integer >= 1, got {value!r}")
    return value


def _string(value, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string, got {value!r}")
    return value


def load_body_for(model_id: str, model_dir: str | Path | None = None,
                  device: str = "cpu") -> BodyModel:
    """The body model a checkpoint names: ``smpl-<gender>`` (needs the SMPL files) or
    ``anny-<version>``; the loaded model must report the same ``model_id``."""
    from disrt_core.body import load_body_model

    if model_id.startswith("smpl-"):
        gender = model_id.split("-", 1)[1]
        body = load_body_model("smpl", model_dir, gender=gender, device=device)
    elif model_id.startswith("anny"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            body = load_body_model("anny", device=device)
    else:
        raise ValueError(f"checkpoint names an unknown body model {model_id!r}")
    if body.model_id != model_id:
        raise CheckpointMismatchError(
            f"checkpoint was trained for body model {model_id!r}, but the installed one is "
            f"{body.model_id!r}; install the version pinned in constraints.txt")
    return body
