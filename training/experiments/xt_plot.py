"""Calibration plot of the hypotheses' spread (docs/diffusion_xt.png) from the scorecards of
:mod:`xt_eval` / :mod:`xt_finetune`.

    .venv/bin/python training/experiments/xt_plot.py --out docs/diffusion_xt.png \
        paper=runs/diffxt/paper skip_x0=runs/diffxt/skip_x0

Left: observed against nominal coverage of the spread's intervals (the diagonal is perfect
calibration), per run and set. Right: per-joint error against spread (log axes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="label=run_folder (holding scores_<set>.json)")
    p.add_argument("--sets", default="test_k2,target_test")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.6))
    ax.plot([0, 1], [0, 1], "k:", lw=1, label="perfect")
    ax.axhspan(0.85, 0.95, xmin=0.87, xmax=0.93, color="0.85")  # the goal at 90 %
    styles = {"test_k2": "-", "target_test": "--"}
    for i, item in enumerate(args.runs):
        label, folder = item.split("=", 1)
        color = f"C{i}"
        for name in args.sets.split(","):
            path = Path(folder) / f"scores_{name}.json"
            if not path.is_file():
                continue
            s = json.loads(path.read_text())["spread"]
            levels = [float(k) for k in s["coverage"]]
            ax.plot(levels, list(s["coverage"].values()), styles.get(name, "-"), color=color,
                    marker="o", ms=3, label=f"{label}, {name} (ρ={s['spearman']:.2f})")
            if name == "test_k2":
                err = np.asarray(s["per_sample"]["err_mm"])
                spr = np.asarray(s["per_sample"]["spread_mm"])
                bx.scatter(np.maximum(spr, 1e-2), np.maximum(err, 1e-1), s=2, alpha=0.25,
                           color=color, label=label)
    ax.set_xlabel("nominal coverage of the spread's interval")
    ax.set_ylabel("observed share of true joints inside")
    ax.set_title("Calibration (K = 8, 5 steps)")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    bx.set_xscale("log")
    bx.set_yscale("log")
    bx.set_xlabel("per-joint spread of 8 hypotheses, mm")
    bx.set_ylabel("per-joint error of the answer, mm")
    bx.set_title("Spread against error (held-out Kinect v2)")
    bx.legend(fontsize=7, markerscale=4)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
