"""The node's bed-region call sites (corners, auto fit, periodic re-check) and its
single-camera topic names, with a stand-in for ``disrt_core.geometry.bedfit``; the real
fit; the rate limit; and the console script's start-up errors."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
import types

import numpy as np
import pytest

pytest.importorskip("rclpy")

import torch
from rclpy.parameter import Parameter

import disrt_core.geometry
from disrt_core import head_end
from disrt_core.geometry.bedfit import BedFit
from disrt_core.geometry.bedframe import BED_CENTRE_LABEL
from disrt_core.geometry.camera import overhead_camera_pose
from disrt_core.model.posture_net import PostureNet, PostureNetConfig
from disrt_ros.markers import marker_points
from disrt_ros.node import BedMonitorNode, main

from .fakes import FakeEstimator, K, depth_frame
from .rosutil import TIMEOUT, Player, wait_until

pytestmark = pytest.mark.ros
FRAME = "camera_depth_optical_frame"


class FakeBedfit(types.ModuleType):
    """Stands in for ``disrt_core.geometry.bedfit``: records calls; raises ``ValueError``
    while ``fail`` is set; else the camera 2 m over the bed centre; ``moved`` is what the
    re-check reports."""

    class BedNotFoundError(ValueError):
        pass

    def __init__(self):
        super().__init__("disrt_core.geometry.bedfit")
        self.calls: list[tuple] = []
        self.depths: list[np.ndarray] = []  # what fit_bed was given
        self.fail = False
        self.moved = False
        self.weak = False
        self.head_known = True

    def _fit(self):
        if self.fail:
            raise self.BedNotFoundError("no plane found")
        T = overhead_camera_pose(2.0, BED_CENTRE_LABEL).double().numpy()
        corners = np.array([[-0.45, 1.0, 2.0], [0.45, 1.0, 2.0], [0.45, -1.0, 2.0],
                            [-0.45, -1.0, 2.0]])
        return BedFit(T, np.array([0.0, 0.0, -1.0]), 2.0, corners, (0.9, 2.0), 0.8, 0.005,
                      weak=self.weak, edge_support=(0.05, 0.8, 0.9, 0.9),
                      head_known=self.head_known,
                      head_confidence=1.0 if self.head_known else 0.5,
                      weak_because=("1 edge hardly seen",) if self.weak else ())

    def bed_from_corners(self, depth_mm, K, corners_uv, **_):
        self.calls.append(("corners", depth_mm.shape, np.asarray(corners_uv).tolist()))
        return self._fit()

    def fit_bed(self, depth_mm, K, *, head="top", **_):
        self.calls.append(("auto", depth_mm.shape, head))
        self.depths.append(np.array(depth_mm, copy=True))
        return self._fit()

    def bed_change(self, reference, depth_mm, K, *, full=False, head="top", **_):
        self.calls.append(("change", full, head))
        if self.fail:
            raise ValueError("no plane found")
        return types.SimpleNamespace(moved=self.moved, angle_deg=3.0, offset_m=0.05)


@pytest.fixture
def bedfit(monkeypatch):
    fake = FakeBedfit()
    monkeypatch.setitem(sys.modules, "disrt_core.geometry.bedfit", fake)
    monkeypatch.setattr(disrt_core.geometry, "bedfit", fake, raising=False)
    return fake


def start(ros, **params):
    params = {"camera.bed_region": "pose", **params}  # the fake frames hold no room
    monitor = BedMonitorNode(estimator=FakeEstimator(), node_name="monitor_fit",
                             context=ros.context, parameter_overrides=[
                                 Parameter(k, value=v) for k, v in params.items()])
    player = Player(ros.context, {"camera": "camera"}, {"camera": "/monitor_fit/"})
    ros.add(monitor)
    ros.add(player)
    assert wait_until(lambda: monitor.cameras["camera"].pubs["joints"].get_subscription_count()
                      and player.depth_pubs["camera"].get_subscription_count())
    return monitor, player


def send_until(player, predicate, stamp):
    return wait_until(lambda: (player.publish("camera", depth_frame(), stamp, FRAME, K),
                               predicate())[1])


def test_corners_fit_failure_then_success_then_recheck(ros, bedfit):
    corners = [10.0, 20.0, 230.0, 20.0, 230.0, 300.0, 10.0, 300.0]
    bedfit.fail = True
    monitor, player = start(ros, **{"camera.bed_region": "corners", "camera.corners_px": corners,
                                    "camera.refit_period_s": 0.3})
    problems = monitor.problems
    try:
        # Single camera: outputs straight under the node (~/joints).
        assert monitor.cameras["camera"].pubs["joints"].topic_name == "/monitor_fit/joints"
        assert send_until(player, lambda: problems.snapshot("camera")[0].get("bed_fit"), 1)
        assert player.stamped("camera", "joints", 1) is None
        assert bedfit.calls[0] == ("corners", (320, 240), [[10, 20], [230, 20], [230, 300],
                                                           [10, 300]])
        bedfit.fail = False
        assert send_until(player, lambda: player.stamped("camera", "joints", 2), 2)
        cx, cy = BED_CENTRE_LABEL
        pelvis = marker_points(player.stamped("camera", "joints", 2).markers[0])[0]
        joints_bed = FakeEstimator().predict(torch.zeros(1, 1, 128, 54)).joints[0, 0].numpy()
        np.testing.assert_allclose(pelvis[:2], [joints_bed[0] - cx, cy - joints_bed[1]],
                                   atol=1e-5)
        # Re-checked after refit_period_s: a failed check keeps the previous pose ...
        bedfit.fail = True
        assert send_until(player, lambda: problems.snapshot("camera")[0].get("bed_refit"), 3)
        assert ("change", False, "auto") in bedfit.calls
        assert send_until(player, lambda: player.stamped("camera", "joints", 4), 4)
        # ... and a bed that moved is found again from its corners.
        bedfit.fail, bedfit.moved = False, True
        fits = sum(call[0] == "corners" for call in bedfit.calls)
        assert send_until(player, lambda: problems.snapshot("camera")[0].get("bed_moved"), 5)
        # (the move is reported just before the re-fit runs, on the inference thread)
        assert wait_until(lambda: sum(call[0] == "corners" for call in bedfit.calls) > fits)
    finally:
        ros.remove(player)
        ros.remove(monitor)


def test_auto_fit_once_with_head_side(ros, bedfit):
    monitor, player = start(ros, **{"camera.bed_region": "auto", "camera.head_side": "left",
                                    "camera.refit_period_s": 0.0})
    try:
        for stamp in (1, 2, 3):
            assert send_until(player, lambda s=stamp: player.stamped("camera", "joints", s), stamp)
        assert bedfit.calls == [("auto", (320, 240), "left")]
    finally:
        ros.remove(player)
        ros.remove(monitor)


def test_weak_auto_fit_is_warned_and_fitted_again(ros, bedfit, monkeypatch):
    """A weak fit (an edge hardly seen) serves frames with a WARN naming disrt-fit-bed and
    the corners, and is fitted again every RETRY_S (not refit_period_s) until one is not
    weak; then the re-check schedule is refit_period_s's again."""
    import disrt_ros.pipeline

    monkeypatch.setattr(disrt_ros.pipeline, "RETRY_S", 0.05)
    bedfit.weak = True
    # bed_fit_frames 1: a fit made from fewer frames than it asks for is redone after
    # RETRY_S too, which would add fits here as the machine's load decides
    monitor, player = start(ros, **{"camera.bed_region": "auto", "camera.refit_period_s": 0.0,
                                    "camera.bed_fit_frames": 1})
    problems = monitor.problems
    try:
        assert send_until(player, lambda: player.stamped("camera", "joints", 1), 1)
        assert problems.snapshot("camera")[0].get("bed_weak")
        message = problems.snapshot("camera")[1][2]
        assert "disrt-fit-bed" in message and "corners" in message and "0.05" in message
        assert "1 edge hardly seen" in message
        assert send_until(player, lambda: sum(c[0] == "auto" for c in bedfit.calls) >= 2, 2)
        bedfit.weak = False
        fits = sum(c[0] == "auto" for c in bedfit.calls)
        assert send_until(player, lambda: not monitor.cameras["camera"].bed.weak, 3)
        settled = sum(c[0] == "auto" for c in bedfit.calls)
        assert settled in (fits, fits + 1)  # one in flight may have read weak = False
        for stamp in (4, 5, 6):
            assert send_until(player, lambda s=stamp: player.stamped("camera", "joints", s),
                              stamp)
        assert sum(c[0] == "auto" for c in bedfit.calls) == settled  # refit_period_s 0: never
    finally:
        ros.remove(player)
        ros.remove(monitor)


