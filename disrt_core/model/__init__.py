"""The conditional diffusion denoiser (SPEC §3): configs, embedders, blocks, the network.

>>> from disrt_core.model import Denoiser, preset
>>> net = Denoiser(preset("small"), param_dim=body.param_dim)
>>> x0_hat = net(x_t, t, depth)   # [N,P], [N] long, [N,1,128,54] -> [N,P]
"""

from disrt_core.model.config import PRESETS, DenoiserConfig, paper, paper_native, preset, small
from disrt_core.model.denoiser import Denoiser, count_parameters, initialize_weights

__all__ = [
    "PRESETS", "Denoiser", "DenoiserConfig", "count_parameters", "initialize_weights", "paper",
    "paper_native", "preset", "small",
]  # fmt: skip
