"""The training configuration: YAML files in ``config/`` as typed dataclasses.

A config file is a nested mapping whose keys are the fields below; every value can be
overridden on the command line as ``dotted.key=value`` (the value is parsed as YAML, so
``optim.lr=2.0e-4``, ``stages.synth.epochs=3``, ``optim.betas=[0.9,0.99]``). Elements of a
list are addressed by position (``stages.0``) or, for stages and data sources, by their
``name`` (``stages.finetune.schedule.kind=cosine``). Unknown keys, values of the wrong type
and impossible settings are refused with an error naming the key (and the closest known
one) before anything is loaded. The resolved config is written with the run as
``config.yaml``; a resumed run must have the same training-relevant values.

Sections (defaults are the paper's setup where the SPEC gives one, SPEC §5):

* ``body``: which body model the labels belong to (``anny`` open default, ``smpl``).
* ``model``: a network preset of :mod:`disrt_core.model.config` plus field overrides.
* ``diffusion``, ``loss``: SPEC §2 and §4 (normalisers ``reference`` = the SMPL constants,
  ``data`` = recomputed from the training data, ``auto`` = reference for SMPL, data else).
* ``optim``: AdamW lr 1e-4, weight decay 5e-4, betas (0.9, 0.999), eps 1e-8 [DiSRT code].
* ``ema``: exponential moving average of the weights (kept, not used for evaluation).
* ``augment``: SPEC §5 augmentation (:mod:`disrt_core.data.augment`).
* ``stages``: the training stages in order, each with its data, epochs, global batch
  size, schedule and frozen modules (stage 1 synthetic at a constant LR, stage 2 real with
  linear decay and ParamMLP/TimeMLP frozen, SPEC §5, §8.5).
* ``eval``: the held-out set evaluated during training.
* ``init``: start from another run's state (weights and AdamW moments) or weights.
* ``run``: output folder, device, precision, compile, workers, checkpoint and log cadence.
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config file or override is malformed (unknown key, wrong type, bad value)."""


DATA_TYPES = ("shards", "generator", "slp", "bodypressure")
SCHEDULES = ("constant", "none", "linear", "cosine", "exponential")
#: Denoiser submodules a stage may freeze (SPEC §5: stage 2 freezes ParamMLP and TimeMLP).
FREEZABLE = ("param_embed", "time_embed", "blocks", "trunk_out", "head")


@dataclass
class BodySection:
    """kind: ``anny`` | ``smpl`` | ``auto`` (SMPL when its files are found). smpl_dir: folder
    of the SMPL pickles (default ``$DISRT_SMPL_DIR``). gender: SMPL variant; ``both`` blends
    female/male per sample as the paper does."""

    kind: str = "anny"
    smpl_dir: str | None = None
    gender: str = "both"


@dataclass
class ModelSection:
    """preset: ``paper`` | ``paper_native`` | ``small``; overrides: DenoiserConfig fields."""

    preset: str = "small"
    overrides: dict = field(default_factory=dict)


@dataclass
class DiffusionSection:
    """num_timesteps, consistent_translation: SPEC §2 and its §8.1 option (the reference
    noises x0, not x0 − offset). space: ``raw`` (the SPEC: diffuse the parameter vector) or
    ``normalised`` (diffuse (x0 − offset − mean)/std, per-dimension statistics of the first
    ``space_samples`` samples of the first stage, stds floored at ``std_floor``; always
    consistent). invert_bounds: diffuse the decoder's inverse of x0 (its shape squash and
    angle bounds undone, :meth:`~disrt_core.decoder.MeshDecoder.invert`) instead of
    x0 − offset, so that the decoded truth is the truth. parametrisation: ``x0`` (the SPEC:
    the network returns x̂0) or ``skip`` (ẑ0 = √ᾱ_t·z_t + √(1−ᾱ_t)·F; normalised space
    only). See
    :mod:`disrt_core.diffusion_space` and docs/diffusion_xt.md (issue 21)."""

    num_timesteps: int = 100
    consistent_translation: bool = False  # SPEC §8.1 option; the reference does not
    space: str = "raw"
    invert_bounds: bool = False
    parametrisation: str = "x0"
    space_samples: int = 4096
    std_floor: float = 0.01
    #: σ_d of the skip parametrisation (:mod:`disrt_core.diffusion_space`): a number (1:
    #: v-prediction), or ``residual``: per dimension, the RMS error of the init network's
    #: image-only answer (t = T−1) on the space samples (needs ``init.checkpoint``)
    sigma_data: Any = 1.0