def test_auto_fit_on_the_median_of_the_last_frames(ros, bedfit, monkeypatch):
    """bed_fit_frames 3: the first fit (at start-up) takes the one frame there is, and, made
    from fewer than 3 frames, is fitted again after RETRY_S on the per-pixel median of the
    last 3. The frames cycle through three patterns whose median is none of them (2000 mm
    everywhere), so only a median can give it."""
    import disrt_ros.pipeline as pipeline

    monkeypatch.setattr(pipeline, "RETRY_S", 0.05)
    base = depth_frame()
    half = base.shape[1] // 2
    patterns = []
    for left, right in ((1990, 2010), (2010, 2000), (2000, 1990)):
        frame = np.empty_like(base)
        frame[:, :half], frame[:, half:] = left, right
        patterns.append(frame)
    monitor, player = start(ros, **{"camera.bed_region": "auto", "camera.head_side": "top",
                                    "camera.bed_fit_frames": 3})
    cam = monitor.cameras["camera"]
    sent = [0]

    def taken(pattern) -> bool:
        return bool(cam.recent) and np.array_equal(cam.recent[-1], pattern)

    def publish_next() -> None:
        """The next pattern, sent until the node has taken it in (a busy node drops
        waiting frames, and a machine's load must not decide which three it keeps); sent
        again only after half a second without it, a message lost on the way."""
        pattern = patterns[sent[0] % 3]
        sent[0] += 1
        for _ in range(int(TIMEOUT / 0.5)):
            player.publish("camera", pattern, sent[0], FRAME, K)
            if wait_until(lambda: taken(pattern), 0.5):
                return

    def median_fit():
        return any((d == 2000).all() for d in bedfit.depths[1:])

    try:
        assert wait_until(lambda: (publish_next(), median_fit())[1])
        first = bedfit.depths[0]
        assert any(np.array_equal(first, p) for p in patterns)  # one frame, not a median
    finally:
        ros.remove(player)
        ros.remove(monitor)


