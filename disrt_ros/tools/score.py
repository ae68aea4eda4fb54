"""``disrt-score BAG_IN BAG_OUT``: score the bed monitor's recorded output against the ground
truth of the bag it was fed, frame by frame, matched by header stamp.

BAG_IN is a bag of :mod:`disrt_ros.bags`' layout (``disrt-slp2bag``, ``disrt-synth2bag``):
ground truth on ``/ground_truth/pose`` (:class:`disrt_ros.bags.GroundTruth`). BAG_OUT holds
the node's ``pose_json`` results (schema ``disrt_ros/pose/2`` or 1; found by it on any
std_msgs/String topic unless ``--pose-topic`` names it), recorded e.g. with
``disrt-record`` or ``ros2 bag record``. Each result carries the stamp of the depth frame it
came from.

Metrics (SPEC §6, ``disrt_core.metrics``): MPJPE between the joints the node published
(bed frame) and the ground-truth joints, no alignment; PVE between the mesh of the node's
parameters, made by the body model its ``model_id`` names (the mesh the node publishes;
``smpl-both`` takes the ground-truth gender), and the ground-truth mesh (the ground truth's
body model with its gender), only where both are of one family (SMPL needs
``--smpl-dir``); per cover condition and overall, in mm. Frames missed = labelled frames
of BAG_IN without a result in BAG_OUT; a stamp with several results (a looped replay) is
scored once, with its first result.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from disrt_ros.bags import GT_POSE_TOPIC, STRING, BagError, BagReader, GroundTruth

POSE_SCHEMA = "disrt_ros/pose/2"  # what the node writes now
POSE_SCHEMAS = ("disrt_ros/pose/1", POSE_SCHEMA)  # what is read (2 added pressure, monitor)
COVERS = ("uncover", "cover1", "cover2")


@dataclass
class Result:
    """One node result (pose_json), bed frame, metres."""

    stamp_ns: int
    joints_bed: np.ndarray  # [24,3]
    params: np.ndarray | None
    model_id: str
    camera: str = ""


@dataclass
class Score:
    """What :func:`score` found; ``mpjpe``/``pve`` map a cover (and ``all``) to the mean in
    mm over the matched frames; ``per_frame`` lists (stamp, cover, mpjpe, pve or None)."""

    frames: int  # labelled frames in BAG_IN
    matched: int
    missed: int
    duplicates: int  # extra results for an already matched stamp
    unmatched: int  # results whose stamp is no labelled frame of BAG_IN
    mpjpe: dict[str, float] = field(default_factory=dict)
    pve: dict[str, float] = field(default_factory=dict)
    pve_note: str = ""
    per_frame: list = field(default_factory=list)
    missed_stamps: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "per_frame"} | {
            "per_frame": [list(row) for row in self.per_frame]}


def read_ground_truth(bag: str | Path, topic: str = GT_POSE_TOPIC) -> dict[int, GroundTruth]:
    """Labelled ground truth of a bag, by stamp (ns)."""
    with BagReader(bag) as reader:
        truths = [GroundTruth.from_json(msg.data) for _, msg in reader.read(topic, STRING)]
    return {gt.stamp_ns: gt for gt in truths if gt.joints_bed_m is not None}


def _parse_result(text: str) -> Result | None:
    try:
        d = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(d, dict) or d.get("schema") not in POSE_SCHEMAS:
        return None
    stamp = int(d["stamp"]["sec"]) * 1_000_000_000 + int(d["stamp"]["nanosec"])
    joints = np.asarray(d["joints_bed"], np.float64)
    if joints.shape != (24, 3):
        raise BagError(f"a {POSE_SCHEMA} result has joints_bed of shape {joints.shape}")
    params = np.asarray(d["params"], np.float64) if d.get("params") is not None else None
    return Result(stamp, joints, params, str(d.get("model_id", "")), str(d.get("camera", "")))


def read_results(bag: str | Path, topic: str | None = None) -> list[Result]:
    """The node's results in a bag, from ``topic`` or every String topic of that schema."""
    with BagReader(bag) as reader:
        if topic is not None:
            reader.require(topic, STRING)
            topics = [topic]
        else:
            topics = [t for t, info in reader.topics.items() if info.msgtype == STRING]
        results = []
        for message in reader.messages(topics):
            result = _parse_result(reader.decode(message).data)
            if result is not None:
                results.append(result)
    if not results:
        where = topic or "any std_msgs/String topic"
        raise BagError(f"bag {bag} has no bed monitor results ({POSE_SCHEMA} JSON) on {where}; "
                       "record the node's ~/pose_json topic")
    return results


