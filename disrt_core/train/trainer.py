"""The training loop: stages, AdamW, schedules, AMP, compile, DDP, EMA, checkpoints, resume.

One :class:`Trainer` runs the stages of a :class:`~disrt_core.train.config.TrainConfig` in
order (SPEC §5): stage 1 on synthetic data at a constant learning rate, stage 2 on real
data with the linear decay, ParamMLP and TimeMLP frozen, AdamW's moments carried over and
the scheduler rebuilt (SPEC §8.5). Everything is checked before the first step: config,
paths, body model against the labels, non-empty data, init checkpoint.

One step (SPEC §2, §4): the batch is augmented (SPEC §5, seeded by the batch), t and ε
are drawn for the whole global batch from a generator seeded by (seed, stage, epoch,
batch) and each process takes its rows, the global RNG (dropout) is re-seeded from the
same position and the rank, ``disrt_core.losses.diffusion_loss`` gives the loss through
the mesh decoder, then backward, optional clipping, AdamW, the scheduler and the EMA. So
every random draw is a function of the step's position: a resumed run repeats exactly
what the uninterrupted run did, and one process with batch B computes what N DDP
processes with B/N rows each compute (up to float summation order).

Outputs in ``run.out_dir``: ``config.yaml`` (resolved), ``log.csv``, ``state/`` (resume
states, :mod:`disrt_core.train.state`), ``model.safetensors`` and ``model-<stage>.safetensors``
(+ ``-ema``) in the checkpoint format of :mod:`disrt_core.checkpoint`, ``eval/*.json``.
Only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.nn.parallel import DistributedDataParallel

from disrt_core.checkpoint import read_header, save_checkpoint
from disrt_core.data.augment import AugmentConfig, Augmenter
from disrt_core.data.source import DataError, check_body_model
from disrt_core.decoder import MeshDecoder
from disrt_core.diffusion import GaussianDiffusion
from disrt_core.diffusion_space import DiffusionSpace
from disrt_core.host_copy import to_device
from disrt_core.losses import LossConfig, decoded_terms, diffusion_loss, normalisers_from_data
from disrt_core.model import Denoiser, DenoiserConfig, preset
from disrt_core.model.blocks import use_stats_group_norm
from disrt_core.train import distributed
from disrt_core.train import state as st
from disrt_core.train.config import ConfigError, TrainConfig, resume_conflicts
from disrt_core.train.data import build_train_data, derive_seed
from disrt_core.train.monitor import Monitor
from disrt_core.train.schedules import build_scheduler, stage_factor
from disrt_core.train.space import (
    fold_into_head,
    image_only_residual,
    refold_sigma,
    space_from_batches,
)

LOSS_TERMS = ("total", "betas", "root", "angles", "joints", "v2v", "x0")


@dataclass
class Position:
    """Where training stands: the next batch to run is batch ``batch`` of epoch ``epoch`` of
    stage ``stage``; ``step`` optimizer steps done in all, ``stage_step`` in this stage."""

    stage: int = 0
    epoch: int = 0
    batch: int = 0
    step: int = 0
    stage_step: int = 0


def load_body(section, device: torch.device):
    """The body model of the config (SMPL files from ``smpl_dir`` / ``$DISRT_SMPL_DIR``)."""
    from disrt_core.body import load_body_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Anny/Warp chatter
        return load_body_model(section.kind, section.smpl_dir, section.gender, str(device))


def network_config(config: TrainConfig) -> DenoiserConfig:
    base = preset(config.model.preset).to_dict()
    return DenoiserConfig.from_dict({**base, **config.model.overrides})


def pick_device(name: str, info: distributed.DistInfo) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("run.device is cuda but torch sees no CUDA GPU; use run.device=cpu")
        device = torch.device(f"cuda:{info.local_rank}" if name == "cuda" else name)
        torch.cuda.set_device(device)
        return device
    return torch.device("cpu")


class Trainer:
    """Runs a config's stages (see the module docstring). ``resume``: continue from the
    newest state in ``run.out_dir``. Construction checks everything; :meth:`fit` trains."""

    def __init__(self, config: TrainConfig, resume: bool = False) -> None:
        self.config, cfg = config, config
        self.info = distributed.from_env()
        self.out_dir = Path(cfg.run.out_dir)
        if cfg.run.threads:
            torch.set_num_threads(cfg.run.threads)
        if cfg.run.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        else:
            torch.backends.cudnn.benchmark = True
        self.device = pick_device(cfg.run.device, self.info)
        self._owns_group = self.info.enabled and not torch.distributed.is_initialized()
        distributed.init(self.info, self.device, cfg.run.dist_timeout_min)
        precision = cfg.run.precision
        if precision == "auto":
            precision = "bf16" if self.device.type == "cuda" else "fp32"
        self.amp_dtype = torch.bfloat16 if precision == "bf16" else None

        resume_path = None
        if resume:
            resume_path = st.latest_state(self.out_dir)
            if resume_path is None:
                raise FileNotFoundError(f"--resume: no training state in {self.out_dir / 'state'}"
                                        "; start without --resume or point run.out_dir at the "
                                        "run to continue")
        init = cfg.init.checkpoint
        if init and not Path(init).is_file():
            raise FileNotFoundError(f"init.checkpoint: {init} not found (a state/*.pt of an "
                                    "earlier run or a model .safetensors)")

        # Body model and every stage's data: all checked before any training.
        self.body = load_body(cfg.body, self.device)
        self.layout = self.body.param_layout
        self.data = []
        for index, stage in enumerate(cfg.stages):
            seed = derive_seed(cfg.seed, index, 0xDA7A)
            self.data.append(build_train_data(stage, self.body, self.device, seed, self.info,
                                              cfg.run))
        if cfg.eval.data is not None and cfg.eval.data.type != "generator":
            from disrt_core.train.data import build_source

            build_source(cfg.eval.data, self.body, "eval.data", default_split="real_81_102")

        torch.manual_seed(cfg.seed)  # the same initial weights on every rank
        self.net_config = network_config(cfg)
        self.model = Denoiser(self.net_config, self.body.param_dim).to(self.device)
        if cfg.run.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        stats_gn = cfg.run.stats_group_norm
        if stats_gn or (stats_gn is None and self.device.type == "cuda"):
            use_stats_group_norm(self.model)  # the same function, faster statistics on a GPU
        self.decoder = MeshDecoder(self.body).to(self.device)
        self.diffusion = GaussianDiffusion(cfg.diffusion.num_timesteps)
        self.ema = None
        if cfg.ema.enabled:
            self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        fused = cfg.optim.fused if cfg.optim.fused is not None else self.device.type == "cuda"
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas),
            eps=cfg.optim.eps, weight_decay=cfg.optim.weight_decay, fused=fused)
        self.augmenter = None
        if cfg.augment.enabled:
            size = tuple(self.net_config.image_size)
            aug = AugmentConfig(**{**cfg.augment.overrides,
                                   "out_size": None if size == (128, 54) else size})
            self.augmenter = Augmenter(aug, self.layout)
        self.loss_config: LossConfig | None = None
        self.space: DiffusionSpace | None = None  # from a resume state, init or the data
        self.position = Position()
        self.summary: dict[str, Any] = {"samples": 0, "train_seconds": 0.0, "evals": []}
        self.history: list[dict[str, Any]] = []
        self.scheduler = None
        self._resume_state: dict | None = None
        if resume_path is not None:
            self._load_resume(resume_path)
        elif init:
            self._load_init(Path(init))
        if self.loss_config is None:
            self.loss_config = self._normalisers()
        if self.space is None:
            self.space = self._data_space()
        self.monitor = Monitor(self.out_dir, self.info.is_main, cfg.run.progress,
                               cfg.run.tensorboard,
                               resume_step=self.position.step if resume_path else None)
        if self.info.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "config.yaml").write_text(cfg.to_yaml())
            if resume_path:
                self.monitor.write(f"[train] resuming from {resume_path} at step "
                                   f"{self.position.step}")

    # --- set-up helpers ---------------------------------------------------------------

    def _normalisers(self) -> LossConfig:
        """SPEC §4 normalisers: the reference constants or stds over the first stage's data."""
        cfg = self.config.loss
        base = LossConfig(lambda_smpl=cfg.lambda_smpl, lambda_v2v=cfg.lambda_v2v)
        mode = cfg.normalisers
        if mode == "auto":
            mode = "reference" if self.body.model_id.startswith("smpl") else "data"
        if mode == "reference":
            return base
        result = None
        if self.info.is_main:
            params, genders, count = [], [], 0
            data = self.data[0]
            for batch in data.epoch(0):
                params.append(batch["params"].to(self.device))
                genders.append(batch["gender"].to(self.device))
                count += len(batch["params"])
                if count >= cfg.normaliser_samples:
                    break
            x0 = torch.cat(params)[:cfg.normaliser_samples].float()
            gender = torch.cat(genders)[:len(x0)] if self.body.takes_gender else None
            result = asdict(normalisers_from_data(self.decoder, x0, gender, base))
        result = distributed.broadcast_object(result, self.info)
        return LossConfig(**result)

    def _data_space(self, with_sigma: bool = True) -> DiffusionSpace:
        """``diffusion.space`` of the config: raw, or normalised with statistics of the first
        stage's data (rank 0 reads, the others receive); with the config's numeric σ_d
        unless ``with_sigma`` is False (an init network gets it from _set_sigma_data)."""
        cfg = self.config.diffusion
        if cfg.space == "raw":
            return DiffusionSpace()
        result = None
        if self.info.is_main:
            space = space_from_batches(self.data[0].epoch(0), self._to_net, cfg.space_samples,
                                       cfg.parametrisation, cfg.std_floor)
            if with_sigma and cfg.sigma_data not in ("residual", 1.0):
                space.sigma_data = torch.tensor(float(cfg.sigma_data))
            result = space.to_dict()
        return DiffusionSpace.from_dict(distributed.broadcast_object(result, self.info))

    def _to_net(self, x0: torch.Tensor) -> torch.Tensor:
        """Label-frame x0 -> the vector the diffusion noises (before normalising)."""
        x0 = x0.to(self.device)
        if self.config.diffusion.invert_bounds:
            return self.decoder.invert(x0)
        return x0 - self.decoder.transl_shift.to(x0.device)

    def _set_sigma_data(self) -> None:
        """The config's ``diffusion.sigma_data`` on an init network: ``residual`` measures
        σ_d per dimension from the network as it starts (its image-only error; rank 0
        measures); a number replaces the init's. The head is refolded so that the answer at
        t = T−1 stays (:func:`~disrt_core.train.space.refold_sigma`)."""
        cfg = self.config.diffusion
        if cfg.parametrisation != "skip":
            return
        if cfg.sigma_data == "residual":
            sigma = None
            if self.info.is_main:
                sigma = image_only_residual(self.model, self.space, self.diffusion,
                                            self.data[0].epoch(0), self._to_net,
                                            cfg.space_samples, self.device).tolist()
            sigma = distributed.broadcast_object(sigma, self.info)
        else:
            sigma = None if cfg.sigma_data == 1.0 else float(cfg.sigma_data)
            current = self.space.sigma_data
            if (current is None and sigma is None) or (
                    current is not None and sigma is not None
                    and bool((current == sigma).all())):
                return
        new = DiffusionSpace(self.space.kind, "skip", self.space.mean, self.space.std, sigma)
        abar = torch.as_tensor(self.diffusion.alphas_cumprod, dtype=torch.float32)
        for net in (self.model, self.ema):
            if net is not None:
                refold_sigma(net, self.space, new, abar)
        self.space = new

    def _adopt_space(self, saved: DiffusionSpace, source: str) -> None:
        """The space of an init checkpoint or state, against the config's: kept when the
        kinds agree (the parametrisation is the config's); a raw network continuing in a
        normalised space gets the data's statistics, folded into its head
        (:func:`~disrt_core.train.space.fold_into_head`)."""
        cfg = self.config.diffusion
        if saved.kind == cfg.space:
            keep = saved.sigma_data if cfg.parametrisation == saved.parametrisation else None
            self.space = DiffusionSpace(saved.kind, cfg.parametrisation, saved.mean, saved.std,
                                        keep)
        elif saved.kind == "raw":
            self.space = self._data_space(with_sigma=False)
            fold_into_head(self.model, self.space)
            if self.ema is not None:
                fold_into_head(self.ema, self.space)
        else:
            raise ConfigError(f"{source} diffuses in the {saved.kind} space, the config in "
                              f"{cfg.space}; set diffusion.space={saved.kind}")
        self._set_sigma_data()

    def _check_body(self, saved: dict, source: str) -> None:
        if saved["model_id"] != self.body.model_id or saved["layout"] != self.layout.to_dict():
            raise DataError(f"{source} was trained for body model {saved['model_id']} "
                            f"({saved['layout']}), the config loads {self.body.model_id} "
                            f"({self.layout.to_dict()}); set body.kind to match")

    def _check_network(self, network: dict, source: str) -> None:
        from disrt_core.train.config import config_diff

        diff = config_diff(json.loads(json.dumps(network)),
                           json.loads(json.dumps(self.net_config.to_dict())))
        if diff:
            raise ConfigError(f"{source} holds a network that differs from model.* in "
                              f"{diff}; use the same model.preset/overrides")

    def _load_init(self, path: Path) -> None:
        """Weights (and AdamW moments, EMA, loss normalisers) of another run."""
        if path.suffix == ".safetensors":
            from disrt_core.checkpoint import load_checkpoint

            header = read_header(path)
            check_body_model(self.body, model_id=header.model_id, param_dim=header.param_dim,
                             what=f"init.checkpoint {path}")
            self._check_network(header.network.to_dict(), f"init.checkpoint {path}")
            model, _ = load_checkpoint(path, param_layout=self.layout)
            self.model.load_state_dict(model.state_dict())
            if self.ema is not None:
                self.ema.load_state_dict(model.state_dict())
            self._adopt_space(DiffusionSpace.from_dict(header.diffusion), f"init.checkpoint {path}")
            return
        state = st.load_state(path, self.device)
        self._check_body(state["body"], f"init.checkpoint {path}")
        self._check_network(state["network"], f"init.checkpoint {path}")
        self.model.load_state_dict(state["model"])
        if self.ema is not None:
            ema = state.get("ema") if self.config.init.ema else None
            self.ema.load_state_dict(ema if ema is not None else state["model"])
        if self.config.init.optimizer:
            self.optimizer.load_state_dict(state["optimizer"])
        self.loss_config = LossConfig(**state["loss"])
        self._adopt_space(DiffusionSpace.from_dict(state.get("space")), f"init.checkpoint {path}")

    def _load_resume(self, path: Path) -> None:
        state = st.load_state(path, self.device)
        conflicts = resume_conflicts(state["config"], self.config.to_dict())
        if conflicts:
            raise ConfigError(f"--resume: the config differs from the run's saved config in "
                              f"{conflicts}; resume with the same settings (see "
                              f"{self.out_dir / 'config.yaml'}) or start a new run.out_dir")
        self._check_body(state["body"], str(path))
        self.model.load_state_dict(state["model"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.loss_config = LossConfig(**state["loss"])
        self.space = DiffusionSpace.from_dict(state.get("space"))
        self.position = Position(**state["position"])
        self.summary = state["summary"]
        if self.position.stage < len(self.data):
            self.data[self.position.stage].check_state(state["data"])
        rng = state["rng"]
        if len(rng) != self.info.world:
            warnings.warn(f"resuming with {self.info.world} processes, the run had {len(rng)}: "
                          "the batches are the same, dropout draws are not", stacklevel=2)
        self._resume_state = {"scheduler": state["scheduler"],
                              "rng": rng[self.info.rank % len(rng)]}

    # --- the step -----------------------------------------------------------------------

    def _forward(self, x_t, t, depth):
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            return self.net(x_t, t, depth).float()

    def train_step(self, batch: dict[str, Any], stage_index: int) -> tuple[dict, Any, float]:
        """One optimizer step on a batch (the process's rows of a global batch); returns the
        loss terms (tensors), the gradient norm (None unless clipping) and the step's lr."""
        cfg, dev, info = self.config, self.device, self.info
        stage = cfg.stages[stage_index]
        depth = batch["depth"].to(dev, non_blocking=True)
        x0 = batch["params"].to(dev, non_blocking=True).float()
        gender = batch["gender"].to(dev, non_blocking=True) if self.body.takes_gender else None
        epoch, index = int(batch["epoch"]), int(batch["index"])
        if self.augmenter is not None:
            seed = int(batch["seed"]) if info.world == 1 else derive_seed(batch["seed"],
                                                                          info.rank)
            out = self.augmenter({"depth": depth, "params": x0}, seed=seed)
            depth, x0 = out["depth"], out["params"]
        if cfg.run.channels_last:
            depth = depth.contiguous(memory_format=torch.channels_last)
        gen = torch.Generator().manual_seed(derive_seed(cfg.seed, stage_index, epoch, index,
                                                        0x7E))
        rows, local = stage.batch_size, x0.shape[0]
        first = info.rank * (rows // info.world)
        t = torch.randint(0, self.diffusion.num_timesteps, (rows,), generator=gen)
        noise = torch.randn(rows, self.layout.param_dim, generator=gen)
        # Drawn on the CPU (the same on any device), copied without stopping the host.
        t = to_device(t[first:first + local], dev)
        noise = to_device(noise[first:first + local], dev)
        torch.manual_seed(derive_seed(cfg.seed, stage_index, epoch, index, info.rank, 0xD0))
        terms, _ = diffusion_loss(self._forward, self.diffusion, self.decoder, depth, x0, gender,
                                  self.loss_config, t=t, noise=noise,
                                  consistent_translation=cfg.diffusion.consistent_translation,
                                  space=self.space, lambda_x0=cfg.loss.lambda_x0,
                                  min_snr_gamma=cfg.loss.min_snr_gamma,
                                  invert_bounds=cfg.diffusion.invert_bounds,
                                  mesh_terms=self.mesh_terms)
        self.optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        grad_norm = None
        if cfg.optim.grad_clip > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(
                [p for p in self.model.parameters() if p.requires_grad], cfg.optim.grad_clip)
        lr = float(self.optimizer.param_groups[0]["lr"])
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self._update_ema()
        return {k: terms[k].detach() for k in LOSS_TERMS}, grad_norm, lr

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = self.config.ema.decay
        ema_p = list(self.ema.parameters())
        torch._foreach_lerp_(ema_p, [p.detach() for p in self.model.parameters()], 1.0 - decay)
        for e, b in zip(self.ema.buffers(), self.model.buffers()):
            e.copy_(b)

    # --- stages ---------------------------------------------------------------------------

    def stage_steps(self, index: int) -> int:
        """Optimizer steps of stage ``index`` (epochs × batches per epoch, capped)."""
        stage = self.config.stages[index]
        total = stage.epochs * len(self.data[index])
        return min(total, stage.max_steps) if stage.max_steps else total

    def begin_stage(self, index: int, fresh: bool = True) -> None:
        """Set stage ``index`` up (frozen modules, scheduler, DDP wrapper, compile); then
        :meth:`train_step` runs its steps (benchmarks call these two directly)."""
        stage, cfg = self.config.stages[index], self.config
        if fresh and stage.reset_optimizer:
            self.optimizer.state.clear()
        frozen = set(stage.freeze)
        for name, module in self.model.named_children():
            module.requires_grad_(name not in frozen)
        data = self.data[index]
        factor = stage_factor(stage.schedule.kind, self.stage_steps(index),
                              variant=stage.schedule.variant, gamma=stage.schedule.gamma,
                              warmup_steps=stage.schedule.warmup_steps, epochs=stage.epochs,
                              samples_per_epoch=data.num_samples, batch_size=stage.batch_size)
        self.scheduler = build_scheduler(self.optimizer, stage.lr or cfg.optim.lr, factor)
        if self._resume_state is not None:
            if not fresh:  # mid-stage; a state saved at a stage's end starts the next afresh
                self.scheduler.load_state_dict(self._resume_state["scheduler"])
                for group, lr in zip(self.optimizer.param_groups, self.scheduler.get_last_lr()):
                    group["lr"] = lr
            st.set_rng_state(self._resume_state["rng"])
            self._resume_state = None
        net = self.model
        if self.info.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            net = DistributedDataParallel(self.model, device_ids=ids)
        self.mesh_terms = decoded_terms
        if cfg.run.compile:
            mode = None if cfg.run.compile == "default" else cfg.run.compile
            net = torch.compile(net, mode=mode)
            if cfg.run.compile_loss:  # the body model and loss: ~1/6 of a compiled step
                self.mesh_terms = torch.compile(decoded_terms, mode=mode)
        self.net = net
        self.model.train()

    def fit(self) -> dict[str, Any]:
        """Train every remaining stage; returns the run summary (also in ``summary.json``)."""
        try:
            for index in range(self.position.stage, len(self.config.stages)):
                self._run_stage(index)
            if self.info.is_main:
                (self.out_dir / "summary.json").write_text(json.dumps(self.summary, indent=1))
        finally:
            self.monitor.close()
        return self.summary

    def _run_stage(self, index: int) -> None:
        cfg, pos = self.config, self.position
        stage, data = cfg.stages[index], self.data[index]
        total = self.stage_steps(index)
        fresh = pos.stage_step == 0 and pos.epoch == 0 and pos.batch == 0
        self.begin_stage(index, fresh)
        self.monitor.write(f"[train] stage {stage.name}: {len(data)} batches of "
                           f"{stage.batch_size} per epoch ({data.num_samples} samples) × "
                           f"{stage.epochs} epochs = {total} steps, lr "
                           f"{stage.lr or cfg.optim.lr:g} ({stage.schedule.kind})"
                           + (f", frozen {stage.freeze}" if stage.freeze else ""))
        self.monitor.begin_stage(stage.name, total, pos.stage_step)
        samples_per_step = stage.batch_size
        window: list[dict] = []
        start = time.perf_counter()
        while pos.stage_step < total:
            ran = 0
            for batch in data.epoch(pos.epoch, pos.batch):
                terms, grad_norm, lr = self.train_step(batch, index)
                ran += 1
                pos.batch, pos.step = int(batch["index"]) + 1, pos.step + 1
                pos.stage_step += 1
                self.summary["samples"] += samples_per_step
                self.monitor.step(samples_per_step)
                window.append(terms)
                if pos.step % cfg.run.log_every == 0 or pos.stage_step == total:
                    self._log(stage.name, lr, window, grad_norm)
                    window = []
                if pos.stage_step >= total:
                    break
                if cfg.run.checkpoint_every and pos.step % cfg.run.checkpoint_every == 0 \
                        and pos.batch < len(data):
                    self.save_state()
            else:  # the epoch ran out
                if ran == 0 and pos.batch == 0:
                    raise DataError(f"stages.{stage.name}: epoch {pos.epoch} gave no batch "
                                    "(every sample skipped or filtered)")
                pos.epoch, pos.batch = pos.epoch + 1, 0
                self.summary["train_seconds"] += time.perf_counter() - start
                start = time.perf_counter()
                if pos.stage_step < total:
                    # evaluate first, so that the state written here carries this eval in
                    # its summary (a resume from it does not run the eval again)
                    every = cfg.eval.every_epochs
                    if every and pos.epoch % every == 0:
                        self.evaluate(f"{stage.name}-epoch{pos.epoch}")
                    self.save_state()
                continue
            break
        self.summary["train_seconds"] += time.perf_counter() - start
        self.monitor.close_bar()
        data.release()
        pos.stage, pos.epoch, pos.batch, pos.stage_step = index + 1, 0, 0, 0
        self.export(f"model-{stage.name}")
        self.export("model")
        if cfg.eval.at_stage_end:  # before the state, as at the epoch ends
            self.evaluate(f"{stage.name}-end")
        path = self.save_state()
        if self.info.is_main and path is not None:
            st.link_or_copy(path, st.stage_path(self.out_dir, stage.name))

    def _log(self, stage: str, lr: float, window: list[dict], grad_norm) -> None:
        means = torch.stack([torch.stack([w[k] for k in LOSS_TERMS]) for w in window]).mean(0)
        means = distributed.all_mean(means.float(), self.info).cpu().tolist()
        terms = dict(zip(LOSS_TERMS, means))
        norm = None if grad_norm is None else float(grad_norm)
        pos = self.position
        row = {"step": pos.step, "stage": stage, "epoch": pos.epoch, "batch": pos.batch - 1,
               "lr": lr, **terms, "grad_norm": norm}
        self.history.append(row)
        self.monitor.log(pos.step, stage, pos.epoch, pos.batch - 1, lr, terms, norm)

    # --- checkpoints and evaluation -------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The resume state (see :mod:`disrt_core.train.state`) of this process."""
        pos = self.position
        data_state = self.data[pos.stage].state_dict() if pos.stage < len(self.data) else {}
        return {
            "format": st.FORMAT,
            "position": asdict(pos),
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "data": data_state,
            "loss": asdict(self.loss_config),
            "space": self.space.to_dict(),
            "config": self.config.to_dict(),
            "network": json.loads(json.dumps(self.net_config.to_dict())),
            "body": {"model_id": self.body.model_id, "layout": self.layout.to_dict()},
            "summary": dict(self.summary),
        }

    def save_state(self) -> Path | None:
        """Write the resume state (rank 0; every rank's RNG state included). Collective."""
        rngs = distributed.gather_objects(st.rng_state(), self.info)
        path = None
        if self.info.is_main:
            payload = self.state_dict()
            payload["rng"] = rngs
            path = st.atomic_save(payload, st.step_path(self.out_dir, self.position.step))
            st.prune(self.out_dir, self.config.run.keep_checkpoints)
        return path

    def training_summary(self) -> dict[str, Any]:
        """The ``training`` block of exported checkpoints (JSON)."""
        cfg = self.config
        return {"name": cfg.name, "seed": cfg.seed, "steps": self.position.step,
                "samples": self.summary["samples"], "body_model": self.body.model_id,
                "stages": [{"name": s.name, "epochs": s.epochs, "batch_size": s.batch_size,
                            "schedule": s.schedule.kind, "freeze": s.freeze,
                            "data": [{"type": d.type, "path": d.path, "name": d.name}
                                     for d in s.data]} for s in cfg.stages],
                "loss": asdict(self.loss_config),
                "config": yaml.safe_dump(cfg.to_dict(), sort_keys=False)}

    def diffusion_header(self) -> dict:
        """The checkpoint header's ``diffusion`` block: T and, unless it is the SPEC's raw
        space with x0 output, the space (:meth:`DiffusionSpace.to_dict`)."""
        out = {"num_timesteps": self.diffusion.num_timesteps}
        if not self.space.is_identity:
            out.update(self.space.to_dict())
        if self.config.diffusion.invert_bounds:  # what "the truth" was (not needed to sample)
            out["invert_bounds"] = True
        return out

    def export(self, stem: str) -> Path | None:
        """``<out>/<stem>.safetensors`` (+ ``<stem>-ema``) for the Estimator and evaluate.py."""
        if not self.info.is_main:
            return None
        path = self.out_dir / f"{stem}.safetensors"
        summary = self.training_summary()
        save_checkpoint(path, self.model, self.body.model_id, self.layout,
                        self.decoder.config, training=summary,
                        diffusion=self.diffusion_header())
        if self.ema is not None:
            save_checkpoint(self.out_dir / f"{stem}-ema.safetensors", self.ema,
                            self.body.model_id, self.layout, self.decoder.config,
                            training={**summary, "weights": "ema"},
                            diffusion=self.diffusion_header())
        return path

    def evaluate(self, tag: str) -> dict | None:
        """Evaluate the live weights on ``eval.data`` (rank 0; the others wait)."""
        cfg = self.config.eval
        result = None
        if cfg.data is not None and self.info.is_main:
            from disrt_core.train.evaluation import EvalSettings, evaluate_model

            settings = EvalSettings(steps=cfg.steps, hypotheses=cfg.hypotheses, seed=cfg.seed,
                                    batch_size=cfg.batch_size, max_samples=cfg.max_samples,
                                    measurements=cfg.measurements)
            was = torch.is_grad_enabled()
            result = evaluate_model(self.model, self.body, cfg.data, settings, self.device,
                                    decoder_config=self.decoder.config,
                                    diffusion=self.diffusion_header())
            torch.set_grad_enabled(was)
            result = {"tag": tag, "step": self.position.step, **result}
            folder = self.out_dir / "eval"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{tag}.json").write_text(json.dumps(result, indent=1))
            self.summary["evals"].append({"tag": tag, "step": self.position.step,
                                          "mpjpe_mm": result["summary"]["mpjpe_mm"]["all"],
                                          "pve_mm": result["summary"]["pve_mm"]["all"]})
            self.monitor.write(f"[eval {tag}] MPJPE {result['summary']['mpjpe_mm']['all']:.1f} "
                               f"mm, PVE {result['summary']['pve_mm']['all']:.1f} mm")
        distributed.barrier()
        return result

    def close(self) -> None:
        """Leave the process group if this trainer joined it."""
        self.monitor.close()
        if self._owns_group:
            distributed.shutdown()

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(Exception):
            self.close()