@dataclass
class LossSection:
    """normalisers: ``auto`` | ``reference`` | ``data``; ``data`` uses the first
    ``normaliser_samples`` samples of the first stage (SPEC §4: stds over the synthetic set)."""

    normalisers: str = "auto"
    normaliser_samples: int = 2048
    lambda_smpl: float = 1.0
    lambda_v2v: float = 1.0
    lambda_x0: float = 0.0       # direct ẑ0 term beside the decoder losses (0: the SPEC)
    min_snr_gamma: float = 5.0   # its per-sample weight min(SNR_t, γ)/γ


@dataclass
class OptimSection:
    """AdamW (SPEC §5). grad_clip: max global gradient norm, 0 = off (the reference does not
    clip). fused: the fused AdamW kernel (None = on CUDA only)."""

    lr: float = 1.0e-4
    weight_decay: float = 5.0e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1.0e-8
    grad_clip: float = 0.0
    fused: bool | None = None


@dataclass
class EmaSection:
    """EMA of the weights, updated after every optimizer step (the reference updates just
    before it, one step behind; evaluation uses the raw weights either way, SPEC §5)."""

    enabled: bool = True
    decay: float = 0.9999


@dataclass
class AugmentSection:
    """SPEC §5 augmentation on the training batches; overrides: AugmentConfig fields
    (probabilities, ranges, ``consistent``). The resize step is the network's own."""

    enabled: bool = True
    overrides: dict = field(default_factory=dict)


@dataclass
class ScheduleSection:
    """Learning-rate factor per optimizer step s of a stage with S steps (SPEC §5):
    constant/none 1; linear ``1 − s/S`` (paper Eq. 15; ``variant: reference`` is the
    released code's ``1 − s/(S+1)`` with ``S = epochs·N // B``); cosine
    ``(1 + cos(π·s/S))/2`` (T_max = S); exponential ``gamma**s``. warmup_steps: linear
    ramp from 0 over the first steps (off in the paper)."""

    kind: str = "constant"
    variant: str = "paper"
    gamma: float = 0.999
    warmup_steps: int = 0


@dataclass
class DataSpec:
    """One data source.

    type: ``shards`` (generator output folder), ``generator`` (generated on the fly into a
    pool on the training device), ``slp`` (SLP danaLab, the real data), ``bodypressure``
    (BodyPressureSD). path: the shard folder, or the ``<data>`` root of SLP/BodyPressureSD.
    name: the source's name in mixes and logs (default: type, numbered if repeated).
    weight: mixing weight within a stage (used when the stage sets ``samples_per_epoch``).
    split / subjects / fraction (slp): a split of :mod:`disrt_core.data.splits`, explicit
    subject ids, or the first ``round(fraction·79)`` training subjects (Table 1); default
    ``real_1_80``. For shards, ``fraction`` keeps the first ``round(fraction·n)`` shards.
    covers, depth, vertices, poses (slp); stems, images (bodypressure): reader options.
    samples, refresh_every, sim, gen_batch, seed (generator): pool size, epochs between
    regenerations, :class:`~disrt_core.sim.generator.SimConfig` fields (``sensor`` may be
    a list: the pools alternate between them), samples per generator call, seed offset.
    mix (generator): a list of SimConfig overrides (e.g. ``{scene: room, sensor: l515}``);
    the generator calls of a pool take them in turn, so every pool mixes them in equal shares.
    """

    type: str = "shards"
    path: str | None = None
    name: str | None = None
    weight: float = 1.0
    split: str | None = None
    subjects: list[int] | None = None
    fraction: float | None = None
    covers: list[str] = field(default_factory=lambda: ["uncover", "cover1", "cover2"])
    depth: str = "cleaned"
    vertices: bool = False
    poses: list[int] | None = None
    stems: list[str] | None = None
    images: str = "disrt"
    samples: int = 10_000
    refresh_every: int = 1
    sim: dict = field(default_factory=dict)
    gen_batch: int = 256
    seed: int = 0
    mix: list[dict] | None = None


