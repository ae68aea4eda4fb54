"""Shared helpers of the x_t experiments (docs/diffusion_xt.md): load a shard set into memory,
load a checkpoint with its body model, and score parameter vectors in millimetres.

Everything here runs on the CPU; the shard sets are made with ``disrt-generate`` (the
commands are in docs/diffusion_xt.md).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from disrt_core.checkpoint import load_checkpoint
from disrt_core.decoder import MeshDecoder
from disrt_core.infer import load_body_for
from disrt_core.train.config import DataSpec
from disrt_core.train.data import eval_batches

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WEIGHTS = ROOT / "disrt_core" / "weights" / "default.safetensors"


def load_set(path: str | Path, body, max_samples: int | None = None) -> dict[str, torch.Tensor]:
    """All samples of a shard folder as CPU tensors: depth [N,1,128,54] (normalised),
    params [N,P], joints [N,24,3] (m), cover [N], gender [N,2]."""
    spec = DataSpec(type="shards", path=str(path))
    parts: dict[str, list] = {}
    for batch in eval_batches(spec, body, torch.device("cpu"), 256, max_samples):
        for key in ("depth", "params", "joints", "cover", "gender"):
            parts.setdefault(key, []).append(batch[key])
    return {k: torch.cat(v) for k, v in parts.items()}


def load_model(path: str | Path = DEFAULT_WEIGHTS):
    """(network in eval mode, header, body model, decoder) of a checkpoint, on the CPU."""
    from disrt_core.checkpoint import read_header

    header = read_header(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        body = load_body_for(header.model_id)
    model, header = load_checkpoint(path, param_layout=body.param_layout)
    decoder = MeshDecoder(body, header.decoder)
    return model.eval(), header, body, decoder


@torch.no_grad()
def joints_of(decoder: MeshDecoder, x: torch.Tensor, is_gt: bool = False,
              chunk: int = 256) -> torch.Tensor:
    """Joints [N,24,3] (m) of parameter vectors through the decoder's branch."""
    return torch.cat([decoder(x[i:i + chunk], None, is_gt=is_gt).joints
                      for i in range(0, len(x), chunk)])


def mpjpe_mm(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per-sample MPJPE [N] in mm (no alignment)."""
    return 1000.0 * torch.linalg.vector_norm(pred - gt, dim=-1).mean(dim=-1)


def patch_denoiser(name: str, width, forward_encoded) -> None:
    """Give :class:`~disrt_core.model.denoiser.Denoiser` (in this process only) a
    zero-initialised ``Linear(param_dim, width(config))`` named ``name`` and
    ``forward_encoded(self, x_t, t, code)`` as its step, so that a fine-tune starts from the
    loaded network exactly; weights without the layer (the shipped ones) load with it at
    zero. ``forward`` (the trainer) becomes ``forward_encoded(x_t, t, encode_depth(depth))``;
    the Estimator samples through ``forward_encoded`` itself (the depth-only start once per
    call), so both must carry the change. For the x_t experiments of docs/diffusion_xt.md,
    section 7."""
    import disrt_core.model.denoiser as denoiser

    init, load = denoiser.Denoiser.__init__, denoiser.Denoiser.load_state_dict

    def patched_init(self, config, param_dim):
        init(self, config, param_dim)
        layer = torch.nn.Linear(param_dim, width(config))
        torch.nn.init.zeros_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
        setattr(self, name, layer)

    def patched_load(self, state, strict=True, **kwargs):
        state = dict(state)
        for part in ("weight", "bias"):
            state.setdefault(f"{name}.{part}",
                             torch.zeros_like(getattr(getattr(self, name), part)))
        return load(self, state, strict=strict, **kwargs)

    def patched_forward(self, x_t, t, depth):
        return forward_encoded(self, x_t, t, self.encode_depth(depth))

    denoiser.Denoiser.__init__ = patched_init
    denoiser.Denoiser.forward = patched_forward
    denoiser.Denoiser.forward_encoded = forward_encoded
    denoiser.Denoiser.load_state_dict = patched_load


def experiment_main(argv: list[str]) -> None:
    """``--tsweep CHECKPOINT DATA`` (:func:`xt_eval.tsweep`), ``--train <training/train.py
    arguments>`` (a whole training run with the patched denoiser, e.g. a GPU config), or an
    :mod:`xt_finetune` run."""
    if argv[:1] == ["--train"]:
        from disrt_core.train.cli import train_main

        raise SystemExit(train_main(argv[1:]))
    torch.set_num_threads(1)
    if argv[:1] == ["--tsweep"]:
        from xt_eval import tsweep

        print(tsweep(*argv[1:3]))
    else:
        import xt_finetune

        xt_finetune.main(argv)
