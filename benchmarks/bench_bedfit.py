"""Finding the mattress (issue #19 part 2): accuracy on generated rooms, and the fit's time.

    python benchmarks/bench_bedfit.py --scenes 1000 --sensors all --device cuda
    python benchmarks/bench_bedfit.py --timing-only            # CPU timing at 640x480 only

**Accuracy**: ``--scenes`` room scenes (``SimConfig(scene="room")``: floor, walls, bed base
and boards, furniture above and below the mattress, clutter; ceiling cameras 1.4–3.2 m
over the mattress, pitched up to 30°, the bed anywhere in view at any angle) shared out
over ``--sensors`` (the same rooms, seeds ``--seed`` onward, seen by every sensor); 80 %
with someone in bed, 15 % an empty bed, 5 % someone sitting on its edge; all covers. Each
raw frame goes through ``bedfit_batch.fit_beds`` (``head="auto"``) in batches on
``--device``. Per scene with the whole mattress in view (the generator's ``in_view``):

* **right**: a fit, all four corners within 5 cm of the truth in the head-left, head-right,
  foot-right, foot-left order (so the head end is right too; where the head end is
  unknown the fallback side counts as the answer); the goal is ≥ 98 %;
* **right or refused, partial view**: the same, and a refusal counts as right too where the
  bed is not wholly inside the camera's *valid* area (:func:`partial_view`: a stereo
  camera's blind band at the left border, which the generator's ``in_view`` ignores); such
  refusals are also counted apart (``refused, partial view``); likewise where under half of
  the pixels inside the true mattress outline have a reading (:func:`mattress_unseen`: a
  mattress beyond the sensor's range, such as an Azure Kinect's 3.86 m, reads as nothing),
  counted apart as ``refused, mattress unseen``. Both rates are reported;
* **geometry right**: the same without the order (the head end either way);
* **wrong fits not flagged** (every scene): a fit whose corners are 5 cm or more off in
  either order and that is not marked ``weak`` (goal 0); the wrong fits marked weak, and
  the right ones marked weak, are counted too; and separately a confident
  (``head_known``) wrong head end.
* **right by range**: the share right among the scenes whose farthest true corner is under
  3 m, 3-4 m and 4 m or more from the camera (a camera 2-2.5 m above the middle of a
  mattress sees its corners within 3 m; the generator's pitched mounts reach further).

``--bed-scenes N`` adds N SLP-like bed scenes (``SimConfig(scene="bed")``, Kinect v2 over
the bed, the mattress filling most of the view, as in the SLP recordings), reported apart
from the rooms: right, and confident head-end flips.

**Time** (CPU, B = 1, a 640×480 frame of the D435 at 640×480): median of ``--repeat``
calls with torch on 2 threads and on 1 thread (goal ≤ 50 ms on the 2-core development
CPU); on CUDA also the batched rate. ``--dump DIR`` writes failing frames (npz, two
sensors a file) and the head cues to look at; ``--cache DIR`` keeps the generated scenes to
measure a changed fitter on the same scenes. The bodies are the default model's, Anny
(``--body-model``, rooms and bed scenes alike): real beds hold real-shaped people. A body's
detail does not move the mattress's corners, but it decides the head end (a head-shaped
head, shoulders) and what the fit takes as mattress under a body; ``smpl-fixture`` (SMPL's
sizes, random points around each joint, no head shape) measured the results before
2026-12-05's ``bedfit_support`` re-run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Result, Row, command_line, load_body, machine_info, save, time_call

from disrt_core.geometry.bedfit_batch import fit_beds
from disrt_core.geometry.bedfit_result import REASONS
from disrt_core.geometry.camera import median_depth
from disrt_core.sim import SceneGenerator, SimConfig
from disrt_core.sim.sensors import ALL_SENSORS, get_sensor

TOL_M = 0.05
OCCUPANCY = (0.8, 0.15, 0.05)
# The scenes in view by their farthest true corner's distance from the camera (m): D4xx
# depth noise grows with its square, and the generator's mounts reach 5 m and more.
RANGES = (("under 3 m", 0.0, 3.0), ("3-4 m", 3.0, 4.0), ("4 m or more", 4.0, float("inf")))


def corner_errors(fits, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Largest corner distance [B] in the fit's head order, and in either order."""
    fit = fits.corners.double().cpu()
    truth = truth.double().cpu()
    ordered = (fit - truth).norm(dim=-1).amax(-1)
    flipped = (fit[:, [2, 3, 0, 1]] - truth).norm(dim=-1).amax(-1)
    return ordered, torch.minimum(ordered, flipped)


