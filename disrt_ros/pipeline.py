"""Depth messages of several cameras -> per-frame estimates, on the inference thread.

:meth:`Pipeline.run` takes one batch of ``Job(camera, Image)`` (at most one per camera) and
returns, per job, a :class:`~disrt_ros.conversions.FrameResult` or a :class:`Failure`:

1. decode and check each message (encoding, size, CameraInfo, valid pixels, units: a 32FC1
   image holding millimetres is refused) and undo the lens's distortion where the
   CameraInfo has one (``disrt_core.geometry.lens``): frames the worker drops are never
   decoded, which keeps the executor thread free;
2. the bed pose ``T_cam_bed`` of each camera (fixed, from corner pixels, or fitted; see
   :mod:`disrt_ros.params`; no bed found: the frame is refused). Where the automatic fit
   cannot tell the head end, or told it and no one confirmed it yet, each frame votes on
   it (``disrt_core.head_end``): the posture classifier's head-end output where it has one
   (``posture_source: classifier``, computed with the posture in step 4), else the
   network's presence on the frame and on it turned end for end (a second inference);
   once decided, the bed is turned or kept;
3. per image size, ``geometry.resample.FrameResampler``: ``raw_to_network``,
   ``normalize_depth`` and the bed region's statistics (``geometry.plausibility``), one CUDA
   graph per batch shape with the node's ``cuda_graphs`` -> one ``Estimator.predict`` for
   the whole batch, on the estimator's device, without its range check (nothing between
   the upload and the answer waits for the device); meanwhile the sitter's trunk is
   looked for in the raw frames on the CPU (``disrt_core.occupancy_raw``). A bed region
   that makes no sense for its pose (mostly beyond or in front of the mattress plane, or
   without readings) refuses the frame when the answers come back: it is computed, never
   published;
4. joints and vertices mapped to each camera's optical frame (``label_to_camera``), root
   orientation, posture (``posture_source``: the classifier on the network image,
   ``disrt_core.model.posture_net``, or the root, ``disrt_core.posture``), the bed's state
   (in_bed | empty | sitting_on_edge, ``disrt_core.occupancy``, with the trunk evidence)
   and, when the estimator computes it (``Estimator.set_pressure``, the node's
   ``pressure``), the pressure map and the region peaks (``disrt_core.pressure``).

A refused frame is a :class:`Failure` at ERROR level (the node reports it and publishes no
pose for it).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from torch import Tensor

from disrt_core import head_end
from disrt_core.frame_outputs import OutputPacker
from disrt_core.geometry.camera import median_depth
from disrt_core.geometry.lens import LensMaps
from disrt_core.geometry.plausibility import region_problems, units_problem
from disrt_core.geometry.resample import FrameResampler
from disrt_core.model.posture_net import has_head_end, load_posture_net
from disrt_core.occupancy import STATES
from disrt_core.occupancy_raw import DEFAULT_MATTRESS_M, trunk_features
from disrt_core.posture import POSTURES
from disrt_core.pressure import REGIONS
from disrt_ros.conversions import FrameResult, ImageFormatError, depth_to_mm
from disrt_ros.diagnostics import ProblemLog, RateMeter
from disrt_ros.params import CameraConfig, MonitorConfig
from disrt_ros.worker import Job, LatencyWindow

RETRY_S = 3.0  # without a bed (or its head end), look again this often
#: Stages of one batch, timed for the diagnostics (``stage_<name>_p50_ms``): decoding and
#: checking the messages with the bed poses; resampling to the network grid; the estimator
#: with the mapping to camera frames (it ends with the copy to the host, so it holds the
#: GPU time); building the results.
STAGES = ("decode", "preprocess", "infer", "results")


@dataclass
class Failure:
    """Why a frame produced no result (reported by the node, counted in diagnostics)."""

    kind: str
    message: str
    level: str = "error"


@dataclass
class CameraState:
    """What the node knows about one camera; ``intrinsics`` is (K [3,3], (width, height)) of
    the latest CameraInfo, replaced as one tuple by the executor thread, after ``lens``
    (its distortion map ``lens.current``, :mod:`disrt_core.geometry.lens`; None when
    rectified)."""

    cfg: CameraConfig
    pubs: dict = field(default_factory=dict)
    intrinsics: tuple[np.ndarray, tuple[int, int]] | None = None
    lens: LensMaps = field(default_factory=LensMaps)
    bed: object | None = None  # disrt_core.geometry.bedfit.BedFit (corners / auto)
    T_time: float = -np.inf  # when the bed was last found or checked (monotonic)
    received: RateMeter = field(default_factory=RateMeter)
    published: RateMeter = field(default_factory=RateMeter)
    last_submit: float = -np.inf
    last_display: float = -np.inf
    rate_limited: int = 0
    last_frame_id: str = ""
    failure: Failure | None = None  # why no bed was found, until one is (auto / corners)
    outputs: object | None = None  # disrt_ros.outputs.CameraOutputs (the node's)
    occupancy: tuple[str, float] = ("unknown", float("nan"))  # the last answered state
    recent: deque = field(default_factory=deque)  # the last bed_fit_frames depth frames
    fit_frames: int = 0  # how many frames the current bed was fitted on
    head_vote: head_end.HeadVote | None = None  # the person's votes on an unknown head end
    head_told: tuple[np.ndarray | None, float] = (None, 1.0)  # (head-end centre, confidence)
    head_checked: bool = False  # the bed's head end was told or confirmed by the person


@dataclass
class Frame:
    header: Header
    depth_mm: np.ndarray  # [H,W] float32, 0 = no reading
    K: np.ndarray  # [3,3]


class Pipeline:
    """Batches of depth messages -> FrameResult | Failure (see the module docstring)."""

    def __init__(self, estimator, config: MonitorConfig, cameras: dict[str, CameraState],
                 problems: ProblemLog):
        self.estimator, self.config, self.cameras = estimator, config, cameras
        self.problems = problems
        self.layout = estimator.body_model.param_layout
        self.hypotheses = config.hypotheses
        self.stage_times = {stage: LatencyWindow(200) for stage in STAGES}  # s per batch
        # graphs for the resampling where the estimator replays its own (the node's
        # cuda_graphs, or an estimator made with them)
        graphs = bool(getattr(estimator, "cuda_graphs", False))
        self.resampler = FrameResampler(estimator.device, graphs)
        posture = None if config.posture_source == "pose" else \
            load_posture_net(device=estimator.device)  # ~/posture from the depth image
        self.outputs = OutputPacker(self.layout, estimator.device, graphs, posture_net=posture)
        # its head-end output, computed on every frame, votes on the head end: no second
        # inference on the turned image (disrt_core.head_end)
        self.head_classifier = has_head_end(posture)

    def _trunk(self, groups: list, ok: list[int], jobs: list[Job]) -> Tensor:
        """[B,4] the sitter's trunk evidence (``occupancy_raw.trunk_features``) of the
        batch's frames, computed on the CPU; ``groups``: (slice, depth, K, T_cam_bed) per
        frame size, CPU tensors."""
        parts = []
        for group, depth, K, T in groups:
            size = [getattr(self.cameras[jobs[i].key].bed, "size_m", DEFAULT_MATTRESS_M)
                    for i in ok[group]]  # a fixed pose has no mattress size
            parts.append(trunk_features(depth, K, T, torch.tensor(size)))
        return torch.cat(parts)

    def prepare(self, cam: CameraState, msg: Image) -> Frame | Failure:
        """Decode and check one depth message."""
        name = cam.cfg.name
        try:
            depth = depth_to_mm(msg)
        except ImageFormatError as error:
            return Failure(error.kind, str(error))
        encoding = (msg.format.split(";")[0].strip() if isinstance(msg, CompressedImage)
                    else msg.encoding)
        sent = depth / 1000.0 if encoding.endswith("FC1") else depth  # the values as sent
        wrong = units_problem(sent, encoding)
        if wrong is not None:
            return Failure("depth_units", f"{wrong}; no pose is published")
        info, lens = cam.intrinsics, cam.lens.current
        if info is not None:
            K, (width, height) = info
            if (width, height) != (depth.shape[1], depth.shape[0]):
                return Failure("size", (
                    f"depth image is {depth.shape[1]}x{depth.shape[0]} but its CameraInfo "
                    f"says {width}x{height}: frame dropped; make depth_topic and info_topic "
                    "belong to the same stream"))
            if lens is not None and lens.size == (width, height):
                depth = lens(depth)  # onto the pinhole camera of K (the CameraInfo's lens)
        elif cam.cfg.K_fallback is not None:
            K = cam.cfg.K_fallback
            self.problems.report(name, "no_camera_info", (
                f"no CameraInfo on {cam.cfg.info_topic}: using the configured intrinsics "
                f"({name}.intrinsics)"), "warn")
        else:
            return Failure("no_camera_info", (
                f"no CameraInfo on {cam.cfg.info_topic} yet and no {name}.intrinsics "
                "parameter: frames are skipped until one arrives"), "warn")
        valid = np.count_nonzero(depth) / depth.size
        if valid < self.config.min_valid_fraction:
            return Failure("empty", (
                f"frame with {valid:.1%} valid depth pixels (all zero or NaN) is below "
                f"min_valid_fraction {self.config.min_valid_fraction:.0%}: skipped; is the "
                "camera covered or still starting?"), "warn")
        return Frame(msg.header, depth, K)

    def bed_pose(self, cam: CameraState, frame: Frame) -> np.ndarray | Failure:
        """T_cam_bed [4,4] of the camera: fixed (``pose``), or found on a usable frame
        (``corners``: ``bedfit.bed_from_corners``; ``auto``: ``bedfit.fit_bed``) and
        re-checked on a frame every ``refit_period_s`` (``bedfit.bed_change``; re-fitted when
        the bed moved). A failed re-check keeps the previous pose, with a warning. Without a
        bed the frames are refused and the bed looked for again every ``RETRY_S``; while
        ``head_side: auto`` cannot tell the head end, or the automatic fit is ``weak`` (an
        edge hardly seen: its corners may be cm off; a WARN names it), it is fitted again
        every ``RETRY_S``."""
        cfg, now = cam.cfg, time.monotonic()
        if cfg.bed_region == "pose":
            return cfg.T_cam_bed
        if cam.recent.maxlen != cfg.bed_fit_frames or (
                cam.recent and cam.recent[-1].shape != frame.depth_mm.shape):
            cam.recent = deque(maxlen=cfg.bed_fit_frames)
        cam.recent.append(frame.depth_mm)
        if cam.bed is None and cam.failure is not None and now - cam.T_time < RETRY_S:
            return cam.failure  # looking for the bed costs a fit: not on every frame
        # A bed fitted on fewer frames than bed_fit_frames (at start-up) is fitted again soon.
        settled = (cam.bed is not None and cam.bed.head_known and not cam.bed.weak
                   and cam.fit_frames >= cfg.bed_fit_frames)
        period = cfg.refit_period_s if cam.bed is None or settled else RETRY_S
        due = period > 0 and now - cam.T_time >= period
        if cam.bed is not None and not due:
            return cam.bed.T_cam_bed
        from disrt_core.geometry import bedfit

        depth, K = frame.depth_mm, frame.K
        if len(cam.recent) > 1:  # the median of the last frames: less sensor noise
            depth = median_depth(cam.recent)
        try:
            if settled:
                change = bedfit.bed_change(cam.bed, depth, K, full=cfg.bed_region == "auto",
                                           head=cfg.head_side)
                cam.T_time = now
                if not change.moved:
                    return cam.bed.T_cam_bed
                self.problems.report(cfg.name, "bed_moved", (
                    f"the bed moved (tilt {change.angle_deg:.1f}°, height "
                    f"{100 * change.offset_m:.1f} cm): re-fitted"), "warn")
            if cfg.bed_region == "corners":
                fit = bedfit.bed_from_corners(depth, K, cfg.corners_px)
            else:
                fit = bedfit.fit_bed(depth, K, head=cfg.head_side,
                                     head_fallback=cfg.head_fallback)
        except (ValueError, np.linalg.LinAlgError) as error:
            cam.T_time = now
            if cam.bed is None:
                hint = ("" if isinstance(error, bedfit.BedNotFoundError) else
                        f"; check the bed region parameters ({cfg.name}.corners_px / "
                        "head_side)")
                cam.failure = Failure("bed_fit", (
                    f"bed_region {cfg.bed_region}: no bed found ({error}){hint}; no pose is "
                    f"published, looking again every {RETRY_S:.0f} s"))
                return cam.failure
            self.problems.report(cfg.name, "bed_refit", (
                f"bed_region {cfg.bed_region}: re-checking the bed failed ({error}); keeping "
                "the previous bed pose"), "warn")
            return cam.bed.T_cam_bed
        if cfg.bed_region == "auto":  # a re-fit keeps the head end the person told
            fit = head_end.remembered(fit, *cam.head_told)
        if cam.bed is None or (cam.bed.head_known, cam.bed.weak) != (fit.head_known, fit.weak):
            head = "" if fit.head_known else (
                f", head end unknown (nobody in bed, no pillow or board): taken toward the "
                f"image {cfg.head_fallback} (its likelier end where the bed runs across "
                f"that side), re-decided every {RETRY_S:.0f} s")
            self.problems.log("info", (
                f"[{cfg.name}] bed found ({cfg.bed_region}): {fit.size_m[0]:.2f} x "
                f"{fit.size_m[1]:.2f} m, camera {fit.offset:.2f} m away{head}"))
        if not fit.head_known:
            self.problems.report(cfg.name, "head_unknown", (
                "the bed's head end is unknown (nobody in bed, no pillow or board seen): "
                f"assumed toward the image {cfg.head_fallback} (the likelier end where the "
                f"bed runs across that side); set {cfg.name}.head_side if the bed stays "
                "empty"), "warn")
        if fit.weak:
            self.problems.report(cfg.name, "bed_weak", (
                f"bed_region {cfg.bed_region}: {fit.weak_text()}. Check it with "
                f"disrt-fit-bed; if it is wrong, set {cfg.name}.bed_region corners. Fitted "
                f"again every {RETRY_S:.0f} s"), "warn")
        cam.bed, cam.T_time, cam.failure = fit, now, None
        cam.head_checked = head_end.at_head_end(fit, cam.head_told[0])
        cam.fit_frames = len(cam.recent)
        return fit.T_cam_bed

    def _head_vote(self, cam: CameraState) -> head_end.HeadVote | None:
        """The votes on the head end of an automatic fit (while ``head_side`` is ``auto``)
        that could not tell it, or that told it and no one in bed confirmed it yet; started
        afresh for a fit the votes are not about; None for a frame not to ask about."""
        bed = cam.bed
        if cam.cfg.bed_region != "auto" or cam.cfg.head_side != "auto" or bed is None \
                or (bed.head_known and cam.head_checked):
            return None
        if cam.head_vote is None or not cam.head_vote.about(bed):
            cam.head_vote = head_end.HeadVote(head_end.head_end_point(bed),
                                              checking=bed.head_known,
                                              fit_confidence=bed.head_confidence)
        return cam.head_vote if cam.head_vote.due() else None

    def _count_head_vote(self, cam: CameraState, T: np.ndarray, present: float,
                         turned: float | None, classifier: float | None) -> None:
        """One frame's vote (``disrt_core.head_end``): the posture classifier's head-end
        log-odds ``classifier`` where it has one, else the presence on the image and on it
        turned; once decided the bed is turned or kept, its head end known, and a re-fit of
        the same bed keeps it."""
        vote = cam.head_vote
        if vote is None or cam.bed is None or not np.array_equal(T, cam.bed.T_cam_bed):
            return  # the bed changed since this frame was resampled
        if classifier is not None:
            vote.add(classifier, present)
        else:
            evidence = head_end.head_evidence(torch.tensor([present]), torch.tensor([turned]))
            vote.add(float(evidence[0]), present, turned)
        decided = vote.decision()
        if not decided:
            if vote.given_up():  # the fit's own end stands; no more checks of this bed
                cam.head_checked, cam.head_vote = True, None
            return
        confidence, was = vote.confidence(), cam.bed
        if decided < 0:
            cam.bed = head_end.turned_fit(was, confidence)
        elif not was.head_known:
            cam.bed = replace(was, head_known=True, head_confidence=confidence)
        cam.head_told = (head_end.head_end_point(cam.bed), confidence)
        cam.head_vote, cam.head_checked = None, True
        said = (f"{'posture classifier' if self.head_classifier else 'pose network'}, "
                f"{vote.frames} frames, log-odds {vote.mean:+.1f}")
        if vote.checking and decided < 0:
            self.problems.report(cam.cfg.name, "head_turned", (
                f"the bed fit's head end (confidence {was.head_confidence:.2f}) disagrees "
                f"with the person lying there ({said}): the bed is turned; if that is wrong, "
                f"set {cam.cfg.name}.head_side"), "warn")
        elif not vote.checking:
            self.problems.log("info", (
                f"[{cam.cfg.name}] head end decided from the person lying there ({said}): the "
                f"assumed end was {'right' if decided > 0 else 'the foot end, the bed is turned'}"))

    def run(self, jobs: list[Job]) -> list[FrameResult | Failure]:
        """One batch: decode, bed poses, preprocess by image size, one predict, map back."""
        t0 = time.perf_counter()
        results: list = [None] * len(jobs)
        frames, poses, ok = [], [], []
        for i, job in enumerate(jobs):
            cam = self.cameras[job.key]
            frame = self.prepare(cam, job.payload)
            T = frame if isinstance(frame, Failure) else self.bed_pose(cam, frame)
            if isinstance(T, Failure):
                results[i] = T
            else:
                ok.append(i)
                frames.append(frame)
                poses.append(T)
        if not ok:
            return results
        t1 = time.perf_counter()
        # frames of one size side by side: each size is resampled as one batch
        by_shape: dict[tuple[int, int], list[int]] = {}
        for k, frame in enumerate(frames):
            by_shape.setdefault(frame.depth_mm.shape, []).append(k)
        order = [k for group in by_shape.values() for k in group]
        ok, frames, poses = [ok[k] for k in order], [frames[k] for k in order], \
            [poses[k] for k in order]
        device, bed_mm = torch.device(self.estimator.device), self.config.bed_distance_mm
        groups, parts, start = [], [], 0
        for members in by_shape.values():
            group = slice(start, start + len(members))
            start = group.stop
            depth = torch.from_numpy(np.stack([f.depth_mm for f in frames[group]]))
            K = torch.from_numpy(np.stack([f.K for f in frames[group]])).float()
            T = torch.from_numpy(np.stack(poses[group])).float()
            groups.append((group, depth, K, T))
            parts.append(self.resampler(depth, K, T, bed_mm))
        net_mm, net, region = (torch.cat(x) if len(x) > 1 else x[0] for x in zip(
            *[(part.net_mm, part.net, part.region) for part in parts]))
        T_all = torch.cat([T for *_, T in groups]).to(device, non_blocking=True)
        t2 = time.perf_counter()
        with torch.no_grad():
            # no check of the depth's range: normalize_depth made it (the check waits for
            # the device); implausible frames are answered and dropped below
            pred = self.estimator.predict(net[:, None], check=False)
            present = pred.present_prob if pred.present_prob is not None else \
                torch.ones(len(ok), device=net.device)  # an estimator without the check
            voting = [k for k, i in enumerate(ok) if pred.present_prob is not None
                      and self._head_vote(self.cameras[jobs[i].key])]
            turned = None if not voting or self.head_classifier else self.estimator.predict(
                head_end.turned_image(net[voting])[:, None], check=False).present_prob
            trunk = None
            if self.config.occupancy_check:
                # on the CPU from the frames at hand, while the device runs the network
                trunk = self._trunk(groups, ok, jobs)
                if device.type == "cuda":  # pinned: an upload that does not wait for the GPU
                    trunk = trunk.pin_memory().to(device, non_blocking=True)
            # camera frames, posture, quaternion and the bed's state, as one graph with the
            # node's cuda_graphs, and everything to the host in one copy
            arrays = self.outputs(dict(
                joints=pred.joints, vertices=pred.vertices, params=pred.params,
                spread=pred.joint_spread, present=present, net_mm=net_mm, net=net,
                region=region, T_cam_bed=T_all, trunk=trunk,
                interval=getattr(pred, "joint_interval", None),
                pressure=getattr(pred, "pressure", None),
                region_pressure=getattr(pred, "region_pressure", None)),
                bed_mm, self.config.occupancy_check)
        pressure, regions = arrays.get("pressure"), arrays.get("region_pressure")
        interval = arrays.get("joint_interval")
        calibration = getattr(self.estimator, "interval_calibration", None)
        level = None if interval is None else float(calibration["level"])
        t3 = time.perf_counter()
        problems = region_problems(arrays["region"])
        head_logits = arrays.get("head_logit")
        for j, k in enumerate(voting):
            if problems[k] is None:  # a refused frame does not vote
                self._count_head_vote(
                    self.cameras[jobs[ok[k]].key], poses[k], float(arrays["present_prob"][k]),
                    None if turned is None else float(turned[j]),
                    None if head_logits is None else float(head_logits[k]))
        for k, (i, problem) in enumerate(zip(ok, problems)):
            if problem is not None:  # nonsense gets no answer (ERROR in /diagnostics)
                results[i] = Failure("implausible_depth", f"{problem}; no pose is published")
                continue
            results[i] = FrameResult(
                camera=jobs[i].key, header=frames[k].header,
                joints_bed=arrays["joints_bed"][k], joints_cam=arrays["joints_cam"][k],
                vertices_cam=arrays["vertices_cam"][k], joint_spread=arrays["joint_spread"][k],
                params=arrays["params"][k], root_quat_cam=arrays["root_quat_cam"][k],
                posture=POSTURES[int(arrays["posture"][k])], hypotheses=self.hypotheses,
                T_cam_bed=poses[k], net_image=arrays["net_image"][k],
                occupancy=STATES[int(arrays["state"][k])],
                present_prob=float(arrays["present_prob"][k]),
                pressure=pressure[k] if pressure is not None else None,
                joint_interval=interval[k] if interval is not None else None,
                interval_level=level,
                region_pressure=None if regions is None else {
                    name: (float(regions[k, r, 0]), float(regions[k, r, 1]))
                    for r, name in enumerate(REGIONS)})
        for stage, seconds in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2,
                                           time.perf_counter() - t3)):
            self.stage_times[stage].add(seconds)
        return results
