"""The results table of docs/diffusion_xt.md from scorecards (``scores_<set>.json`` of
:mod:`xt_finetune` / :mod:`xt_eval`), with the issue's goals checked.

    .venv/bin/python training/experiments/xt_table.py shipped=runs/diffxt/shipped \
        paper600=runs/diffxt/paper600 skip_x0_inv600=runs/diffxt/skip_x0_inv600

Goals (issue 21): 5 steps ≥ 2 mm better than 1; 10 steps ≤ 5 steps + 1 mm; t = 0 given the
truth ≤ 10 mm; Spearman(spread, error) ≥ 0.5; 90 % interval holds 85-95 % of the joints.
The last column transfers the interval scale fitted on the first set to the other one.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from scipy.stats import chi2


def _scaled_coverage(score: dict, scale: float) -> float:
    s = score["spread"]
    k = s["k"]
    err = np.asarray(s["per_sample"]["err_mm"])
    spr = np.asarray(s["per_sample"]["spread_mm"])
    radius = scale * spr * math.sqrt(chi2.ppf(0.9, 3) / 3 * (1 + 1 / k))
    return float((err <= radius).mean())


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="label=run_folder")
    p.add_argument("--sets", default="test_k2,target_test")
    args = p.parse_args(argv)
    sets = args.sets.split(",")
    head = ["run", "set", "1 step", "5 steps", "10 steps", "5−1", "10−5", "t=0 truth",
            "K=8 5 steps", "spread", "Spearman", "cover 90 %", "cover 90 %, scale of "
            f"{sets[0]}"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for item in args.runs:
        label, folder = item.split("=", 1)
        scores = {}
        for name in sets:
            path = Path(folder) / f"scores_{name}.json"
            if path.is_file():
                scores[name] = json.loads(path.read_text())
        scale = scores[sets[0]]["spread"]["scale_for_90"] if sets[0] in scores else None
        for name, r in scores.items():
            s = r["spread"]
            transfer = (f"{_scaled_coverage(r, scale):.0%}" if scale and name != sets[0]
                        else "–")
            cells = [label, name, f"{r['mpjpe_1']:.1f}", f"{r['mpjpe_5']:.1f}",
                     f"{r['mpjpe_10']:.1f}", f"{r['mpjpe_5'] - r['mpjpe_1']:+.1f}",
                     f"{r['mpjpe_10'] - r['mpjpe_5']:+.1f}", f"{r['t0_truth']:.1f}",
                     f"{s['mpjpe_5_k']:.1f}", f"{s['mean_spread_mm']:.1f}",
                     f"{s['spearman']:.2f}", f"{s['coverage']['0.90']:.0%}", transfer]
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
