"""Where a checkpoint's posture errors lie (issue 19, docs/rooms_eval.md): per true posture
the accuracy, what it was taken for, and for each wrong frame how far the true body lies
from a class boundary and how far off the predicted roll is.

    .venv/bin/python training/experiments/posture_errors.py [CKPT] --data DIR [--out F]

The true posture is the shard's label (``disrt_core.posture`` on the true root); the
predicted one is the same function on the predicted root (one hypothesis, 5 DDIM steps,
sampling seed 0, through ``Estimator.from_checkpoint``). Distance to a boundary: the angle
between the chest's direction and the vertical, against 45° and 135° (the supine | lateral
| prone limits); ``clear_15deg`` is the accuracy on the bodies at least 15° from both.
Roll error: the difference of the chest's direction about the body's long axis, true
against predicted, in [0°, 180°]; a left-right or front-back flip is ~180°.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import warnings
from pathlib import Path

import numpy as np
import roma
import torch

from disrt_core.data.shards import read_shard
from disrt_core.geometry.bedframe import normalize_depth
from disrt_core.infer import Estimator
from disrt_core.posture import POSTURES, posture_from_axis_angle

DEFAULT = Path(__file__).resolve().parents[2] / "disrt_core" / "weights" / "default.safetensors"


def chest_angles(root: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(angle of the chest from the vertical, roll of the chest about the long axis), both
    in degrees, of root axis-angles [N,3] (label frame)."""
    R = roma.rotvec_to_rotmat(root)
    tilt = torch.rad2deg(torch.acos(R[:, 2, 2].clamp(-1, 1)))
    roll = torch.rad2deg(torch.atan2(-R[:, 2, 0], R[:, 2, 2]))
    return tilt, roll


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", nargs="?", type=Path, default=DEFAULT)
    p.add_argument("--data", type=Path, required=True, help="a shard folder (disrt-generate)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    arrays = [read_shard(f)[0] for f in sorted(glob.glob(str(args.data / "*.safetensors")))]
    data = {k: np.concatenate([a[k] for a in arrays]) for k in arrays[0]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = Estimator.from_checkpoint(args.checkpoint, seed=0)
    layout = est.body_model.param_layout
    depth = normalize_depth(torch.from_numpy(data["depth"]).float(),
                            torch.from_numpy(data["bed_mm"]).float()[:, None, None])
    pred = torch.cat([est.predict(depth[s:s + 32]).params for s in range(0, len(depth), 32)])
    true_root = layout.unpack(torch.from_numpy(data["params"]).float()).root_orient
    pred_root = layout.unpack(pred).root_orient
    truth = torch.from_numpy(data["posture"]).long()
    guess = posture_from_axis_angle(pred_root)
    tilt, roll_t = chest_angles(true_root)
    roll_p = chest_angles(pred_root)[1]
    margin = torch.minimum((tilt - 45).abs(), (tilt - 135).abs())
    roll_error = ((roll_p - roll_t + 180) % 360 - 180).abs()
    report = {"n": len(truth), "accuracy": float((truth == guess).float().mean()),
              "per_posture": {}, "roll_error_median_deg": float(roll_error.median())}
    for c, name in enumerate(POSTURES):
        mask = truth == c
        report["per_posture"][name] = {
            "n": int(mask.sum()), "accuracy": float((guess[mask] == c).float().mean()),
            "taken_for": dict(collections.Counter(POSTURES[int(g)] for g in guess[mask]
                                                  if g != c))}
    wrong = truth != guess
    report["wrong"] = {
        "n": int(wrong.sum()),
        "within_10deg_of_a_boundary": int((wrong & (margin < 10)).sum()),
        "roll_error_ge_90deg": int((wrong & (roll_error >= 90)).sum()),
        "roll_error_45_90deg": int((wrong & (roll_error >= 45) & (roll_error < 90)).sum()),
        "roll_error_lt_45deg": int((wrong & (roll_error < 45)).sum())}
    report["share_within_10deg_of_a_boundary"] = float((margin < 10).float().mean())
    # the clear postures: bodies at least 15° from a class limit (a ¾ turn near 45° is
    # either class within the roll error of a good estimate)
    clear = margin >= 15
    report["clear_15deg"] = {"n": int(clear.sum()), "accuracy": float(
        (truth == guess)[clear].float().mean())}
    for c, name in enumerate(POSTURES):
        mask = clear & (truth == c)
        report["clear_15deg"][name] = {"n": int(mask.sum()),
                                       "accuracy": float((guess[mask] == c).float().mean())}
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