@dataclass
class StageSection:
    """One training stage. batch_size is the global batch of one optimizer step (split over
    the DDP processes). max_steps caps the stage (None: epochs × batches per epoch).
    lr: None = ``optim.lr``. freeze: Denoiser submodules whose weights stay fixed.
    samples_per_epoch: with several sources, draw this many per epoch by ``weight``
    (else every sample of every source once per epoch). reset_optimizer: fresh AdamW
    moments (the reference carries them over, SPEC §8.5)."""

    name: str = "synth"
    data: list[DataSpec] = field(default_factory=list)
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 32
    lr: float | None = None
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    freeze: list[str] = field(default_factory=list)
    samples_per_epoch: int | None = None
    reset_optimizer: bool = False


@dataclass
class EvalSection:
    """Held-out evaluation during training (rank 0): every ``every_epochs`` epochs (0 =
    never mid-stage) and at each stage's end, with ``steps`` DDIM steps and ``hypotheses``."""

    data: DataSpec | None = None
    every_epochs: int = 0
    at_stage_end: bool = True
    steps: int = 5
    hypotheses: int = 1
    seed: int = 0
    batch_size: int = 64
    max_samples: int | None = None
    measurements: bool = False


@dataclass
class InitSection:
    """checkpoint: a training state (``state/*.pt``: weights, and with ``optimizer`` the
    AdamW moments, with ``ema`` the EMA) or a model ``.safetensors`` (weights only)."""

    checkpoint: str | None = None
    optimizer: bool = True
    ema: bool = True


@dataclass
class RunSection:
    """device: ``auto`` (CUDA if present) | ``cpu`` | ``cuda``. precision: ``auto`` (bf16
    autocast on CUDA, fp32 on CPU) | ``fp32`` | ``bf16``. compile: a torch.compile mode or
    None. streams: independent data streams (fixes the data order; a multiple of
    num_workers). checkpoint_every: steps between resume states (0: epoch ends only).
    threads: CPU threads (None: torch's default). dist_timeout_min: collective timeout
    under torchrun (rank 0 evaluates and writes while the others wait). prefetch_pools: a
    ``generator`` source makes its next pool in the background while training runs on
    the current one (:mod:`disrt_core.train.prefetch`; None: on CUDA only, where the two
    share the GPU; on a few CPU cores they would share the cores). stats_group_norm: the
    network's GroupNorms computed from per-channel sums (:class:`~disrt_core.model.blocks.
    StatsGroupNorm`, the same function; None: on CUDA only, where it measured 1.3x the
    compiled and 1.1x the eager training rate of the paper network on an H100, benchmarks/
    NOTES.md; the weights and checkpoints are the same either way). compile_loss: with
    ``compile`` set, the body model's decoding and the mesh loss (``losses.decoded_terms``)
    compiled too, as their own graph (off by default: a new compile of the body model)."""

    out_dir: str = "runs/default"
    device: str = "auto"
    precision: str = "auto"
    compile: str | None = None
    channels_last: bool = True
    num_workers: int = 2
    streams: int = 4
    pin_memory: bool | None = None
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    log_every: int = 50
    progress: bool = True
    tensorboard: bool = False
    threads: int | None = None
    deterministic: bool = False
    dist_timeout_min: float = 30.0
    skip_bad: bool = False
    prefetch_pools: bool | None = None
    stats_group_norm: bool | None = None
    compile_loss: bool = False


