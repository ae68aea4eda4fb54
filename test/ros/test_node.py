"""The bed monitor node in real rclpy, with a fake estimator (test/ros/fakes.py).

One monitor serves two cameras: ``bed1`` (CameraInfo published, frame id checked) and
``bed2`` (no CameraInfo: configured intrinsics). Both look straight down from 2 m over the
bed centre, so the label -> camera mapping is known by hand:
``p_cam = (x − cx, −(y − cy), 2 − z)`` with (cx, cy) the bed centre.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")

import torch
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.parameter import Parameter
from visualization_msgs.msg import Marker

from disrt_core.geometry.bedframe import BED_CENTRE_LABEL, normalize_depth
from disrt_core.geometry.camera import raw_to_network
from disrt_ros.conversions import cloud_to_points, image_to_array
from disrt_ros.markers import NEUTRAL_RGBA, marker_points
from disrt_ros.node import BedMonitorNode

from .fakes import CAM_HEIGHT, HEIGHT, WIDTH, FakeEstimator, K, depth_frame
from .rosutil import OUTPUTS, TIMEOUT, Player, wait_until

pytestmark = pytest.mark.ros
FRAME1 = "bed1_depth_optical_frame"


@pytest.fixture(scope="module")
def setup(ros):
    fake = FakeEstimator()
    threads = torch.get_num_threads()  # the node sets 1 for the process: restored below
    params = {
        "cameras": ["bed1", "bed2"], "diagnostics_period_s": 0.2, "display_rate_hz": 0.0,
        "cpu_threads": 1, "posture_source": "pose",  # the fake's root gives the posture
        "bed1.namespace": "cam1", "bed1.frame_id": FRAME1, "bed1.camera_height_m": CAM_HEIGHT,
        "bed1.bed_region": "pose", "bed2.bed_region": "pose",
        "bed2.namespace": "cam2", "bed2.camera_height_m": CAM_HEIGHT,
        "bed2.intrinsics": [K[0, 0], K[1, 1], K[0, 2], K[1, 2]],
    }
    monitor = BedMonitorNode(estimator=fake, context=ros.context, parameter_overrides=[
        Parameter(k, value=v) for k, v in params.items()])
    logged = []
    log = monitor.problems.log
    monitor.problems.log = lambda level, text: (logged.append((level, text)), log(level, text))
    tester = Player(ros.context, {"bed1": "cam1", "bed2": "cam2"},
                    {"bed1": "/bed_monitor/bed1/", "bed2": "/bed_monitor/bed2/"})
    ros.add(monitor)
    ros.add(tester)
    assert wait_until(lambda: all(  # the outputs the tester subscribes to (rosutil.OUTPUTS)
        cam.pubs[name].get_subscription_count() > 0 for cam in monitor.cameras.values()
        for name in OUTPUTS) and all(
        p.get_subscription_count() > 0 for p in tester.depth_pubs.values()))
    stamps = iter(range(1, 10**6))
    yield monitor, tester, fake, logged, stamps
    ros.remove(tester)
    ros.remove(monitor)
    torch.set_num_threads(threads)


def serve(tester, camera, stamps, *, depth=None, frame_id=FRAME1, with_info=True, **kw):
    """Publish one frame and return its stamp once its joints have arrived."""
    stamp = next(stamps)
    depth = depth_frame(CAM_HEIGHT) if depth is None else depth
    end = time.monotonic() + TIMEOUT
    while time.monotonic() < end:  # best-effort input: resend until the result comes
        tester.publish(camera, depth, stamp, frame_id, K if with_info else None, **kw)
        if wait_until(lambda: tester.stamped(camera, "joints", stamp), timeout=1.0):
            return stamp
    raise AssertionError(f"no result for frame {stamp} of {camera}")


def expected_camera_joints(depth: np.ndarray) -> np.ndarray:
    """The fake's joints on this frame (its own preprocessing), mapped by hand to the camera."""
    T = torch.eye(4)
    T[:3, :3] = torch.diag(torch.tensor([1.0, -1.0, -1.0]))
    T[:3, 3] = torch.tensor([-BED_CENTRE_LABEL[0], BED_CENTRE_LABEL[1], CAM_HEIGHT])
    net = normalize_depth(raw_to_network(torch.from_numpy(depth[None].astype(np.float32)),
                                         torch.from_numpy(K[None]).float(), T[None]), 2101.0)
    joints = FakeEstimator().predict(net[:, None]).joints[0].numpy().astype(np.float64)
    cx, cy = BED_CENTRE_LABEL
    return np.stack([joints[:, 0] - cx, -(joints[:, 1] - cy), CAM_HEIGHT - joints[:, 2]], 1)