def _model_kind(model_id: str) -> str:
    return model_id.split("-", 1)[0] if model_id else ""


class _Meshes:
    """Body models by (family, gender variant), loaded once, for the PVE meshes."""

    def __init__(self, smpl_dir) -> None:
        self.smpl_dir, self.models = smpl_dir, {}

    def __call__(self, model_id: str, params: np.ndarray, female: np.ndarray) -> np.ndarray:
        """Vertices [N,V,3] (bed frame, m) of parameter vectors [N,P] with the body model
        ``model_id`` names: ``smpl-neutral``/``-female``/``-male`` as named, ``smpl`` and
        ``smpl-both`` with each frame's gender (``female``), Anny as is."""
        import torch

        from disrt_core.body import load_body_model

        kind = _model_kind(model_id)
        variant = model_id.split("-", 1)[1] if kind == "smpl" and "-" in model_id else "both"
        key = (kind, variant if kind == "smpl" else "")
        if key not in self.models:
            self.models[key] = load_body_model(kind, self.smpl_dir,
                                               gender=variant if kind == "smpl" else "neutral")
        model = self.models[key]
        gender = torch.from_numpy(np.stack([female, ~female], -1).astype(np.float32))
        out = []
        with torch.no_grad():
            for start in range(0, len(params), 64):
                batch = torch.from_numpy(params[start:start + 64]).float()
                g = gender[start:start + 64] if model.takes_gender else None
                out.append(model(batch, g)[0].double().numpy())
        return np.concatenate(out)


def _by_model(meshes: _Meshes, model_ids: list[str], params: np.ndarray,
              female: np.ndarray) -> np.ndarray:
    """Vertices of each frame's parameters with that frame's body model."""
    out = None
    for model_id in dict.fromkeys(model_ids):
        rows = np.array([m == model_id for m in model_ids])
        vertices = meshes(model_id, params[rows], female[rows])
        if out is None:
            out = np.empty((len(params), *vertices.shape[1:]))
        out[rows] = vertices
    return out


