"""Data path speed: SLP preprocessing, bed fitting, readers, the mixing pipeline, augmentation.

    python benchmarks/bench_data.py [--device cpu|cuda] [--workers 0 2] [--repeat 10]
                                    [--threads N]

Datasets are the miniature fixtures (disrt_core.data.fixtures) and generated shards, made
in a temporary folder: reader figures are per-sample costs, not disk throughput of the
real sets. The trainer's goal (SPEC §11: 757 samples/s at batch 32 on an H100) sets the
pipeline's goal; bed fitting runs on the node's inference thread every refit period.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Result, Row, command_line, machine_info, save, time_call

from disrt_core.data import shards
from disrt_core.data.augment import AugmentConfig, Augmenter
from disrt_core.data.bodypressure import BodyPressureSD
from disrt_core.data.dataset import make_loader
from disrt_core.data.fixtures import (
    render_boxes,
    write_bodypressure_fixture,
    write_slp_fixture,
)
from disrt_core.data.slp import SLPDataset
from disrt_core.data.synthetic import SyntheticShards
from disrt_core.geometry import bedframe as bf
from disrt_core.geometry.bedfit import bed_change, bed_from_corners, fit_bed
from disrt_core.geometry.camera import overhead_camera_pose
from disrt_core.geometry.lens import undistortion
from disrt_core.geometry.slp import (
    KINECT_DEPTH_K,
    slp_homography,
    slp_raw_to_network,
    slp_raw_to_network_torch,
)

TRAIN_RATE = 757.0  # samples/s the paper network trains at on an H100 (SPEC §11)


def ms(times: list[float]) -> float:
    return round(statistics.median(times) * 1e3, 3)


def bed_scene(K, shape, height: float = 2.3):
    """A mattress, a floor 0.55 m below it and a body-sized block on it, seen from ``height``
    m above the mattress (rendered boxes, 2 mm noise): uint16 mm [H,W] and T_cam_bed."""
    cx, cy = bf.BED_CENTRE_LABEL
    T = overhead_camera_pose(height, (cx + 0.1, cy), tilt_rad=(0.1, -0.08),
                             yaw_rad=0.1).double().numpy()
    boxes = [((cx - 0.45, cx + 0.45), (cy - 1.0, cy + 1.0), (-0.5, 0.0)),
             ((-3, 4), (-3, 5), (-0.6, -0.55)),
             ((cx - 0.2, cx + 0.15), (cy - 0.8, cy + 0.7), (0.0, 0.22))]
    depth = render_boxes(K, T, boxes, shape)
    noisy = depth + np.random.default_rng(0).normal(scale=2.0, size=shape) * (depth > 0)
    return np.round(noisy).astype(np.uint16), T


def bench_geometry(result: Result, device: str, repeat: int) -> None:
    realsense_k = np.array([[425.0, 0, 318.0], [0, 425.0, 242.0], [0, 0, 1]])
    # [why] the D435's 480 rows see the 2 m mattress whole from 2.8 m, not from 2.3 m (the
    # automatic fit rightly refuses a mattress cut by the image border)
    for name, K, shape, height in (("Kinect 512x424", KINECT_DEPTH_K, (512, 424), 2.3),
                                   ("D435 480x640", realsense_k, (480, 640), 2.8)):
        depth, _ = bed_scene(K, shape, height)
        fit = fit_bed(depth, K)
        corners = (fit.corners @ K.T)[:, :2] / fit.corners[:, 2:3]
        for label, fn, goal in (
            ("fit_bed (automatic)", lambda d=depth, k=K: fit_bed(d, k), 50.0),
            ("bed_from_corners", lambda d=depth, k=K, c=corners: bed_from_corners(d, k, c), 50.0),
            ("bed_change (plane only)", lambda d=depth, k=K, f=fit: bed_change(f, d, k), 50.0),
        ):
            t = ms(time_call(fn, warmup=1, repeat=repeat))
            result.rows.append(Row(f"{label}, {name}, cpu", t, "ms", f"<= {goal:g} ms",
                                   t <= goal))
            print(f"{label:26s} {name}: {t:8.2f} ms")
    # a raw (distorted) frame onto the pinhole, on the node's frame path (geometry.lens)
    for name, model, d, (w, h) in (
            ("Azure NFOV 640x576, rational_polynomial", "rational_polynomial",
             [0.52, -2.6, 2e-4, -1e-4, 1.45, 0.38, -2.42, 1.38], (640, 576)),
            ("1280x720, plumb_bob", "plumb_bob", [-0.12, 0.05, 1e-3, -5e-4, -0.01],
             (1280, 720))):
        K = np.array([[0.8 * w, 0, w / 2], [0, 0.8 * w, h / 2], [0, 0, 1]])
        lens = undistortion(K, model, d, (w, h))
        frame = np.random.default_rng(0).uniform(500, 3000, (h, w)).astype(np.float32)
        t = ms(time_call(lambda f=frame, u=lens: u(f), repeat=max(repeat, 50)))
        result.rows.append(Row(f"undistort a depth frame, {name}, cpu", t, "ms",
                               note="once per frame of a raw depth topic with a lens"))
        print(f"undistort {name}: {t:.3f} ms")
    H = slp_homography(overhead_camera_pose(2.101, bf.BED_CENTRE_LABEL).double().numpy())
    raw, _ = bed_scene(KINECT_DEPTH_K, (512, 424))
    t = ms(time_call(lambda: slp_raw_to_network(raw, H), repeat=repeat))
    result.rows.append(Row("SLP raw -> 128x54 (OpenCV + SciPy), 1 frame, cpu", t, "ms"))
    t = ms(time_call(lambda: slp_raw_to_network(raw, H, integer=True, clean=True),
                     repeat=repeat))
    result.rows.append(Row("SLP raw -> 128x54 + BodyPressure clean-up, 1 frame, cpu", t, "ms"))
    cuda = device.startswith("cuda")
    frames = torch.from_numpy(np.stack([raw] * 32).astype(np.int32)).to(device)
    hs = torch.from_numpy(np.stack([H] * 32)).to(device)
    t = ms(time_call(lambda: slp_raw_to_network_torch(frames, hs), repeat=repeat, cuda=cuda))
    result.rows.append(Row(f"SLP raw -> 128x54 (torch), batch 32, {device}", t, "ms",
                           note=f"{t / 32:.3f} ms per frame"))
    print(f"SLP preprocessing: torch batch 32 {t:.2f} ms on {device}")


def write_shards(root: Path, count: int, per_shard: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    entries = []
    for index in range(count):
        n = per_shard
        arrays = {"depth": rng.integers(1500, 2300, (n, 128, 54)).astype(np.uint16),
                  "bed_mm": np.full(n, 2101, np.float32),
                  "params": rng.normal(size=(n, 84)).astype(np.float32),
                  "params_cam": rng.normal(size=(n, 84)).astype(np.float32),
                  "joints": rng.normal(size=(n, 24, 3)).astype(np.float32),
                  "cover": rng.integers(0, 3, n).astype(np.uint8),
                  "posture": rng.integers(0, 4, n).astype(np.uint8),
                  "pressure": rng.random((n, 192, 84)).astype(np.float16),
                  "K": np.tile(np.eye(3, dtype=np.float32), (n, 1, 1)),
                  "T_cam_bed": np.tile(np.eye(4, dtype=np.float32), (n, 1, 1))}
        shards.write_shard(root / shards.shard_name(index), arrays, body_model="anny-0.6",
                           param_dim=84, shard_index=index)
        entries.append({"file": shards.shard_name(index), "count": n})
    shards.write_manifest(root, {"format": "disrt-synth-1", "body_model": "anny-0.6",
                                 "param_layout": {"param_dim": 84}, "shards": entries,
                                 "total": count * per_shard, "complete": True})


def rate(pipeline, epochs: int = 1) -> float:
    start, n = time.perf_counter(), 0
    for epoch in range(epochs):
        for batch in pipeline.epoch(epoch):
            n += len(batch["key"])
    return n / (time.perf_counter() - start)


def bench_readers(result: Result, workers: list[int], tmp: Path) -> None:
    slp_fx = write_slp_fixture(tmp / "data", subjects=(1, 2), poses=tuple(range(1, 10)))
    bp_fx = write_bodypressure_fixture(tmp / "data", files=(("lay", "f", "1to40", 300),
                                                            ("rside", "m", "1to40", 300)),
                                       nan_samples=())
    write_shards(tmp / "synth", 4, 512)
    sources = {
        "SLP cleaned": lambda: SLPDataset(slp_fx.root, [1, 2], poses=slp_fx.poses),
        "SLP raw (+clean-up)": lambda: SLPDataset(slp_fx.root, [1, 2], poses=slp_fx.poses,
                                                  depth="raw", clean=True, labels=False),
        "BodyPressureSD (pickles)": lambda: BodyPressureSD(bp_fx.root, bp_fx.stems,
                                                           cache=False),
        "BodyPressureSD (cached)": lambda: BodyPressureSD(bp_fx.root, bp_fx.stems,
                                                          cache=tmp / "bpcache"),
        "own shards": lambda: SyntheticShards(tmp / "synth"),
    }
    for name, make in sources.items():
        batch = 8 if name.startswith("SLP") else 32  # the SLP fixture has 54 samples
        for w in workers:
            pipe = make_loader([make()], batch_size=batch, num_workers=w, seed=0)
            samples_s = rate(pipe, epochs=3)
            result.rows.append(Row(f"{name} -> batches of {batch}, {w} workers",
                                   round(samples_s, 1), "samples/s",
                                   note="includes starting the workers each epoch"
                                   if w else ""))
            print(f"{name:22s} {w} workers: {samples_s:8.1f} samples/s")
    for w in workers:
        pipe = make_loader({"bp": BodyPressureSD(bp_fx.root, bp_fx.stems, cache=tmp / "bpcache"),
                            "slp": SLPDataset(slp_fx.root, [1, 2], poses=slp_fx.poses)},
                           batch_size=32, weights={"bp": 9, "slp": 1}, num_workers=w,
                           samples_per_epoch=1600, seed=0)
        samples_s = rate(pipe)
        result.rows.append(Row(f"mixed BodyPressureSD:SLP 9:1, {w} workers",
                               round(samples_s, 1), "samples/s",
                               f">= {TRAIN_RATE:g} on the GPU machine (8+ workers)"))
        print(f"mixed 9:1 {w} workers: {samples_s:8.1f} samples/s")


def bench_augment(result: Result, device: str, repeat: int) -> None:
    cuda = device.startswith("cuda")
    for out_size in (None, (256, 256)):
        augment = Augmenter(AugmentConfig(out_size=out_size))
        batch = {"depth": torch.rand(32, 1, 128, 54, device=device),
                 "params": torch.zeros(32, 88, device=device), "seed": 0}
        batch["params"][:, 13:16] = 1.0
        t = ms(time_call(lambda a=augment, b=batch: a(b, seed=1), repeat=repeat, cuda=cuda))
        size = "x".join(map(str, out_size or (128, 54)))
        result.rows.append(Row(f"augment batch 32 -> {size}, {device}", t, "ms",
                               note=f"{32 / t * 1e3:.0f} samples/s"))
        print(f"augment batch 32 -> {size} on {device}: {t:.2f} ms")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's); 1 on a busy machine")
    parser.add_argument("--note", default="", help="machine conditions, stored with the result")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = Result("data", machine_info(), command_line())
    with tempfile.TemporaryDirectory() as tmp:
        bench_geometry(result, args.device, args.repeat)
        bench_augment(result, args.device, args.repeat)
        bench_readers(result, args.workers, Path(tmp))
    result.notes.append("Miniature fixture datasets in a temporary folder (page cache warm): "
                        "per-sample CPU cost, not the disk throughput of the real sets; worker "
                        "rows include forking the workers each epoch.")
    if args.note:
        result.notes.append(args.note)
    print("wrote", save(result))


if __name__ == "__main__":
    main()
