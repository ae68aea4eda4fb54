"""``disrt-synth2bag --n-frames N --out BAG``: a simulated night in bed as a rosbag2 bag, with
ground truth, from the synthetic generator (``disrt_core.sim``).

**The night** [choice]: one fixed overhead camera (pose drawn once, as the generator draws
cameras) watches a bed at ``--rate`` (30 Hz): with ``--scene bed`` (default) from above the
mattress, which fills most of the frame (SLP's set-up); with ``--scene room`` a whole room
(floor, walls, furniture, the bed anywhere in the frame at any angle, the camera 1.4-3.2 m
above the mattress, pitched), as a camera mounted in a bedroom sees it: the node has to
find the bed itself (``bed_region: auto``). ``--sensor`` is any of the generator's sensors
at its native size and noise (``disrt_core.sim``). The night is cut into still periods of
random length (exponential, mean ``--mean-still`` seconds, at least half a second); at each
cut the sleeper may turn to another posture (supine, left, right, now and then prone) and
the blanket may come on or go off (a night uses either the thin sheet or the blanket).
``--people K`` splits the night into K occupants, one after the other.

**A scene** comes from the generator's sequence API: ``SceneGenerator.sample`` with the
night's seed and given body parameters draws the same bed, camera and blanket every time,
so the whole night is one room seen by one camera. A person's body in a posture is drawn
(and settled) by the generator with the person's own seed and the posture forced; the
generator draws the body shape before the pose, so a person keeps one shape in every
posture (and has one pose per posture). Scenes are rendered without noise and every frame
gets fresh sensor noise (``sim.noise.apply_sensor_noise``), so a still sleeper's frames
differ the way a real camera's do.

Written in :mod:`disrt_ros.bags`' layout: raw depth (16UC1 mm, the sensor's raw size and
intrinsics), CameraInfo, ground-truth joints (MarkerArray, camera frame) and the
:class:`~disrt_ros.bags.GroundTruth` JSON (joints in the bed frame, body-model parameters
with the generator's ``model_id``, posture, cover, the camera pose ``T_cam_bed``;
``subject`` = occupant, ``pose`` = still period, both 1-based; ``extra``: the sensor, the
scene, ``bed_in_view`` (the whole mattress in the frame), the frame index, the person's seed).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from disrt_ros import bag_msgs
from disrt_ros.bags import (
    CAMERA_INFO,
    DEPTH_FRAME_ID,
    DEPTH_INFO_TOPIC,
    DEPTH_TOPIC,
    GT_JOINTS_TOPIC,
    GT_POSE_TOPIC,
    IMAGE,
    MARKER_ARRAY,
    STORAGES,
    STRING,
    BagError,
    BagWriter,
    GroundTruth,
)

COVER_NAMES = ("uncover", "cover1", "cover2")
POSTURE_WEIGHTS = {"supine": 0.4, "left": 0.25, "right": 0.25, "prone": 0.1}
NOISE_BATCH = 16  # frames whose sensor noise is drawn in one call


@dataclass(frozen=True)
class Period:
    """A still period of the night: frames [start, stop), who lies how, under what."""

    start: int
    stop: int
    person: int  # 0-based occupant
    posture: str
    cover: int  # 0 uncover, 1 thin sheet, 2 blanket


def plan_night(n_frames: int, *, rate: float = 30.0, mean_still_s: float = 10.0,
               people: int = 1, seed: int = 0) -> list[Period]:
    """The night's still periods (see the module docstring); deterministic per seed.

    The occupants share the night in equal blocks of frames; each block starts supine and
    is cut into still periods; a night uses one cover (sheet or blanket), on or off."""
    if n_frames < 1:
        raise ValueError(f"--n-frames must be at least 1, got {n_frames}")
    if not 1 <= people <= n_frames:
        raise ValueError(f"--people must be 1..{n_frames}, got {people}")
    rng = np.random.default_rng(seed)
    shortest = max(1, round(rate / 2))
    names, weights = list(POSTURE_WEIGHTS), np.array(list(POSTURE_WEIGHTS.values()))
    covered = int(rng.integers(1, 3))  # this night's cover: 1 sheet or 2 blanket
    cover = covered if rng.random() < 0.5 else 0
    bounds = [round(k * n_frames / people) for k in range(people + 1)]
    periods: list[Period] = []
    for person in range(people):
        t, end, posture = bounds[person], bounds[person + 1], "supine"
        while t < end:
            if t > bounds[person]:  # a change: another posture, maybe the blanket
                others = np.array([p != posture for p in names], float)
                posture = str(rng.choice(names, p=weights * others / (weights * others).sum()))
                if rng.random() < 0.5:
                    cover = covered if cover == 0 else 0
            stop = min(end, t + max(shortest, round(rng.exponential(mean_still_s) * rate)))
            periods.append(Period(t, stop, person, posture, cover))
            t = stop
    return periods


class NightRenderer:
    """The scenes of a night: the generator's sequence API (``SceneGenerator.sample`` with
    ``params=`` and one seed: the same bed, camera and blanket draws in every call),
    rendered without noise; every frame then gets its own sensor noise."""

    def __init__(self, body_model, config=None, device="cpu", *, seed: int = 0) -> None:
        import dataclasses

        import torch

        from disrt_core.sim import SceneGenerator, SimConfig

        config = config or SimConfig()
        self.noise = config.noise
        self.gen = SceneGenerator(dataclasses.replace(config, noise=False), body_model, device)
        self.seed, self.device, self.sensor = seed, self.gen.device, self.gen.sensor
        self._bodies: dict[tuple[int, str], object] = {}
        self._scenes: dict[tuple[int, str, int], dict] = {}
        self._noise = torch.Generator(self.device).manual_seed(seed + 1)
        first = self.scene(0, "supine", 0)
        # the night's camera, and whether it sees the whole bed (every scene shares them)
        self.T, self.K, self.in_view = first["T_cam_bed"], first["K"], first["in_view"]

    def person_seed(self, person: int) -> int:
        return self.seed * 1000 + 17 + person

    def body(self, person: int, posture: str):
        """Parameters [1,P] of a person lying in a posture: drawn (and settled) by the
        generator with the person's seed, which draws the body shape before the pose, so a
        person keeps one shape in every posture."""
        import torch

        from disrt_core.posture import POSTURES

        key = (person, posture)
        if key not in self._bodies:
            forced = torch.tensor([POSTURES.index(posture)], device=self.device)
            self._bodies[key] = self.gen.sample(1, self.person_seed(person),
                                                posture=forced)["params"]
        return self._bodies[key]

    def scene(self, person: int, posture: str, cover: int) -> dict:
        """Clean raw depth [1,H,W] (mm) of the night's camera and the scene's labels."""
        from disrt_core.posture import POSTURES

        key = (person, posture, cover)
        if key not in self._scenes:
            out = self.gen.sample(1, self.seed, params=self.body(person, posture), cover=cover,
                                  with_raw=True)
            self._scenes[key] = {
                "depth": out["depth_raw"], "T_cam_bed": out["T_cam_bed"], "K": out["K"],
                "params": out["params"][0].double().cpu().numpy(),
                "in_view": bool(out["in_view"][0]),
                "joints": out["joints"][0].double().cpu().numpy(),
                "posture": POSTURES[int(out["posture"][0])]}
        return self._scenes[key]

    def noisy(self, depth_mm, count: int) -> np.ndarray:
        """``count`` raw frames (uint16 mm) of one clean frame (mm), fresh noise each."""
        from disrt_core.sim.noise import apply_sensor_noise

        batch = depth_mm.expand(count, *depth_mm.shape[1:]) / 1000.0
        raw = apply_sensor_noise(batch, self.K.expand(count, 3, 3), self.sensor, self._noise,
                                 self.noise)
        return raw.round().clamp(0, 65535).cpu().numpy().astype(np.uint16)


def write_night(out: str | Path, renderer: NightRenderer, periods: list[Period], *,
                rate: float = 30.0, start_ns: int | None = None, storage: str = "mcap",
                overwrite: bool = False, progress: bool = False) -> int:
    """Write the night to the bag ``out``; returns the number of frames."""
    from tqdm import tqdm

    if not rate > 0:
        raise BagError(f"--rate must be > 0, got {rate}")
    start_ns = time.time_ns() if start_ns is None else int(start_ns)
    K = renderer.K[0].double().cpu().numpy()
    rows, cols = renderer.sensor.size
    model_id = renderer.gen.body.model_id
    total = periods[-1].stop
    bar = tqdm(total=total, unit="frame", disable=not progress, desc="synth2bag")
    with BagWriter(out, storage=storage, overwrite=overwrite) as bag:
        for topic, msgtype in ((DEPTH_TOPIC, IMAGE), (DEPTH_INFO_TOPIC, CAMERA_INFO),
                               (GT_JOINTS_TOPIC, MARKER_ARRAY), (GT_POSE_TOPIC, STRING)):
            bag.add_topic(topic, msgtype)
        for number, period in enumerate(periods, 1):
            scene = renderer.scene(period.person, period.posture, period.cover)
            T = scene["T_cam_bed"][0].double().cpu().numpy()  # the night's camera
            joints_cam = scene["joints"] @ T[:3, :3].T + T[:3, 3]
            for first in range(period.start, period.stop, NOISE_BATCH):
                count = min(NOISE_BATCH, period.stop - first)
                for k, raw in enumerate(renderer.noisy(scene["depth"], count)):
                    frame = first + k
                    stamp = start_ns + round(frame * 1e9 / rate)
                    gt = GroundTruth(
                        stamp_ns=stamp, joints_bed_m=scene["joints"],
                        cover=COVER_NAMES[period.cover], source="synthetic",
                        joints_camera_m=joints_cam, T_cam_bed=T,
                        bed_distance_mm=float(renderer.gen.config.bed_mm),
                        posture=scene["posture"], subject=period.person + 1, pose=number,
                        sample_id=f"synth/seed{renderer.seed}/person{period.person + 1}/"
                                  f"period{number:04d}/frame{frame:07d}",
                        body_model=model_id, body_params=scene["params"],
                        extra={"sensor": renderer.sensor.name, "frame": frame,
                               "scene": renderer.gen.config.scene,
                               "bed_in_view": scene["in_view"],
                               "person_seed": renderer.person_seed(period.person)})
                    bag.write(DEPTH_INFO_TOPIC, stamp,
                              bag_msgs.camera_info(K, cols, rows, stamp, DEPTH_FRAME_ID))
                    bag.write(DEPTH_TOPIC, stamp,
                              bag_msgs.depth_image(raw, stamp, DEPTH_FRAME_ID))
                    bag.write(GT_JOINTS_TOPIC, stamp,
                              bag_msgs.joint_markers(joints_cam, stamp, DEPTH_FRAME_ID))
                    bag.write(GT_POSE_TOPIC, stamp, bag_msgs.ground_truth_msg(gt))
                bar.update(count)
    bar.close()
    return total


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="disrt-synth2bag", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    parser.add_argument("--n-frames", type=int, required=True, help="frames in the night")
    parser.add_argument("--out", "-o", type=Path, required=True, help="bag to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=float, default=30.0, help="frames per second (30)")
    parser.add_argument("--mean-still", type=float, default=10.0,
                        help="mean seconds between posture/blanket changes (default 10)")
    parser.add_argument("--people", type=int, default=1, help="occupants, one after the other")
    parser.add_argument("--scene", default="bed", choices=("bed", "room"),
                        help="bed: the mattress fills the view (SLP's set-up); room: a whole "
                             "room with the bed somewhere in it (module docstring)")
    parser.add_argument("--sensor", default="kinect2",
                        help="kinect2, d435 (848x480), d435_640x480, d435_424x240, "
                             "d435_1280x720, d455_640x360, azure_nfov or l515")
    parser.add_argument("--body-model", default="auto", choices=("auto", "anny", "smpl"))
    parser.add_argument("--smpl-dir", default=None, help="folder of the SMPL .pkl files")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--no-noise", action="store_true", help="clean depth (no sensor noise)")
    parser.add_argument("--storage", choices=STORAGES, default="mcap")
    parser.add_argument("--start", type=float, default=None,
                        help="stamp of the first frame, s since the epoch (default: now)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bag")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from disrt_core.body import BodyModelFallbackWarning, load_body_model
        from disrt_core.sim import SimConfig

        periods = plan_night(args.n_frames, rate=args.rate, mean_still_s=args.mean_still,
                             people=args.people, seed=args.seed)
        config = SimConfig(scene=args.scene, sensor=args.sensor, noise=not args.no_noise)
        with warnings.catch_warnings():
            if args.quiet:
                warnings.simplefilter("ignore", BodyModelFallbackWarning)
            body = load_body_model(args.body_model, args.smpl_dir, device=args.device)
        renderer = NightRenderer(body, config, args.device, seed=args.seed)
        start = None if args.start is None else round(args.start * 1e9)
        frames = write_night(args.out, renderer, periods, rate=args.rate, start_ns=start,
                             storage=args.storage, overwrite=args.overwrite,
                             progress=not args.quiet)
    except (BagError, ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"disrt-synth2bag: error: {err}", file=sys.stderr)
        for note in getattr(err, "__notes__", []):
            print(f"disrt-synth2bag: {note}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"disrt-synth2bag: interrupted; {args.out} was not written", file=sys.stderr)
        return 130
    if not args.quiet:
        changes = len(periods) - 1
        print(f"[disrt-synth2bag] wrote {frames} frames ({frames / args.rate:.0f} s, "
              f"{changes} changes, {args.people} occupant(s)) to {args.out}")
        if not renderer.in_view:
            print("[disrt-synth2bag] the bed is not completely in the camera's view in this "
                  "night: the node will refuse its frames (try another --seed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
