"""``disrt-generate``: write a synthetic in-bed depth dataset as shards, or a preview sheet.

    disrt-generate --n 100000 --out data/synth --device cuda --seed 0 \\
        [--body-model anny|smpl|auto] [--sensor kinect2|d435|d455_640x360|...] [--covers 0,1,2]
    disrt-generate --scene room --sensor d455_640x360 --n 20000 --out data/rooms_d455 \\
        [--bed-pose fit|true] [--occupancy 1,1,1]
    disrt-generate --domain target --n 1000 --out data/target --device cuda --seed 1001
    disrt-generate --preview out.png [--preview-n 6]

``--scene room`` renders whole rooms around the bed (:mod:`disrt_core.sim.room`: floor,
walls, furniture, a ceiling camera anywhere above the bed), and by default makes the network
image with the bed found on each raw frame as the node finds it (``--bed-pose fit``).
``--domain target`` makes the "pseudo-real" target domain of :mod:`disrt_core.sim.target`
(its own cameras, clutter, simulated blankets and bodies; its manifest says
``"domain": "target"``).

Shard ``i`` holds samples ``i·shard_size ...`` and is generated from its own seed
(:func:`shard_seed`, from ``--seed`` and ``i``), so any shard can be made again on its own
and an interrupted run resumes where it stopped: shards already complete on disk (their
header's sample count matches) are skipped. The random streams differ between CPU and CUDA,
so the device type is part of the settings, and a folder is only resumed with the same
settings. Format: :mod:`disrt_core.data.shards` (``manifest.json`` + safetensors shards).

On the CPU every worker process runs torch on one thread (``--workers``, default one per
core): independent processes scale on a shared machine where torch's own threads spin and
wait, and one thread makes the results independent of the worker count. The manifest lists
the shards finished so far (in index order), so a reader can start before the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import sys
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np
import torch

from disrt_core.data import shards
from disrt_core.sim.generator import (
    GENERATOR_VERSION,
    SCENES,
    SceneGenerator,
    SimConfig,
    to_shard_arrays,
)
from disrt_core.sim.scene import PILLOW_PROB
from disrt_core.sim.sensors import SENSORS
from disrt_core.threads import cpu_threads

#: SimConfig's clutter shares (generator 1.3 and 1.4; flags --pillow-stack-prob,
#: --throw-prob, --prop-prob, --rumple-prob) and what each is a share of.
EXTRAS = {"pillow_stack_prob": "head pillows that are two stacked",
          "throw_prob": "beds with a second blanket thrown over the first",
          "prop_prob": "bodies with a wedge or bolster against them",
          "rumple_prob": "main covers that are rumpled: stiffer, tauter, gathered"}


def shard_seed(seed: int, index: int) -> int:
    """The seed of shard ``index`` of a run with ``seed`` (independent streams per shard)."""
    state = np.random.SeedSequence([int(seed), int(index)]).generate_state(1, dtype=np.uint64)
    return int(state[0] % (2**63 - 1))


def generate_shard(generator: SceneGenerator, seed: int, index: int, count: int,
                   batch_size: int, store_raw: bool = False, progress=None) -> dict:
    """The arrays of one shard (``count`` samples in batches of ``batch_size``)."""
    gen = torch.Generator(generator.device).manual_seed(shard_seed(seed, index))
    parts = []
    for start in range(0, count, batch_size):
        batch = generator.sample(min(batch_size, count - start), gen, with_raw=store_raw)
        parts.append(to_shard_arrays(batch))
        if progress is not None:
            progress.update(min(batch_size, count - start))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


class _QueueProgress:
    def __init__(self, q) -> None:
        self.q = q

    def update(self, n: int) -> None:
        self.q.put(n)


_WORKER: dict = {}


def _worker_init(args: argparse.Namespace, progress) -> None:
    torch.set_num_threads(1)
    _WORKER["generator"] = _make_generator(args)
    _WORKER["progress"] = _QueueProgress(progress)


def _worker_shard(out: str, seed: int, index: int, count: int, batch_size: int,
                  store_raw: bool) -> int:
    generator = _WORKER["generator"]
    arrays = generate_shard(generator, seed, index, count, batch_size, store_raw,
                            _WORKER["progress"])
    shards.write_shard(Path(out) / shards.shard_name(index), arrays,
                       body_model=generator.body.model_id,
                       param_dim=generator.layout.param_dim, shard_index=index)
    return index


def run(args: argparse.Namespace, generator: SceneGenerator) -> dict:
    """Generate (or finish) the dataset in ``args.out``; returns the manifest."""
    from tqdm import tqdm

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {
        "n": args.n, "seed": args.seed, "shard_size": args.shard_size,
        "batch_size": args.batch_size, "store_raw": args.store_raw,
        "device_type": generator.device.type,
        "cpu_threads_per_worker": 1 if generator.device.type == "cpu" else None,
        "config": generator.config.to_dict(),
    }
    domain = getattr(generator, "domain", "source")
    if domain != "source":  # source manifests keep their settings (resumable as before)
        settings["domain"] = domain
    manifest = {
        "format": shards.FORMAT,
        "generator_version": getattr(generator, "version", GENERATOR_VERSION),
        "body_model": generator.body.model_id, "param_layout": generator.layout.to_dict(),
        "settings": settings, "shards": [], "total": 0, "complete": False,
    }
    if (out / shards.MANIFEST).exists():
        old = shards.read_manifest(out)
        same = {k: old.get(k) for k in ("generator_version", "body_model", "settings")}
        new = {k: manifest[k] for k in same}
        if _jsonable(same) != _jsonable(new):
            raise SystemExit(
                f"{out} holds a dataset made with other settings or another generator / body "
                f"model:\n  there: {same}\n  now:   {new}\nuse another --out folder (or "
                "delete this one) instead of mixing them")
    n_shards = (args.n + args.shard_size - 1) // args.shard_size
    counts = [min(args.shard_size, args.n - i * args.shard_size) for i in range(n_shards)]
    done = [_complete(out / shards.shard_name(i), c) for i, c in enumerate(counts)]
    bar = tqdm(total=args.n, initial=sum(c for c, d in zip(counts, done) if d), unit="sample",
               dynamic_ncols=True, disable=args.quiet)

    def record() -> None:
        manifest["shards"] = [{"file": shards.shard_name(j), "count": counts[j]}
                              for j in range(n_shards) if done[j]]
        manifest["total"] = sum(e["count"] for e in manifest["shards"])
        manifest["complete"] = all(done)
        shards.write_manifest(out, manifest)

    todo = [i for i in range(n_shards) if not done[i]]
    workers = min(args.workers, len(todo)) if generator.device.type == "cpu" else 1
    if workers <= 1:
        with cpu_threads(generator.device):
            for i in todo:
                arrays = generate_shard(generator, args.seed, i, counts[i], args.batch_size,
                                        args.store_raw, bar)
                shards.write_shard(out / shards.shard_name(i), arrays,
                                   body_model=generator.body.model_id,
                                   param_dim=generator.layout.param_dim, shard_index=i)
                done[i] = True
                record()
    else:
        _run_workers(args, out, todo, counts, done, bar, record, workers)
    record()
    bar.close()
    return manifest


def _run_workers(args, out, todo, counts, done, bar, record, workers) -> None:
    """Shards in ``workers`` single-threaded processes; progress through a queue."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        progress = manager.Queue()
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init,
                                 initargs=(args, progress)) as pool:
            pending = {pool.submit(_worker_shard, str(out), args.seed, i, counts[i],
                                   args.batch_size, args.store_raw) for i in todo}
            while pending:
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                with contextlib.suppress(queue.Empty):
                    while True:
                        bar.update(progress.get_nowait())
                for future in finished:
                    done[future.result()] = True
                if finished:
                    record()


