"""Pressure from depth: the learned map and the physical model against the generator's maps.

    python benchmarks/bench_pressure.py [--n 256] [--train-n 512] [--seed 11] [--batch 32]
        [--checkpoint disrt_core/weights/default.safetensors] [--device cpu] [--note ...]
        [--pressure-weights disrt_core/weights/pressure.safetensors] [--rooms data/rooms]
        [--room-n 128]

Held-out frames: ``--n`` generated SLP-like scenes (bed scene, Kinect v2, covers 0/1/2,
someone lying in bed, the network image made with the true bed pose), seed ``--seed``. The
ground truth is the generator's ``pressure`` [192,84] kPa (:mod:`disrt_core.sim.mattress`).
Compared, on the same frames:

* ``learned``: the depth CNN's map (:mod:`disrt_core.model.pressure_net`, the shipped
  weights or ``--pressure-weights``) from the same network image, its per-vertex and
  per-region pressure read under the predicted body
  (:meth:`disrt_core.pressure.PressureModel.read`), as the node runs it with
  ``pressure_method: learned``;
* ``predicted``: :class:`disrt_core.pressure.PressureModel` on the default weights'
  predicted mesh (5 DDIM steps, seeded, one hypothesis), as the node runs it, for each
  pillow assumption (``auto`` [the default], ``always``, ``never``);
* ``predicted, settled``: the same with ``settle=True`` (limbs and head laid at rest first,
  as the generator does);
* ``true body``: the same model on the generator's own body (its true mesh, sunk), with the
  same assumptions: the error of the model's assumptions (stiffness, pillow, mattress)
  alone, without pose error; and with the generator's own stiffness, pillow and mattress
  (``exact``: must give the ground truth back);
* ``mean map``: the mean ground-truth map of ``--train-n`` other generated scenes (seed
  ``--seed + 1``), the baseline of the goal.

Metrics per frame, averaged over frames: **MAE** (kPa, over the 192×84 cells); **contact
IoU** (cells above 1 kPa, ``disrt_core.pressure.CONTACT_KPA``; a frame where neither map has
contact counts 1); **peak error per region** (|predicted − true| of the region's peak,
:data:`disrt_core.pressure.REGIONS`, each map read with its own body's regions; over the
frames where either side's region is in contact); and **v2v pressure MSE** (kPa², per
vertex, unweighted, skin pressure of the predicted body against the true body's with the
generator's own stiffness and pillow), the closest figure to BodyMAP's v2vP (which weights
each vertex by its area and is measured on real SLP data with a pressure mat among the
inputs). Goals (issue 22): MAE ≤ 60 % of the mean map's; contact IoU ≥ 0.5.

With ``--rooms DIR``: the held-out room shards too (shard 2 of each complete
``DIR/room_*`` folder, shard 0 of ``room_d435`` and ``room_d435_1280x720``; the first
``--room-n`` frames of each; network image made with the node's bed fit, the truth in the
true bed frame): MAE and contact IoU of the learned map, of the physical model on the
predicted body and of the mean map.

Cost: the learned map (the CNN, then the reading under the body) at batch 1 on one thread;
:class:`PressureModel` per call at batch 1 and 8, one and two CPU threads (40 calls
on predicted bodies; the calling thread's CPU time and the wall clock): the node's default
``pressure: true`` needs < 10 ms of CPU at batch 1. The true region peaks are noted (their
mean, 90th percentile and share above 9.3 kPa), which the monitor's default alert
threshold is set against.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Result, Row, command_line, machine_info, percentile, save

from disrt_core.geometry.bedframe import normalize_depth
from disrt_core.posture import POSTURES
from disrt_core.pressure import CONTACT_KPA, PILLOW_MODES, REGIONS, PressureModel

ROOT = Path(__file__).resolve().parents[1]
BODYMAP_NOTE = (
    "Reference, not the same data: BodyMAP (Tandon, Goyal, Clever, Erickson, CVPR 2024; "
    "github.com/RCHI-Lab/BodyMAP) predicts a per-vertex 3D pressure map from a depth image "
    "AND a pressure-mat image, on real SLP data (test participants 81-102) and the synthetic "
    "BodyPressureSD; its pressure metric v2vP is the per-vertex squared error weighted by "
    "vertex area, in kPa² (PMM/PMMMetric.py). Its published table could not be read in this "
    "session (no copy of the paper's tables among the stored pages), so no figure is quoted "
    "here; this benchmark's 'v2v pressure MSE' is the unweighted analogue on generated data.")


def _contact_iou(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    a, b = pred > CONTACT_KPA, true > CONTACT_KPA
    union = (a | b).flatten(1).sum(1)
    inter = (a & b).flatten(1).sum(1)
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union.float()))


class Tally:
    """Per-frame figures of one method, gathered over the batches."""

    def __init__(self) -> None:
        self.mae, self.iou, self.posture = [], [], []
        self.peak_err = [[] for _ in REGIONS]
        self.v2v = []

    def add(self, grid: torch.Tensor, truth: torch.Tensor, posture: torch.Tensor,
            regions: torch.Tensor | None = None, truth_regions: torch.Tensor | None = None
            ) -> None:
        self.mae += (grid - truth).abs().flatten(1).mean(1).tolist()
        self.iou += _contact_iou(grid, truth).tolist()
        self.posture += posture.tolist()
        if regions is not None:
            for r in range(len(REGIONS)):
                p, t = regions[:, r, 0], truth_regions[:, r, 0]
                either = (p > CONTACT_KPA) | (t > CONTACT_KPA)
                self.peak_err[r] += (p - t).abs()[either].tolist()


def _rows(result: Result, name: str, tally: Tally, baseline_mae: float | None,
          goals: bool) -> None:
    mae, iou = float(np.mean(tally.mae)), float(np.mean(tally.iou))
    share = mae / baseline_mae if baseline_mae else None
    result.rows.append(Row(f"{name}: MAE", round(mae, 4), "kPa",
                           "≤ 60 % of the mean map's" if goals else "",
                           (share <= 0.6) if goals and share is not None else None,
                           f"{100 * share:.0f} % of the mean map's" if share else ""))
    result.rows.append(Row(f"{name}: contact IoU (> {CONTACT_KPA:g} kPa)", round(iou, 3), "",
                           "≥ 0.5" if goals else "", (iou >= 0.5) if goals else None))
    if tally.peak_err[0] or any(tally.peak_err):
        for r, region in enumerate(REGIONS):
            errs = tally.peak_err[r]
            if errs:
                result.rows.append(Row(f"{name}: {region} peak error", round(
                    float(np.mean(errs)), 2), "kPa", note=f"{len(errs)} frames in contact"))
    if tally.v2v:
        result.rows.append(Row(f"{name}: v2v pressure MSE (unweighted)",
                               round(float(np.mean(tally.v2v)), 3), "kPa²"))
    post = np.asarray(tally.posture)
    for k, label in enumerate(POSTURES):
        mask = post == k
        if mask.any():
            result.rows.append(Row(f"{name}: MAE, {label}", round(float(
                np.asarray(tally.mae)[mask].mean()), 4), "kPa", note=f"{mask.sum()} frames"))


def timing(model: PressureModel, pred, settled: PressureModel) -> list[Row]:
    """Per-call cost of the model (module docstring): wall-clock p50 / p95 and the calling
    thread's CPU time p50 (``time.thread_time``: what the call costs this machine's cores,
    much less disturbed than the wall clock while other jobs share them)."""
    rows, threads = [], torch.get_num_threads()
    cases = [(model, 1, 1), (model, 1, 2), (model, 8, 1), (settled, 1, 1)]
    for pm, batch, n_threads in cases:
        torch.set_num_threads(n_threads)
        args = (pred.vertices[:batch], pred.joints[:batch])
        kwargs = {"params": pred.params[:batch]}
        for _ in range(3):
            pm(*args, **kwargs)
        wall, cpu = [], []
        for _ in range(40 if pm is model else 10):
            start, start_cpu = time.perf_counter(), time.thread_time()
            pm(*args, **kwargs)
            wall.append(time.perf_counter() - start)
            cpu.append(time.thread_time() - start_cpu)
        p50, p95, c50 = (1e3 * percentile(wall, 50), 1e3 * percentile(wall, 95),
                         1e3 * percentile(cpu, 50))
        name = "PressureModel" + (" (settle)" if pm is settled else "")
        goal = pm is model and batch == 1 and n_threads == 1
        rows.append(Row(f"{name}, batch {batch}, {n_threads} thread(s): CPU time per call, "
                        "p50", round(c50, 2), "ms",
                        "< 10 ms (pressure_method: physical)" if goal else "",
                        (c50 < 10) if goal else None,
                        f"wall p50 {p50:.1f} ms, p95 {p95:.1f} ms"))
    torch.set_num_threads(threads)
    return rows


def _cost(fn, repeat: int = 40) -> tuple[float, float, float]:
    """Wall p50, p95 and calling-thread CPU p50 of ``fn()``, ms."""
    for _ in range(3):
        fn()
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.thread_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.thread_time() - start_cpu)
    return 1e3 * percentile(wall, 50), 1e3 * percentile(wall, 95), 1e3 * percentile(cpu, 50)


def timing_learned(net, model: PressureModel, pred, depth: torch.Tensor) -> list[Row]:
    """Cost of the learned map at batch 1 on one thread: the CNN, the reading under the
    body, both (module docstring)."""
    threads, rows = torch.get_num_threads(), []
    torch.set_num_threads(1)
    x, vertices = depth[:1, None], pred.vertices[:1]

    def cnn():
        with torch.inference_mode():
            return net.pressure(x)

    grid = cnn()
    cases = (("CNN", cnn), ("reading under the body", lambda: model.read(vertices, grid)),
             ("CNN + reading", lambda: model.read(vertices, cnn())))
    for name, fn in cases:
        p50, p95, c50 = _cost(fn)
        goal = name == "CNN + reading"
        rows.append(Row(f"learned map, {name}, batch 1, 1 thread: CPU time per call, p50",
                        round(c50, 2), "ms", "< 10 ms (node default on)" if goal else "",
                        (c50 < 10) if goal else None,
                        f"wall p50 {p50:.1f} ms, p95 {p95:.1f} ms"))
    torch.set_num_threads(threads)
    return rows


def room_shards(root: Path) -> list[Path]:
    """The held-out room shards (module docstring)."""
    import json

    out = []
    for folder in sorted(root.glob("room_*")):
        special = {"room_d435": 0, "room_d435_1280x720": 0}
        if folder.name in special:
            out.append(folder / f"shard-{special[folder.name]:05d}.safetensors")
        elif json.loads((folder / "manifest.json").read_text()).get("complete"):
            out.append(folder / "shard-00002.safetensors")
    return [p for p in out if p.is_file()]


def rooms(root: Path, n: int, estimator, net, model: PressureModel,
          mean_map: torch.Tensor) -> list[Row]:
    """MAE and contact IoU on the held-out room shards (module docstring)."""
    from disrt_core.data.shards import read_shard

    tallies = {"learned": Tally(), "predicted, pillow auto": Tally(), "mean map": Tally()}
    per_folder = []
    for path in room_shards(root):
        arrays, _ = read_shard(path)
        depth = normalize_depth(torch.from_numpy(arrays["depth"][:n].astype("float32")),
                                torch.from_numpy(arrays["bed_mm"][:n])[:, None, None])
        truth = torch.from_numpy(arrays["pressure"][:n]).float()
        posture = torch.from_numpy(arrays["posture"][:n]).long()
        before = len(tallies["learned"].mae)
        for b in range(0, len(depth), 32):
            d, t, p = depth[b:b + 32], truth[b:b + 32], posture[b:b + 32]
            pred = estimator.predict(d)
            with torch.inference_mode():
                tallies["learned"].add(net.pressure(d[:, None]), t, p)
            tallies["predicted, pillow auto"].add(model(pred.vertices, pred.joints).grid, t, p)
            tallies["mean map"].add(mean_map.expand_as(t), t, p)
        per_folder.append(f"{path.parent.name} "
                          f"{np.mean(tallies['learned'].mae[before:]):.3f}")
    out = []
    base = float(np.mean(tallies["mean map"].mae))
    for name, tally in tallies.items():
        mae, iou = float(np.mean(tally.mae)), float(np.mean(tally.iou))
        out.append(Row(f"rooms held out, {name}: MAE", round(mae, 4), "kPa",
                       note=f"{100 * mae / base:.0f} % of the mean map's; "
                            f"{len(tally.mae)} frames"))
        out.append(Row(f"rooms held out, {name}: contact IoU", round(iou, 3), ""))
    out[0].note += "; per folder (kPa): " + ", ".join(per_folder)
    return out


def region_peaks(peaks: list[torch.Tensor]) -> str:
    """The true region peaks (kPa) where in contact: mean, 90th percentile, and the share
    of frames above 9.3 kPa (70 mmHg), per region."""
    allp = torch.cat(peaks)
    parts = []
    for r, region in enumerate(REGIONS):
        p = allp[:, r]
        p = p[p > CONTACT_KPA]
        if len(p):
            parts.append(f"{region} {p.mean():.1f}/{p.quantile(0.9):.1f}/"
                         f"{100 * (p > 9.3).float().mean():.0f}%")
    return ("True region peaks where in contact (mean / 90th percentile kPa / share above "
            "9.3 kPa): " + ", ".join(parts))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--train-n", type=int, default=512)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--checkpoint", default="disrt_core/weights/default.safetensors")
    parser.add_argument("--note", default="")
    parser.add_argument("--pressure-weights", default=None)
    parser.add_argument("--rooms", default=None)
    parser.add_argument("--room-n", type=int, default=128)
    args = parser.parse_args(argv)
    from disrt_core.model.pressure_net import DEFAULT_PRESSURE_WEIGHTS, load_pressure_net

    net = load_pressure_net(args.pressure_weights, args.device)[0]
    weights = args.pressure_weights or str(DEFAULT_PRESSURE_WEIGHTS.relative_to(ROOT))
    from disrt_core.infer import Estimator
    from disrt_core.sim import SceneGenerator, SimConfig

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator = Estimator.from_checkpoint(args.checkpoint, device=args.device, seed=0)
    body = estimator.body_model
    gen = SceneGenerator(SimConfig(sensor="kinect2"), body, args.device)
    models = {mode: PressureModel(body, pillow=mode) for mode in PILLOW_MODES}
    settled = PressureModel(body, settle=True)
    exact_model = models["auto"]

    started = time.perf_counter()
    total = torch.zeros(192, 84, dtype=torch.float64)
    for b in range(0, args.train_n, args.batch):
        out = gen.sample(min(args.batch, args.train_n - b), seed=(args.seed + 1) * 100003 + b)
        total += out["pressure"].double().sum(0).cpu()
    mean_map = (total / args.train_n).float()
    print(f"mean map of {args.train_n} frames in {time.perf_counter() - started:.0f} s",
          flush=True)

    tallies = {"mean map": Tally(), "learned": Tally(), "true body, exact": Tally()}
    for source in ("true body", "predicted"):
        for mode in PILLOW_MODES:
            tallies[f"{source}, pillow {mode}"] = Tally()
    tallies["predicted, settled, pillow auto"] = Tally()
    last, peaks = None, []
    for b in range(0, args.n, args.batch):
        out = gen.sample(min(args.batch, args.n - b), seed=args.seed * 100003 + b,
                         with_mesh=True)
        truth, posture = out["pressure"].float(), out["posture"]
        depth = normalize_depth(out["depth"], out["bed_mm"][:, None, None]).float()
        pred = estimator.predict(depth)
        with torch.inference_mode():
            learned = net.pressure(depth[:, None])
        vertex, regions = exact_model.read(pred.vertices, learned)
        exact = exact_model(out["vertices"], out["joints"], stiffness=out["stiffness"],
                            pillow_boxes=out["pillow_boxes"],
                            pillow_squash=out["pillow_squash"],
                            mattress_size=out["mattress_size"])
        tallies["mean map"].add(mean_map.expand_as(truth), truth, posture)
        tallies["learned"].add(learned, truth, posture, regions, exact.regions)
        tallies["learned"].v2v += (vertex - exact.vertex).square().mean(1).tolist()
        tallies["true body, exact"].add(exact.grid, truth, posture, exact.regions,
                                        exact.regions)
        for mode, model in models.items():
            on_truth = model(out["vertices"], out["joints"])
            tallies[f"true body, pillow {mode}"].add(on_truth.grid, truth, posture,
                                                     on_truth.regions, exact.regions)
            on_pred = model(pred.vertices, pred.joints)
            tally = tallies[f"predicted, pillow {mode}"]
            tally.add(on_pred.grid, truth, posture, on_pred.regions, exact.regions)
            tally.v2v += (on_pred.vertex - exact.vertex).square().mean(1).tolist()
        rested = settled(pred.vertices, pred.joints, params=pred.params)
        tally = tallies["predicted, settled, pillow auto"]
        tally.add(rested.grid, truth, posture, rested.regions, exact.regions)
        tally.v2v += (rested.vertex - exact.vertex).square().mean(1).tolist()
        peaks.append(exact.regions[..., 0])
        last, last_depth = pred, depth
        print(f"  {b + len(truth)}/{args.n} frames, {time.perf_counter() - started:.0f} s",
              flush=True)

    result = Result("pressure", machine_info(), command_line())
    baseline = float(np.mean(tallies["mean map"].mae))
    for name, tally in tallies.items():
        _rows(result, name, tally, baseline if name != "mean map" else None,
              goals=name in ("predicted, pillow auto", "learned"))
    result.rows += timing_learned(net, models["auto"], last, last_depth)
    result.rows += timing(models["auto"], last, settled)
    if args.rooms:
        result.rows += rooms(Path(args.rooms), args.room_n, estimator, net, models["auto"],
                             mean_map)
    result.notes.append(
        f"{args.n} held-out frames (seed {args.seed}; bed scene, kinect2, covers 0-2, lying), "
        f"mean map of {args.train_n} frames (seed {args.seed + 1}); {estimator.model_id}, "
        f"checkpoint {args.checkpoint}, 5 DDIM steps, seed 0; learned map {weights}. "
        f"{region_peaks(peaks)}."
        + (f" Machine: {args.note}." if args.note else ""))
    result.notes.append(BODYMAP_NOTE)
    for row in result.rows:
        print(f"{row.metric}: {row.value} {row.unit} {row.note}")
    print("wrote", save(result))


if __name__ == "__main__":
    main()
