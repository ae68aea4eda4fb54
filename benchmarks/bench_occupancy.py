"""Occupancy: is someone lying in the bed, is it empty, is someone sitting on its edge?

    python benchmarks/bench_occupancy.py [--n 600] [--seed 5] [--device cpu]
        [--checkpoint disrt_core/weights/default.safetensors] [--fit]

Generates ``--n`` scenes with the three occupancy states in equal shares (room scenes
through every sensor in turn, and SLP-like bed scenes with the Kinect v2; the network image
made with the true bed pose), runs the Estimator on them (5 DDIM steps, seeded) and reports
the accuracy of ``disrt_core.occupancy.occupancy_state`` per true state, given the raw
frame's trunk evidence as the node gives it (``disrt_core.occupancy_raw.trunk_features``
on each raw frame alone, with the true bed pose and mattress size), and of
``Prediction.present`` (goal: every state ≥ 95 %), and what the trunk evidence costs per
frame on this machine. ``--fit`` fits the presence model on these scenes first
(L2-regularised logistic regression, Newton's method: ``occupancy.FEATURES``, lying in bed
against empty or sitting) and prints the coefficients to paste into
``disrt_core.occupancy.COEFFICIENTS``; ``--fit-sitting`` also fits the two sitting models
(from the tall shares and that presence, and with the trunk areas too:
``SITTING_COEFFICIENTS``, ``SITTING_RAW_COEFFICIENTS``; their inputs are nearly collinear, so
a refit can swap the signs of the shares' weights without being better). The accuracy
reported is then on a second, held-out set of the same size (seed + 1).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Result, Row, command_line, machine_info, save

from disrt_core.geometry.bedframe import normalize_depth
from disrt_core.occupancy import (
    COEFFICIENTS,
    FEATURES,
    SITTING_COEFFICIENTS,
    SITTING_RAW_COEFFICIENTS,
    STATES,
    occupancy_features,
    occupancy_state,
    sitting_from,
    tall_shares,
)
from disrt_core.occupancy_raw import FEATURES as TRUNK_FEATURES
from disrt_core.occupancy_raw import trunk_features

SCENES = [{"scene": "room", "sensor": s} for s in (
    "d435", "d455_640x360", "d435_640x480", "azure_nfov", "l515", "d435_424x240",
    "kinect2")] + [{"scene": "bed", "sensor": "kinect2"}]


def trunk_evidence(out: dict) -> tuple[torch.Tensor, list[float]]:
    """``trunk_features`` of each raw frame of a generated batch alone (as the node, one
    frame a camera), and the seconds each took."""
    rows, seconds = [], []
    for k in range(len(out["depth_raw"])):
        start = time.perf_counter()
        rows.append(trunk_features(out["depth_raw"][k:k + 1], out["K"][k:k + 1],
                                   out["T_cam_bed"][k:k + 1], out["mattress_size"][k:k + 1]))
        seconds.append(time.perf_counter() - start)
    return torch.cat(rows), seconds


def generate(estimator, n: int, seed: int, batch: int, device: str) -> dict[str, np.ndarray]:
    """Features, trunk evidence, states and present probabilities of ``n`` generated
    scenes (and the trunk evidence's seconds per frame)."""
    from disrt_core.sim import SceneGenerator, SimConfig

    parts = []
    for i, start in enumerate(range(0, n, batch)):
        scene = SCENES[i % len(SCENES)]
        gen = SceneGenerator(SimConfig(occupancy=(1.0, 1.0, 1.0), **scene),
                             estimator.body_model, device)
        out = gen.sample(min(batch, n - start), seed=seed * 1000 + i, with_raw=True)
        x = normalize_depth(out["depth"], out["bed_mm"][:, None, None])
        pred = estimator.predict(x)
        trunk, seconds = trunk_evidence(out)
        parts.append({
            "features": occupancy_features(x, pred.vertices).cpu().numpy(),
            "state": out["occupancy"].cpu().numpy(),
            "present_prob": pred.present_prob.cpu().numpy(),
            "tall": tall_shares(out["depth"], out["bed_mm"]).cpu().numpy(),
            "trunk": trunk.cpu().numpy(),
            "trunk_s": np.array(seconds),
            "predicted": occupancy_state(pred.present_prob, out["depth"], out["bed_mm"],
                                         trunk).cpu().numpy(),
            "predicted_grid": occupancy_state(pred.present_prob, out["depth"],
                                              out["bed_mm"]).cpu().numpy(),
            "sensor": np.array([scene["scene"] + "/" + scene["sensor"]] * len(x)),
        })
        print(f"  {start + len(x)}/{n} scenes", flush=True)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def fit_logistic(features: np.ndarray, present: np.ndarray, l2: float = 1e-3,
                 iterations: int = 50) -> np.ndarray:
    """Weights and bias of p = σ(w·f + b), L2 on w, by Newton's method."""
    x = np.concatenate([features, np.ones((len(features), 1))], 1)
    w = np.zeros(x.shape[1])
    reg = np.diag([l2] * features.shape[1] + [0.0])
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-x @ w))
        grad = x.T @ (p - present) + reg @ w
        hess = (x * (p * (1 - p))[:, None]).T @ x + reg + 1e-9 * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return w


def _logistic(x: np.ndarray, coefficients) -> np.ndarray:
    coef = np.asarray(coefficients)
    return 1 / (1 + np.exp(-(x @ coef[:-1] + coef[-1])))


