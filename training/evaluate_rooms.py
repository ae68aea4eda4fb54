"""Evaluate checkpoints on several held-out shard folders at once (e.g. room scenes, one
folder per sensor) and report MPJPE / PVE per folder, per cover, per posture (with posture
accuracy), overall.

    python training/evaluate_rooms.py OLD.safetensors NEW.safetensors \\
        --shards data/rooms_test/room_* --steps 1,5 --out docs/rooms_eval

Writes ``<out>.json`` (every summary) and ``<out>.md`` (the tables) and prints the Markdown.
Each folder is evaluated with ``disrt_core.train.evaluation`` (seeded sampler, one
hypothesis); "all" pools the folders' samples.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from disrt_core.posture import POSTURES
from disrt_core.train.config import DataSpec
from disrt_core.train.evaluation import EvalSettings, evaluate_checkpoint, summarise


def pooled(results: list[dict]) -> dict:
    """The summary of all folders' samples together."""
    keys = ("cover", "female", "mpjpe_mm", "pve_mm", "posture", "posture_pred")
    return summarise({k: np.concatenate([np.asarray(r["per_sample"][k]) for r in results])
                      for k in keys})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+", type=Path)
    p.add_argument("--shards", nargs="+", type=Path, required=True)
    p.add_argument("--steps", default="5", help="comma-separated DDIM steps")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    steps = [int(s) for s in args.steps.split(",")]
    settings = EvalSettings(seed=args.seed, measurements=False, grid=[(s, 1) for s in steps])
    report: dict = {"steps": steps, "folders": [str(f) for f in args.shards], "models": {}}
    lines = []
    for path in args.checkpoints:
        per_folder: dict[int, list[dict]] = {s: [] for s in steps}
        rows: dict[int, dict] = {s: {} for s in steps}
        for folder in args.shards:
            spec = DataSpec(type="shards", path=str(folder), name=folder.name)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = evaluate_checkpoint(path, spec, settings, args.device, per_sample=True)
            for entry in result["results"]:
                per_folder[entry["steps"]].append(entry)
                rows[entry["steps"]][folder.name] = entry["summary"]
        model = report["models"][path.name] = {}
        for s in steps:
            rows[s]["all"] = pooled(per_folder[s])
            model[str(s)] = rows[s]
        for s in steps:
            lines.append(f"\n{path.name}, {s} DDIM step{'s' if s > 1 else ''}: MPJPE / PVE (mm)"
                         " and samples\n")
            lines.append("| set | uncover | cover1 | cover2 | all | N |")
            lines.append("|---|---|---|---|---|---|")
            for name, summ in rows[s].items():
                cells = [f"{summ['mpjpe_mm'][c]:.1f} / {summ['pve_mm'][c]:.1f}"
                         if c in summ["mpjpe_mm"] else "–"
                         for c in ("uncover", "cover1", "cover2", "all")]
                lines.append(f"| {name} | " + " | ".join(cells) + f" | {summ['n']['all']} |")
            posture = rows[s]["all"].get("by_posture", {})
            lines.append("\n| posture (all sets) | MPJPE / PVE (mm) | posture accuracy | N |")
            lines.append("|---|---|---|---|")
            for name in POSTURES:
                if name in posture:
                    q = posture[name]
                    lines.append(f"| {name} | {q['mpjpe_mm']:.1f} / {q['pve_mm']:.1f} | "
                                 f"{100 * q['posture_accuracy']:.1f} % | {q['n']} |")
    text = "\n".join(lines).strip() + "\n"
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
        args.out.with_suffix(".md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
