"""Train the posture classifier (:mod:`disrt_core.model.posture_net`) on generated scenes,
and score it against the default pose model's posture on held-out sets.

    python training/train_posture.py --device cuda --pool 72000 --gen-batch 256 \\
        --steps 8000 --out disrt_core/weights/posture.safetensors --report posture_report.json

Data [choice]: the default model's rooms mix (``config/train_rooms.yaml``: room scenes of
six sensors with the bed pose the node fits on the raw frame, and bed scenes), someone
lying in every scene, all cover levels; one pool of ``--pool`` frames made first (seeds
``--seed``·10⁶ + batch), then ``--steps`` batches drawn from it, each frame mirrored across
the bed's long axis half the time (a body lying on its left side becomes one on its right:
the label's left and right swap), then the pose model's training augmentation
(``disrt_core.data.augment``: in-plane rotation, shift, erased boxes, dropped pixels; none
changes the posture; ``--no-augment`` leaves it out). Cross-entropy with label smoothing
0.05, AdamW (weight decay 1e-4), cosine learning rate from ``--lr`` after 200 warm-up steps.

Held out (their own seeds, none the pool's): 64 room scenes of each of eight sensors (seeds
5101-5108, the sets of ``docs/rooms_eval.md``), 256 Kinect v2 bed scenes (seed 1000), 256
scenes of the SIM2REAL target domain (``--domain target``, seed 200). On each, posture
accuracy per class for the classifier and for the default pose model (``--checkpoint``,
5 DDIM steps, one hypothesis, seed 0: its root orientation, as the node reads it), written
to ``--report``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from disrt_core.body import load_body_model  # noqa: E402
from disrt_core.data.augment import AugmentConfig, Augmenter  # noqa: E402
from disrt_core.geometry.bedframe import normalize_depth  # noqa: E402
from disrt_core.model.posture_net import (  # noqa: E402
    PostureNet,
    PostureNetConfig,
    save_posture_net,
)
from disrt_core.posture import LEFT, POSTURES, RIGHT  # noqa: E402
from disrt_core.sim import SceneGenerator, SimConfig  # noqa: E402


def rooms_mix(config: Path = ROOT / "config" / "train_rooms.yaml") -> tuple[tuple, dict]:
    """The generator mix and settings of the default model's rooms stage: (mix entries,
    SimConfig settings)."""
    import yaml

    data = yaml.safe_load(config.read_text())["stages"][0]["data"][0]
    sim = {k: tuple(v) if isinstance(v, list) else v for k, v in data["sim"].items()}
    return tuple(data["mix"]), sim


MIX, SIM = rooms_mix()
ROOM_SENSORS = ("azure_nfov", "d435", "d435_1280x720", "d435_424x240", "d435_640x480",
                "d455_640x360", "kinect2", "l515")


def images(sample: dict) -> torch.Tensor:
    """The network input [B,1,128,54] (float16 to keep pools small) of a generated batch."""
    depth = sample["depth"].float()
    return normalize_depth(depth, sample["bed_mm"].float()[:, None, None])[:, None].half()


def make_pool(body, device, n: int, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gens = {}
    xs, ys, made, b = [], [], 0, 0
    while made < n:
        entry = MIX[b % len(MIX)]
        key = tuple(sorted(entry.items()))
        if key not in gens:
            gens[key] = SceneGenerator(SimConfig(**entry, **SIM), body, device)
        with torch.no_grad():
            s = gens[key].sample(min(batch, n - made), seed * 1_000_000 + b)
        xs.append(images(s))
        ys.append(s["posture"].long())
        made, b = made + len(ys[-1]), b + 1
        if b % 24 == 0:
            print(f"  pool {made}/{n}", flush=True)
    return torch.cat(xs), torch.cat(ys)


def held_out(body, device, n: int = 64) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The held-out sets (module docstring): ``n`` room scenes per sensor, 4·n others."""
    from disrt_core.sim.target import TargetConfig, TargetGenerator

    sets, rooms = {}, ([], [])
    for i, sensor in enumerate(ROOM_SENSORS):
        g = SceneGenerator(SimConfig(scene="room", sensor=sensor, bed_pose="fit", **SIM), body,
                           device)
        s = g.sample(n, 5101 + i)
        rooms[0].append(images(s))
        rooms[1].append(s["posture"].long())
    sets["rooms"] = (torch.cat(rooms[0]), torch.cat(rooms[1]))
    s = SceneGenerator(SimConfig(sensor="kinect2", **SIM), body, device).sample(4 * n, 1000)
    sets["bed_k2"] = (images(s), s["posture"].long())
    s = TargetGenerator(TargetConfig(covers=(0, 1, 2)), body, device).sample(4 * n, 200)
    sets["target"] = (images(s), s["posture"].long())
    return sets


