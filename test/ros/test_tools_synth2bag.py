"""disrt-synth2bag: the night's plan, and a short night written with the generator."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from disrt_ros import bag_msgs
from disrt_ros.bags import (
    CAMERA_INFO,
    DEPTH_INFO_TOPIC,
    DEPTH_TOPIC,
    GT_JOINTS_TOPIC,
    GT_POSE_TOPIC,
    IMAGE,
    MARKER_ARRAY,
    STRING,
    BagReader,
    GroundTruth,
)
from disrt_ros.tools.synth2bag import NightRenderer, Period, plan_night, write_night

START = 1_700_000_000 * 10**9


def test_plan_covers_the_night_in_still_periods():
    periods = plan_night(3000, rate=30, mean_still_s=5, people=3, seed=4)
    assert periods == plan_night(3000, rate=30, mean_still_s=5, people=3, seed=4)
    assert periods[0].start == 0 and periods[-1].stop == 3000
    assert all(a.stop == b.start for a, b in itertools.pairwise(periods))
    assert [p.person for p in periods] == sorted(p.person for p in periods)
    assert {p.person for p in periods} == {0, 1, 2}
    starts = {p.person: p.start for p in reversed(periods)}
    assert starts == {0: 0, 1: 1000, 2: 2000}  # equal shares of the night
    for a, b in itertools.pairwise(periods):
        if a.person == b.person:
            assert b.posture != a.posture  # a cut is a turn
        else:
            assert b.posture == "supine"  # a new occupant lies down on the back
    assert len({p.cover for p in periods} - {0}) == 1  # one cover per night: on or off
    inner = [p for p, q in itertools.pairwise(periods) if p.person == q.person]
    assert all(p.stop - p.start >= 15 for p in inner)  # at least half a second
    assert 10 < len(periods) < 60  # about one change per 5 s of 100 s
    with pytest.raises(ValueError, match="--people"):
        plan_night(10, people=11)


@pytest.fixture(scope="module", params=[("bed", "kinect2"), ("room", "d455_640x360")],
                ids=["bed-kinect2", "room-d455"])
def night(request, tmp_path_factory, anny_body):
    """A short night of SLP's set-up, and one in a whole room (the bed somewhere in a D455's
    640x360 frame; seed 3 puts all of it in view)."""
    from disrt_core.sim import SimConfig

    scene, sensor = request.param
    periods = [Period(0, 5, 0, "supine", 0), Period(5, 9, 0, "left", 2),
               Period(9, 12, 1, "supine", 2)]
    renderer = NightRenderer(anny_body, SimConfig(scene=scene, sensor=sensor), seed=3)
    path = tmp_path_factory.mktemp("synth") / "night"
    assert write_night(path, renderer, periods, start_ns=START) == 12
    return path, periods, renderer


def test_night_bag_layout_and_ground_truth(night):
    path, periods, renderer = night
    with BagReader(path) as bag:
        assert {t: i.count for t, i in bag.topics.items()} == {
            DEPTH_TOPIC: 12, DEPTH_INFO_TOPIC: 12, GT_JOINTS_TOPIC: 12, GT_POSE_TOPIC: 12}
        images = [m for _, m in bag.read(DEPTH_TOPIC, IMAGE)]
        infos = [m for _, m in bag.read(DEPTH_INFO_TOPIC, CAMERA_INFO)]
        truths = [GroundTruth.from_json(m.data) for _, m in bag.read(GT_POSE_TOPIC, STRING)]
        markers = [m for _, m in bag.read(GT_JOINTS_TOPIC, MARKER_ARRAY)]
    K = bag_msgs.camera_info_K(infos[0])
    scene = renderer.gen.config.scene
    if scene == "bed":  # SLP's Kinect v2 (SPEC §7.2)
        np.testing.assert_allclose(K, [[367.8, 0, 208.1], [0, 367.8, 259.7], [0, 0, 1]],
                                   rtol=1e-6)
        size = (512, 424)
    else:  # the D455 at 640x360
        np.testing.assert_allclose(K, [[320, 0, 320], [0, 320, 180], [0, 0, 1]], rtol=1e-6)
        size = (360, 640)
    by_frame = [p for p in periods for _ in range(p.start, p.stop)]
    for i, (image, gt, period) in enumerate(zip(images, truths, by_frame)):
        assert bag_msgs.stamp_ns(image.header) == gt.stamp_ns == START + round(i * 1e9 / 30)
        assert (image.encoding, image.height, image.width) == ("16UC1", *size)
        assert gt.extra["scene"] == scene and gt.extra["bed_in_view"] is True
        assert gt.cover == ("uncover", "cover1", "cover2")[period.cover]
        assert gt.posture == period.posture and gt.subject == period.person + 1
        assert gt.body_model == renderer.gen.body.model_id and gt.source == "synthetic"
        np.testing.assert_allclose(gt.T_cam_bed, truths[0].T_cam_bed)  # one camera all night
        T = gt.T_cam_bed
        np.testing.assert_allclose(gt.joints_camera_m, gt.joints_bed_m @ T[:3, :3].T + T[:3, 3])
        got = np.array([[q.x, q.y, q.z] for q in markers[i].markers[0].points])
        np.testing.assert_allclose(got, gt.joints_camera_m)
    shape = renderer.gen.layout.shape
    same = [gt.body_params[shape] for gt in truths if gt.subject == 1]
    assert all(np.allclose(s, same[0]) for s in same)  # one person through both postures
    assert not np.allclose(truths[-1].body_params[shape], same[0])  # the next occupant


def test_frames_show_the_labelled_body(night):
    """The depth at each projected torso joint is the body (or blanket) surface just above
    the joint: a few cm to ~30 cm nearer the camera than the joint itself, and still frames
    differ only by sensor noise."""
    path, _, _ = night
    with BagReader(path) as bag:
        images = [bag_msgs.image_to_array(m) for _, m in bag.read(DEPTH_TOPIC, IMAGE)]
        truths = [GroundTruth.from_json(m.data) for _, m in bag.read(GT_POSE_TOPIC, STRING)]
        K = bag_msgs.camera_info_K(next(bag.read(DEPTH_INFO_TOPIC, CAMERA_INFO))[1])
    seen = 0
    for depth, gt in zip(images, truths):
        for joint in (0, 3, 6, 9):  # pelvis and spine
            x, y, z = gt.joints_camera_m[joint]
            u, v = round(K[0, 0] * x / z + K[0, 2]), round(K[1, 1] * y / z + K[1, 2])
            patch = depth[v - 2:v + 3, u - 2:u + 3].astype(float)
            if not (patch > 0).any():  # a stereo hole (e.g. the shadow of a wedge beside it)
                continue
            seen += 1
            surface = np.median(patch[patch > 0]) / 1000
            assert 0.0 < z - surface < 0.35, (gt.sample_id, joint, z, surface)
    assert seen >= 0.8 * 4 * len(images)
    still = np.abs(images[0].astype(int) - images[1].astype(int))
    # Fresh noise, same scene: stereo noise grows with z² (about 2 cm at 3 m for the D455),
    # so the bound is 1 % of the range rather than a fixed number of millimetres.
    both = (images[0] > 0) & (images[1] > 0)
    assert 0 < np.median(still[both]) < 0.01 * np.median(images[0][both])
    moved = np.abs(images[0].astype(int) - images[6].astype(int))
    assert np.percentile(moved, 90) > np.percentile(still, 90)  # the sleeper turned


def test_cli_refuses_bad_arguments(tmp_path, capsys):
    from disrt_ros.tools.synth2bag import main

    assert main(["--n-frames", "0", "--out", str(tmp_path / "b")]) == 1
    assert "--n-frames must be at least 1" in capsys.readouterr().err
    assert main(["--n-frames", "5", "--people", "6", "--out", str(tmp_path / "b")]) == 1
    assert "--people must be 1..5" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    assert main(["--n-frames", "5", "--sensor", "d999", "--out", str(tmp_path / "b")]) == 1
    assert "unknown sensor 'd999'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_cli_writes_a_room_night(tmp_path, capsys):
    """--scene room --sensor: the room's frames at the sensor's native size."""
    from disrt_ros.tools.synth2bag import main

    out = tmp_path / "room"
    assert main(["--n-frames", "3", "--scene", "room", "--sensor", "d435_424x240", "--seed",
                 "3", "--body-model", "anny", "--out", str(out), "--quiet"]) == 0
    with BagReader(out) as bag:
        images = [m for _, m in bag.read(DEPTH_TOPIC, IMAGE)]
        truths = [GroundTruth.from_json(m.data) for _, m in bag.read(GT_POSE_TOPIC, STRING)]
    assert [(m.height, m.width) for m in images] == [(240, 424)] * 3
    assert {(gt.extra["scene"], gt.extra["sensor"]) for gt in truths} == {
        ("room", "d435_424x240")}