def test_outputs_stamped_framed_and_equal_to_the_estimate(setup):
    _, tester, _, _, stamps = setup
    depth = depth_frame(CAM_HEIGHT, body_mm=300.0)
    stamp = serve(tester, "bed1", stamps, depth=depth)
    topics = [t for t in OUTPUTS if not t.endswith("_text")]  # the texts have no header
    assert wait_until(lambda: all(tester.stamped("bed1", t, stamp) for t in topics)), \
        [t for t in topics if not tester.stamped("bed1", t, stamp)]
    expected = expected_camera_joints(depth)
    # The fake lifts its skeleton by the mean input: a frame without the box differs.
    assert np.abs(expected - expected_camera_joints(depth_frame(CAM_HEIGHT, 0.0))).max() > 1e-3

    joints = tester.stamped("bed1", "joints", stamp)
    for marker in joints.markers:
        assert marker.header.frame_id == FRAME1 and marker.header.stamp.nanosec == 1000 * stamp
    np.testing.assert_allclose(marker_points(joints.markers[0]), expected, atol=1e-5)
    assert joints.markers[0].colors[0].b == pytest.approx(NEUTRAL_RGBA[2])  # K = 1

    pose = tester.stamped("bed1", "pose", stamp)
    positions = np.array([[p.position.x, p.position.y, p.position.z] for p in pose.poses])
    np.testing.assert_allclose(positions, expected, atol=1e-5)
    # Root orientation Ry(π/2) in the bed frame, seen from the camera: diag(1,−1,−1)·Ry(π/2)
    # = [[0,0,1],[0,−1,0],[1,0,0]], a half turn about (1,0,1)/√2: q = ±(1/√2, 0, 1/√2, 0).
    q = pose.poses[0].orientation
    r = np.sqrt(0.5)
    assert np.allclose(np.abs([q.x, q.y, q.z, q.w]), [r, 0, r, 0], atol=1e-5)

    payload = json.loads(tester.stamped("bed1", "pose_json", stamp).data)
    assert payload["stamp"]["sec"] == stamp and payload["frame_id"] == FRAME1
    assert payload["camera"] == "bed1" and payload["model_id"] == "fake-model"
    assert payload["posture"] == "left" and payload["joint_names"][15] == "head"
    np.testing.assert_allclose(payload["joints"], expected, atol=1e-4)
    posture = tester.stamped("bed1", "posture", stamp)  # stamped: tied to its frame
    assert posture.header.frame_id == FRAME1 and posture.header.stamp.nanosec == 1000 * stamp
    (status,) = posture.status
    assert (status.name, status.message, status.hardware_id) == ("posture", "left", "bed1")
    assert status.level == DiagnosticStatus.OK
    assert {kv.key: kv.value for kv in status.values}["posture"] == "left"
    assert wait_until(lambda: tester.latest("bed1", "posture_text") is not None)
    assert tester.latest("bed1", "posture_text").data == "left"

    vertices = cloud_to_points(tester.stamped("bed1", "mesh_cloud", stamp))
    assert vertices.shape == (4, 3)
    np.testing.assert_allclose(vertices[:, 2], expected[0, 2], atol=1e-5)  # flat at the pelvis
    mesh = tester.stamped("bed1", "mesh", stamp)
    assert mesh.type == Marker.TRIANGLE_LIST and mesh.header.frame_id == FRAME1
    np.testing.assert_allclose(marker_points(mesh), vertices[[0, 1, 2, 0, 2, 3]], atol=1e-5)

    overlay = tester.stamped("bed1", "overlay", stamp)
    assert (overlay.encoding, overlay.height, overlay.width) == ("bgr8", 512, 216)
    image = image_to_array(overlay)
    assert image[0, 0].tolist() == [255, 255, 255]  # bed (normalised 1) at the head corner
    assert image[300, 108].max() < 255  # the box is darker than the bed

    assert wait_until(lambda: tester.status("camera bed1", lambda v: int(
        v["frames_published"]) >= 1 and v["intrinsics"] == "camera_info"))
    engine = tester.status(": inference")
    assert engine[1]["model_id"] == "fake-model" and engine[1]["device"] == "cpu"
    assert float(engine[1]["latency_p99_ms"]) > 0
    for stage in ("decode", "preprocess", "infer", "results", "deliver"):
        assert float(engine[1][f"stage_{stage}_p50_ms"]) >= 0