def _complete(path: Path, count: int) -> bool:
    if not path.is_file():
        return False
    try:
        return int(shards.read_shard_metadata(path)["count"]) == count
    except (ValueError, KeyError, OSError):
        return False


def _jsonable(value):
    import json

    return json.loads(json.dumps(value))


def _make_generator(args: argparse.Namespace) -> SceneGenerator:
    from disrt_core.body import BodyModelFallbackWarning, load_body_model

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        body = load_body_model(args.body_model, args.smpl_dir, device=args.device)
    for w in caught:  # keep the SMPL -> Anny fallback notice, drop Anny / Warp chatter
        if issubclass(w.category, BodyModelFallbackWarning):
            print(f"[disrt-generate] {w.message}", file=sys.stderr)
    if getattr(args, "domain", "source") == "target":
        from disrt_core.sim.target import TargetConfig, TargetGenerator

        return TargetGenerator(TargetConfig(covers=args.covers, noise=not args.no_noise), body,
                               args.device)
    config = SimConfig(sensor=args.sensor, covers=args.covers, noise=not args.no_noise,
                       pillow_prob=args.pillow_prob, scene=args.scene,
                       **{k: getattr(args, k) for k in EXTRAS if getattr(args, k) is not None},
                       bed_pose=args.bed_pose or ("fit" if args.scene == "room" else "true"),
                       occupancy=args.occupancy)
    return SceneGenerator(config, body, args.device)