def body_at_top(T: np.ndarray, frame: np.ndarray) -> bool:
    """Whether the raised box of ``frame`` lies in the top half of the network image made
    with ``T`` (resampled independently of the node)."""
    from disrt_core.geometry.camera import raw_to_network

    net = raw_to_network(torch.from_numpy(frame.astype(np.float32))[None],
                         torch.from_numpy(K)[None].float(), torch.from_numpy(T)[None].float())[0]
    return bool(net[:64].mean() < net[64:].mean())  # raised: nearer, fewer mm


def body_frames() -> list[np.ndarray]:
    """Two frames of a 25 cm box lying at one end of the bed or at the other."""
    frames = []
    for rows in (slice(20, 120), slice(200, 300)):
        frame = np.full((320, 240), 2000, np.uint16)
        frame[rows, 80:160] = 1750
        frames.append(frame)
    return frames


def present_if_body_at_top(depth: torch.Tensor) -> torch.Tensor:
    """A stand-in network's presence: high only for a body in the top half of its image."""
    return torch.where(depth[:, 0, :64].mean((1, 2)) < depth[:, 0, 64:].mean((1, 2)),
                       0.97, 0.03)


def start_head_end_test(ros, bedfit, **params):
    """The node with ``bed_region: auto`` on the stand-in fit, fitted on one frame; a frame
    with the body at the end opposite the fit's head end. (monitor, player, the fit, the
    frame, its stamps)."""
    assumed = bedfit._fit()
    frame = next(f for f in body_frames() if not body_at_top(assumed.T_cam_bed, f))
    monitor, player = start(ros, **{"camera.bed_region": "auto", "camera.refit_period_s": 0.0,
                                    "camera.bed_fit_frames": 1, **params})
    return monitor, player, assumed, frame, iter(range(1, 10_000))


def publish_until(player, frame, stamps, predicate) -> bool:
    """Publish ``frame`` with the next stamp until ``predicate()`` holds (wait_until's)."""
    return wait_until(lambda: (player.publish("camera", frame, next(stamps), FRAME, K),
                               predicate())[1])


