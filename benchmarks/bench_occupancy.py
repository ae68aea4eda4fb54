"""Occupancy: is someone lying in the bed, is it empty, is someone sitting on its edge?

    python benchmarks/bench_occupancy.py [--n 600] [--seed 5] [--device cpu]
        [--checkpoint disrt_core/weights/default.safetensors] [--fit]

Generates ``--n`` scenes with the three occupancy states in equal shares (room scenes
through every sensor in turn, and SLP-like bed scenes with the Kinect v2; the network image
made with the true bed pose), runs the Estimator on them (5 DDIM steps, seeded) and reports
the accuracy of ``disrt_core.occupancy.occupancy_state`` per true state and of
``Prediction.present`` (goal: every state ≥ 95 %). ``--fit`` fits the two logistic
models on these scenes first (L2-regularised, Newton's method): presence from
``occupancy.FEATURES`` (lying in bed against empty or sitting) and sitting from the tall
shares and that presence, and prints the coefficients to paste into
``disrt_core.occupancy.COEFFICIENTS`` and ``SITTING_COEFFICIENTS``; the accuracy reported is
then on a second, held-out set of the same size (seed + 1).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Result, Row, command_line, machine_info, save

from disrt_core.geometry.bedframe import normalize_depth
from disrt_core.occupancy import (
    COEFFICIENTS,
    FEATURES,
    SITTING_COEFFICIENTS,
    STATES,
    occupancy_features,
    occupancy_state,
    tall_shares,
)

SCENES = [{"scene": "room", "sensor": s} for s in (
    "d435", "d455_640x360", "d435_640x480", "azure_nfov", "l515", "d435_424x240",
    "kinect2")] + [{"scene": "bed", "sensor": "kinect2"}]


def generate(estimator, n: int, seed: int, batch: int, device: str) -> dict[str, np.ndarray]:
    """Features, states and present probabilities of ``n`` generated scenes."""
    from disrt_core.sim import SceneGenerator, SimConfig

    parts = []
    for i, start in enumerate(range(0, n, batch)):
        scene = SCENES[i % len(SCENES)]
        gen = SceneGenerator(SimConfig(occupancy=(1.0, 1.0, 1.0), **scene),
                             estimator.body_model, device)
        out = gen.sample(min(batch, n - start), seed=seed * 1000 + i)
        x = normalize_depth(out["depth"], out["bed_mm"][:, None, None])
        pred = estimator.predict(x)
        parts.append({
            "features": occupancy_features(x, pred.vertices).cpu().numpy(),
            "state": out["occupancy"].cpu().numpy(),
            "present_prob": pred.present_prob.cpu().numpy(),
            "tall": tall_shares(out["depth"], out["bed_mm"]).cpu().numpy(),
            "predicted": occupancy_state(pred.present_prob, out["depth"],
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


def _sitting_inputs(data: dict, coefficients) -> np.ndarray:
    """The sitting model's inputs: tall shares and the presence probability."""
    return np.concatenate([data["tall"], _logistic(data["features"], coefficients)[:, None]],
                          1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--checkpoint", default="disrt_core/weights/default.safetensors")
    parser.add_argument("--fit", action="store_true")
    args = parser.parse_args(argv)
    from disrt_core.infer import Estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator = Estimator.from_checkpoint(args.checkpoint, device=args.device, seed=0)
    coefficients, sitting_coef = COEFFICIENTS, SITTING_COEFFICIENTS
    result = Result("occupancy", machine_info(), command_line())
    if args.fit:
        train = generate(estimator, args.n, args.seed, args.batch, args.device)
        w = fit_logistic(train["features"], (train["state"] == 0).astype(float), l2=1e-2)
        coefficients = tuple(round(float(v), 3) for v in w)
        w = fit_logistic(_sitting_inputs(train, coefficients),
                         (train["state"] == 2).astype(float), l2=1e-3)
        sitting_coef = tuple(round(float(v), 2) for v in w)
        print("fitted COEFFICIENTS =", coefficients)
        print("fitted SITTING_COEFFICIENTS =", sitting_coef)
        result.notes.append(f"coefficients fitted on {args.n} scenes of seed {args.seed}: "
                            f"presence {coefficients}, sitting {sitting_coef}; evaluated on "
                            f"seed {args.seed + 1}")
        args.seed += 1
    data = generate(estimator, args.n, args.seed, args.batch, args.device)
    prob = _logistic(data["features"], coefficients)
    if args.fit:  # the states again, with the fitted models
        sitting = _logistic(_sitting_inputs(data, coefficients), sitting_coef) >= 0.5
        data["predicted"] = np.where(sitting, 2, np.where(prob >= 0.5, 0, 1))
    present = data["state"] == 0
    for k, name in enumerate(STATES):
        mask = data["state"] == k
        acc = float((data["predicted"][mask] == k).mean()) if mask.any() else float("nan")
        result.rows.append(Row(f"occupancy state accuracy: {name} ({mask.sum()} scenes)",
                               round(100 * acc, 1), "%", ">= 95 %", acc >= 0.95))
    acc = float(((prob >= 0.5) == present).mean())
    result.rows.append(Row("Prediction.present accuracy (lying in bed or not)",
                           round(100 * acc, 1), "%", ">= 95 %", acc >= 0.95))
    for sensor in np.unique(data["sensor"]):
        mask = data["sensor"] == sensor
        acc = float((data["predicted"][mask] == data["state"][mask]).mean())
        result.rows.append(Row(f"state accuracy, {sensor}", round(100 * acc, 1), "%"))
    means = {STATES[k]: data["features"][data["state"] == k].mean(0).round(3).tolist()
             for k in range(3)}
    result.notes.append(f"{args.n} scenes, seed {args.seed}, {estimator.model_id}, checkpoint "
                        f"{args.checkpoint}; mean features {FEATURES} per state: {means}")
    for row in result.rows:
        print(f"{row.metric}: {row.value} {row.unit}")
    print("wrote", save(result))


if __name__ == "__main__":
    main()
