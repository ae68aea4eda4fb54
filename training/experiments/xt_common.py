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