@dataclass
class TrainConfig:
    """name, seed; data_root: the default ``path`` of ``slp`` and ``bodypressure`` sources
    (BodyMAP's ``data_BP`` folder); then the sections of the module docstring."""

    name: str = "disrt"
    seed: int = 0
    data_root: str | None = None
    body: BodySection = field(default_factory=BodySection)
    model: ModelSection = field(default_factory=ModelSection)
    diffusion: DiffusionSection = field(default_factory=DiffusionSection)
    loss: LossSection = field(default_factory=LossSection)
    optim: OptimSection = field(default_factory=OptimSection)
    ema: EmaSection = field(default_factory=EmaSection)
    augment: AugmentSection = field(default_factory=AugmentSection)
    stages: list[StageSection] = field(default_factory=list)
    eval: EvalSection = field(default_factory=EvalSection)
    init: InitSection = field(default_factory=InitSection)
    run: RunSection = field(default_factory=RunSection)

    def to_dict(self) -> dict:
        return _plain(asdict(self))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    def stage(self, name: str) -> StageSection:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise ConfigError(f"no stage named {name!r}; stages: {[s.name for s in self.stages]}")


#: Values that may change when a run is resumed (they do not change what is computed).
RESUME_FREE = {"run.out_dir", "run.num_workers", "run.pin_memory", "run.checkpoint_every",
               "run.keep_checkpoints", "run.log_every", "run.progress", "run.tensorboard",
               "run.dist_timeout_min", "eval", "name", "run.device", "run.compile",
               "run.compile_loss"}


# --- conversion from plain data -------------------------------------------------------------

def _plain(value: Any) -> Any:
    """Tuples -> lists, recursively (YAML- and JSON-friendly)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        return _convert(value, options[0], where)
    if is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_convert(v, args[0], f"{where}.{i}") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{where}.{i}") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} values, got {list(value)}")
        return tuple(_convert(v, a, f"{where}.{i}") for i, (v, a) in enumerate(zip(value, args)))
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:  # PyYAML reads "1e-4" (no dot) as a string
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type, data: Any, where: str = "config") -> Any:
    """Build dataclass ``cls`` from plain data, refusing unknown keys and wrong types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of {cls.__name__} fields, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in fields(cls)]
    for key in data:
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r}{_suggest(str(key), known)}; "
                              f"known keys: {', '.join(known)}")
    kwargs = {}
    for f in fields(cls):
        if f.name in data:
            kwargs[f.name] = _convert(data[f.name], hints[f.name], f"{where}.{f.name}")
        elif f.default is MISSING and f.default_factory is MISSING:
            raise ConfigError(f"{where}: missing key {f.name!r}")
    return cls(**kwargs)


# --- overrides ----------------------------------------------------------------------------

def _child(node: Any, token: str, where: str, create: bool) -> Any:
    if isinstance(node, list):
        if token.lstrip("-").isdigit():
            index = int(token)
            if not -len(node) <= index < len(node):
                raise ConfigError(f"{where}: index {index} out of range ({len(node)} items)")
            return index
        for i, item in enumerate(node):
            if isinstance(item, dict) and (item.get("name") == token
                                           or (item.get("name") is None
                                               and item.get("type") == token)):
                return i
        names = [item.get("name") or item.get("type") for item in node if isinstance(item, dict)]
        raise ConfigError(f"{where}: no item named {token!r}; items: {names}")
    if not isinstance(node, dict):
        raise ConfigError(f"{where}: cannot set a key inside the value {node!r}")
    if token not in node and create:
        node[token] = {}
    return token


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply ``dotted.key=value`` overrides to the raw mapping of a config file (in place;
    also returned). Types are checked when the result is converted (:func:`load_config`)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected dotted.key=value "
                              "(e.g. stages.synth.epochs=3)")
        key, text = item.split("=", 1)
        tokens = key.strip().split(".")
        if not all(tokens):
            raise ConfigError(f"override {item!r}: empty key")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({exc})") from None
        node, where = raw, "config"
        for token in tokens[:-1]:
            slot = _child(node, token, where, create=True)
            if node[slot] is None:
                node[slot] = {}
            node, where = node[slot], f"{where}.{token}"
        slot = _child(node, tokens[-1], where, create=False)
        node[slot] = value
    return raw