def test_head_end_told_by_the_person(ros, bedfit, monkeypatch):
    """An automatic fit that cannot tell the head end, someone lying with the head at the
    assumed foot end: the pose network's presence (here a stand-in that is high only for a
    body in the top half of its image) on the network image and on it turned votes; after
    head_end.MIN_FRAMES frames the bed is turned, its head end known, and a weak fit's
    re-fits (every RETRY_S, again with the head end unknown) keep the turned bed."""
    import disrt_ros.pipeline

    monkeypatch.setattr(disrt_ros.pipeline, "RETRY_S", 0.05)
    bedfit.head_known, bedfit.weak = False, True
    monitor, player, assumed, frame, stamps = start_head_end_test(ros, bedfit,
                                                                  posture_source="pose")
    monitor.estimator.present_fn = present_if_body_at_top
    camera = monitor.cameras["camera"]
    try:
        assert publish_until(player, frame, stamps,
                             lambda: camera.bed is not None and camera.bed.head_known)
        np.testing.assert_allclose(camera.bed.corners, assumed.corners[[2, 3, 0, 1]])
        assert body_at_top(camera.bed.T_cam_bed, frame)  # the head now at the network's top
        assert 0.99 < camera.bed.head_confidence < 1
        fits = sum(c[0] == "auto" for c in bedfit.calls)
        assert publish_until(player, frame, stamps,
                             lambda: sum(c[0] == "auto" for c in bedfit.calls) >= fits + 2)
        assert camera.bed.head_known and camera.bed.weak  # a re-fit, turned as told
        np.testing.assert_allclose(camera.bed.corners, assumed.corners[[2, 3, 0, 1]])
    finally:
        ros.remove(player)
        ros.remove(monitor)


class HeadAtTopClassifier(PostureNet):
    """A stand-in posture classifier with the head end's output: log-odds +6 where the body
    lies in the top half of its image, −6 where in the bottom half; supine."""

    def __init__(self) -> None:
        super().__init__(PostureNetConfig(widths=(4,), head_end=True))

    def forward(self, depth: torch.Tensor) -> torch.Tensor:
        at_top = depth[:, 0, :64].mean((1, 2)) < depth[:, 0, 64:].mean((1, 2))
        head = torch.where(at_top, 6.0, -6.0)
        return torch.cat([torch.zeros(len(depth), 4), head[:, None]], 1)


def test_head_end_told_by_the_posture_classifier(ros, bedfit, monkeypatch):
    """With a posture classifier that has the head end's output (posture_source: classifier)
    its log-odds on each frame vote, while the pose network's presence says nothing about
    the end (the same both ways round) and is never asked about a turned image: the bed is
    turned after head_end.MIN_FRAMES frames, its head end known."""
    import disrt_ros.pipeline

    monkeypatch.setattr(disrt_ros.pipeline, "load_posture_net",
                        lambda device: HeadAtTopClassifier().eval())
    turned = []
    real_turn = head_end.turned_image
    monkeypatch.setattr(head_end, "turned_image", lambda x: (turned.append(x), real_turn(x))[1])
    bedfit.head_known = False
    monitor, player, assumed, frame, stamps = start_head_end_test(ros, bedfit)
    camera = monitor.cameras["camera"]
    try:
        assert publish_until(player, frame, stamps,
                             lambda: camera.bed is not None and camera.bed.head_known)
        np.testing.assert_allclose(camera.bed.corners, assumed.corners[[2, 3, 0, 1]])
        assert body_at_top(camera.bed.T_cam_bed, frame)
        assert camera.bed.head_confidence > 0.99  # sigmoid(6)
        assert not turned  # no second inference
    finally:
        ros.remove(player)
        ros.remove(monitor)


def test_head_end_the_fit_told_is_checked_by_the_person(ros, bedfit):
    """A fit sure of its head end, someone lying the other way round: checked on every frame
    while the person's votes doubt it, the bed is turned at the firmer threshold (the fit's
    own log-odds), with a WARN that names head_side."""
    monitor, player, assumed, frame, stamps = start_head_end_test(ros, bedfit,
                                                                  posture_source="pose")
    monitor.estimator.present_fn = present_if_body_at_top
    camera, problems = monitor.cameras["camera"], monitor.problems
    try:
        assert publish_until(player, frame, stamps,
                             lambda: problems.snapshot("camera")[0].get("head_turned"))
        assert "head_side" in problems.snapshot("camera")[1][2]
        np.testing.assert_allclose(camera.bed.corners, assumed.corners[[2, 3, 0, 1]])
        assert body_at_top(camera.bed.T_cam_bed, frame) and camera.head_checked
    finally:
        ros.remove(player)
        ros.remove(monitor)