def partial_view(name: str, raw: torch.Tensor, K: torch.Tensor, truth: torch.Tensor,
                 margin: float = 0.02) -> torch.Tensor:
    """[B] bool: a mattress corner lies in a stereo camera's blind band at the image's left
    border, or within the generator's in-view margin (2 % of the width) of it. The band is
    as wide as the disparity of the nearest surface the camera measures, f·b/z
    (``disrt_core.sim.noise``), here from the nearest reading of the raw frame."""
    spec = get_sensor(name)
    if spec.kind != "stereo":
        return torch.zeros(truth.shape[0], dtype=torch.bool)
    depth = raw.double().cpu() / 1000.0
    near = torch.where(depth >= spec.range_m[0], depth, torch.full_like(depth, 1e9))
    fx = K[:, 0, 0].double().cpu()
    band = torch.ceil(fx * spec.baseline_m / near.flatten(1).amin(1))
    pts = truth.double().cpu()
    u = pts[..., 0] / pts[..., 2].clamp(min=1e-3) * fx[:, None] + K[:, 0, 2].double().cpu()[:, None]
    return (u < (band + margin * raw.shape[-1])[:, None]).any(-1)


def mattress_unseen(raw: torch.Tensor, K: torch.Tensor, truth: torch.Tensor,
                    min_read: float = 0.5) -> torch.Tensor:
    """[B] bool: under ``min_read`` of the pixels inside the true mattress outline (its
    corners projected with K) have a depth reading: the camera does not see the mattress
    (beyond its range, or a cover it cannot measure), so refusing is the right answer."""
    height, width = raw.shape[-2:]
    pts = truth.float().cpu()
    uvw = pts @ K.float().cpu().transpose(1, 2)
    uv = uvw[..., :2] / uvw[..., 2:].clamp(min=1e-3)  # [B,4,2]
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float32),
                          torch.arange(width, dtype=torch.float32), indexing="ij")
    a, edge = uv[:, :, None, None], (uv.roll(-1, dims=1) - uv)[:, :, None, None]
    cross = edge[..., 0] * (v - a[..., 1]) - edge[..., 1] * (u - a[..., 0])  # [B,4,H,W]
    inside = (cross >= 0).all(1) | (cross <= 0).all(1)
    read = (raw.cpu() > 0) & inside
    return read.flatten(1).sum(1) < min_read * inside.flatten(1).sum(1)


KEYS = ("depth_raw", "K", "mattress_corners", "in_view")


def scenes_of(gen, n: int, seed: int, cache: Path | None, noise_seed: int | None = None
              ) -> dict:
    """A batch of room scenes (raw frames and truth), from ``cache`` when it holds them;
    with ``noise_seed``, another frame of the same scenes (new sensor noise)."""
    path = None
    if cache is not None:
        kind = "" if gen.config.scene == "room" else f"{gen.config.scene}_"
        again = "" if noise_seed is None else f"_noise{noise_seed}"
        path = cache / f"{kind}{gen.config.sensor}_{seed}_{n}{again}.pt"
        if path.is_file():
            return torch.load(path)
    sample = gen.sample(n, seed, with_raw=True, noise_seed=noise_seed)
    sample = {k: sample[k] for k in KEYS}
    if path is not None:
        cache.mkdir(parents=True, exist_ok=True)
        torch.save({k: (v.to(torch.int32) if k == "depth_raw" else v).cpu()
                    for k, v in sample.items()}, path)
    return sample


