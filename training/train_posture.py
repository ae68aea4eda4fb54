"""Train the posture classifier (:mod:`disrt_core.model.posture_net`) on generated scenes,
and score it against the default pose model's posture on held-out sets.

    python training/train_posture.py --device cuda --pool 72000 --gen-batch 256 \\
        --steps 8000 --out disrt_core/weights/posture.safetensors --report posture_report.json

Data [choice]: the default model's rooms mix (``config/train_rooms.yaml``: room scenes of
six sensors with the bed pose the node fits on the raw frame, and bed scenes), someone
lying in every scene, all cover levels; one pool of ``--pool`` frames made first (seeds
``--seed``·10⁶ + batch), every ``--empty-every``-th generator batch of the same mix with
nobody lying in bed instead (3 empty beds to 1 person sitting on the edge: they teach the
head end's output to say 1/2, and count nowhere else); then ``--steps`` batches drawn from
it, each frame mirrored across the bed's long axis half the time (a body lying on its left
side becomes one on its right: the label's left and right swap) and, independently, turned
end for end half the time (``head_end.turned_image``: the head end's target becomes 1 −
itself, the posture stays), then the pose model's training augmentation
(``disrt_core.data.augment``: in-plane rotation, shift, erased boxes, dropped pixels; none
changes the posture; ``--no-augment`` leaves it out). Loss: cross-entropy with label
smoothing 0.05 on the posture of the frames with someone lying in bed, plus binary
cross-entropy on the head end (target 1 where the head joint lies toward +y of the pelvis
in the image's bed frame, as the generator's fitted bed has it, 0 the other way, 1/2
without anyone lying in bed); ``--no-head`` trains the posture alone (the file shipped
before 2026-12-06's sixth session). AdamW (weight decay 1e-4), cosine learning rate from
``--lr`` after 200 warm-up steps.

Held out (their own seeds, none the pool's): 64 room scenes of each of eight sensors (seeds
5101-5108, the sets of ``docs/rooms_eval.md``), 256 Kinect v2 bed scenes (seed 1000), 256
scenes of the SIM2REAL target domain (``--domain target``, seed 200). On each, posture
accuracy per class for the classifier and for the default pose model (``--checkpoint``,
5 DDIM steps, one hypothesis, seed 0: its root orientation, as the node reads it), written
to ``--report``. The head end on the same frames and on them turned end for end: the
classifier's log-odds, and the pose model's presence log-odds difference that the node's
vote used alone before (``disrt_core.head_end.head_evidence``), per threshold the share
decided and wrong; and on 16 empty or sat-on beds per room sensor (seeds 5201-5208) the
classifier's head log-odds, which should stay near 0.
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
from disrt_core.head_end import head_evidence, turned_image  # noqa: E402
from disrt_core.model.posture_net import (  # noqa: E402
    PostureNet,
    PostureNetConfig,
    head_logit,
    posture_logits,
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


def head_target(sample: dict) -> torch.Tensor:
    """[B] 1 where the head joint lies toward +y of the pelvis in the image's bed frame, 0
    the other way (a bed fitted end for end), 1/2 without anyone lying in bed."""
    joints = sample["joints"].float()
    up = (joints[:, 15, 1] > joints[:, 0, 1]).float()
    return torch.where(sample["present"].bool(), up, torch.full_like(up, 0.5))


EMPTY = (0.0, 0.75, 0.25)  # occupancy shares of the pool's batches without anyone lying


def make_pool(body, device, n: int, batch: int, seed: int, empty_every: int = 0) -> dict:
    """``n`` frames of the mix: {"x" [n,1,128,54] half, "posture" [n], "head" [n] (targets),
    "present" [n] bool}."""
    gens = {}
    parts: dict[str, list] = {"x": [], "posture": [], "head": [], "present": []}
    made, b = 0, 0
    while made < n:
        entry = MIX[b % len(MIX)]
        empty = empty_every > 0 and b % empty_every == empty_every - 1
        key = (tuple(sorted(entry.items())), empty)
        if key not in gens:
            sim = dict(SIM, occupancy=EMPTY) if empty else SIM
            gens[key] = SceneGenerator(SimConfig(**entry, **sim), body, device)
        with torch.no_grad():
            s = gens[key].sample(min(batch, n - made), seed * 1_000_000 + b)
        parts["x"].append(images(s))
        parts["posture"].append(s["posture"].long())
        parts["head"].append(head_target(s))
        parts["present"].append(s["present"].bool())
        made, b = made + len(parts["posture"][-1]), b + 1
        if b % 24 == 0:
            print(f"  pool {made}/{n}", flush=True)
    return {k: torch.cat(v) for k, v in parts.items()}


def held_out(body, device, n: int = 64) -> dict[str, dict[str, torch.Tensor]]:
    """The held-out sets (module docstring): ``n`` room scenes per sensor, 4·n others, and
    ``n // 4`` empty or sat-on beds per room sensor; each as :func:`make_pool`'s dict."""
    from disrt_core.sim.target import TargetConfig, TargetGenerator

    def entry(s: dict) -> dict[str, torch.Tensor]:
        return {"x": images(s), "posture": s["posture"].long(), "head": head_target(s),
                "present": s["present"].bool()}

    def joined(samples: list[dict]) -> dict[str, torch.Tensor]:
        parts = [entry(s) for s in samples]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    rooms, empty = [], []
    for i, sensor in enumerate(ROOM_SENSORS):
        room = dict(scene="room", sensor=sensor, bed_pose="fit")
        rooms.append(SceneGenerator(SimConfig(**room, **SIM), body, device).sample(n, 5101 + i))
        empty.append(SceneGenerator(SimConfig(**room, **dict(SIM, occupancy=EMPTY)), body,
                                    device).sample(max(1, n // 4), 5201 + i))
    sets = {"rooms": joined(rooms)}
    sets["bed_k2"] = joined([SceneGenerator(SimConfig(sensor="kinect2", **SIM), body,
                                            device).sample(4 * n, 1000)])
    target = TargetGenerator(TargetConfig(covers=(0, 1, 2)), body, device).sample(4 * n, 200)
    target.setdefault("present", torch.ones(len(target["posture"]), dtype=torch.bool,
                                            device=target["posture"].device))
    sets["target"] = joined([target])
    sets["empty_rooms"] = joined(empty)
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
def outputs(net: PostureNet, x: torch.Tensor) -> torch.Tensor:
    """The classifier's whole output [n, 4 or 5] on ``x`` (eval mode, then back)."""
    net.eval()
    out = torch.cat([net(x[i:i + 512].float()) for i in range(0, len(x), 512)])
    net.train()
    return out


def classify(net: PostureNet, x: torch.Tensor) -> torch.Tensor:
    return posture_logits(outputs(net, x)).argmax(-1)


@torch.no_grad()
def pose_model(checkpoint: str, body, device, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The default pose model on ``x`` and on it turned end for end: the posture of its
    root orientation, and the presence probability both ways round."""
    from disrt_core.infer import Estimator
    from disrt_core.posture import posture_from_axis_angle

    est = Estimator.from_checkpoint(checkpoint, device=device, steps=5, hypotheses=1, seed=0,
                                    body_model=body)
    layout = body.param_layout
    out: dict[str, list] = {"posture": [], "present": [], "present_turned": []}
    for i in range(0, len(x), 256):
        chunk = x[i:i + 256].float()
        pred = est.predict(chunk, check=False)
        out["posture"].append(posture_from_axis_angle(
            layout.unpack(pred.params).root_orient).to(x.device))
        out["present"].append(pred.present_prob.float().to(x.device))
        turned = est.predict(turned_image(chunk), check=False)
        out["present_turned"].append(turned.present_prob.float().to(x.device))
    return {k: torch.cat(v) for k, v in out.items()}


HEAD_THRESHOLDS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)


def head_scores(evidence: torch.Tensor, truth: torch.Tensor) -> dict:
    """Per threshold t: the share of frames with |evidence| ≥ t and the share wrong (sign
    against ``truth`` ±1) among all frames; evidence [n], + for the head toward row 0."""
    out = {}
    for t in HEAD_THRESHOLDS:
        decided = evidence.abs() >= t if t > 0 else torch.ones_like(evidence, dtype=torch.bool)
        wrong = decided & (torch.sign(evidence) != truth)
        out[f"{t:g}"] = {"decided": round(100.0 * float(decided.float().mean()), 2),
                         "wrong": round(100.0 * float(wrong.float().mean()), 2),
                         "n_wrong": int(wrong.sum())}
    return out


def head_report(net: PostureNet, data: dict, pose: dict) -> tuple[dict, dict]:
    """The head end on the frames with someone lying in bed, both ways round (module
    docstring): scores of the classifier, the presence difference and their sum; and the
    per-frame arrays."""
    lying = data["present"] & (data["head"] != 0.5)
    x = data["x"][lying]
    truth = torch.where(data["head"][lying] > 0.5, 1.0, -1.0)
    arrays = {"head_truth": truth}
    if net.config.head_end:
        arrays["head"] = head_logit(outputs(net, x))
        arrays["head_turned"] = head_logit(outputs(net, turned_image(x)))
    p, q = pose["present"][lying], pose["present_turned"][lying]
    arrays["presence_ev"] = head_evidence(p, q)
    report = {"frames": int(lying.sum()), "fitted_end_for_end": int((truth < 0).sum())}
    both = torch.cat([truth, -truth])
    for name in ("head", "presence_ev"):
        if name in arrays:
            other = arrays["head_turned"] if name == "head" else -arrays[name]
            report[name] = head_scores(torch.cat([arrays[name], other]), both)
    if "head" in arrays:
        report["sum"] = head_scores(torch.cat([arrays["head"] + arrays["presence_ev"],
                                               arrays["head_turned"] - arrays["presence_ev"]]),
                                    both)
    return report, arrays


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
    p.add_argument("--empty-every", type=int, default=8,
                   help="every n-th generator batch with nobody lying in bed (0: none)")
    p.add_argument("--steps", type=int, default=8000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--eval-n", type=int, default=64, help="held-out room scenes per sensor")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--no-head", action="store_true", help="the posture alone (no head end)")
    p.add_argument("--predictions", default=None,
                   help="an .npz of every held-out frame's classifier outputs, the pose "
                        "model's posture and presence, and the truth")
    p.add_argument("--checkpoint", default=str(ROOT / "disrt_core/weights/default.safetensors"))
    p.add_argument("--out", default="posture.safetensors")
    p.add_argument("--report", default="posture_report.json")
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    body = load_body_model("anny", device=device)
    started = time.perf_counter()
    pool = make_pool(body, device, args.pool, args.gen_batch, args.seed,
                     0 if args.no_head else args.empty_every)
    made = time.perf_counter() - started
    y, lying = pool["posture"], pool["present"]
    print(f"pool of {len(y)} in {made:.0f} s; classes "
          f"{torch.bincount(y[lying], minlength=4).tolist()}, nobody lying {int((~lying).sum())}",
          flush=True)
    sets = held_out(body, device, args.eval_n)
    net = PostureNet(PostureNetConfig(head_end=not args.no_head)).to(device).train()
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    warm = 200
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, s / args.steps))))
    gen = torch.Generator(device).manual_seed(args.seed)
    log = []
    augment = None if args.no_augment else Augmenter(AugmentConfig(), body.param_layout)
    rooms = sets["rooms"]
    for step in range(args.steps):
        idx = torch.randint(len(y), (args.batch,), device=device, generator=gen)
        flip = torch.rand(args.batch, device=device, generator=gen) < 0.5
        turn = torch.rand(args.batch, device=device, generator=gen) < 0.5
        xb, yb = mirrored(pool["x"][idx].float(), y[idx], flip)
        xb = torch.where(turn[:, None, None, None], turned_image(xb), xb)
        head = torch.where(turn, 1 - pool["head"][idx], pool["head"][idx])
        if augment is not None:
            xb = augment({"depth": xb}, seed=args.seed * 1_000_000 + step)["depth"]
        out = net(xb)
        lie = lying[idx]
        loss = F.cross_entropy(posture_logits(out)[lie], yb[lie], label_smoothing=0.05)
        if net.config.head_end:
            loss = loss + F.binary_cross_entropy_with_logits(head_logit(out), head)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 500 == 0 or step == 0:
            lie = rooms["present"]
            acc = per_class(classify(net, rooms["x"][lie]), rooms["posture"][lie])
            print(f"step {step + 1} loss {loss.item():.4f} rooms {acc['all']} % "
                  f"{[acc[n] for n in POSTURES]} {time.perf_counter() - started:.0f} s",
                  flush=True)
            log.append({"step": step + 1, "loss": round(loss.item(), 4), "rooms": acc["all"]})
    training = {"script": "training/train_posture.py", "argv": sys.argv[1:], "pool": len(y)}
    save_posture_net(net.cpu().eval(), args.out, training=training)  # kept if the report fails
    net.to(device).train()
    print(f"trained in {time.perf_counter() - started:.0f} s; wrote {args.out}", flush=True)
    report = {"args": vars(args), "pool_seconds": round(made, 1), "log": log, "sets": {}}
    arrays = {}
    for name, data in sets.items():
        if name == "empty_rooms":
            if net.config.head_end:
                logit = head_logit(outputs(net, data["x"])).abs()
                report["sets"][name] = {"frames": len(logit),
                                        "head_abs_logit_mean": round(float(logit.mean()), 3),
                                        "head_abs_logit_p95": round(float(logit.quantile(0.95)),
                                                                    3),
                                        "head_at_least_1.5": round(100.0 * float(
                                            (logit >= 1.5).float().mean()), 2)}
                arrays[f"{name}_head"] = logit.cpu().numpy()
            continue
        lie = data["present"]
        xs, ys = data["x"][lie], data["posture"][lie]
        pose = pose_model(args.checkpoint, body, device, data["x"])
        head, head_arrays = head_report(net, data, pose)
        out = outputs(net, xs)
        report["sets"][name] = {"classifier": per_class(posture_logits(out).argmax(-1), ys),
                                "pose_model": per_class(pose["posture"][lie], ys),
                                "head_end": head}
        print(name, json.dumps(report["sets"][name]), flush=True)
        arrays.update({f"{name}_probs": posture_logits(out).softmax(-1).cpu().numpy(),
                       f"{name}_pose": pose["posture"][lie].cpu().numpy(),
                       f"{name}_truth": ys.cpu().numpy()})
        arrays.update({f"{name}_{k}": v.cpu().numpy() for k, v in head_arrays.items()})
    if args.predictions:
        import numpy as np

        np.savez_compressed(args.predictions, **arrays)
    save_posture_net(net.cpu().eval(), args.out, training=dict(training, held_out={
        k: v["classifier"]["all"] for k, v in report["sets"].items() if "classifier" in v}))
    Path(args.report).write_text(json.dumps(report, indent=1))
    print("wrote", args.out, args.report, f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
