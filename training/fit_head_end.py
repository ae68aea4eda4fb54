"""Fit the bed finder's head-end classifier (``disrt_core/geometry/bedfit_headnet.py``).

    python training/fit_head_end.py --scenes /tmp/hd/rooms --scenes /tmp/hd/bed \
        --generate 3000:3192 --generate 4000:4192 --generate 5000:5192 \
        --generate-bed 9000:9384 --hidden 1,2,4 --decay 0.03,0.1 --seed 0 \
        --features /tmp/hd/feat --out disrt_core/weights/bedfit_head.safetensors

1. **Rooms**: generated room scenes (``SimConfig(scene="room")``, every sensor, 80 % with
   someone in bed, 15 % empty, 5 % sitting on the edge, all covers), as cached by
   ``benchmarks/bench_bedfit.py --cache`` (``{sensor}_{seed}_{n}.pt``). ``--generate A:B``
   makes the rooms of seeds A to B (8 a file) for every sensor into the first ``--scenes``
   folder first. Never the benchmark's seeds (500 on): the shipped weights use seeds
   3000-3191, 4000-4191 and 5000-5191 of every sensor (generator 1.5: footboards as tall
   as headboards, too), 4,608 frames of 576 rooms. **SLP-like bed scenes**
   (``--generate-bed``, ``SimConfig(scene="bed")``, Kinect v2 over the bed, the mattress
   filling most of the view, no room around it): seeds 9000-9383, 384 frames (the
   benchmark's ``--bed-scenes`` use seeds 500 on).
2. **Samples**: each frame goes through ``fit_beds``; a fit within 15 cm of the mattress
   (either end) gives one sample: the features of :func:`bedfit_headnet.head_features`, the
   three hand-set cues of :mod:`bedfit_head`, and the label (the head at the +axis end).
   They are kept per scene file under ``--features`` (npz, no pickle).
3. **Model choice**: 5-fold cross-validation grouped by room (a room seen by several
   sensors stays in one fold) over the hidden width and the weight decay; per fold the
   accuracy, and for the confidence thresholds the share of confident wrong head ends
   (the worst outcome: the whole skeleton flipped) and of unknown ones (with the hand-set
   cues' veto of :func:`bedfit_headnet.head_known`). Chosen: the setting
   and threshold with the fewest unknown head ends among those whose confident-wrong share
   in cross-validation is at most ``--max-confident-wrong`` (1 %); the threshold is stored
   with the weights (``min_conf``).
4. **Final fit** on all samples with the chosen setting; seeds fixed (``--seed``).

**Shipped since 2026-12-07: refitted on generator 1.5** (the command above, about 20 minutes
on the 2 cores, most of it generating). Generator 1.5's rooms have footboards up to 0.6 m
above the mattress (before 0.35), as tall as the headboard or taller in sleigh and hospital
beds. The weights before had learned "the taller board is the head end": on 1,024 rooms of
generator 1.5 (``bench_bedfit.py --scenes 1024 --sensors all --frames 1 --batch 16``: seed
500 on, 128 a sensor, one frame each) they gave 20 confidently wrong head ends, 15 of them
in rooms with a footboard of 35 cm or more. 4,438 samples of 955 rooms and bed scenes;
chosen: one hidden unit, decay 0.03, ``min_conf`` 0.85; cross-validated accuracy 95.4 %,
confident wrong 0.99 %, unknown 14.1 % (the hand-set cues: 88.0 %). On the same 1,024 rooms:
2 confident wrong head ends (none with a footboard), 107 unknown among the 815 fits right in
either order (69 before; an unknown end is decided by the person lying there,
:mod:`disrt_core.head_end`). [choice] Decays from 0.03 only: with 0.01 in the grid,
cross-validation picks 2 hidden units at ``min_conf`` 0.9 (unknown 12.6 %, confident wrong
0.99 %), which was sure (0.94) of the wrong end of a head section raised 45° under a blanket
(``test_bedfit_incline``), a bed the generator does not make; the smoother fit leans the
right way there. Benchmark: ``benchmarks/NOTES.md`` (2026-12-07, sixth session).

**Before** (the sections below; the commands then were ``bench_bedfit.py --cache`` runs
of seeds 3000-3095 and 4000-4095 on four sensors each and ``--generate 5000:5192``).
Shipped (2,231 samples: 1,847 of rooms, 384 of bed scenes; features of the fitter of
2026-12-05): one hidden unit (341 weights), decay 0.01, ``min_conf`` 0.85; cross-validated
accuracy 95.3 % (the hand-set cues' 86.8 %), confident wrong 0.90 %, unknown 16.4 %; on the
bed scenes alone 90.8 %, confident wrong 2.4 %, unknown 34 % (an unknown head end there
goes to the fallback side, the image top, which is SLP's head end). The weights before,
fitted on rooms only (``min_conf`` 0.8, 96.4 %, 0.94 % confident wrong), flipped 5 of the
benchmark's 96 SLP-like bed scenes confidently; these flip none (bench_bedfit
``--bed-scenes 96``). Four hidden units did as well within the folds' noise on the rooms
alone, so the smaller one is kept. The D435 at 424x240 is the weakest (92 %).

**Shipped since 2026-12-05 (latest): refitted on Anny bodies.** The weights described
above were fitted on scenes of SMPL-fixture bodies (``--body-model smpl-fixture``: random
points round the joints, no head shape), which these commands made before ``--body-model``
(default ``anny`` since then). Refitted the same way on Anny scenes: the commands above
(``--body-model anny``), plus rooms of seeds 3000-3047 of the other four sensors: 2,438
samples of 760 rooms and the 384 bed scenes; one hidden unit, decay 0.01, ``min_conf``
0.85; cross-validated 96.3 %, confident wrong 0.98 %, unknown 11.7 % (the fixture-fitted
weights score 93.5 % on these Anny samples). On the benchmark's Anny scenes (seed 500,
``bench_bedfit --bed-scenes 96 --frames 5``) against the fixture-fitted weights: SLP-like
bed scenes 89 → 94 of 96 right and 5 → 0 confident flips; rooms 181 → 177 of 256 right and
2 → 3 confident flips (unknown head ends sent to the wrong fallback side 16 → 19). Kept for
the fewer confident flips over both sets (7 → 3; a confident flip turns the whole skeleton
round) and for SLP's real frames, whose scenes are the bed scenes'
(``benchmarks/NOTES.md``, 2026-12-05, latest).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from disrt_core.geometry import bedfit_rect  # noqa: E402
from disrt_core.geometry.bedfit_batch import fit_beds  # noqa: E402
from disrt_core.geometry.bedfit_head import WEIGHTS as CUE_WEIGHTS  # noqa: E402
from disrt_core.geometry.bedfit_head import head_cues  # noqa: E402
from disrt_core.geometry.bedfit_headnet import (  # noqa: E402
    FEATURES,
    head_features,
    head_known,
    score,
)
from disrt_core.geometry.bedfit_result import HEAD_ACROSS  # noqa: E402

TOL_M = 0.15
THRESHOLDS = (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def generate(folder: Path, first: int, last: int, scene: str = "room",
             body_model: str = "anny") -> None:
    """Room scenes of seeds first..last (8 a file) for every sensor, or SLP-like bed scenes
    (``scene="bed"``, Kinect v2), cached as the benchmark does, with ``body_model``'s bodies
    (``benchmarks/common.load_body``: ``anny`` or ``smpl-fixture``)."""
    import bench_bedfit
    from common import load_body

    from disrt_core.sim import SceneGenerator, SimConfig
    from disrt_core.sim.sensors import ALL_SENSORS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        body = load_body(body_model, "cpu")
    for sensor in ALL_SENSORS if scene == "room" else ("kinect2",):
        gen = SceneGenerator(SimConfig(scene=scene, sensor=sensor,
                                       occupancy=bench_bedfit.OCCUPANCY), body, "cpu")
        for seed in range(first, last, 8):
            with torch.no_grad():
                bench_bedfit.scenes_of(gen, 8, seed, folder)


def samples_of(path: Path) -> dict[str, np.ndarray]:
    """Features, cues and labels of the fits of one scene file within TOL_M (either end)."""
    s = torch.load(path)
    dbg: dict = {}
    with torch.no_grad():
        # a given head side: the fit without the classifier this script makes (a bed running
        # across that side is refused for it only, HEAD_ACROSS, and kept here)
        fits = fit_beds(s["depth_raw"], s["K"].float(), head="top", debug=dbg)
    truth = s["mattress_corners"].double()
    fc = fits.corners.double()
    ordered = (fc - truth).norm(dim=-1).amax(-1)
    either = torch.minimum(ordered, (fc[:, [2, 3, 0, 1]] - truth).norm(dim=-1).amax(-1))
    ar, best = torch.arange(len(truth)), fits.chosen
    fine, rect = dbg["fine"], dbg["rect"][ar, best]
    args = (fine["height"][ar, best], fine["maps"][ar, best, bedfit_rect.CH_HIGH])
    cell, sigma = fine["cell"][ar, best], fits.noise
    feats = head_features(args[0], fine["maps"][ar, best], fine["seen"][ar, best], cell, rect,
                          sigma)
    _, cues = head_cues(*args, cell, rect, sigma)
    # the +axis of the grid's long side in the camera frame, against the true head end
    phi = dbg["phi"][ar, best].double()
    e1, e2 = dbg["e1"].double(), dbg["e2"].double()
    eu = torch.cos(phi)[:, None] * e1 + torch.sin(phi)[:, None] * e2
    ev = -torch.sin(phi)[:, None] * e1 + torch.cos(phi)[:, None] * e2
    u0, u1, v0, v1 = rect.double().unbind(-1)
    along = torch.where(((u1 - u0) >= (v1 - v0))[:, None], eu, ev)
    head = truth[:, :2].mean(1) - truth[:, 2:].mean(1)
    label = (head * along).sum(-1) > 0
    keep = (fits.ok | (fits.reason == HEAD_ACROSS)) & (either < TOL_M)
    seed = int(path.stem.split("_")[-2])
    return {"x": feats[keep].reshape(-1, FEATURES).numpy().astype(np.float32),
            "cues": cues[keep].numpy().astype(np.float32),
            "y": label[keep].numpy(), "room": (seed + ar[keep]).numpy(),
            "sensor": np.array([path.stem.rsplit("_", 2)[0]] * int(keep.sum()))}


def load_samples(folders: list[Path], cache: Path) -> dict[str, np.ndarray]:
    cache.mkdir(parents=True, exist_ok=True)
    parts = []
    for folder in folders:
        for path in sorted(folder.glob("*.pt")):
            out = cache / f"{folder.name}__{path.stem}.npz"
            if not out.is_file():
                np.savez(out, **samples_of(path))
            with np.load(out) as z:
                parts.append({k: z[k] for k in z.files})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def fit(x: torch.Tensor, cues: torch.Tensor, y: torch.Tensor, hidden: int, decay: float,
        seed: int) -> dict[str, torch.Tensor]:
    """Parameters of :func:`bedfit_headnet.score` by L-BFGS on the logistic loss + L2."""
    gen = torch.Generator().manual_seed(seed)
    both = torch.cat([x, x.view(-1, *SHAPE).flip(1).reshape(len(x), -1)])
    mean, std = both.mean(0), both.std(0).clamp(min=1e-3)
    w1 = (torch.randn(FEATURES, hidden, generator=gen, dtype=x.dtype) * 0.1).requires_grad_()
    b1 = torch.zeros(hidden, dtype=x.dtype, requires_grad=True)
    w2 = (torch.randn(hidden, generator=gen, dtype=x.dtype) * 0.5).requires_grad_()
    wc = torch.tensor(CUE_WEIGHTS, dtype=x.dtype, requires_grad=True)
    opt = torch.optim.LBFGS([w1, b1, w2, wc], max_iter=400, line_search_fn="strong_wolfe")
    sign = 2 * y.to(x.dtype) - 1

    def params():
        return {"mean": mean, "std": std, "w1": w1, "b1": b1, "w2": w2, "w_cues": wc}

    def closure():
        opt.zero_grad()
        logit = score(x.view(-1, *SHAPE), cues, params())
        loss = torch.nn.functional.softplus(-sign * logit).mean() + decay * (
            (w1 ** 2).sum() + (w2 ** 2).sum() + (wc ** 2).sum())
        loss.backward()
        return loss

    opt.step(closure)
    return {k: v.detach().clone() for k, v in params().items()}


def rates(logit: torch.Tensor, y: torch.Tensor, cue_logit: torch.Tensor, pillow: torch.Tensor
          ) -> dict:
    """Accuracy, and per threshold the shares of confident wrong and of unknown ends (the
    hand-set cues' veto included, :func:`bedfit_headnet.head_known`; ``pillow`` the pillow
    cue)."""
    wrong = (logit > 0) != y
    out = {"acc": float((~wrong).double().mean())}
    for th in THRESHOLDS:
        known = head_known(logit, cue_logit, pillow, th)
        out[th] = (float((known & wrong).double().mean()), float((~known).double().mean()))
    return out


def show(name: str, r: dict) -> None:
    cells = " ".join(f"{th}: {100 * r[th][0]:.1f}/{100 * r[th][1]:.0f}" for th in THRESHOLDS)
    print(f"{name:24s} acc {100 * r['acc']:.1f} % | conf-wrong/unknown % {cells}", flush=True)


SHAPE: tuple[int, ...] = ()


def main(argv: list[str] | None = None) -> None:
    global SHAPE
    from disrt_core.geometry.bedfit_headnet import CHANNELS, S_BINS, T_BANDS
    SHAPE = (S_BINS, T_BANDS, CHANNELS)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=Path, action="append", required=True,
                        help="folders of cached room scenes (repeat)")
    parser.add_argument("--generate", action="append", default=[],
                        help="A:B, make the rooms of seeds A..B first (repeat)")
    parser.add_argument("--generate-bed", action="append", default=[],
                        help="A:B, make SLP-like bed scenes of seeds A..B into the last "
                             "--scenes folder first (repeat)")
    parser.add_argument("--body-model", default="anny", choices=("anny", "smpl-fixture"),
                        help="the bodies of the scenes --generate and --generate-bed make")
    parser.add_argument("--features", type=Path, default=Path("/tmp/hd/feat"))
    parser.add_argument("--hidden", default="1,2,4", help="hidden widths to compare")
    parser.add_argument("--decay", default="1e-3,1e-2", help="weight decays to compare")
    parser.add_argument("--max-confident-wrong", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for spec in args.generate:
        first, last = (int(v) for v in spec.split(":"))
        generate(args.scenes[0], first, last, body_model=args.body_model)
    for spec in args.generate_bed:
        first, last = (int(v) for v in spec.split(":"))
        generate(args.scenes[-1], first, last, scene="bed", body_model=args.body_model)
    data = load_samples(args.scenes, args.features)
    x = torch.from_numpy(data["x"]).double()
    cues = torch.from_numpy(data["cues"]).double()
    y = torch.from_numpy(data["y"])
    rooms = np.unique(data["room"])
    print(f"{len(y)} samples, {len(rooms)} rooms, head at + {float(y.double().mean()):.2f}")
    fold_of = dict(zip(np.random.default_rng(args.seed).permutation(rooms),
                       np.arange(len(rooms)) % 5))
    fold = torch.tensor([fold_of[r] for r in data["room"]])
    old = (cues * cues.new_tensor(CUE_WEIGHTS)).sum(-1)
    show("hand-set cues", rates(old, y, old, cues[:, 1]))
    best = None
    for hidden in (int(h) for h in args.hidden.split(",")):
        for decay in (float(d) for d in args.decay.split(",")):
            logit = torch.zeros(len(y), dtype=torch.float64)
            for k in range(5):
                tr = fold != k
                p = fit(x[tr], cues[tr], y[tr], hidden, decay, args.seed)
                logit[~tr] = score(x[~tr].view(-1, *SHAPE), cues[~tr], p)
            r = rates(logit, y, old, cues[:, 1])
            show(f"h {hidden} decay {decay:g}", r)
            ok = [th for th in THRESHOLDS if r[th][0] <= args.max_confident_wrong]
            if ok:
                th = ok[0]
                key = (-r[th][1], r["acc"])  # fewest unknown at an allowed confident-wrong
                if best is None or key > best[0]:
                    best = (key, hidden, decay, th, r, logit)
    if best is None:
        raise SystemExit("no setting meets --max-confident-wrong")
    _, hidden, decay, th, r, logit = best
    print(f"chosen: hidden {hidden}, decay {decay:g}, min_conf {th}: cross-validated accuracy "
          f"{100 * r['acc']:.1f} %, confident wrong {100 * r[th][0]:.2f} %, unknown "
          f"{100 * r[th][1]:.1f} %")
    for name in np.unique(data["sensor"]):
        m = torch.from_numpy(data["sensor"] == name)
        show(f"  {name}", rates(logit[m], y[m], old[m], cues[m, 1]))
    if args.out is not None:
        from safetensors.torch import save_file

        p = fit(x, cues, y, hidden, decay, args.seed)
        p["min_conf"] = torch.tensor([th], dtype=torch.float64)
        meta = {"samples": str(len(y)), "rooms": str(len(rooms)),
                "scenes": ",".join(str(s) for s in args.scenes), "hidden": str(hidden),
                "decay": str(decay), "seed": str(args.seed),
                "cv": json.dumps({str(k): v for k, v in r.items()})}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.float().contiguous() for k, v in p.items()}, str(args.out),
                  metadata=meta)
        print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