def _name_data(config: TrainConfig) -> None:
    """Give every data source a unique name (its type, numbered when repeated)."""
    for stage in config.stages:
        seen: dict[str, int] = {}
        for spec in stage.data:
            base = spec.name or spec.type
            seen[base] = seen.get(base, 0) + 1
            if spec.name is None:
                spec.name = base if seen[base] == 1 else f"{base}{seen[base]}"
        names = [s.name for s in stage.data]
        if len(set(names)) != len(names):
            raise ConfigError(f"stages.{stage.name}.data: names must differ, got {names}")


def validate(config: TrainConfig) -> TrainConfig:
    """Check values that types alone do not catch; returns the config."""
    def bad(where: str, message: str) -> ConfigError:
        return ConfigError(f"{where}: {message}")

    if config.body.kind not in ("anny", "smpl", "auto"):
        raise bad("body.kind", f"must be anny, smpl or auto, got {config.body.kind!r}")
    if config.body.gender not in ("neutral", "female", "male", "both"):
        raise bad("body.gender", f"must be neutral, female, male or both, got "
                  f"{config.body.gender!r}")
    from disrt_core.model import PRESETS, DenoiserConfig

    if config.model.preset not in PRESETS:
        raise bad("model.preset", f"unknown preset {config.model.preset!r}; choose one of "
                  f"{sorted(PRESETS)}")
    known = [f.name for f in fields(DenoiserConfig)]
    for key in config.model.overrides:
        if key not in known:
            raise bad("model.overrides", f"unknown network field {key!r}"
                      f"{_suggest(key, known)}; known: {', '.join(known)}")
    from disrt_core.data.augment import AugmentConfig

    known = [f.name for f in fields(AugmentConfig) if f.name != "out_size"]
    for key in config.augment.overrides:
        if key not in known:
            raise bad("augment.overrides", f"unknown augmentation field {key!r}"
                      f"{_suggest(key, known)}; known: {', '.join(known)}")
    if config.loss.normalisers not in ("auto", "reference", "data"):
        raise bad("loss.normalisers", f"must be auto, reference or data, got "
                  f"{config.loss.normalisers!r}")
    from disrt_core.diffusion_space import PARAMETRISATIONS, SPACES

    diff = config.diffusion
    if diff.space not in SPACES:
        raise bad("diffusion.space", f"must be one of {SPACES}, got {diff.space!r}")
    if diff.parametrisation not in PARAMETRISATIONS:
        raise bad("diffusion.parametrisation", f"must be one of {PARAMETRISATIONS}, got "
                  f"{diff.parametrisation!r}")
    if diff.parametrisation == "skip" and diff.space != "normalised":
        raise bad("diffusion.parametrisation", "skip needs diffusion.space=normalised")
    sd = diff.sigma_data
    if sd != "residual" and (isinstance(sd, bool) or not isinstance(sd, (int, float))
                             or not 0 < sd < math.inf):
        raise bad("diffusion.sigma_data", f"must be a number > 0 or 'residual', got {sd!r}")
    if sd != 1.0 and diff.parametrisation != "skip":
        raise bad("diffusion.sigma_data", "belongs to the skip parametrisation")
    if sd == "residual" and not config.init.checkpoint:
        raise bad("diffusion.sigma_data", "'residual' measures the init.checkpoint network's "
                  "image-only error: set init.checkpoint, or give a number")
    if diff.space_samples < 2 or not diff.std_floor > 0:
        raise bad("diffusion", "space_samples must be ≥ 2 and std_floor > 0")
    if config.loss.lambda_x0 < 0 or not config.loss.min_snr_gamma > 0:
        raise bad("loss", "lambda_x0 must be ≥ 0 and min_snr_gamma > 0")
    if config.optim.lr <= 0 or config.optim.weight_decay < 0 or config.optim.grad_clip < 0:
        raise bad("optim", "lr must be > 0, weight_decay and grad_clip ≥ 0")
    if not 0.0 < config.ema.decay < 1.0:
        raise bad("ema.decay", f"must be in (0, 1), got {config.ema.decay}")
    run = config.run
    if run.device not in ("auto", "cpu", "cuda") and not run.device.startswith("cuda:"):
        raise bad("run.device", f"must be auto, cpu, cuda or cuda:N, got {run.device!r}")
    if run.precision not in ("auto", "fp32", "bf16"):
        raise bad("run.precision", f"must be auto, fp32 or bf16, got {run.precision!r}")
    if run.num_workers < 0 or run.streams < 1 or (run.num_workers and
                                                  run.streams % run.num_workers):
        raise bad("run.streams", f"must be ≥ 1 and a multiple of run.num_workers "
                  f"({run.num_workers}), got {run.streams}")
    if run.checkpoint_every < 0 or run.keep_checkpoints < 1 or run.log_every < 1:
        raise bad("run", "checkpoint_every ≥ 0, keep_checkpoints ≥ 1 and log_every ≥ 1")
    if not config.stages:
        raise bad("stages", "no training stage given")
    names = [s.name for s in config.stages]
    if len(set(names)) != len(names):
        raise bad("stages", f"stage names must differ, got {names}")
    for stage in config.stages:
        where = f"stages.{stage.name}"
        if not stage.data:
            raise bad(f"{where}.data", "no data source given")
        if stage.epochs < 1 or stage.batch_size < 1 or (stage.max_steps is not None
                                                        and stage.max_steps < 1):
            raise bad(where, "epochs, batch_size and max_steps must be ≥ 1")
        if stage.schedule.kind not in SCHEDULES:
            raise bad(f"{where}.schedule.kind", f"must be one of {SCHEDULES}, got "
                      f"{stage.schedule.kind!r}")
        if stage.schedule.variant not in ("paper", "reference"):
            raise bad(f"{where}.schedule.variant", "must be paper or reference")
        for module in stage.freeze:
            if module not in FREEZABLE:
                raise bad(f"{where}.freeze", f"unknown module {module!r}"
                          f"{_suggest(module, list(FREEZABLE))}; choose from {FREEZABLE}")
        if any(s.type == "generator" for s in stage.data) and len(stage.data) > 1:
            raise bad(f"{where}.data", "a generator source cannot be mixed with others; write "
                      "shards with `disrt-generate` and mix those")
        for i, spec in enumerate(stage.data):
            _validate_spec(spec, f"{where}.data.{i}", config.data_root)
    if config.eval.data is not None:
        _validate_spec(config.eval.data, "eval.data", config.data_root)
    if config.eval.steps < 1 or config.eval.hypotheses < 1:
        raise bad("eval", "steps and hypotheses must be ≥ 1")
    _name_data(config)
    return config


