"""Calibration plot of the joint intervals (docs/interval_calibration.png, issue 21): for
nominal levels 0.5-0.95 the radius a + b·spread (:func:`disrt_core.uncertainty.
fit_interval`) is fitted on the calibration scorecards and its observed coverage read on
held-out ones; beside it, the raw spread read as a Gaussian (:mod:`xt_eval`'s χ₃ interval).

    .venv/bin/python training/experiments/interval_plot.py --out docs/interval_calibration.png \
        --fit /tmp/cal/shipped_cal_rooms.json /tmp/cal/shipped_cal_bed.json \
        --sets rooms=/tmp/cal/shipped_val_rooms.json bed=/tmp/cal/shipped_bed_k2.json \
        target=/tmp/cal/shipped_target_test.json

Scorecards: :mod:`xt_eval` JSONs (their per-sample errors and spreads at K = 8, 5 steps).
Prints the table of the plot.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from xt_eval import coverage

from disrt_core.uncertainty import fit_interval

LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def per_joint(path: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Errors and spreads [N, 24] (m) and K of one scorecard."""
    spread = json.loads(Path(path).read_text())["spread"]
    ps = spread["per_sample"]
    return (np.array(ps["err_mm"]).reshape(-1, 24) / 1000,
            np.array(ps["spread_mm"]).reshape(-1, 24) / 1000, int(spread["k"]))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fit", nargs="+", required=True, help="calibration scorecards")
    p.add_argument("--sets", nargs="+", required=True, help="label=held-out scorecard")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    parts = [per_joint(f) for f in args.fit]
    err, spread = (np.concatenate(x) for x in zip(*[q[:2] for q in parts]))
    fits = {lv: fit_interval(err, spread, lv) for lv in LEVELS}
    fig, ax = plt.subplots(figsize=(5.6, 5))
    ax.plot([0, 1], [0, 1], color="0.6", lw=1)
    ax.plot([0.9, 0.9], [0.85, 0.95], color="0.3", lw=8, alpha=0.25)  # the goal at 90 %
    print("set | " + " | ".join(f"{lv:.2f}" for lv in LEVELS) + " | raw spread at 0.90")
    for i, item in enumerate(args.sets):
        label, path = item.split("=", 1)
        e, s, k = per_joint(path)
        observed = [float(np.mean(e <= np.array(f["offset_m"]) + np.array(f["scale"]) * s))
                    for f in fits.values()]
        raw = list(coverage(e.ravel(), s.ravel(), k, LEVELS).values())
        colour = f"C{i}"
        ax.plot(LEVELS, observed, "o-", color=colour, label=f"{label}: calibrated")
        ax.plot(LEVELS, raw, "x--", color=colour, alpha=0.6, label=f"{label}: raw spread")
        print(f"{label} | " + " | ".join(f"{o:.3f}" for o in observed) + f" | {raw[4]:.3f}")
    ax.set_xlabel("nominal level")
    ax.set_ylabel("share of true joints inside the radius")
    ax.set_xlim(0.45, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_title("Joint intervals, K = 8, 5 steps (grey bar: the goal at 90 %)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