def test_auto_fit_with_the_real_bedfit_in_a_room(ros):
    """The real fit in a bedroom seen by a D435 at 640x480 from 2.4 m, the bed's long axis
    across the image (floor, legs, a bedside table, a table higher than the mattress, a sofa
    in view): the node finds the mattress, decides the head end from the person and the
    pillow, and serves frames in that bed frame."""
    from test.core.geometry.bedscenes import bedroom, view

    scene = view(bedroom(), "d435_640x480", 2.4, yaw=math.pi / 2, seed=1)
    depth = scene.depth_raw[0].numpy().astype(np.uint16)
    K_room = scene.K[0].numpy()
    monitor, player = start(ros, **{"camera.bed_region": "auto"})
    try:
        assert wait_until(lambda: (player.publish("camera", depth, 1, FRAME, K_room),
                                   player.stamped("camera", "joints", 1))[1])
        bed = monitor.cameras["camera"].bed
        assert bed.head_known
        truth = scene.T_cam_bed[0].numpy()
        np.testing.assert_allclose(bed.T_cam_bed[:3, 3], truth[:3, 3], atol=0.05)
        # The bed frame's axes: y (toward the head) and z (up) within 3 degrees.
        for axis in (1, 2):
            assert bed.T_cam_bed[:3, axis] @ truth[:3, axis] > math.cos(math.radians(3))
        # The head end is where the person's head is, across the image (the true bed's +y).
        head = bed.corners[:2].mean(0)
        foot = bed.corners[2:].mean(0)
        assert (head - foot) @ truth[:3, 1] > 1.8 and abs((head - foot)[0]) > 1.8
    finally:
        ros.remove(player)
        ros.remove(monitor)


def test_auto_refuses_a_room_without_a_bed(ros):
    """The floor alone (the D455 failure of the issue): no mattress, an ERROR naming why,
    and no skeleton."""
    from test.core.geometry.bedscenes import bedroom, view

    room = bedroom(person=False, pillow=False, headboard=None, furniture=False)
    room.boxes = []  # the floor alone
    scene = view(room, "d455_640x360", 2.6, seed=2)
    depth = scene.depth_raw[0].numpy().astype(np.uint16)
    monitor, player = start(ros, **{"camera.bed_region": "auto"})
    try:
        assert wait_until(lambda: (
            player.publish("camera", depth, 1, FRAME, scene.K[0].numpy()),
            monitor.problems.snapshot("camera")[0].get("bed_fit"))[1])
        _, last = monitor.problems.snapshot("camera")
        assert last[3] == "error" and "no bed found" in last[2]
        assert player.stamped("camera", "joints", 1) is None
    finally:
        ros.remove(player)
        ros.remove(monitor)


def test_rate_limit_skips_frames_and_counts_them(ros):
    """At rate_limit_hz 5 a frame goes to inference only when 0.2 s have passed since the
    previous one; the others are counted. Frames are sent one after the other as the node
    receives them, for at least a second: whatever the machine's speed, at most 1 + 5 × the
    seconds spent pass, at least 2."""
    monitor, player = start(ros, rate_limit_hz=5.0)
    cam = monitor.cameras["camera"]
    try:
        sent, first, start_time = 0, None, time.monotonic()
        while first is None or time.monotonic() - first < 1.0 or sent < 20:
            player.publish("camera", depth_frame(), 100 + sent, FRAME, K)
            sent += 1
            assert wait_until(lambda n=sent: cam.received.total >= n)
            first = first or time.monotonic()
        elapsed = time.monotonic() - start_time  # every frame was received within it
        stats = monitor.worker.stats["camera"]
        submitted = stats.submitted
        assert 2 <= submitted <= 2 + 5.0 * elapsed, (submitted, elapsed)
        assert cam.rate_limited == cam.received.total - submitted > 0
        # Each submitted frame is answered, or replaced while inference was busy (a loaded
        # machine): none is lost.
        assert wait_until(lambda: stats.processed + stats.dropped == submitted
                          and monitor.worker.pending() == 0)
        assert cam.published.total == stats.processed >= 1
    finally:
        ros.remove(player)
        ros.remove(monitor)


def test_console_script_start_up_error_and_help(capsys):
    """A missing checkpoint stops the real process with exit code 2 and a message naming
    the parameter and the fix (fresh process: rclpy.init, failed start-up, shutdown)."""
    run = subprocess.run(
        [sys.executable, "-m", "disrt_ros.node", "--ros-args", "-p", "device:=cpu",
         "-p", "checkpoint:=/nonexistent/model.safetensors"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert run.returncode == 2, run.stderr
    assert "parameter 'checkpoint'" in run.stderr and "checkpoint:=" in run.stderr
    with pytest.raises(SystemExit) as exit_info:  # argparse runs before rclpy.init
        main(["disrt-bed-monitor", "--help", "--ros-args", "-p", "device:=cpu"])
    assert exit_info.value.code == 0 and "--ros-args" in capsys.readouterr().out
