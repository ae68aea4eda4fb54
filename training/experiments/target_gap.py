"""Where the SIM2REAL gap comes from: the default model on the target domain with its
differences from the training simulator switched off one group at a time (issue 19 part 5).

    python training/experiments/target_gap.py --n 128 --seed 300 --out runs/target_gap.json

Variants (each ``--n`` frames of seed ``--seed``; a variant differs from the one before it
by one group):

* ``full``: the target domain as ``SIM2REAL.md`` tests it;
* ``uncovered``: no blankets (cover 0 only);
* ``no_clutter``: also no rails, head pillows, props, throws or hair;
* ``no_tof``: also no time-of-flight noise (the rendered depth as it is);
* ``source_bodies``: also the training simulator's pose prior and body shapes (the target's
  cameras, heights and tilts stay);
* ``source``: the training simulator's own Kinect v2 bed scenes, uncovered;
* ``cloth_only``: ``source_bodies`` with the target's blankets (covers 1 and 2);
* ``source_covered``: the training simulator's bed scenes, covers 1 and 2;
* ``cloth_fine``: ``cloth_only`` with the target's cloth at twice the particle resolution
  (96 × 80 particles, about 2.5 cm apart, instead of 48 × 40) and twice the constraint sweeps
  per step: whether what the cloth costs depends on how coarse the simulation is;
* ``full_fine``: ``full`` with that finer cloth;
* ``only_<x>`` (x one of rail, head_pillow, prop, throw, hair): ``no_clutter`` with that one
  kind of clutter in every frame.

Scored: MPJPE (mm, label frame, no alignment) with the given checkpoint, 5 DDIM steps, one
hypothesis, seed 0, and the posture's accuracy from the root. CPU; about a minute per
uncovered variant and three per covered one at ``--n 128`` on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from xt_common import mpjpe_mm  # noqa: E402

from disrt_core.geometry.bedframe import normalize_depth  # noqa: E402
from disrt_core.infer import Estimator  # noqa: E402
from disrt_core.posture import posture_from_axis_angle  # noqa: E402
from disrt_core.sim.generator import SceneGenerator, SimConfig  # noqa: E402
from disrt_core.sim.poses import PosePrior  # noqa: E402
from disrt_core.sim.shapes import ShapeSampler  # noqa: E402
from disrt_core.sim.target.generator import TargetConfig, TargetGenerator  # noqa: E402

DEFAULT_WEIGHTS = ROOT / "disrt_core" / "weights" / "default.safetensors"
PLAIN = {"rail_prob": 0.0, "head_pillow_prob": 0.0, "prop_prob": 0.0, "throw_prob": 0.0,
         "hair_prob": 0.0}
FINE_CLOTH = {"cloth_grid": (96, 80), "cloth_iterations": 12}  # cloth_fine, full_fine


def make_generator(name: str, body) -> SceneGenerator:
    """The generator of one variant (module docstring)."""
    if name == "source":
        return SceneGenerator(SimConfig(sensor="kinect2", covers=(0,)), body)
    if name == "source_covered":
        return SceneGenerator(SimConfig(sensor="kinect2", covers=(1, 2)), body)
    options: dict = {}
    if name == "full_fine":
        return TargetGenerator(TargetConfig(**FINE_CLOTH), body)
    if name.startswith("only_"):
        options.update(PLAIN, covers=(0,))
        options[name[5:] + "_prob"] = 1.0
        return TargetGenerator(TargetConfig(**options), body)
    cloth = ("cloth_only", "cloth_fine")
    if name != "full":
        options["covers"] = (1, 2) if name in cloth else (0,)
    if name in ("no_clutter", "no_tof", "source_bodies", *cloth):
        options.update(PLAIN)
    if name in ("no_tof", "source_bodies", *cloth):
        options["noise"] = False
    if name == "cloth_fine":
        options.update(FINE_CLOTH)
    gen = TargetGenerator(TargetConfig(**options), body)
    if name in ("source_bodies", *cloth):
        gen.prior = PosePrior(SimConfig().posture_weights)
        gen.shapes = ShapeSampler(body)
    return gen


@torch.no_grad()
def score(est: Estimator, gen: SceneGenerator, n: int, seed: int, chunk: int = 32) -> dict:
    """MPJPE per frame and posture accuracy of ``est`` on ``n`` frames of ``gen``."""
    errors, right, covers = [], [], []
    for start in range(0, n, chunk):
        out = gen.sample(min(chunk, n - start), seed + start)
        depth = normalize_depth(out["depth"], out["bed_mm"][:, None, None])
        pred = est.predict(depth)
        errors.append(mpjpe_mm(pred.joints, out["joints"]))
        root = est.body_model.param_layout.unpack(pred.params).root_orient
        right.append(posture_from_axis_angle(root) == out["posture"])
        covers.append(out["cover"])
    err, ok, cov = torch.cat(errors), torch.cat(right), torch.cat(covers)
    per_cover = {int(c): round(float(err[cov == c].mean()), 1) for c in cov.unique()}
    return {"mpjpe_mm": round(float(err.mean()), 1), "median_mm": round(float(err.median()), 1),
            "posture_pct": round(100 * float(ok.float().mean()), 1), "per_cover": per_cover,
            "n": len(err)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", nargs="?", default=str(DEFAULT_WEIGHTS))
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--seed", type=int, default=300)
    parser.add_argument("--variants", nargs="+",
                        default=["full", "uncovered", "no_clutter", "no_tof", "source_bodies",
                                 "source", "cloth_only", "source_covered"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = Estimator.from_checkpoint(args.checkpoint, steps=5, hypotheses=1, seed=0)
    results = {}
    for name in args.variants:
        results[name] = score(est, make_generator(name, est.body_model), args.n, args.seed)
        print(name, json.dumps(results[name]), flush=True)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"checkpoint": args.checkpoint, "n": args.n,
                                        "seed": args.seed, "results": results}, indent=1))


if __name__ == "__main__":
    main()