def per_class(pred: torch.Tensor, truth: torch.Tensor) -> dict:
    out = {"all": round(100.0 * float((pred == truth).float().mean()), 2)}
    for k, name in enumerate(POSTURES):
        m = truth == k
        out[name] = round(100.0 * float((pred[m] == k).float().mean()), 2) if m.any() else None
        out[f"n_{name}"] = int(m.sum())
    out["confusion"] = [[int(((truth == a) & (pred == b)).sum()) for b in range(4)]
                        for a in range(4)]
    return out


@torch.no_grad()
def classify(net: PostureNet, x: torch.Tensor) -> torch.Tensor:
    net.eval()
    out = torch.cat([net(x[i:i + 512].float()).argmax(-1) for i in range(0, len(x), 512)])
    net.train()
    return out


@torch.no_grad()
def pose_model_postures(checkpoint: str, body, device, x: torch.Tensor) -> torch.Tensor:
    from disrt_core.infer import Estimator
    from disrt_core.posture import posture_from_axis_angle

    est = Estimator.from_checkpoint(checkpoint, device=device, steps=5, hypotheses=1, seed=0,
                                    body_model=body)
    layout = body.param_layout
    out = []
    for i in range(0, len(x), 256):
        params = est.predict(x[i:i + 256].float(), check=False).params
        root = layout.unpack(params).root_orient
        out.append(posture_from_axis_angle(root).to(x.device))
    return torch.cat(out)


def mirrored(x: torch.Tensor, y: torch.Tensor, flip: torch.Tensor):
    """Mirror across the bed's long axis where ``flip``: the image's columns reversed, left
    and right lateral swapped."""
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    swapped = torch.where(y == LEFT, RIGHT, torch.where(y == RIGHT, LEFT, y))
    return x, torch.where(flip, swapped, y)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--pool", type=int, default=72000)
    p.add_argument("--gen-batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=8000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--eval-n", type=int, default=64, help="held-out room scenes per sensor")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--predictions", default=None,
                   help="an .npz of every held-out frame's classifier probabilities, the pose "
                        "model's posture and the truth")
    p.add_argument("--checkpoint", default=str(ROOT / "disrt_core/weights/default.safetensors"))
    p.add_argument("--out", default="posture.safetensors")
    p.add_argument("--report", default="posture_report.json")
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    body = load_body_model("anny", device=device)
    started = time.perf_counter()
    x, y = make_pool(body, device, args.pool, args.gen_batch, args.seed)
    made = time.perf_counter() - started
    print(f"pool of {len(y)} in {made:.0f} s; classes {torch.bincount(y, minlength=4).tolist()}",
          flush=True)
    sets = held_out(body, device, args.eval_n)
    net = PostureNet(PostureNetConfig()).to(device).train()
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    warm = 200
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, s / args.steps))))
    gen = torch.Generator(device).manual_seed(args.seed)
    log = []
    augment = None if args.no_augment else Augmenter(AugmentConfig(), body.param_layout)
    for step in range(args.steps):
        idx = torch.randint(len(y), (args.batch,), device=device, generator=gen)
        flip = torch.rand(args.batch, device=device, generator=gen) < 0.5
        xb, yb = mirrored(x[idx].float(), y[idx], flip)
        if augment is not None:
            xb = augment({"depth": xb}, seed=args.seed * 1_000_000 + step)["depth"]
        loss = F.cross_entropy(net(xb), yb, label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 500 == 0 or step == 0:
            acc = per_class(classify(net, sets["rooms"][0]), sets["rooms"][1])
            print(f"step {step + 1} loss {loss.item():.4f} rooms {acc['all']} % "
                  f"{[acc[n] for n in POSTURES]} {time.perf_counter() - started:.0f} s",
                  flush=True)
            log.append({"step": step + 1, "loss": round(loss.item(), 4), "rooms": acc["all"]})
    report = {"args": vars(args), "pool_seconds": round(made, 1), "log": log, "sets": {}}
    arrays = {}
    for name, (xs, ys) in sets.items():
        pose = pose_model_postures(args.checkpoint, body, device, xs)
        report["sets"][name] = {"classifier": per_class(classify(net, xs), ys),
                                "pose_model": per_class(pose, ys)}
        print(name, json.dumps(report["sets"][name]), flush=True)
        with torch.no_grad():
            net.eval()
            probs = torch.cat([net(xs[i:i + 512].float()).softmax(-1)
                               for i in range(0, len(xs), 512)])
            net.train()
        arrays.update({f"{name}_probs": probs.cpu().numpy(), f"{name}_pose": pose.cpu().numpy(),
                       f"{name}_truth": ys.cpu().numpy()})
    if args.predictions:
        import numpy as np

        np.savez_compressed(args.predictions, **arrays)
    save_posture_net(net.cpu().eval(), args.out, training={
        "script": "training/train_posture.py", "argv": sys.argv[1:], "pool": len(y),
        "held_out": {k: v["classifier"]["all"] for k, v in report["sets"].items()}})
    Path(args.report).write_text(json.dumps(report, indent=1))
    print("wrote", args.out, args.report, f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
