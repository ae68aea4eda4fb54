"""Experiment (docs/diffusion_xt.md, section 7): does a denoiser whose head also reads z_t
refine across DDIM steps? A zero-initialised Linear(P -> trunk_out) of z_t is added to the
trunk's output before the head, so the fine-tune starts from the shipped network exactly.
The denoiser class is patched in this process only (nothing in the package changes), then
:mod:`xt_finetune` runs as usual, and ``--tsweep`` scores x̂0 given the noised truth:

    nice -n 5 .venv/bin/python training/experiments/xt_head_zt.py --steps 600 --n 256 \\
        --spread-n 128 --name xthead_sd_inv600 optim.lr=2.0e-4 diffusion.space=normalised \\
        diffusion.parametrisation=skip diffusion.invert_bounds=true loss.lambda_x0=1.0 \\
        diffusion.sigma_data=residual
    nice -n 5 .venv/bin/python training/experiments/xt_head_zt.py --tsweep \\
        runs/diffxt/xthead_sd_inv600/model.safetensors data/diffxt/test_k2
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from xt_common import experiment_main, patch_denoiser


def _forward_encoded(self, x_t, t, code):
    return self.head(self._trunk(self.embed(x_t, t), code) + self.xt_head(x_t))


patch_denoiser("xt_head", lambda config: config.trunk_out_dim, _forward_encoded)

if __name__ == "__main__":
    experiment_main(sys.argv[1:])
