"""The small network memorises 8 fixed (depth, parameters) pairs on the CPU (issue 4).

Body model: the SMPL-format fixture (6,890 vertices), cheaper per step than Anny (13,718).
"""

import time

import torch

from disrt_core.body import load_body_model
from disrt_core.decoder import MeshDecoder
from disrt_core.diffusion import GaussianDiffusion
from disrt_core.infer import Estimator
from disrt_core.losses import diffusion_loss
from disrt_core.metrics import mpjpe_mm
from disrt_core.model import Denoiser, small


def _pairs(body, n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    layout = body.param_layout
    shape = 0.5 * torch.randn(n, layout.shape_dim, generator=g)
    transl = torch.stack([0.1 + 0.6 * torch.rand(n, generator=g),
                          0.6 + 0.7 * torch.rand(n, generator=g),
                          0.05 + 0.1 * torch.rand(n, generator=g)], dim=1)
    root = 0.3 * torch.randn(n, 3, generator=g)
    pose = 0.3 * torch.randn(n, 69, generator=g)
    params = layout.pack(shape, transl, root, pose)
    depth = torch.rand(n, 1, 128, 54, generator=g)
    return depth, params


def test_small_network_overfits_eight_pairs(smpl_fixture_dir):
    torch.manual_seed(0)
    body = load_body_model("smpl", smpl_fixture_dir)
    decoder = MeshDecoder(body)
    diffusion = GaussianDiffusion()
    net = Denoiser(small().replace(dropout=0.0), body.param_dim)
    depth, params = _pairs(body)
    gt_joints = decoder(params, is_gt=True).joints

    def error():
        pred = Estimator.from_model(net, body, steps=5, seed=0).predict(depth)
        return mpjpe_mm(pred.joints, gt_joints).mean().item()

    before = error()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(1)
    start = time.perf_counter()
    net.train()
    for _ in range(120):
        terms, _ = diffusion_loss(net, diffusion, decoder, depth, params, generator=g)
        opt.zero_grad()
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
    seconds = time.perf_counter() - start
    after = error()
    assert after * 5 <= before, (before, after, seconds)