def test_missing_camera_info_uses_configured_intrinsics_and_cameras_batch(setup):
    monitor, tester, fake, logged, stamps = setup
    stamp = serve(tester, "bed2", stamps, frame_id="any_frame", with_info=False)
    msg = tester.stamped("bed2", "joints", stamp)
    assert msg.markers[0].header.frame_id == "any_frame"  # bed2 accepts any frame id
    np.testing.assert_allclose(marker_points(msg.markers[0]),
                               expected_camera_joints(depth_frame(CAM_HEIGHT)), atol=1e-5)
    assert any(level == "warn" and "[bed2] no CameraInfo" in text and "configured" in text
               for level, text in logged)
    assert wait_until(lambda: tester.status("camera bed2", lambda v: v["intrinsics"] ==
                                            "parameter" and int(v["problems_no_camera_info"]) >= 1))
    # Frames of both beds waiting together go through one predict call.
    batch_count = fake.batch_sizes.count(2)
    fake.hold()
    try:
        received = {n: monitor.cameras[n].received.total for n in ("bed1", "bed2")}
        tester.publish("bed1", depth_frame(), next(stamps), FRAME1, K)  # keeps the worker busy
        assert fake.entered.wait(TIMEOUT)
        a, b = next(stamps), next(stamps)
        tester.publish("bed1", depth_frame(), a, FRAME1, K)
        tester.publish("bed2", depth_frame(), b, "any_frame")
        assert wait_until(lambda: all(monitor.cameras[n].received.total > received[n] + (
            n == "bed1") for n in received))  # both are waiting in their slots
    finally:
        fake.release()
    assert wait_until(lambda: tester.stamped("bed1", "joints", a) and
                      tester.stamped("bed2", "joints", b))
    assert fake.batch_sizes.count(2) > batch_count


BAD = {
    "encoding": dict(depth=np.zeros((HEIGHT, WIDTH, 3), np.uint8), encoding="rgb8"),
    "size": dict(depth=depth_frame()[:, :200]),  # CameraInfo says 240 wide
    "empty": dict(depth=np.zeros((HEIGHT, WIDTH), np.uint16)),
    "empty_nan": dict(depth=np.full((HEIGHT, WIDTH), np.nan, np.float32), encoding="32FC1"),
    "unknown_camera": dict(depth=depth_frame(), frame_id="some_other_camera"),
}
#: /diagnostics level of the camera in the report after such a frame (diagnostics table):
#: unreadable frames are errors, frames skipped for their content warnings.
BAD_LEVEL = {"encoding": DiagnosticStatus.ERROR, "size": DiagnosticStatus.ERROR,
             "empty": DiagnosticStatus.WARN, "unknown_camera": DiagnosticStatus.ERROR}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_logged_reported_and_the_next_frame_served(setup, case):
    monitor, tester, _, logged, stamps = setup
    kind = case.removesuffix("_nan")
    before = monitor.problems.snapshot("bed1")[0].get(kind, 0)
    bad = dict(BAD[case])
    depth, frame_id = bad.pop("depth"), bad.pop("frame_id", FRAME1)
    first = ("bed1", kind) not in monitor.problems._seen
    n_logged = len(logged)
    stamp = next(stamps)
    assert wait_until(lambda: (tester.publish("bed1", depth, stamp, frame_id, K,
                                              info_shape=(HEIGHT, WIDTH), **bad),
                               monitor.problems.snapshot("bed1")[0].get(kind, 0) > before)[1])
    levels = ("warn", "error") if first else ("debug",)  # once per kind, then debug
    assert any(level in levels and text.startswith("[bed1]")
               for level, text in logged[n_logged:]), logged[n_logged:]
    def first_report():
        return next((status for status, v in tester.history("camera bed1")
                     if int(v.get(f"problems_{kind}", 0)) > before), None)

    assert wait_until(first_report)
    assert first_report().level == BAD_LEVEL[kind], first_report().message
    # Nothing made of the bad frame: no skeleton (at most the markers cleared away).
    answer = tester.stamped("bed1", "joints", stamp)
    assert answer is None or all(m.action == Marker.DELETEALL for m in answer.markers)
    serve(tester, "bed1", stamps)  # and the node still serves


