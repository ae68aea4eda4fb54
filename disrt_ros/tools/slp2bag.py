"""``disrt-slp2bag``: SLP's raw depth frames, with their ground truth, as a rosbag2 bag.

Reads the SLP layout that ``disrt_core.data.slp`` documents (``<data>/SLP/danaLab/...``,
with BodyMAP's SMPL fits and ``slp_real_cleaned/slp_T_cam_0to102.npy`` for the labels) and
writes, per frame (subject by subject, pose by pose, cover by cover), in the topic layout
of :mod:`disrt_ros.bags`:

- the raw Kinect frame, ``sensor_msgs/Image`` 16UC1 in mm, portrait 512 rows × 424 columns,
  and a ``CameraInfo`` with SLP's Kinect depth intrinsics (SPEC §7.2);
- the ground truth when labels exist (danaLab): joints as a MarkerArray in the camera frame
  and the JSON of :class:`disrt_ros.bags.GroundTruth` with the joints in the bed (label)
  frame, the SMPL parameter vector (x0, 88 numbers), cover, posture, subject/pose ids and,
  for the preprocessing, SLP's ``align_PTr_depth`` homography, the bed pose ``T_cam_bed``
  it implies (``geometry.slp.slp_camera_pose``) and the camera-bed distance. Unlabelled
  frames (simLab, or ``--no-labels``) still get the JSON, without joints.

Frames are stamped ``--start`` + i / ``--rate`` (every message of a frame shares the stamp,
and the bag's log time is that stamp).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
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


def parse_ids(text: str, what: str) -> list[int]:
    """"81-102", "1,3,5-7" -> sorted unique ints."""
    ids: set[int] = set()
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            ids.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{what}: expected numbers and ranges like 81-102 or 1,3,5-7, got {text!r}") from None
    if not ids:
        raise argparse.ArgumentTypeError(f"{what}: empty selection {text!r}")
    return sorted(ids)


@dataclass
class SLPFrame:
    """One SLP frame and its ground truth (``label`` None when unlabelled)."""

    setting: str
    subject: int
    pose: int
    cover: str
    depth: np.ndarray  # uint16 [512, 424] mm
    homography: np.ndarray  # align_PTr_depth [3,3]
    bed_mm: float
    label: np.ndarray | None  # [162] SPEC §1.2


def slp_frames(root: str | Path, subjects, *, covers=("uncover", "cover1", "cover2"),
               poses=range(1, 46), setting: str = "danaLab",
               labels: bool | None = None) -> tuple[int, Iterator[SLPFrame]]:
    """(frame count, iterator of :class:`SLPFrame`) for the selection; ``labels=None``
    reads labels where they exist (danaLab with the BodyMAP fits). Errors about missing
    folders or files come at once, before the iterator starts."""
    from disrt_core.data import bodymap
    from disrt_core.data import slp as slp_data
    from disrt_core.data.source import check_array
    from disrt_core.geometry.slp import SLP_RAW_DEPTH_SHAPE

    root = Path(root)
    if labels is None:
        labels = (setting == "danaLab" and (root / bodymap.FITS_DIR).is_dir()
                  and slp_data.slp_t_cam_path(root).is_file())
    dataset = slp_data.SLPDataset(root, subjects, setting=setting, covers=covers, poses=poses,
                                  depth="raw", labels=labels)
    for s in dataset.subjects:  # every frame file present, before writing anything
        for p in dataset.poses:
            for c in dataset.covers:
                path = slp_data.raw_depth_path(root, setting, s, c, p)
                if not path.is_file():
                    raise FileNotFoundError(f"{path}: raw depth frame not found; "
                                            f"{slp_data.SLP_HINT}")

    def frames() -> Iterator[SLPFrame]:
        for index, subject in enumerate(dataset.subjects):
            unit = dataset.load_unit(index)
            for pose in dataset.poses:
                label = dataset.label(unit, pose) if labels else None
                for cover in dataset.covers:
                    path = slp_data.raw_depth_path(root, setting, subject, cover, pose)
                    depth = check_array(np.load(path, allow_pickle=False), "depthRaw",
                                        SLP_RAW_DEPTH_SHAPE, str(path), dtype=np.uint16)
                    yield SLPFrame(setting, subject, pose, cover, depth, unit["homography"],
                                   dataset.bed_mm, label)

    return len(dataset), frames()


def ground_truth(frame: SLPFrame, stamp_ns: int) -> GroundTruth:
    """The :class:`GroundTruth` of an SLP frame (camera pose from its homography)."""
    import torch

    from disrt_core.data import labels
    from disrt_core.geometry.slp import KINECT_DEPTH_K, slp_camera_pose
    from disrt_core.posture import POSTURES, posture_from_axis_angle

    T = slp_camera_pose(frame.homography, KINECT_DEPTH_K)
    gt = GroundTruth(stamp_ns=stamp_ns, joints_bed_m=None, cover=frame.cover, source="slp",
                     T_cam_bed=T, homography_depth_to_pm=frame.homography,
                     bed_distance_mm=float(frame.bed_mm), subject=frame.subject,
                     pose=frame.pose, extra={"setting": frame.setting},
                     sample_id=f"slp/{frame.setting}/{frame.subject:05d}/{frame.cover}/"
                               f"{frame.pose:06d}")
    if frame.label is not None:
        label = frame.label
        joints = labels.label_joints_m(label)
        gt.joints_bed_m = joints
        gt.joints_camera_m = joints @ T[:3, :3].T + T[:3, 3]
        gt.gender = "female" if label[labels.GENDER][0] == 1 else "male"
        root = torch.from_numpy(np.asarray(label[labels.ROOT], np.float64))[None]
        gt.posture = POSTURES[int(posture_from_axis_angle(root)[0])]
        gt.body_model, gt.body_params = "smpl", labels.label_to_params(label)
        gt.extra["label"] = np.asarray(label, np.float64).tolist()
    return gt


def write_slp_bag(out: str | Path, count: int, frames: Iterator[SLPFrame], *,
                  rate: float = 30.0, start_ns: int | None = None, storage: str = "mcap",
                  overwrite: bool = False, progress: bool = False) -> int:
    """Write ``frames`` to the bag ``out`` (see the module docstring); returns the count."""
    from tqdm import tqdm

    from disrt_core.geometry.slp import KINECT_DEPTH_K

    if not rate > 0:
        raise BagError(f"--rate must be > 0, got {rate}")
    start_ns = time.time_ns() if start_ns is None else int(start_ns)
    written = 0
    with BagWriter(out, storage=storage, overwrite=overwrite) as bag:
        for topic, msgtype in ((DEPTH_TOPIC, IMAGE), (DEPTH_INFO_TOPIC, CAMERA_INFO),
                               (GT_JOINTS_TOPIC, MARKER_ARRAY), (GT_POSE_TOPIC, STRING)):
            bag.add_topic(topic, msgtype)
        for frame in tqdm(frames, total=count, unit="frame", disable=not progress,
                          desc="slp2bag"):
            stamp = start_ns + round(written * 1e9 / rate)
            height, width = frame.depth.shape
            # CameraInfo first: a node that reads a frame needs its intrinsics already
            bag.write(DEPTH_INFO_TOPIC, stamp,
                      bag_msgs.camera_info(KINECT_DEPTH_K, width, height, stamp, DEPTH_FRAME_ID))
            bag.write(DEPTH_TOPIC, stamp,
                      bag_msgs.depth_image(frame.depth, stamp, DEPTH_FRAME_ID))
            gt = ground_truth(frame, stamp)
            if gt.joints_camera_m is not None:
                bag.write(GT_JOINTS_TOPIC, stamp,
                          bag_msgs.joint_markers(gt.joints_camera_m, stamp, DEPTH_FRAME_ID))
            bag.write(GT_POSE_TOPIC, stamp, bag_msgs.ground_truth_msg(gt))
            written += 1
    return written


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="disrt-slp2bag", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    parser.add_argument("--slp-root", type=Path, required=True,
                        help="the data folder holding SLP/ (and SLP_SMPL_fits/, "
                             "slp_real_cleaned/ for the labels)")
    parser.add_argument("--subjects", required=True,
                        type=lambda t: parse_ids(t, "--subjects"),
                        help="subject ids, e.g. 81-102 (the test split) or 1,5,9-12")
    parser.add_argument("--covers", default="uncover,cover1,cover2",
                        help="comma list of uncover, cover1, cover2")
    parser.add_argument("--poses", default=list(range(1, 46)),
                        type=lambda t: parse_ids(t, "--poses"), help="pose ids (default 1-45)")
    parser.add_argument("--setting", choices=("danaLab", "simLab"), default="danaLab")
    parser.add_argument("--no-labels", action="store_true",
                        help="leave the ground truth out (default: include where available)")
    parser.add_argument("--out", "-o", type=Path, required=True, help="bag to write")
    parser.add_argument("--storage", choices=STORAGES, default="mcap")
    parser.add_argument("--rate", type=float, default=30.0,
                        help="frames per second of the bag's timeline (default 30)")
    parser.add_argument("--start", type=float, default=None,
                        help="stamp of the first frame, s since the epoch (default: now)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bag")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    covers = [c.strip() for c in args.covers.split(",") if c.strip()]
    try:
        count, frames = slp_frames(args.slp_root, args.subjects, covers=covers,
                                   poses=args.poses, setting=args.setting,
                                   labels=False if args.no_labels else None)
        start = None if args.start is None else round(args.start * 1e9)
        written = write_slp_bag(args.out, count, frames, rate=args.rate, start_ns=start,
                                storage=args.storage, overwrite=args.overwrite,
                                progress=not args.quiet)
    except (BagError, ValueError, FileNotFoundError) as err:
        print(f"disrt-slp2bag: error: {err}", file=sys.stderr)
        for note in getattr(err, "__notes__", []):  # e.g. "... was not written"
            print(f"disrt-slp2bag: {note}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"disrt-slp2bag: interrupted; {args.out} was not written", file=sys.stderr)
        return 130
    if not args.quiet:
        print(f"[disrt-slp2bag] wrote {written} frames to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