def score(bag_in: str | Path, bag_out: str | Path, *, pose_topic: str | None = None,
          pve: bool = True, smpl_dir: str | Path | None = None) -> Score:
    """Match results to ground truth by stamp and compute the metrics (module docstring)."""
    import torch

    from disrt_core.metrics import mpjpe_mm, pve_mm

    truths = read_ground_truth(bag_in)
    if not truths:
        raise BagError(f"bag {bag_in} has no labelled ground truth on {GT_POSE_TOPIC}")
    matched: dict[int, Result] = {}
    duplicates = unmatched = 0
    for result in read_results(bag_out, pose_topic):
        if result.stamp_ns not in truths:
            unmatched += 1
        elif result.stamp_ns in matched:
            duplicates += 1
        else:
            matched[result.stamp_ns] = result
    stamps = sorted(matched)
    out = Score(frames=len(truths), matched=len(stamps), missed=len(truths) - len(stamps),
                duplicates=duplicates, unmatched=unmatched,
                missed_stamps=sorted(set(truths) - set(matched)))
    if not stamps:
        return out
    gts = [truths[s] for s in stamps]
    preds = [matched[s] for s in stamps]
    covers = np.array([COVERS.index(gt.cover) for gt in gts])
    mpjpe = mpjpe_mm(torch.from_numpy(np.stack([p.joints_bed for p in preds])),
                     torch.from_numpy(np.stack([gt.joints_bed_m for gt in gts]))).numpy()
    pve_values = None
    if pve:
        kinds = {_model_kind(p.model_id) for p in preds} | {_model_kind(gt.body_model or "")
                                                             for gt in gts}
        if len(kinds) != 1 or "" in kinds:
            out.pve_note = (f"PVE not computed: predictions and ground truth use body models "
                            f"{sorted(kinds)}; meshes of different models are not comparable")
        elif any(p.params is None for p in preds) or any(g.body_params is None for g in gts):
            out.pve_note = "PVE not computed: some results or ground truths lack parameters"
        else:
            female = np.array([gt.gender == "female" for gt in gts])
            meshes = _Meshes(smpl_dir)
            try:
                v_pred = _by_model(meshes, [p.model_id for p in preds],
                                   np.stack([p.params for p in preds]), female)
                v_gt = _by_model(meshes, [g.body_model for g in gts],
                                 np.stack([g.body_params for g in gts]), female)
            except (FileNotFoundError, ValueError) as err:
                out.pve_note = f"PVE not computed: {err}"
            else:
                pve_values = pve_mm(torch.from_numpy(v_pred), torch.from_numpy(v_gt)).numpy()
    for name, mask in [(c, covers == i) for i, c in enumerate(COVERS)] + [("all", covers >= 0)]:
        if mask.any():
            out.mpjpe[name] = float(mpjpe[mask].mean())
            if pve_values is not None:
                out.pve[name] = float(pve_values[mask].mean())
    pves = [None] * len(stamps) if pve_values is None else pve_values.tolist()
    out.per_frame = [(s, gt.cover, float(m), v) for s, gt, m, v in zip(stamps, gts, mpjpe, pves)]
    return out


def format_score(result: Score) -> str:
    """The table ``disrt-score`` prints."""
    lines = [f"{'cover':<8} {'frames':>6} {'MPJPE mm':>9} {'PVE mm':>8}"]
    counts = {c: sum(1 for row in result.per_frame if row[1] == c) for c in COVERS}
    counts["all"] = result.matched
    for name in (*COVERS, "all"):
        if name in result.mpjpe:
            pve = f"{result.pve[name]:8.2f}" if name in result.pve else f"{'n/a':>8}"
            lines.append(f"{name:<8} {counts[name]:>6} {result.mpjpe[name]:9.2f} {pve}")
    lines.append(f"frames: {result.frames} labelled, {result.matched} scored, "
                 f"{result.missed} missed; {result.duplicates} duplicate and "
                 f"{result.unmatched} unmatched results")
    if result.pve_note:
        lines.append(result.pve_note)
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="disrt-score", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    parser.add_argument("bag_in", type=Path, help="bag with the ground truth (replayed input)")
    parser.add_argument("bag_out", type=Path, help="bag with the node's recorded pose_json")
    parser.add_argument("--pose-topic", help="the node's pose_json topic (default: found by "
                                             "its schema)")
    parser.add_argument("--smpl-dir", type=Path, help="SMPL model files, for PVE with SMPL "
                                                      "(default $DISRT_SMPL_DIR)")
    parser.add_argument("--no-pve", action="store_true", help="MPJPE only")
    parser.add_argument("--json", type=Path, help="also write the scores (and per-frame "
                                                  "values) to this JSON file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = score(args.bag_in, args.bag_out, pose_topic=args.pose_topic,
                       pve=not args.no_pve, smpl_dir=args.smpl_dir)
    except BagError as err:
        print(f"disrt-score: error: {err}", file=sys.stderr)
        return 1
    print(format_score(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result.as_dict(), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
