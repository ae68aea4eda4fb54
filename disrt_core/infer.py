"""Batched inference: ``Estimator`` (checkpoint -> joints, mesh and per-joint spread).

Contract (the node, the bag tools and evaluate.py are written against it):

* ``Estimator.from_checkpoint(path, device="cpu"|"cuda", steps=5, hypotheses=1, eta=0.0,
  seed=None)`` loads a safetensors checkpoint (with its JSON header: network config, body
  ``model_id`` and layout, preprocessing geometry, training summary) and the matching body
  model; a checkpoint for another body model or layout is refused with a clear message.
* ``predict(depth)`` takes network-ready images: normalised depth in [0, 1] on the 128×54
  network grid (``disrt_core.geometry.bedframe``), as a tensor or array [B,1,128,54] or
  [B,128,54], and returns a :class:`Prediction` (label frame, metres), with the
  probability that anyone lies in the bed at all (``present_prob``);
  :class:`~disrt_core.prediction.Prediction` lives in :mod:`disrt_core.prediction` and is
  re-exported here.
* ``set_sampling(steps=None, hypotheses=None, eta=None)`` changes the sampler between calls
  (dynamic reconfiguration in the node). ``predict`` is safe to call from one worker thread.

The estimator holds the state; option rules, inputs (depth, noise) and pressure plumbing are in
:mod:`disrt_core.infer_options`, :mod:`disrt_core.infer_inputs`, :mod:`disrt_core.infer_pressure`.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import torch
from torch import Tensor

from disrt_core import infer_inputs, infer_options, infer_pressure
from disrt_core.body.base import BodyModel
from disrt_core.body.rotations import roma_constants_outside_inference
from disrt_core.checkpoint import (
    CheckpointMismatchError,
    load_body_for,
    load_checkpoint,
    read_header,
)
from disrt_core.cuda_graphs import GraphCache
from disrt_core.decoder import DecoderConfig, MeshDecoder
from disrt_core.diffusion import GaussianDiffusion
from disrt_core.diffusion_space import DiffusionSpace
from disrt_core.infer_options import COMPILE_MODES, PRECISIONS
from disrt_core.infer_pressure import PRESSURE_METHODS
from disrt_core.model import Denoiser
from disrt_core.occupancy import presence_probability
from disrt_core.prediction import Prediction, average_bodies, with_presence
from disrt_core.uncertainty import joint_interval

__all__ = ["COMPILE_MODES", "PRECISIONS", "PRESSURE_METHODS", "Estimator", "Prediction",
           "average_bodies", "load_body_for"]


class Estimator:
    """Depth images -> body parameters, joints, mesh and per-joint spread (label frame).

    Sampling: ``steps`` DDIM steps at round(linspace(99, 0, steps)) or at the checkpoint's
    own validated ``timesteps`` (header ``diffusion.timesteps``, see
    :mod:`disrt_core.diffusion`; ``steps`` still sets how many), in the checkpoint's
    diffusion ``space`` (:mod:`disrt_core.diffusion_space`; the SPEC's raw space with x0
    output unless the header names another), η = ``eta``, K =
    ``hypotheses`` samples per image drawn in one batched network call per step, decoded
    together; with K > 1 the answer is their average body (:func:`average_bodies`) and the
    spread is taken about the mean of their joints. With a ``seed``, hypothesis k of every
    image starts from the same noise (and gets the same per-step noise when η > 0), drawn
    [K, P] per call on the CPU: one image gives the same result on every call, on every
    device, alone or at any position of a batch of any size (up to float round-off of
    batched kernels). Without a seed, each row's noise is drawn from the device's global RNG.

    Speed options (CUDA): ``precision`` ``"auto"`` (bf16 autocast on CUDA, fp32 on CPU),
    ``"fp32"``, ``"bf16"``, ``"fp16"``; ``cast_weights`` stores the convolution and Linear
    weights in that precision once (what autocast would otherwise cast at every forward, one
    kernel per weight; the same values, so the same results; on by default in
    :meth:`from_checkpoint`, off for an in-memory network); ``channels_last`` (on by default in
    :meth:`from_checkpoint`; off for an in-memory network, which it would convert in place);
    ``compile`` a
    ``torch.compile`` mode (``"max-autotune-no-cudagraphs"`` pairs with ``cuda_graphs``,
    ``"reduce-overhead"`` brings its own graphs; on CUDA it compiles the decoding, presence
    and learned pressure of one-hypothesis batches too, eager again with a warning where
    they cannot be compiled); ``cuda_graphs`` captures the whole
    ``steps``-step sampling loop and the decoding to joints and mesh per batch shape and
    replays it (static shapes: one graph per (B·K, steps, η); the sampling loop alone when
    the body model cannot be captured, see ``graph_scope``); ``stats_group_norm`` computes
    the GroupNorms from per-channel sums (:class:`~disrt_core.model.blocks.StatsGroupNorm`,
    the same function, switched in place). [choice] Its default ``None`` turns it on for a
    compiled network on CUDA: the paper network at batch 256 (H100, bf16) went 606 → 1,107
    images/s with it; eager, or at batch 1, it was not measured for inference. The DDIM
    arithmetic and the decoder run in float32.

    ``predict`` and ``set_sampling`` hold a lock: one worker thread may call them while
    another reconfigures. The constructor moves the network and the body model to ``device``
    (and the network to channels-last if asked) in place; ``predict`` puts the network in eval mode
    for the call and restores its mode afterwards (the trainer can evaluate its live model).
    """

    def __init__(
        self,
        model: Denoiser,
        body_model: BodyModel,
        decoder_config: DecoderConfig | None = None,
        device: str | torch.device = "cpu",
        steps: int = 5,
        hypotheses: int = 1,
        eta: float = 0.0,
        seed: int | None = None,
        precision: str = "auto",
        compile: str | None = None,
        cuda_graphs: bool = False,
        channels_last: bool = False,
        cast_weights: bool = False,
        num_timesteps: int = 100,
        space: DiffusionSpace | None = None,
        timesteps: dict | None = None,
        stats_group_norm: bool | None = None,
    ) -> None:
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device='cuda' requested but torch sees no CUDA GPU; use 'cpu'")
        if model.param_dim != body_model.param_dim:
            raise CheckpointMismatchError(
                f"network predicts {model.param_dim} values, body model {body_model.model_id!r}"
                f" takes {body_model.param_dim}")
        self.precision = precision = infer_options.check_options(
            self.device, precision, compile, cuda_graphs)
        self.body_model = body_model.to(self.device).eval()
        self.model_id = body_model.model_id
        self.decoder = MeshDecoder(self.body_model, decoder_config).to(self.device)
        self.diffusion = GaussianDiffusion(num_timesteps, timesteps)
        self.space = (space or DiffusionSpace()).to(self.device)  # no copies while sampling
        if self.space.kind == "normalised" and len(self.space.mean) != model.param_dim:
            raise CheckpointMismatchError(
                f"diffusion space has {len(self.space.mean)} values, the network predicts "
                f"{model.param_dim}")
        self._space_fn = self.space.wrap(self._step_fn, torch.as_tensor(
            self.diffusion.alphas_cumprod, dtype=torch.float32, device=self.device))
        self.model, self._encode_net, self._step_net = infer_options.prepare_network(
            model, self.device, precision, compile, channels_last, cast_weights,
            stats_group_norm)
        # [choice] on CUDA the decoding, presence and learned pressure of one-hypothesis
        # batches are compiled with the network: eager they are ~630 small kernels; compiled,
        # ~210, and a 1-image predict took 5.40 instead of 6.35 ms (paper, H100,
        # benchmarks/profile_node.py, benchmarks/NOTES.md); on the CPU they are a few large
        # operations and stay eager. Shapes static for the first
        # batch size, dynamic from the second: one more compile, not one per camera count
        self._tail_compiled = None
        if compile and self.device.type == "cuda":
            self._tail_compiled = torch.compile(self._tail_eager, mode=compile, dynamic=None)
        self.cuda_graphs = cuda_graphs
        # what one graph holds: "predict" (sampling + decoding) until the body model fails
        # to capture, then "sampling"
        self.graph_scope = "predict" if cuda_graphs else None
        self._graphs = GraphCache(warmup=3)  # used under self._lock
        self.seed = seed
        self.header = None  # the checkpoint header when loaded by from_checkpoint
        self._lock = threading.Lock()
        self.pressure_model = None  # set_pressure
        self.pressure_net, self.pressure_method = None, "learned"
        self._pressure_version = 0
        self.steps, self.hypotheses, self.eta = 5, 1, 0.0
        self.set_sampling(steps, hypotheses, eta)

    @classmethod
    def from_model(cls, model: Denoiser, body_model: BodyModel, **kwargs) -> Estimator:
        """An estimator around an in-memory network (tests, the trainer's evaluation)."""
        return cls(model, body_model, **kwargs)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        steps: int = 5,
        hypotheses: int = 1,
        eta: float = 0.0,
        seed: int | None = None,
        body_model: BodyModel | None = None,
        model_dir: str | Path | None = None,
        channels_last: bool = True,
        cast_weights: bool = True,
        **kwargs,
    ) -> Estimator:
        """Load a checkpoint (see :mod:`disrt_core.checkpoint`) and the body model it was
        trained for (``body_model``, or loaded from its ``model_id``; SMPL files from
        ``model_dir`` / ``$DISRT_SMPL_DIR``). Other body models or layouts are refused."""
        header = read_header(path)
        if body_model is None:
            body_model = load_body_for(header.model_id, model_dir)
        header.check_compatible(body_model.model_id, body_model.param_layout, source=str(path))
        model, header = load_checkpoint(path)
        steps_trained = int(header.diffusion.get("num_timesteps", 100))
        kwargs.setdefault("space", DiffusionSpace.from_dict(header.diffusion))
        kwargs.setdefault("timesteps", header.diffusion.get("timesteps"))
        est = cls(model, body_model, decoder_config=header.decoder, device=device, steps=steps,
                  hypotheses=hypotheses, eta=eta, seed=seed, num_timesteps=steps_trained,
                  channels_last=channels_last, cast_weights=cast_weights, **kwargs)
        est.header = header
        return est

    def set_sampling(self, steps: int | None = None, hypotheses: int | None = None,
                     eta: float | None = None) -> None:
        """Change DDIM steps (1..T), hypotheses per image (≥ 1) or η (≥ 0) between calls."""
        with self._lock:
            if steps is not None:
                self.diffusion.ddim_timesteps(int(steps))  # validates the range
                self.steps = int(steps)
            if hypotheses is not None:
                if int(hypotheses) < 1:
                    raise ValueError(f"hypotheses must be ≥ 1, got {hypotheses}")
                self.hypotheses = int(hypotheses)
            if eta is not None:
                if not eta >= 0.0:
                    raise ValueError(f"eta must be ≥ 0, got {eta}")
                self.eta = float(eta)

    def set_pressure(self, enabled: bool, method: str = "learned",
                     weights: str | Path | None = None) -> None:
        """Whether ``predict`` also gives ``Prediction.pressure`` (and per vertex and per
        region), and how (:data:`PRESSURE_METHODS`):

        * ``"learned"`` [default: chosen in ``benchmarks/bench_pressure.py``]: the map from
          the depth image by :class:`~disrt_core.model.pressure_net.PressureNet` (weights
          ``weights``, default the shipped ``disrt_core/weights/pressure.safetensors``),
          read per vertex and per region under the predicted body's underside
          (:meth:`disrt_core.pressure.PressureModel.read`);
        * ``"physical"``: the predicted body sunk into the mattress,
          :class:`disrt_core.pressure.PressureModel`.
        """
        from disrt_core.pressure import PressureModel

        net = infer_pressure.load_pressure_net_for(enabled, method, weights, self.device)
        with self._lock:
            self.pressure_model = PressureModel(self.body_model) if enabled else None
            self.pressure_net, self.pressure_method = net, method
            self._pressure_version += 1  # a graph holds the pressure net it was made with

    def _finish(self, pred: Prediction, depth: Tensor, pressure=None) -> Prediction:
        """``pred`` with presence and, when on, pressure (``pressure``: the learned one's
        (map, per vertex, per region), already computed in :meth:`_infer`)."""
        pred = with_presence(pred, depth)
        interval = self.interval_calibration
        if interval is not None:
            pred.joint_interval = joint_interval(pred.joint_spread, interval)
        if pressure is None and self.pressure_net is not None:
            pressure = self._learned_pressure(depth, pred.vertices)
        return infer_pressure.attach_pressure(pred, pressure, self.pressure_model)

    @property
    def interval_calibration(self) -> dict | None:
        """The checkpoint's joint-interval calibration (:mod:`disrt_core.uncertainty`) for
        this K and step count, or None."""
        entry = (self.header.diffusion.get("interval", {}) if self.header is not None
                 else {}).get(str(self.hypotheses))
        return entry if entry is not None and entry.get("steps", self.steps) == self.steps \
            else None

    def _learned_pressure(self, depth: Tensor, vertices: Tensor) -> tuple[Tensor, ...]:
        """The learned map [B,192,84] and its readings, capturable with CUDA graphs."""
        return infer_pressure.learned_pressure(self.pressure_net, self.pressure_model, depth,
                                               vertices, self.cuda_graphs)

    def _autocast(self) -> torch.autocast:
        """The autocast of one network call (:func:`disrt_core.infer_options.autocast`)."""
        return infer_options.autocast(self.device, self.precision)

    def _encode(self, depth: Tensor, repeats: int = 1) -> tuple[Tensor, ...]:
        """The network's depth-only start (:meth:`Denoiser.encode_depth`), once per call and
        image; each image's rows repeated ``repeats`` times (its K hypotheses)."""
        with self._autocast():
            code = self._encode_net(depth)
        return tuple(c.repeat_interleave(repeats, dim=0) for c in code) if repeats > 1 else code

    def _step_fn(self, x_t: Tensor, t: Tensor, code: tuple[Tensor, Tensor]) -> Tensor:
        """One sampling step's network call: x̂0 (float32) from x_t, t and the depth's code."""
        with self._autocast():
            return self._step_net(x_t, t, code).float()

    def _model_fn(self, x_t: Tensor, t: Tensor, depth: Tensor) -> Tensor:
        """One whole network forward from depth (benchmarks, experiments)."""
        return self._step_fn(x_t, t, self._encode(depth))

    def _noise(self, images: int, generator) -> tuple[Tensor, list[Tensor]]:
        """Initial and per-step noise for ``images``·K rows at the current K, steps and η
        (:func:`~disrt_core.infer_inputs.draw_noise`)."""
        return infer_inputs.draw_noise(images, self.hypotheses, self.model.param_dim,
                                       self.steps, self.eta, self.device, generator)

    def _sample(self, depth: Tensor, noise: Tensor, step_noise: list[Tensor]) -> Tensor:
        """DDIM in the diffusion space for B images [B,1,128,54] and B·K noise rows; returns
        x̂0 [B·K, P] in the network's (offset) space."""
        code = self._encode(depth, self.hypotheses)
        z0 = self.diffusion.ddim_sample(self._space_fn, code, tuple(noise.shape),
                                        self.steps, self.eta, noise=noise,
                                        step_noise=step_noise or None)
        return self.space.from_z(z0)

    def _decode(self, x0: Tensor, genders: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        decoded = self.decoder(x0, genders, is_gt=False)
        return decoded.params, decoded.joints, decoded.vertices

    def _infer(self, depth: Tensor, noise: Tensor, step_noise: list[Tensor],
               genders: Tensor | None) -> tuple:
        """Sampling and decoding of B images' B·K rows: (params, joints, vertices, presence
        probability [B], learned pressure (:meth:`_learned_pressure`)); for K = 1 only, the
        last two (else None: judged on the averaged body)."""
        x0 = self._sample(depth, noise, step_noise)
        if self.hypotheses > 1:
            return (*self._decode(x0, genders), None, None)
        if self._tail_compiled is not None:
            try:
                return self._tail_compiled(x0, depth, genders)
            except Exception as err:  # dynamo's and inductor's errors share no base class
                if self._capturing():  # a capture failed: _infer_graphed retries it eagerly
                    raise
                self._tail_compiled = None
                warnings.warn(f"the decoding and pressure could not be compiled "
                              f"({type(err).__name__}: {err}); they run eagerly",
                              RuntimeWarning, stacklevel=2)
        return self._tail_eager(x0, depth, genders)

    def _capturing(self) -> bool:
        return self.device.type == "cuda" and torch.cuda.is_current_stream_capturing()

    def _tail_eager(self, x0: Tensor, depth: Tensor, genders: Tensor | None) -> tuple:
        """One-hypothesis rows' decoding, presence probability and learned pressure."""
        params, joints, vertices = self._decode(x0, genders)
        pressure = self._learned_pressure(depth, vertices) if self.pressure_net is not None \
            else None
        return params, joints, vertices, presence_probability(depth, vertices), pressure

    def _infer_graphed(self, depth: Tensor, noise: Tensor, step_noise: list[Tensor],
                       genders: Tensor | None) -> tuple:
        """:meth:`_infer` as one CUDA graph per (B, K, steps, η, gender given, pressure net):
        sampling, the body model's many small kernels, the presence decision and the learned
        pressure replay without a launch each. A body model (or pressure reading) that cannot
        be captured (a host synchronisation inside) falls back, once and with a warning, to a
        graph of the sampling loop alone."""
        key = (depth.shape[0], self.hypotheses, self.steps, self.eta, genders is None,
               self._pressure_version)
        if self.graph_scope == "predict":
            try:
                return self._graphs(("predict", *key), self._infer,
                                    (depth, noise, step_noise, genders))
            except RuntimeError as err:
                if self._tail_compiled is not None:  # first the eager tail, in the graph
                    self._tail_compiled = None
                    warnings.warn(f"the compiled decoding cannot be captured in a CUDA graph "
                                  f"({type(err).__name__}: {err}); it runs eagerly in the "
                                  "graph", RuntimeWarning, stacklevel=3)
                    return self._infer_graphed(depth, noise, step_noise, genders)
                self.graph_scope = "sampling"
                warnings.warn(f"the body model's decoding cannot be captured in a CUDA graph "
                              f"({type(err).__name__}: {err}); graphing the sampling only",
                              RuntimeWarning, stacklevel=3)
        x0 = self._graphs(("sampling", *key), self._sample, (depth, noise, step_noise))
        return (*self._decode(x0, genders), None, None)

    def predict(self, depth, gender: Tensor | None = None, check: bool = True) -> Prediction:
        """Estimate bodies from network-ready depth (see the module docstring).

        depth: normalised depth in [0, 1] on the 128×54 grid, tensor or array [B,1,128,54]
            or [B,128,54]. gender: [B,2] one-hot ([1,0] female, [0,1] male) for SMPL loaded
            with both genders; ignored by other body models. check: refuse NaN and values
            outside [0, 1] with a clear error; False skips it (and its wait for the device)
            for depth that ``normalize_depth`` made (the node's frame path).
        Returns a :class:`Prediction` on the estimator's device (float32, label frame, m).
        """
        roma_constants_outside_inference(self.device)
        with self._lock, torch.inference_mode():
            depth = infer_inputs.as_depth_batch(depth, self.device, check)
            b, k, p = depth.shape[0], self.hypotheses, self.model.param_dim
            if gender is not None:
                gender = torch.as_tensor(gender, dtype=torch.float32, device=self.device)
            generator = None
            if self.seed is not None:
                generator = torch.Generator().manual_seed(self.seed)
            noise, step_noise = self._noise(b, generator)
            genders = gender.repeat_interleave(k, dim=0) if gender is not None and k > 1 \
                else gender
            # eval() and train() walk every submodule (~0.3 ms each for the paper network,
            # before the graph's launch): only a network in training mode is switched
            was_training = self.model.training
            if was_training:
                self.model.eval()
            try:
                infer = self._infer_graphed if self.cuda_graphs else self._infer
                params_k, joints_k, vertices_k, present, pressure = infer(
                    depth, noise, step_noise, genders)
            finally:
                if was_training:
                    self.model.train()
            if k == 1:
                return self._finish(Prediction(
                    params=params_k, joints=joints_k, vertices=vertices_k,
                    joint_spread=joints_k.new_zeros(b, 24), present_prob=present), depth,
                    pressure)
            joints_k = joints_k.view(b, k, 24, 3)
            mean_joints = joints_k.mean(dim=1)
            spread = ((joints_k - mean_joints[:, None]) ** 2).sum(dim=-1).mean(dim=1).sqrt()
            params = average_bodies(params_k.view(b, k, p), self.body_model.param_layout)
            vertices, joints = self.body_model(params, gender)
            return self._finish(Prediction(
                params=params, joints=joints, vertices=vertices, joint_spread=spread,
                hypotheses_joints=joints_k), depth)