def run_sensor(name: str, scenes: int, batch: int, body, device: str, seed: int,
               dump: Path | None, cache: Path | None = None, scene: str = "room",
               frames: int = 1) -> dict:
    gen = SceneGenerator(SimConfig(scene=scene, sensor=name, occupancy=OCCUPANCY), body,
                         device)
    stats = {"scenes": 0, "in_view": 0, "right": 0, "geometry": 0, "refused": 0,
             "refused_partial": 0, "partial": 0, "refused_unseen": 0, "unseen": 0, "wrong": 0,
             "wrong_weak": 0, "right_weak": 0, "head_confident_wrong": 0,
             "head_unknown": 0, "head_unknown_wrong": 0, "fit_s": 0.0, "reasons": {},
             "errors": [], "range": np.zeros((len(RANGES), 3), np.int64)}
    failures: dict[str, list] = {"depth": [], "K": [], "truth": [], "fit": [], "ok": []}
    cues: list = []  # head cues toward the true head end, of fits right in either order
    for start in range(0, scenes, batch):
        n = min(batch, scenes - start)
        sample = {k: v.to(device) for k, v in scenes_of(gen, n, seed + start, cache).items()}
        raw, K = sample["depth_raw"], sample["K"]
        if frames > 1:  # the node's bed_fit_frames: the per-pixel median of several frames
            more = [scenes_of(gen, n, seed + start, cache, (seed + start) * 100 + k)[
                "depth_raw"] for k in range(1, frames)]
            views = [raw.cpu().numpy()] + [m.cpu().numpy() for m in more]
            raw = torch.from_numpy(np.stack([median_depth([v[i] for v in views])
                                             for i in range(n)])).to(device)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fits = fit_beds(raw, K, head="auto")
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        stats["fit_s"] += time.perf_counter() - t0
        ordered, either = corner_errors(fits, sample["mattress_corners"])
        ok, known, weak = fits.ok.cpu(), fits.head_known.cpu(), fits.weak.cpu()
        view = sample["in_view"].cpu()
        right, geometric = ok & (ordered < TOL_M), ok & (either < TOL_M)
        stats["scenes"] += n
        stats["in_view"] += int(view.sum())
        stats["right"] += int((right & view).sum())
        stats["geometry"] += int((geometric & view).sum())
        stats["refused"] += int((~ok & view).sum())
        partial = partial_view(name, raw, K, sample["mattress_corners"])
        stats["partial"] += int((partial & view).sum())
        stats["refused_partial"] += int((~ok & view & partial).sum())
        unseen = mattress_unseen(raw, K, sample["mattress_corners"]) & ~partial
        stats["unseen"] += int((unseen & view).sum())
        stats["refused_unseen"] += int((~ok & view & unseen).sum())
        stats["wrong"] += int((ok & ~weak & (either >= TOL_M)).sum())
        stats["wrong_weak"] += int((ok & weak & (either >= TOL_M)).sum())
        stats["right_weak"] += int((right & view & weak).sum())
        stats["head_confident_wrong"] += int((geometric & (ordered >= TOL_M)
                                              & known).sum())
        stats["head_unknown"] += int((ok & ~known).sum())
        stats["head_unknown_wrong"] += int((geometric & (ordered >= TOL_M)
                                            & ~known).sum())
        stats["errors"] += either[ok & view].tolist()
        far = sample["mattress_corners"].float().norm(dim=-1).amax(-1).cpu()
        for b, (_, lo, hi) in enumerate(RANGES):  # in view, right, geometry right
            near = view & (far >= lo) & (far < hi)
            stats["range"][b] += [int(near.sum()), int((right & near).sum()),
                                  int((geometric & near).sum())]
        geom = geometric.to(fits.head_cues.device)
        toward = torch.where((ordered < TOL_M).to(geom.device), 1.0, -1.0)
        cues += (fits.head_cues * toward[:, None])[geom].cpu().tolist()
        for r in fits.reason[~ok & view].tolist():
            stats["reasons"][REASONS[r]] = stats["reasons"].get(REASONS[r], 0) + 1
        bad = (view & ~right) | (ok & (either >= TOL_M))
        if dump is not None:
            for i in torch.nonzero(bad)[:, 0].tolist():
                if len(failures["depth"]) < 6:
                    failures["depth"].append(raw[i].cpu().numpy().astype(np.uint16))
                    failures["K"].append(K[i].cpu().numpy())
                    failures["truth"].append(sample["mattress_corners"][i].cpu().numpy())
                    failures["fit"].append(fits.corners[i].cpu().numpy())
                    failures["ok"].append(bool(ok[i]))
    stats["failures"], stats["cues"] = failures, cues
    return stats