def _sitting_inputs(data: dict, coefficients, trunk: bool = False) -> np.ndarray:
    """The sitting model's inputs: tall shares and the presence probability, and with
    ``trunk`` the trunk areas in dm² (as ``occupancy.sitting_from`` reads them)."""
    x = [data["tall"], _logistic(data["features"], coefficients)[:, None]]
    if trunk:
        x.append(100 * np.nan_to_num(data["trunk"][:, :3]))
    return np.concatenate(x, 1)


def _sitting(data: dict, coefficients, sitting_coef, raw_coef, trunk: bool = True
             ) -> np.ndarray:
    """Sitting probabilities of the scenes with the given models (``occupancy.sitting_from``),
    with the trunk evidence or without (the network grid alone)."""
    as_t = torch.from_numpy
    return sitting_from(as_t(data["tall"]).float(),
                        as_t(_logistic(data["features"], coefficients)).float(),
                        as_t(data["trunk"]) if trunk else None, sitting_coef, raw_coef).numpy()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--checkpoint", default="disrt_core/weights/default.safetensors")
    parser.add_argument("--fit", action="store_true", help="fit the presence model first")
    parser.add_argument("--fit-sitting", action="store_true",
                        help="with --fit: fit the two sitting models too")
    args = parser.parse_args(argv)
    from disrt_core.infer import Estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator = Estimator.from_checkpoint(args.checkpoint, device=args.device, seed=0)
    coefficients, sitting_coef = COEFFICIENTS, SITTING_COEFFICIENTS
    raw_coef = SITTING_RAW_COEFFICIENTS
    result = Result("occupancy", machine_info(), command_line())
    if args.fit:
        train = generate(estimator, args.n, args.seed, args.batch, args.device)
        w = fit_logistic(train["features"], (train["state"] == 0).astype(float), l2=1e-2)
        coefficients = tuple(round(float(v), 3) for v in w)
        if args.fit_sitting:
            w = fit_logistic(_sitting_inputs(train, coefficients),
                             (train["state"] == 2).astype(float), l2=1e-3)
            sitting_coef = tuple(round(float(v), 2) for v in w)
            w = fit_logistic(_sitting_inputs(train, coefficients, trunk=True),
                             (train["state"] == 2).astype(float), l2=1e-3)
            raw_coef = tuple(round(float(v), 2) for v in w)
        sitting_how = "fitted" if args.fit_sitting else "kept"
        print("fitted COEFFICIENTS =", coefficients)
        print(f"{sitting_how} SITTING_COEFFICIENTS =", sitting_coef)
        print(f"{sitting_how} SITTING_RAW_COEFFICIENTS =", raw_coef)
        result.notes.append(f"presence coefficients fitted on {args.n} scenes of seed "
                            f"{args.seed}: {coefficients}; sitting ({sitting_how}) "
                            f"{sitting_coef}, sitting with the trunk ({sitting_how}) "
                            f"{raw_coef}; evaluated on seed {args.seed + 1}")
        args.seed += 1
    data = generate(estimator, args.n, args.seed, args.batch, args.device)
    prob = _logistic(data["features"], coefficients)
    if args.fit:  # the states again, with the fitted models
        for key, trunk in (("predicted", True), ("predicted_grid", False)):
            sitting = _sitting(data, coefficients, sitting_coef, raw_coef, trunk) >= 0.5
            data[key] = np.where(sitting, 2, np.where(prob >= 0.5, 0, 1))
    present = data["state"] == 0
    for k, name in enumerate(STATES):
        mask = data["state"] == k
        acc = float((data["predicted"][mask] == k).mean()) if mask.any() else float("nan")
        result.rows.append(Row(f"occupancy state accuracy: {name} ({mask.sum()} scenes)",
                               round(100 * acc, 1), "%", ">= 95 %", acc >= 0.95))
    for k, name in enumerate(STATES):  # as before the raw frame's evidence
        mask = data["state"] == k
        acc = float((data["predicted_grid"][mask] == k).mean()) if mask.any() else float("nan")
        result.rows.append(Row(f"occupancy state accuracy, network grid alone (no raw frame): "
                               f"{name}", round(100 * acc, 1), "%"))
    acc = float(((prob >= 0.5) == present).mean())
    result.rows.append(Row("Prediction.present accuracy (lying in bed or not)",
                           round(100 * acc, 1), "%", ">= 95 %", acc >= 0.95))
    cost = 1000 * statistics.median(data["trunk_s"])
    result.rows.append(Row("trunk evidence from the raw frame (occupancy_raw), median per "
                           f"frame, {torch.get_num_threads()} CPU threads",
                           round(cost, 2), "ms"))
    for sensor in np.unique(data["sensor"]):
        mask = data["sensor"] == sensor
        acc = float((data["predicted"][mask] == data["state"][mask]).mean())
        result.rows.append(Row(f"state accuracy, {sensor}", round(100 * acc, 1), "%"))
    means = {STATES[k]: data["features"][data["state"] == k].mean(0).round(3).tolist()
             for k in range(3)}
    trunk = {STATES[k]: data["trunk"][data["state"] == k].mean(0).round(3).tolist()
             for k in range(3)}
    result.notes.append(f"{args.n} scenes, seed {args.seed}, {estimator.model_id}, checkpoint "
                        f"{args.checkpoint}; mean features {FEATURES} per state: {means}; "
                        f"mean trunk evidence {TRUNK_FEATURES} per state: {trunk}")
    for row in result.rows:
        print(f"{row.metric}: {row.value} {row.unit}")
    print("wrote", save(result))


if __name__ == "__main__":
    main()