def _validate_spec(spec: DataSpec, where: str, data_root: str | None = None) -> None:
    if spec.type not in DATA_TYPES:
        raise ConfigError(f"{where}.type: must be one of {DATA_TYPES}, got {spec.type!r}"
                          f"{_suggest(spec.type, list(DATA_TYPES))}")
    if spec.type in ("slp", "bodypressure") and not spec.path:
        spec.path = data_root
    if spec.type != "generator" and not spec.path:
        raise ConfigError(f"{where}.path: a {spec.type} source needs a path (the "
                          + ("shard folder)" if spec.type == "shards" else
                             "<data> root; or set data_root)"))
    if spec.fraction is not None and not 0.0 < spec.fraction <= 1.0:
        raise ConfigError(f"{where}.fraction: must be in (0, 1], got {spec.fraction}")
    if spec.type == "generator" and (spec.samples < 1 or spec.refresh_every < 1
                                     or spec.gen_batch < 1):
        raise ConfigError(f"{where}: samples, refresh_every and gen_batch must be ≥ 1")
    if spec.weight < 0:
        raise ConfigError(f"{where}.weight: must be ≥ 0")


def load_config(path: str | Path | None = None, overrides: list[str] = (),
                base: dict | None = None) -> TrainConfig:
    """Read a YAML config (or start from ``base``), apply overrides, convert and validate."""
    raw: dict = dict(base or {})
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
    raw = apply_overrides(raw, list(overrides))
    return validate(from_dict(TrainConfig, raw, where="config"))