def test_inference_failure_is_reported_and_recovered(setup):
    _, tester, fake, logged, stamps = setup
    fake.fail_next = True
    stamp = next(stamps)
    assert wait_until(lambda: (tester.publish("bed1", depth_frame(), stamp, FRAME1, K),
                               not fake.fail_next)[1])
    assert wait_until(lambda: any(
        s.level == DiagnosticStatus.ERROR and s.name.endswith(": inference")
        for a in list(tester.diagnostics) for s in a.status))
    assert any("fake inference failure" in text for _, text in logged)
    assert wait_until(lambda: tester.status(": inference", lambda v: "fake inference failure"
                                            in v["last_error"]))
    serve(tester, "bed1", stamps)


def test_dynamic_sampling_parameters(setup):
    monitor, tester, fake, _, stamps = setup
    result = monitor.set_parameters([Parameter("ddim_steps", value=3),
                                     Parameter("hypotheses", value=4)])
    assert all(r.successful for r in result)
    for name, value in (("ddim_steps", 0), ("max_batch", 2), ("checkpoint", "x")):
        assert not monitor.set_parameters([Parameter(name, value=value)])[0].successful
    try:
        stamp = serve(tester, "bed1", stamps)
        assert fake.sampling["steps"] == 3 and fake.sampling["hypotheses"] == 4
        spheres = tester.stamped("bed1", "joints", stamp).markers[0]
        # spread 0.005·i: joint 23 (11.5 cm) is red, joint 0 green.
        assert spheres.colors[23].r == pytest.approx(1.0) and spheres.colors[23].g == 0.0
        assert spheres.colors[0].g == pytest.approx(1.0) and spheres.colors[0].r == 0.0
        assert wait_until(lambda: tester.stamped("bed1", "pose_json", stamp))
        assert json.loads(tester.stamped("bed1", "pose_json", stamp).data)["hypotheses"] == 4
    finally:
        monitor.set_parameters([Parameter("ddim_steps", value=5),
                                Parameter("hypotheses", value=1)])


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def waiting_stamp(monitor, camera: str) -> int | None:
    job = monitor.worker.waiting(camera)
    return None if job is None else job.payload.header.stamp.sec


