"""Why does the shipped network barely use x_t? Controlled measurements on held-out generated
frames with fixed weights (docs/diffusion_xt.md, part 1). CPU only, a few minutes.

    nice -n 19 .venv/bin/python training/experiments/xt_why.py --data data/diffxt/test_k2 \
        --n 256 --out docs/diffusion_xt_why.json

Measures, each with the same seeded noise:

1. data scale: per-slice std of x0 and the signal-to-noise ratio ᾱ·var/(1−ᾱ) per t;
2. x̂0 from x_t made from the true x0 at fixed t: as in training (x0 noised), as the sampler
   does it (x0 − decoder offset noised: x̂0 lives in the offset space), from another
   sample's x0 (x_t shuffled), and the naive estimate x_t/√ᾱ itself;
3. the gain d x̂0 / d x_t per slice (finite differences along random directions);
4. how much x_t moves the embedding: ‖ParamMLP(x_t) − ParamMLP(x_t')‖ against ‖TimeMLP(t)‖;
5. the DDIM chain at 1/2/5/10 steps, each step's x̂0, and the same chain run in the
   label (ground-truth) space, so that the network sees x_t as in training;
6. what the decoder's squashing does to a perfect prediction (x0 − offset decoded).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from xt_common import DEFAULT_WEIGHTS, joints_of, load_model, load_set, mpjpe_mm

from disrt_core.diffusion import GaussianDiffusion

T_LIST = (0, 5, 10, 25, 50, 74, 99)


def slice_names(layout) -> dict[str, slice]:
    return layout.slices()


@torch.no_grad()
def net_x0(model, x_t, t, depth, chunk=128):
    out = []
    for i in range(0, len(x_t), chunk):
        tt = torch.full((len(x_t[i:i + chunk]),), t, dtype=torch.long)
        out.append(model(x_t[i:i + chunk], tt, depth[i:i + chunk]))
    return torch.cat(out)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    model, header, body, decoder = load_model(args.weights)
    data = load_set(args.data, body, args.n)
    depth, x0 = data["depth"], data["params"].float()
    n, pdim = x0.shape
    layout = body.param_layout
    diff = GaussianDiffusion(int(header.diffusion["num_timesteps"]))
    shift = decoder.transl_shift.to(x0.dtype)
    gt_j = joints_of(decoder, x0, is_gt=True)
    gen = torch.Generator().manual_seed(args.seed)
    eps = torch.randn(n, pdim, generator=gen)
    perm = torch.randperm(n, generator=gen)
    out: dict = {"weights": str(args.weights), "data": args.data, "n": n, "seed": args.seed}

    # 1. scale of the data against unit noise
    std = x0.std(0)
    out["data_std"] = {k: float(std[s].mean()) for k, s in slice_names(layout).items()}
    out["data_mean_abs"] = {k: float(x0[:, s].mean(0).abs().mean())
                            for k, s in slice_names(layout).items()}
    snr = {}
    for k, s in slice_names(layout).items():
        var = float((std[s] ** 2).mean())
        snr[k] = {t: diff.alphas_cumprod[t] * var / (1 - diff.alphas_cumprod[t]) for t in T_LIST}
        # first t at which the signal is below the noise
        below = [t for t in range(diff.num_timesteps)
                 if diff.alphas_cumprod[t] * var < 1 - diff.alphas_cumprod[t]]
        snr[k]["t_snr_below_1"] = below[0] if below else None
    out["snr"] = snr
    print("data std per slice:", {k: round(v, 3) for k, v in out["data_std"].items()})
    print("first t with SNR<1:", {k: v["t_snr_below_1"] for k, v in snr.items()})

    # 2. x̂0 from x_t made from the truth
    rows = []
    for t in T_LIST:
        tt = torch.full((n,), t, dtype=torch.long)
        x_train = diff.q_sample(x0, tt, eps)           # as in training (reference)
        x_samp = diff.q_sample(x0 - shift, tt, eps)    # as the sampler re-noises x̂0
        x_shuf = diff.q_sample(x0[perm], tt, eps)      # another body's x_t
        a, b, c = (net_x0(model, x, t, depth) for x in (x_train, x_samp, x_shuf))
        ja, jb, jc = (joints_of(decoder, v) for v in (a, b, c))
        naive = x_train / diff.sqrt_alphas_cumprod[t] - shift  # x_t/√ᾱ as a prediction
        jn = joints_of(decoder, naive)
        row = {"t": t, "train_space": float(mpjpe_mm(ja, gt_j).mean()),
               "sampler_space": float(mpjpe_mm(jb, gt_j).mean()),
               "shuffled_xt": float(mpjpe_mm(jc, gt_j).mean()),
               "moved_by_xt_mm": float(mpjpe_mm(ja, jc).mean()),
               "naive_xt": float(mpjpe_mm(jn, gt_j).mean()),
               "transl_err_mm_train": float(1000 * (a - (x0 - shift))[:, layout.transl]
                                            .norm(dim=-1).mean()),
               "transl_err_mm_sampler": float(1000 * (b - (x0 - shift))[:, layout.transl]
                                              .norm(dim=-1).mean())}
        rows.append(row)
        print(row)
    out["xt_from_truth"] = rows

    # 3. gain d x̂0 / d x_t per slice (finite differences along random ±1 directions)
    gains = []
    h = 0.02
    for t in (0, 10, 25, 50):
        tt = torch.full((n,), t, dtype=torch.long)
        x_t = diff.q_sample(x0, tt, eps)
        base = net_x0(model, x_t, t, depth)
        row = {"t": t, "ideal": float(1 / diff.sqrt_alphas_cumprod[t])}
        for k, s in slice_names(layout).items():
            v = torch.zeros(n, pdim)
            v[:, s] = torch.randint(0, 2, (n, s.stop - s.start), generator=gen).float() * 2 - 1
            moved = net_x0(model, x_t + h * v, t, depth)
            row[k] = float(((moved - base) * v).sum() / (h * (v * v).sum()))
        gains.append(row)
        print("gain", {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
    out["gain"] = gains

    # 4. the embedding: what x_t changes against what t contributes
    emb = []
    with torch.no_grad():
        for t in (0, 25, 50, 99):
            tt = torch.full((n,), t, dtype=torch.long)
            te = model.time_embed(tt)
            pa = model.param_embed(diff.q_sample(x0, tt, eps))
            pc = model.param_embed(diff.q_sample(x0[perm], tt, eps))
            emb.append({"t": t, "time_norm": float(te.norm(dim=-1).mean()),
                        "param_norm": float(pa.norm(dim=-1).mean()),
                        "param_change_norm": float((pa - pc).norm(dim=-1).mean())})
            print("emb", emb[-1])
    out["embedding"] = emb

    # 5. the DDIM chain, in the offset space (as shipped) and in the label space
    def model_fn(x_t, t, cond):
        return model(x_t, t, cond)

    def model_fn_label(x_t, t, cond):  # the network sees x_t noised from label-space values
        return model(x_t, t, cond) + shift

    chain = []
    x_T = torch.randn(n, pdim, generator=gen)
    for steps in (1, 2, 5, 10):
        with torch.no_grad():
            xa = diff.ddim_sample(model_fn, depth, (n, pdim), steps, noise=x_T.clone())
            xb = diff.ddim_sample(model_fn_label, depth, (n, pdim), steps, noise=x_T.clone())
        chain.append({"steps": steps, "timesteps": diff.ddim_timesteps(steps),
                      "offset_space": float(mpjpe_mm(joints_of(decoder, xa), gt_j).mean()),
                      "label_space": float(mpjpe_mm(joints_of(decoder, xb - shift), gt_j)
                                           .mean())})
        print(chain[-1])
    out["ddim"] = chain

    # each step's x̂0 along the 5-step chain (offset space, as shipped)
    per_step = []
    x = x_T.clone()
    ts = diff.ddim_timesteps(5)
    for i, t in enumerate(ts):
        x0p = net_x0(model, x, t, depth)
        per_step.append({"t": t, "mpjpe": float(mpjpe_mm(joints_of(decoder, x0p), gt_j).mean()),
                         "transl_err_mm": float(1000 * (x0p - (x0 - shift))[:, layout.transl]
                                                .norm(dim=-1).mean())})
        x = diff.ddim_step(x, x0p, t, ts[i + 1] if i + 1 < len(ts) else None)
    out["ddim5_per_step"] = per_step
    print("per step", per_step)

    # 6. the decoder's squashing applied to a perfect prediction
    perfect = joints_of(decoder, x0 - shift)
    lo, hi = decoder.lo.flatten(), decoder.hi.flatten()
    theta = torch.cat([layout.unpack(x0).root_orient, layout.unpack(x0).body_pose], -1)
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    arg = ((theta - mid) / half).abs()
    out["squash"] = {"perfect_prediction_mpjpe": float(mpjpe_mm(perfect, gt_j).mean()),
                     "angles_tanh_arg_gt_0.5": float((arg > 0.5).float().mean()),
                     "angles_tanh_arg_gt_0.9": float((arg > 0.9).float().mean()),
                     "shape_abs_max": float(x0[:, layout.shape].abs().max())}
    print("squash", out["squash"])
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