def _shares(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 0 or sum(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected three non-negative shares like 1,1,1, got "
                                         f"{text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="disrt-generate", description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000, help="number of samples (default 1000)")
    p.add_argument("--out", type=Path, help="dataset folder (manifest.json + shards)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--body-model", default="auto", choices=("auto", "anny", "smpl"))
    p.add_argument("--smpl-dir", default=None, help="folder of the SMPL .pkl files")
    p.add_argument("--domain", default="source", choices=("source", "target"),
                   help="source: the training simulator (default); target: the pseudo-real "
                        "target domain (disrt_core.sim.target: its own cameras, clutter, "
                        "simulated blankets and bodies)")
    p.add_argument("--sensor", default=None, choices=sorted(SENSORS),
                   help="source domain: the depth camera (default kinect2; see "
                        "disrt_core.sim.sensors)")
    p.add_argument("--scene", default="bed", choices=SCENES,
                   help="source domain: bed (the bed seen from above, as SLP's camera sees "
                        "it; default) or room (a whole room around the bed, seen by a ceiling "
                        "camera anywhere above it)")
    p.add_argument("--bed-pose", default=None, choices=("true", "fit"),
                   help="source domain: make the network image with the true bed pose, or "
                        "with the bed found on the raw frame as the node does (labels in "
                        "that frame); default fit for rooms, true for bed scenes")
    p.add_argument("--occupancy", default="1,0,0", type=_shares,
                   help="source domain: shares of scenes with someone lying in bed, an empty "
                        "bed and someone sitting on its edge (default 1,0,0)")
    p.add_argument("--covers", default="0,1,2",
                   help="cover levels to draw from: 0 uncover, 1 sheet, 2 blanket")
    p.add_argument("--shard-size", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=None,
                   help="samples per generator call (default 64 on CPU, 256 on CUDA)")
    p.add_argument("--store-raw", action="store_true",
                   help="also store the raw sensor frames (large: ~430 kB per sample)")
    p.add_argument("--no-noise", action="store_true", help="clean depth (no sensor noise)")
    p.add_argument("--pillow-prob", type=float, default=None,
                   help=f"source domain: probability of a head pillow (default "
                        f"{PILLOW_PROB})")
    for key, what in EXTRAS.items():
        p.add_argument("--" + key.replace("_", "-"), type=float, default=None,
                       help=f"source domain: share of {what} (default "
                            f"{getattr(SimConfig, key)})")
    p.add_argument("--preview", type=Path, help="write a contact sheet (PNG) to this path")
    p.add_argument("--preview-n", type=int, default=6, help="bodies in the contact sheet")
    p.add_argument("--workers", type=int, default=None,
                   help="CPU only: processes generating shards in parallel, one torch thread "
                        "each (default: one per core)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.out is None and args.preview is None:
        build_parser().error("give --out DIR to generate a dataset and/or --preview FILE.png")
    if args.n < 1 or args.shard_size < 1:
        build_parser().error("--n and --shard-size must be positive")
    try:
        covers = tuple(int(c) for c in args.covers.split(","))
    except ValueError:
        build_parser().error(f"--covers takes comma-separated levels like 0,1,2, got "
                             f"{args.covers!r}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        build_parser().error("--device cuda but torch sees no CUDA device")
    if args.domain == "target" and (args.sensor is not None or args.pillow_prob is not None
                                    or args.scene != "bed" or args.bed_pose is not None
                                    or any(getattr(args, k) is not None for k in EXTRAS)):
        build_parser().error("--sensor, --scene, --bed-pose, --pillow-prob and the shares of "
                             "stacked pillows, throws and props are source-domain options; the "
                             "target domain has its own cameras, pillows and clutter "
                             "(disrt_core.sim.target)")
    args.sensor = args.sensor or "kinect2"
    args.pillow_prob = PILLOW_PROB if args.pillow_prob is None else args.pillow_prob
    args.batch_size = args.batch_size or (256 if args.device.startswith("cuda") else 64)
    args.workers = args.workers or len(os.sched_getaffinity(0))

    args.covers = covers
    start = time.perf_counter()
    generator = _make_generator(args)
    what = "target domain" if args.domain == "target" else \
        f"{args.scene} scenes, sensor {args.sensor}"
    print(f"[disrt-generate] {generator.body.model_id} on {args.device}, {what}, "
          f"covers {covers}; ready in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    if args.preview is not None:
        from disrt_core.sim.preview import write_contact_sheet

        path = write_contact_sheet(args.preview, generator, n=args.preview_n, seed=args.seed,
                                   covers=covers)
        print(f"[disrt-generate] wrote {path}", file=sys.stderr)
    if args.out is not None:
        start = time.perf_counter()
        manifest = run(args, generator)
        elapsed = time.perf_counter() - start
        print(f"[disrt-generate] {manifest['total']} samples in {len(manifest['shards'])} "
              f"shards in {args.out} ({elapsed:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