def test_flood_while_inference_is_busy_keeps_only_the_newest_frame(setup):
    """200 frames sent while the estimator is held: each replaces the waiting one (counted
    as dropped), memory does not grow with them, and the frame answered next is the newest;
    /diagnostics then warns that most frames are dropped."""
    monitor, tester, fake, _, stamps = setup
    stats, cam = monitor.worker.stats["bed1"], monitor.cameras["bed1"]
    depth = depth_frame()
    sent = []
    fake.hold()
    try:
        tester.publish("bed1", depth, next(stamps), FRAME1, K)
        assert fake.entered.wait(TIMEOUT)  # inference is busy from here on
        rss0, dropped0, received0 = rss_mb(), stats.dropped, cam.received.total
        for i in range(200):  # each once the node has the previous: none lost on the way
            sent.append(next(stamps))
            tester.publish("bed1", depth, sent[-1], FRAME1, K)
            assert wait_until(lambda n=i + 1: cam.received.total - received0 >= n)
        assert wait_until(lambda: waiting_stamp(monitor, "bed1") == sent[-1])
        rss1 = rss_mb()
        received = cam.received.total - received0
        assert monitor.worker.pending() == 1
        assert stats.dropped - dropped0 == received - 1  # all but the newest replaced
    finally:
        fake.release()
    assert wait_until(lambda: tester.stamped("bed1", "joints", sent[-1]))
    answered = {m.markers[0].header.stamp.sec for m in tester.received[("bed1", "joints")]}
    assert not answered & set(sent[:-1])  # none of the replaced frames was processed
    print(f"flood: sent {len(sent)}, received {received}, RSS {rss0:.0f} -> {rss1:.0f} MB")
    assert received == len(sent)
    assert rss1 - rss0 < 10.0, f"memory grew by {rss1 - rss0:.1f} MB"  # frames: 150 KB each
    assert wait_until(lambda: tester.status("camera bed1", lambda v: int(
        v["dropped_frames"]) >= stats.dropped))
    level = tester.status("camera bed1", lambda v: float(v["dropped_share"]) > 0.75)
    assert level is not None and level[0].level == DiagnosticStatus.WARN
    assert "dropped" in level[0].message and "rate_limit_hz" in level[0].message


def test_stage_times_put_the_estimator_time_where_it_is_spent(setup):
    monitor, tester, fake, _, stamps = setup
    fake.delay_s = 0.05
    try:
        serve(tester, "bed1", stamps)
    finally:
        fake.delay_s = 0.0
    times = {stage: w.values()[-1] for stage, w in monitor.pipeline.stage_times.items()}
    assert times["infer"] >= 0.05  # the fake's sleep: a lower bound, whatever the load
    assert times["decode"] < times["infer"]


def test_output_publishers_carry_no_qos_event_handlers(setup):
    """Each handler costs the executor a wait-set entry per message taken; the depth
    subscriptions keep rclpy's (they report a camera driver with an incompatible QoS)."""
    monitor = setup[0]
    pubs = [pub for cam in monitor.cameras.values() for pub in cam.pubs.values()]
    assert len(pubs) == 28 and all(pub.event_handlers == [] for pub in pubs)
    assert all(sub.event_handlers for sub in monitor.subscriptions)


def test_unexpected_callback_error_is_reported_not_fatal(setup, monkeypatch):
    monitor, tester, _, _, stamps = setup
    cam = monitor.cameras["bed1"]
    tick = cam.received.tick
    calls = []

    def broken(now=None):
        calls.append(now)
        if len(calls) == 1:
            raise RuntimeError("meter broke")
        tick(now)

    monkeypatch.setattr(cam.received, "tick", broken)
    stamp = next(stamps)
    assert wait_until(lambda: (tester.publish("bed1", depth_frame(), stamp, FRAME1, K),
                               monitor.problems.snapshot("bed1")[0].get("internal"))[1])
    assert "meter broke" in monitor.problems.last_error
    serve(tester, "bed1", stamps)  # the executor kept spinning


