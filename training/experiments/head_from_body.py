"""How well the pose network tells the bed's head end (``disrt_core.head_end``).

Per frame, on held-out network images (shards made by ``disrt-generate``): the presence
log-odds on the image and on it turned 180°; the share decided and wrong per threshold.
Truth: the image is the right way round where the true head joint lies toward label +y of
the pelvis (a shard made with ``--bed-pose fit`` can hold a few turned beds).

    .venv/bin/python training/experiments/head_from_body.py [CKPT] --data DIR \\
        [--n 256] [--hypotheses 1] [--out F.json]

Per scene, as the node does it (``--rooms CACHE``): the room scenes cached by
``benchmarks/bench_bedfit.py --cache CACHE --frames 5`` (its seeds and sensors), the bed
fitted on the median of the 5 frames; for every fit whose corners are right either way
round, the vote of :class:`~disrt_core.head_end.HeadVote` over the 5 frames resampled with
the fitted pose; counted apart for fits whose head end the fit could not tell (decided)
and for those it told itself (checked: turned only where the votes outweigh the fit's
confidence, ``HeadVote.turn_logit``).

Per night, as the node does it (``--nights``): ``disrt-demo --scene room`` nights (the
demo's still periods, postures and bedding) of ``--seconds`` at 10 Hz, the very frames the
demo streams (``disrt_ros.demo.make_night``) per sensor and seed, the bed fitted on the
median of the first 5 frames, every other frame (about the share of frames the CPU node
answers) asked as :meth:`HeadVote.due` says; per night the fit's head end, its confidence
and what the vote did at which frame.

    .venv/bin/python training/experiments/head_from_body.py --nights \\
        --sensors d455_640x360,d435_640x480,d435_424x240,azure_nfov,kinect2 --seeds 4-7

    .venv/bin/python training/experiments/head_from_body.py --rooms /tmp/bf/cache_anny \\
        [--seed 500 --scenes 256 --bed-scenes 96] [--posture disrt_core/weights/posture.safetensors]

(``--posture``: the posture classifier's head-end log-odds vote instead, as the node's does
with a classifier that has that output.)

Sampling seed 0, 5 DDIM steps; K = 1 is the node's default.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from disrt_core.data.shards import read_shard
from disrt_core.geometry.bedfit_batch import fit_beds
from disrt_core.geometry.bedframe import SLP_DANALAB_BED_MM, normalize_depth
from disrt_core.geometry.camera import median_depth, raw_to_network
from disrt_core.head_end import HeadVote, head_evidence, turned_image
from disrt_core.infer import Estimator
from disrt_core.model.posture_net import head_logit, load_posture_net

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "disrt_core" / "weights" / "default.safetensors"
THRESHOLDS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
FRAMES = 5


def rooms(est: Estimator, cache: Path, seed: int, scenes: int, bed_scenes: int,
          classifier=None) -> dict:
    """The node's vote on the benchmark's cached scenes (module docstring); with
    ``classifier`` (a posture net with the head end's output) its log-odds vote, as in the
    node with ``posture_source: classifier``."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_bedfit as bb

    per = scenes // len(bb.ALL_SENSORS)
    jobs = [("", s, seed + k) for s in bb.ALL_SENSORS for k in range(0, per, 8)]
    jobs += [("bed_", "kinect2", seed + k) for k in range(0, bed_scenes, 8)]
    counts: dict[str, dict[str, int]] = {}
    bed = SLP_DANALAB_BED_MM
    for kind, sensor, s in jobs:
        name = f"{kind}{sensor}_{s}_8"
        if not (cache / f"{name}.pt").is_file():
            raise SystemExit(f"{cache / name}.pt is missing: make the cache with "
                             f"benchmarks/bench_bedfit.py --cache {cache} --frames {FRAMES} "
                             f"--seed {seed} (and --bed-scenes)")
        sample = torch.load(cache / f"{name}.pt")
        views = [sample["depth_raw"].float()] + [torch.load(
            cache / f"{name}_noise{s * 100 + k}.pt")["depth_raw"].float()
            for k in range(1, FRAMES)]
        K = sample["K"]
        median = torch.from_numpy(np.stack([median_depth([v[i].numpy() for v in views])
                                            for i in range(len(K))]))
        fits = fit_beds(median, K, head="auto")
        ordered, either = bb.corner_errors(fits, sample["mattress_corners"])
        use = fits.ok & (either < bb.TOL_M) & sample["in_view"].bool()
        idx = torch.nonzero(use)[:, 0]
        if not len(idx):
            continue
        T = fits.T_cam_bed[idx].float()
        nets = torch.cat([normalize_depth(raw_to_network(v[idx], K[idx], T, bed), bed)
                          for v in views])
        a = est.predict(nets).present_prob
        if classifier is None:
            b = est.predict(turned_image(nets)).present_prob
            evidence = head_evidence(a, b).view(FRAMES, -1)
            b = b.view(FRAMES, -1)
        else:
            evidence = head_logit(classifier(nets[:, None])).view(FRAMES, -1)
        a = a.view(FRAMES, -1)
        for j, i in enumerate(idx.tolist()):
            vote = HeadVote(np.zeros(3), checking=bool(fits.head_known[i]),
                            fit_confidence=float(fits.head_confidence[i]))
            for f in range(FRAMES):
                vote.add(float(evidence[f, j]), float(a[f, j]),
                         None if classifier is not None else float(b[f, j]))
            group = f"{'bed scenes' if kind else 'rooms'}, head end " + (
                "known to the fit" if bool(fits.head_known[i]) else "unknown to the fit")
            c = counts.setdefault(group, {"fits": 0, "fit's end wrong": 0, "vote right": 0,
                                          "of them turned": 0, "vote wrong": 0,
                                          "undecided": 0})
            right_way = float(ordered[i]) < bb.TOL_M
            c["fits"] += 1
            c["fit's end wrong"] += int(not right_way)
            d = vote.decision()
            c["undecided" if d == 0 else "vote right" if (d > 0) == right_way
              else "vote wrong"] += 1
            c["of them turned"] += int(d < 0 and not right_way)
        print(name, flush=True)
    return counts


def nights(est: Estimator, sensors: list[str], seeds: list[int], seconds: float) -> list:
    """The node's vote over generated room nights (module docstring)."""
    from disrt_core.geometry.bedfit import fit_bed
    from disrt_core.sim import SimConfig
    from disrt_ros.demo import make_night, plan_demo_night
    from disrt_ros.tools.synth2bag import NightRenderer

    rate, rows = 10.0, []
    for sensor in sensors:
        for seed in seeds:
            renderer = NightRenderer(est.body_model, SimConfig(scene="room", sensor=sensor),
                                     seed=seed)
            if not renderer.in_view:
                continue
            night = make_night(renderer, plan_demo_night(round(seconds * rate), rate, seed))
            frames, K = night.frames, night.K
            try:
                fit = fit_bed(median_depth(frames[:FRAMES]), K, head="auto")
            except ValueError:
                rows.append({"sensor": sensor, "seed": seed, "fit": "none"})
                continue
            # the fit's long axis points the true way
            right = float(night.T_cam_bed[:3, 1] @ fit.T_cam_bed[:3, 1]) > 0
            vote = HeadVote(np.zeros(3), checking=fit.head_known,
                            fit_confidence=fit.head_confidence)
            T = torch.from_numpy(fit.T_cam_bed).float()[None]
            decided, at = 0, None
            for k in range(0, len(frames), 2):
                if not vote.due():
                    continue
                raw = torch.from_numpy(frames[k].astype(np.float32))[None]
                net = normalize_depth(raw_to_network(raw, torch.from_numpy(K).float()[None], T,
                                                     SLP_DANALAB_BED_MM), SLP_DANALAB_BED_MM)
                a, b = est.predict(net).present_prob, est.predict(turned_image(net)).present_prob
                vote.add(float(head_evidence(a, b)[0]), float(a[0]), float(b[0]))
                decided = vote.decision()
                if decided or vote.given_up():
                    at = k
                    break
            rows.append({"sensor": sensor, "seed": seed, "head_known": fit.head_known,
                         "confidence": round(fit.head_confidence, 3), "fit_end_right": right,
                         "vote": {1: "kept", -1: "turned", 0: "undecided"}[decided],
                         "frame": at, "frames_voted": vote.frames,
                         "mean": round(vote.mean, 2)})
            print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", nargs="?", type=Path, default=DEFAULT)
    p.add_argument("--data", type=Path, help="a shard folder (disrt-generate)")
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--hypotheses", type=int, default=1)
    p.add_argument("--rooms", type=Path, help="bench_bedfit's scene cache (per scene mode)")
    p.add_argument("--seed", type=int, default=500)
    p.add_argument("--scenes", type=int, default=256)
    p.add_argument("--bed-scenes", type=int, default=96)
    p.add_argument("--posture", type=Path, default=None,
                   help="--rooms: vote with this posture classifier's head-end output")
    p.add_argument("--nights", action="store_true", help="demo room nights (per night mode)")
    p.add_argument("--sensors", default="d455_640x360,d435_640x480,d435_424x240,azure_nfov,"
                   "kinect2")
    p.add_argument("--seeds", default="4-7", help="room seeds of --nights: 4-7 or 4,9")
    p.add_argument("--seconds", type=float, default=12.0)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = Estimator.from_checkpoint(args.checkpoint, seed=0)
    est.set_sampling(hypotheses=args.hypotheses)
    if args.rooms is not None or args.nights:
        with torch.no_grad():
            if args.nights:
                sys.path.insert(0, str(ROOT / "benchmarks"))
                from bench_room_node import seeds

                report = nights(est, args.sensors.split(","), seeds(args.seeds), args.seconds)
            else:
                classifier = None if args.posture is None else load_posture_net(args.posture)
                report = rooms(est, args.rooms, args.seed, args.scenes, args.bed_scenes,
                               classifier)
        print(json.dumps(report, indent=1))
        if args.out:
            args.out.write_text(json.dumps(report, indent=1) + "\n")
        return 0
    if args.data is None:
        p.error("--data, --rooms or --nights")
    arrays = [read_shard(f)[0] for f in sorted(glob.glob(str(args.data / "*.safetensors")))]
    data = {k: np.concatenate([a[k] for a in arrays])[:args.n] for k in arrays[0]}
    depth = normalize_depth(torch.from_numpy(data["depth"].astype(np.float32)),
                            torch.from_numpy(data["bed_mm"]).float()[:, None, None])
    joints = torch.from_numpy(data["joints"])
    right_way = joints[:, 15, 1] > joints[:, 0, 1]  # head above the pelvis along +y
    evidence = []
    with torch.no_grad():
        for s in range(0, len(depth), 32):
            x = depth[s:s + 32]
            a, b = est.predict(x).present_prob, est.predict(turned_image(x)).present_prob
            evidence.append(head_evidence(a, b))
    evidence = torch.cat(evidence)
    truth = torch.where(right_way, 1.0, -1.0)
    report = {"n": len(evidence), "hypotheses": args.hypotheses,
              "right_way_round": float(right_way.float().mean()), "thresholds": {}}
    for tau in THRESHOLDS:
        decided = evidence.abs() >= tau
        wrong = decided & (torch.sign(evidence) != truth)
        report["thresholds"][str(tau)] = {"decided": float(decided.float().mean()),
                                          "wrong": int(wrong.sum())}
        print(f"|evidence| >= {tau}: decided {100 * decided.float().mean():5.1f} %, "
              f"wrong {int(wrong.sum())}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