def write_dump(dump: Path, per_sensor: dict[str, dict]) -> None:
    """Failing frames, two sensors to a file (npz: ``{sensor}_{key}``), and the head cues of
    the fits right in either order (``cues.npz``, toward the true head end)."""
    dump.mkdir(parents=True, exist_ok=True)
    names = list(per_sensor)
    for g in range(0, len(names), 2):
        arrays = {f"{n}__{k}": np.stack(v) for n in names[g:g + 2]
                  for k, v in per_sensor[n]["failures"].items() if v}
        if arrays:
            np.savez_compressed(dump / f"bedfit_fail_{g // 2}.npz", **arrays)
    np.savez_compressed(dump / "bedfit_cues.npz", **{
        n: np.asarray(per_sensor[n]["cues"], np.float32).reshape(-1, 3) for n in names})


def cpu_timing(repeat: int, frames: int = 4) -> dict[int, tuple[float, float]]:
    """Median wall and process-CPU ms of one fit of a 640x480 D435 room frame on the CPU
    (``frames`` different rooms), per torch thread count. On a shared machine the CPU time
    of one thread is what a quiet machine's wall time would be."""
    body = load_body("smpl-fixture", "cpu")
    with torch.no_grad():
        sample = SceneGenerator(SimConfig(scene="room", sensor="d435_640x480"), body,
                                "cpu").sample(frames, 7, with_raw=True)
    out = {}
    before = torch.get_num_threads()
    for threads in (2, 1):
        torch.set_num_threads(threads)
        wall, cpu = [], []
        for i in range(frames):
            raw, K = sample["depth_raw"][i:i + 1], sample["K"][i:i + 1]
            time_call(lambda r=raw, k=K: fit_beds(r, k), warmup=3, repeat=1)
            for _ in range(repeat):
                c0, w0 = time.process_time(), time.perf_counter()
                fit_beds(raw, K)
                cpu.append(time.process_time() - c0)
                wall.append(time.perf_counter() - w0)
        out[threads] = (statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3)
    torch.set_num_threads(before)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=1000, help="room scenes in all")
    parser.add_argument("--sensors", default="all", help="comma list, or all")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=8, help="scenes generated at once")
    parser.add_argument("--seed", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=30, help="timed CPU calls")
    parser.add_argument("--body-model", default="anny", choices=("anny", "smpl-fixture"),
                        help="the bodies of the scenes (not of --timing-only)")
    parser.add_argument("--timing-only", action="store_true", help="only the CPU timing")
    parser.add_argument("--no-timing", action="store_true", help="skip the CPU timing")
    parser.add_argument("--dump", type=Path, help="write failing frames here (npz)")
    parser.add_argument("--cache", type=Path, help="keep the generated scenes here and "
                                                    "use them again (same sensors, seed)")
    parser.add_argument("--bed-scenes", type=int, default=0,
                        help="also this many SLP-like bed scenes (Kinect v2 over the bed, "
                             "the mattress filling most of the view), reported apart")
    parser.add_argument("--frames", type=int, default=1,
                        help="fit the per-pixel median of this many frames of each scene "
                             "(new sensor noise each), as the node's bed_fit_frames")
    parser.add_argument("--tag", default="", help="suffix of the result's name")
    parser.add_argument("--note", default="", help="machine conditions, stored with it")
    args = parser.parse_args(argv)
    sensors = list(ALL_SENSORS) if args.sensors == "all" else args.sensors.split(",")
    result = Result(f"bedfit{'_' + args.tag if args.tag else ''}", machine_info(),
                    command_line())
    if args.note:
        result.notes.append(args.note)
    if not args.timing_only:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            body = load_body(args.body_model, args.device)
        per = max(1, args.scenes // len(sensors))
        total = {"scenes": 0, "in_view": 0, "right": 0, "geometry": 0, "refused": 0,
                 "refused_partial": 0, "partial": 0, "refused_unseen": 0, "unseen": 0,
                 "wrong": 0, "wrong_weak": 0, "right_weak": 0, "head_confident_wrong": 0,
                 "head_unknown": 0, "head_unknown_wrong": 0, "fit_s": 0.0}
        errors, per_sensor = [], {}
        by_range = np.zeros((len(RANGES), 3), np.int64)
        for name in sensors:
            with torch.no_grad():
                s = run_sensor(name, per, min(args.batch, per), body, args.device,
                               args.seed, args.dump, args.cache, frames=args.frames)
            per_sensor[name] = s
            for key in total:
                total[key] += s[key]
            errors += s["errors"]
            by_range += s["range"]
            share = 100 * s["right"] / max(1, s["in_view"])
            result.rows.append(Row(f"right (corners < 5 cm, head right), {name}",
                                   round(share, 1), "%",
                                   note=f"{s['right']}/{s['in_view']} in view; geometry "
                                        f"right {s['geometry']}, refused {s['refused']} "
                                        f"({s['refused_partial']} of them partial view, "
                                        f"{s['refused_unseen']} mattress unseen), "
                                        f"wrong unflagged {s['wrong']}, wrong flagged weak "
                                        f"{s['wrong_weak']}, confident head wrong "
                                        f"{s['head_confident_wrong']}, head unknown with "
                                        f"the wrong fallback {s['head_unknown_wrong']}"))
            excused = s["refused_partial"] + s["refused_unseen"]
            share_p = 100 * (s["right"] + excused) / max(1, s["in_view"])
            result.rows.append(Row(f"right or refused partial view or unseen, {name}",
                                   round(share_p, 1), "%",
                                   note=f"{s['partial']} beds partly in the blind band, "
                                        f"{s['unseen']} mattresses mostly unread"))
            print(f"{name:16s} right {s['right']}/{s['in_view']} ({share:.1f} %; with "
                  f"partial-view/unseen refusals {share_p:.1f} %), geometry {s['geometry']}, "
                  f"refused {s['refused']} ({s['refused_partial']} partial view, "
                  f"{s['refused_unseen']} unseen) {s['reasons']}, wrong "
                  f"{s['wrong']} (+{s['wrong_weak']} flagged weak), right flagged weak "
                  f"{s['right_weak']}, confident head wrong {s['head_confident_wrong']}, "
                  f"unknown head wrong fallback {s['head_unknown_wrong']}, "
                  f"{1e3 * s['fit_s'] / max(1, s['scenes']):.2f} ms/frame", flush=True)
        share = 100 * total["right"] / max(1, total["in_view"])
        excused_all = total["refused_partial"] + total["refused_unseen"]
        result.rows += [
            Row("right (corners < 5 cm, head end right), all sensors", round(share, 2), "%",
                "≥ 98 %", share >= 98.0,
                note=f"{total['right']}/{total['in_view']} scenes in view of "
                     f"{total['scenes']}; {len(sensors)} sensors"),
            Row("right or refused partial view or unseen (a refused bed partly in a stereo "
                "camera's blind band, or with under half of the mattress read, counts as "
                "right), all sensors", round(100 * (
                    total["right"] + excused_all) / max(1, total["in_view"]), 2),
                "%", note=f"{total['right'] + excused_all}/{total['in_view']}; "
                          f"{total['partial']} beds partly in the blind band, "
                          f"{total['unseen']} mattresses mostly unread"),
            Row("geometry right (corners < 5 cm, either end), all sensors",
                round(100 * total["geometry"] / max(1, total["in_view"]), 2), "%"),
            Row("refused (no bed found) though in view", round(
                100 * total["refused"] / max(1, total["in_view"]), 2), "%"),
            Row("refused, partial view (of the refusals above)", total["refused_partial"],
                "scenes"),
            Row("refused, mattress unseen (of the refusals above)", total["refused_unseen"],
                "scenes"),
            Row("wrong fits not flagged (corners ≥ 5 cm off, either end)", total["wrong"],
                "fits", "0", total["wrong"] == 0, note=f"of {total['scenes']} scenes"),
            Row("wrong fits flagged weak", total["wrong_weak"], "fits"),
            Row("right fits flagged weak", round(100 * total["right_weak"] / max(
                1, total["right"]), 1), "% of right",
                note=f"{total['right_weak']}/{total['right']}"),
            Row("confident head end wrong (head_known)", total["head_confident_wrong"],
                "fits"),
            Row("head end unknown (no cue)", round(100 * total["head_unknown"] / max(
                1, total["scenes"]), 1), "%"),
            Row("head end unknown, fallback side wrong (geometry right)",
                total["head_unknown_wrong"], "fits"),
            Row("corner error of the fits in view, median / p95",
                round(1e3 * float(np.median(errors)), 1) if errors else 0.0, "mm",
                note=f"p95 {1e3 * float(np.percentile(errors, 95)):.1f} mm" if errors
                else ""),
            Row(f"fit_beds batched on {args.device}", round(1e3 * total["fit_s"] / max(
                1, total["scenes"]), 3), "ms/frame", note=f"batches of {args.batch}"),
        ]
        for (span, _, _), (seen, right, geometry) in zip(RANGES, by_range.tolist()):
            result.rows.append(Row(f"right, farthest corner {span} from the camera",
                                   round(100 * right / max(1, seen), 1), "%",
                                   note=f"{right}/{seen}; geometry right {geometry}"))
            print(f"farthest corner {span}: right {right}/{seen}, geometry {geometry}")
        print(f"all: right {share:.2f} % (with partial-view/unseen refusals "
              f"{100 * (total['right'] + excused_all) / max(1, total['in_view']):.2f}"
              f" %), refused {total['refused']} ({total['refused_partial']} partial view, "
              f"{total['refused_unseen']} unseen), "
              f"confident head wrong {total['head_confident_wrong']}, unknown head wrong "
              f"fallback {total['head_unknown_wrong']}, wrong unflagged {total['wrong']}, "
              f"wrong flagged weak {total['wrong_weak']}, right flagged weak {total['right_weak']}")
        if args.bed_scenes > 0:
            with torch.no_grad():
                s = run_sensor("kinect2", args.bed_scenes, min(args.batch, args.bed_scenes),
                               body, args.device, args.seed, None, args.cache, scene="bed",
                               frames=args.frames)
            result.rows += [
                Row("SLP-like bed scenes (kinect2): right (corners < 5 cm, head end right)",
                    round(100 * s["right"] / max(1, s["in_view"]), 1), "%",
                    note=f"{s['right']}/{s['in_view']}; refused {s['refused']}, wrong "
                         f"unflagged {s['wrong']}, wrong flagged weak {s['wrong_weak']}"),
                Row("SLP-like bed scenes (kinect2): head end confidently wrong",
                    s["head_confident_wrong"], "fits",
                    note=f"head unknown with the wrong fallback {s['head_unknown_wrong']}")]
            print(f"SLP-like bed scenes: right {s['right']}/{s['in_view']}, refused "
                  f"{s['refused']}, wrong {s['wrong']} (+{s['wrong_weak']} weak), confident "
                  f"head wrong {s['head_confident_wrong']}, unknown head wrong fallback "
                  f"{s['head_unknown_wrong']}")
        if args.dump is not None:
            write_dump(args.dump, per_sensor)
    if not args.no_timing:
        load = os.getloadavg()[0]
        for threads, (wall, cpu) in cpu_timing(args.repeat).items():
            result.rows.append(Row(f"fit_bed 640x480, B=1, cpu, {threads} thread(s): wall",
                                   round(wall, 2), "ms", "≤ 50 ms (2-core CPU)", wall <= 50.0,
                                   note=f"process CPU time {cpu:.1f} ms; 1-min load "
                                        f"{load:.1f}"))
            print(f"CPU B=1 640x480, {threads} thread(s): wall {wall:.1f} ms, process CPU "
                  f"{cpu:.1f} ms (load {load:.1f})")
    print(f"wrote {save(result)}")


if __name__ == "__main__":
    main()