def test_frames_of_two_sizes_in_one_batch_keep_their_own_answers(setup):
    """The pipeline resamples each image size as its own batch and predicts them together:
    every answer goes back to its own job (frames of sizes A, B, A), and a frame whose depth
    makes no sense for its pose is refused without taking another frame's place."""
    from disrt_ros.conversions import array_to_image
    from disrt_ros.worker import Job

    monitor = setup[0]
    cams = monitor.cameras
    saved = {name: cams[name].intrinsics for name in ("bed1", "bed2")}
    K2 = K.copy()
    K2[:2] *= 2
    K2[:2, 2] += 0.5  # the same camera at twice the resolution
    small = depth_frame(CAM_HEIGHT, body_mm=250.0)
    frames = [np.kron(depth_frame(CAM_HEIGHT, body_mm=300.0), np.ones((2, 2), np.uint16)),
              depth_frame(3.3, body_mm=250.0),  # the camera 3.3 m up, configured at 2.0
              np.kron(small, np.ones((2, 2), np.uint16))]
    try:
        cams["bed1"].intrinsics = (K2, (2 * WIDTH, 2 * HEIGHT))
        cams["bed2"].intrinsics = (K, (WIDTH, HEIGHT))
        jobs = [Job(name, array_to_image(depth, "16UC1"))
                for name, depth in zip(("bed1", "bed2", "bed1"), frames)]
        results = monitor.pipeline.run(jobs)
    finally:
        for name, value in saved.items():
            cams[name].intrinsics = value
    assert results[1].kind == "implausible_depth" and "farther" in results[1].message
    for k in (0, 2):
        T = torch.from_numpy(results[k].T_cam_bed).float()[None]
        bed_mm = monitor.config.bed_distance_mm
        net_mm = raw_to_network(torch.from_numpy(frames[k].astype(np.float32))[None],
                                torch.from_numpy(K2).float()[None], T, bed_mm)
        np.testing.assert_allclose(results[k].net_image, normalize_depth(net_mm, bed_mm)[0],
                                   atol=1e-5)
    assert results[0].joints_cam[0, 2] != pytest.approx(results[2].joints_cam[0, 2])


def test_a_raw_depth_topic_is_undistorted_with_its_camera_info_lens(setup):
    """A raw depth topic's CameraInfo with a lens: each frame is moved onto the pinhole of K
    before anything else, with a map made once per calibration; a rectified topic's
    CameraInfo gives P and no map (its D is the raw image's); a lens the node cannot undo
    is reported and no intrinsics are taken from it."""
    from dataclasses import replace

    from sensor_msgs.msg import CameraInfo

    from disrt_core.geometry.lens import undistortion
    from disrt_ros.conversions import array_to_image

    monitor, logged = setup[0], setup[3]
    cam = monitor.cameras["bed1"]
    saved = (cam.cfg, cam.intrinsics, cam.lens.current, cam.lens._key)
    d = [-0.2, 0.08, 0.0, 0.0, -0.02]
    P = np.hstack([K * np.array([[1.02], [1.02], [1.0]]), np.zeros((3, 1))])
    info = CameraInfo(height=HEIGHT, width=WIDTH, distortion_model="plumb_bob", d=d,
                      k=K.reshape(-1).tolist(), p=P.reshape(-1).tolist())
    depth = depth_frame(CAM_HEIGHT)
    try:
        cam.cfg = replace(cam.cfg, depth_topic="/cam1/depth/image_raw")
        monitor._on_info("bed1", info)
        lens = cam.lens.current
        assert lens is not None and lens.model == "plumb_bob" and lens.max_shift_px > 1
        np.testing.assert_array_equal(cam.intrinsics[0], K)
        monitor._on_info("bed1", info)
        assert cam.lens.current is lens  # the same calibration: the same map
        frame = monitor.pipeline.prepare(cam, array_to_image(depth, "16UC1"))
        expected = undistortion(K, "plumb_bob", d, (WIDTH, HEIGHT))(depth.astype(np.float32))
        np.testing.assert_array_equal(frame.depth_mm, expected)
        assert not np.array_equal(frame.depth_mm, depth.astype(np.float32))

        cam.cfg = replace(cam.cfg, depth_topic="/cam1/depth/image_rect_raw")
        monitor._on_info("bed1", info)
        assert cam.lens.current is None
        np.testing.assert_allclose(cam.intrinsics[0], P[:, :3])
        frame = monitor.pipeline.prepare(cam, array_to_image(depth, "16UC1"))
        np.testing.assert_array_equal(frame.depth_mm, depth.astype(np.float32))

        cam.cfg, cam.intrinsics = replace(cam.cfg, depth_topic="/cam1/depth/image_raw"), None
        monitor._on_info("bed1", CameraInfo(height=HEIGHT, width=WIDTH, distortion_model="fov",
                                            d=[0.3], k=K.reshape(-1).tolist()))
        assert cam.intrinsics is None
        assert any("'fov'" in text and "not supported" in text for _, text in logged)
    finally:
        cam.cfg, cam.intrinsics = saved[:2]
        cam.lens.current, cam.lens._key = saved[2:]
