"""Experiment (docs/diffusion_xt.md, section 7): self-conditioning. The denoiser also reads
its own previous answer: in training, for half the samples, a first pass (no gradient) at
the same x_t gives the network output that the second pass gets as an extra input; in
sampling, each DDIM step gets the previous step's output (the first step zeros). The input
enters the embedding through a zero-initialised Linear, so the fine-tune starts from the
shipped network exactly. The denoiser class is patched in this process only, then
:mod:`xt_finetune` runs as usual; ``--tsweep`` scores x̂0 given the noised truth (no
previous answer: zeros):

    nice -n 5 .venv/bin/python training/experiments/xt_selfcond.py --steps 600 --n 256 \\
        --spread-n 128 --sets test_k2 --name selfcond_sd_inv600 optim.lr=2.0e-4 \\
        diffusion.space=normalised diffusion.parametrisation=skip \\
        diffusion.invert_bounds=true loss.lambda_x0=1.0 diffusion.sigma_data=residual

At a GPU run's length (a whole training config with the patched denoiser; ``--resume``
continues it):

    python training/experiments/xt_selfcond.py --train --config config/train_rooms_xt.yaml \
        run.out_dir=runs/rooms_xt_sc
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from xt_common import experiment_main, patch_denoiser


def _pass(self, x_t, t, code, sc):
    return self.head(self._trunk(self.embed(x_t, t) + self.sc_embed(sc), code))


def _forward_encoded(self, x_t, t, code):
    zeros = torch.zeros_like(x_t)
    if self.training:
        with torch.no_grad():
            first = _pass(self, x_t, t, code, zeros)
        use = (torch.rand(x_t.shape[0], 1, device=x_t.device) < 0.5).to(x_t.dtype)
        return _pass(self, x_t, t, code, first.detach() * use)
    # Sampling: the previous step's output, from the same Estimator call (the depth's code
    # is made once per call) at a larger t (t falls each step); else none (zeros).
    prev = getattr(self, "_sc", None)
    sc = zeros
    if prev is not None and prev[2] is code and int(t[0]) < prev[0]:
        sc = prev[1].to(x_t.dtype)
    out = _pass(self, x_t, t, code, sc)
    self._sc = (int(t[0]), out.detach(), code)
    return out


patch_denoiser("sc_embed", lambda config: config.emb_dim, _forward_encoded)

if __name__ == "__main__":
    experiment_main(sys.argv[1:])
