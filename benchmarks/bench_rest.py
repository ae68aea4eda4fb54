"""Do generated bodies rest on the mattress? Per posture: share, gaps, contact, load.

    python benchmarks/bench_rest.py [--device cpu|cuda] [--n 1000] [--batch 50]
        [--sitting 0.1] [--seed 0]

Draws ``--n`` samples of the source generator (Kinect v2, bare bodies: cover 0, no noise)
with ``--sitting`` of them sitting on the bed's edge, and reports per posture (the prior's
class; sitting bodies apart):

* the share of samples and of ¾ turns (a roll of 29° or more off the class's own);
* the **largest gap** of the head and the four limbs above their support (mm; the limb's
  hand or foot end, :func:`disrt_core.sim.support.rest_gaps`; a limb whose hand or foot rests
  holds the rest of it): mean and 95th percentile, and the share of bodies whose head and
  limbs all rest (gap ≤ 30 mm or leaning on another part, :func:`~disrt_core.sim.support.
  resting`; sitting bodies: the arms);
* the **contact area**: cells of the pressure map above 1 kPa × the cell area (m²), on the
  whole mattress and in SLP's 192 × 84 pressure-mat window;
* the **total load** the pressure map integrates to, over m·g (whole mattress; mat window);
* the sinking depth (mm), how far the pillow is pressed where the head meets it (% of its
  free height), and the share of poses that self-intersect
  (:func:`disrt_core.sim.capsules.self_intersecting`) after settling.

Goals (issue 19, part 4): total load within ±10 % of m·g; 95th percentile of the largest gap
≤ 30 mm unless the part is held (leans on another part); postures balanced. The generator's
rate during the run is noted (it includes the settling, rendering and drape; see
bench_generator.py for the throughput benchmark).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import roma
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Result, Row, command_line, load_body, machine_info, save

from disrt_core.posture import POSTURES
from disrt_core.sim import SceneGenerator, SimConfig
from disrt_core.sim.bodyparts import CHAIN, REST_CHAINS, model_of, pillow_support
from disrt_core.sim.capsules import self_intersecting
from disrt_core.sim.scene import GRID, pillow_height_at
from disrt_core.sim.support import Support, rest_gaps, resting, touching

OWN_ROLL = {0: 0.0, 1: 90.0, 2: -90.0, 3: 180.0}  # chest roll of each posture class, degrees


def collect(args) -> dict[str, np.ndarray]:
    """Per-sample measurements of ``args.n`` samples."""
    body = load_body("anny", args.device)
    config = SimConfig(covers=(0,), noise=False, occupancy=(1 - args.sitting, 0.0, args.sitting))
    gen = SceneGenerator(config, body, args.device)
    model = model_of(gen.body)
    cols: dict[str, list] = {k: [] for k in ("posture", "sitting", "gap", "rests", "area",
                                             "area_pm", "load", "load_pm", "sink", "roll",
                                             "intersect", "pillow", "held")}
    start, done = time.perf_counter(), 0
    for b in range(0, args.n, args.batch):
        n = min(args.batch, args.n - b)
        out = gen.sample(n, args.seed * 100003 + b, with_mesh=True)
        support = Support.from_batch(out)
        gaps = rest_gaps(model, out["vertices"], support, pillow_support(out["arm_class"]))
        chains = [CHAIN[c] for c in REST_CHAINS]
        sitting = out["sitting"]
        arms = torch.tensor(["forearm" in c for c in REST_CHAINS], device=gaps.device)
        considered = torch.where(sitting[:, None], arms[None], torch.ones_like(arms)[None])
        worst = torch.where(considered, gaps[:, chains], -torch.inf).amax(1)
        lean = touching(out["joints"], out["stature"] / 1.75)
        ok = resting(gaps, out["joints"], out["stature"] / 1.75) | ~considered
        # Held: a part leaning on another one counts as touching (gap at most 0).
        held = torch.where(lean, gaps[:, chains].clamp(max=0), gaps[:, chains])
        worst_held = torch.where(considered, held, -torch.inf).amax(1)
        weight = out["mass"] * 9.81
        cell = GRID.pitch**2
        grid, pm = out["pressure_grid"], out["pressure"]
        root = gen.layout.unpack(out["params"]).root_orient
        chest = roma.rotvec_to_rotmat(root)[..., :, 2]
        roll = torch.rad2deg(torch.atan2(chest[:, 0], chest[:, 2]))
        own = torch.tensor([OWN_ROLL[i] for i in range(4)], device=roll.device)[
            out["prior_posture"]]
        off = (roll - own + 180) % 360 - 180
        cols["posture"].append(out["prior_posture"])
        cols["sitting"].append(sitting)
        cols["gap"].append(worst)
        cols["held"].append(worst_held)
        cols["rests"].append(ok.all(1))
        cols["area"].append((grid > 1.0).sum((1, 2)) * cell)
        cols["area_pm"].append((pm > 1.0).sum((1, 2)) * cell)
        cols["load"].append(grid.sum((1, 2)) * 1000 * cell / weight)
        cols["load_pm"].append(pm.sum((1, 2)) * 1000 * cell / weight)
        cols["sink"].append(out["sink"])
        cols["roll"].append(off.abs())
        cols["intersect"].append(self_intersecting(out["joints"], out["stature"] / 1.75))
        # The pillow under the head: height where the head meets it over its free height.
        head = out["vertices"][:, model.tests[CHAIN["head"]]]
        free = pillow_height_at(out["pillow_boxes"], head[..., 0], head[..., 1])
        contact = (head[..., 2] - free * out["pillow_squash"][:, None]).argmin(1)
        rows = torch.arange(n, device=head.device)
        h = free[rows, contact]
        cols["pillow"].append(torch.where(h > 0.04, head[rows, contact, 2] / h, torch.nan))
        done += n
        print(f"\r{done}/{args.n} samples", end="", flush=True)
    print()
    rate = done / (time.perf_counter() - start)
    data = {k: torch.cat(v).float().cpu().numpy() for k, v in cols.items()}
    data["rate"] = np.array(rate)
    return data


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--sitting", type=float, default=0.1,
                        help="share of bodies sitting on the bed's edge")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (CPU)")
    parser.add_argument("--note", default="")
    args = parser.parse_args(argv)
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    d = collect(args)
    lying = d["sitting"] < 0.5
    result = Result(f"rest_{args.device.split(':')[0]}", machine_info(), command_line())
    groups = [(POSTURES[p], lying & (d["posture"] == p)) for p in range(4)]
    groups.append(("sitting on the edge", ~lying))
    groups.append(("all lying", lying))
    for name, sel in groups:
        if not sel.any():
            continue
        share = sel.mean() if name != "all lying" else lying.mean()
        gap = d["gap"][sel] * 1000
        if name in POSTURES:
            within = sel.sum() / max(lying.sum(), 1)
            result.rows.append(Row(f"{name}: share of lying bodies", round(100 * within, 1), "%",
                                   "25 % each (balanced)", bool(abs(within - 0.25) < 0.05),
                                   note=f"¾ turns {100 * (d['roll'][sel] >= 29).mean():.0f} %"))
        else:
            result.rows.append(Row(f"{name}: share of samples", round(100 * share, 1), "%"))
        result.rows.append(Row(f"{name}: largest gap, mean", round(float(gap.mean()), 1), "mm",
                               note="head and limbs (hand / foot end) above what is below; "
                                    f"95th percentile {np.percentile(gap, 95):.1f} mm"))
        held = d["held"][sel] * 1000
        p95 = float(np.percentile(held, 95))
        result.rows.append(Row(f"{name}: largest gap unless held, 95th percentile",
                               round(p95, 1), "mm", "≤ 30 mm", p95 <= 30.0,
                               note="a part leaning on another part counts as touching; "
                                    f"mean {held.mean():.1f} mm"))
        result.rows.append(Row(f"{name}: head and limbs all rest", round(
            100 * float(d["rests"][sel].mean()), 1), "%",
            note="gap ≤ 30 mm or leaning on another part"))
        result.rows.append(Row(f"{name}: contact area > 1 kPa", round(float(
            d["area"][sel].mean()), 3), "m²", note=f"p5–p95 {np.percentile(d['area'][sel], 5):.3f}"
            f"–{np.percentile(d['area'][sel], 95):.3f} m²; mat window "
            f"{d['area_pm'][sel].mean():.3f} m²"))
        load, load_pm = d["load"][sel], d["load_pm"][sel]
        worst = float(np.abs(load - 1).max()) if name != "sitting on the edge" else float(
            np.abs(load - load.mean()).max())
        result.rows.append(Row(f"{name}: total load / m·g", round(float(load.mean()), 4), "",
                               "within ±10 %" if name != "sitting on the edge" else "",
                               bool(worst <= 0.1) if name != "sitting on the edge" else None,
                               note=f"worst {worst:+.4f}; mat window mean {load_pm.mean():.3f} "
                                    f"(min {load_pm.min():.3f})"))
        result.rows.append(Row(f"{name}: sinking depth", round(float(d["sink"][sel].mean()) *
                                                                1000, 1), "mm"))
        squash = d["pillow"][sel]
        squash = squash[np.isfinite(squash)]
        if len(squash) and name != "sitting on the edge":
            result.rows.append(Row(
                f"{name}: pillow under the head, pressed to", round(100 * float(np.median(
                    squash)), 1), "% of its free height", note=f"median of {len(squash)} heads "
                f"on a pillow; p5–p95 {100 * np.percentile(squash, 5):.0f}–"
                f"{100 * np.percentile(squash, 95):.0f} %; drawn 40–70 %"))
        result.rows.append(Row(f"{name}: self-intersecting after settling", round(
            100 * float(d["intersect"][sel].mean()), 2), "%"))
    load = os.getloadavg()[0]
    result.notes.append(
        f"{len(d['gap'])} samples (seed {args.seed}, batches of {args.batch}, {args.device}, "
        f"{torch.get_num_threads()} torch thread(s)); the generator made "
        f"{float(d['rate']):.1f} samples/s here with settling, drape and rendering (no "
        f"noise); 1-min load average at the end {load:.1f}. Sitting bodies carry part of "
        f"their weight on the floor when their feet reach it (their load is 0.878 or 1).")
    if args.note:
        result.notes.append(args.note)
    for row in result.rows:
        print(f"{row.metric}: {row.value:g} {row.unit} {row.note}")
    print("wrote", save(result))


if __name__ == "__main__":
    main()