def config_diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain config dicts."""
    out = []
    for key in sorted(set(a) | set(b), key=str):
        where = f"{prefix}{key}"
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += config_diff(va, vb, f"{where}.")
        elif va != vb:
            out.append(where)
    return out


def resume_conflicts(saved: dict, current: dict) -> list[str]:
    """Keys that differ between a saved and the current config and do matter for resuming."""
    def free(key: str) -> bool:
        return any(key == k or key.startswith(k + ".") for k in RESUME_FREE)

    def with_defaults(defaults: dict, given: dict) -> dict:
        # a run saved before a key existed ran with that key's default
        out = dict(given)
        for key, value in defaults.items():
            if key not in out:
                out[key] = value
            elif isinstance(value, dict) and isinstance(out[key], dict):
                out[key] = with_defaults(value, out[key])
        return out

    saved = with_defaults(TrainConfig().to_dict(), saved)
    return [k for k in config_diff(saved, current) if not free(k)]


#: A very small network for smoke runs and tests: 64×27 trunk input, 8 base channels.
TINY_NETWORK = {"name": "tiny", "image_size": [64, 27], "model_channels": 8,
                "channel_mult": [1, 2, 2], "attention_ds": [4], "head_channels": 16,
                "emb_dim": 64, "time_freq_dim": 32, "trunk_out_dim": 64, "head_hidden_dim": 64,
                "norm_groups": 8, "dropout": 0.0}


def smoke_config(out_dir: str | Path) -> TrainConfig:
    """A tiny complete two-stage run on the CPU (``train.py --smoke``, about a minute):
    a narrow network, Anny, stage 1 on a generated pool (Kinect, all covers), stage 2 on a
    generated "target" pool (RealSense D435, another seed) with the linear decay and frozen
    embedders, evaluation on a held-out generated set."""
    gen = {"type": "generator", "samples": 32, "gen_batch": 16}
    raw = {
        "name": "smoke", "seed": 0,
        "body": {"kind": "anny"},
        "model": {"preset": "small", "overrides": TINY_NETWORK},
        "loss": {"normalisers": "data", "normaliser_samples": 32},
        "stages": [
            {"name": "synth", "data": [{**gen, "seed": 0}], "epochs": 2, "batch_size": 8,
             "schedule": {"kind": "constant"}},
            {"name": "target", "data": [{**gen, "seed": 1, "sim": {"sensor": "d435"}}],
             "epochs": 1, "batch_size": 8, "schedule": {"kind": "linear"},
             "freeze": ["param_embed", "time_embed"]},
        ],
        "eval": {"data": {**gen, "samples": 16, "seed": 2, "sim": {"sensor": "d435"}},
                 "batch_size": 16, "measurements": True},
        "run": {"out_dir": str(out_dir), "device": "cpu", "num_workers": 0, "streams": 1,
                "checkpoint_every": 5, "log_every": 1},
    }
    return validate(from_dict(TrainConfig, raw))
