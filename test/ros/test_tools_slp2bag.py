"""disrt-slp2bag on a byte-compatible miniature SLP (disrt_core.data.fixtures)."""

from __future__ import annotations

import numpy as np
import pytest

from disrt_core.data import labels
from disrt_core.data.fixtures import write_slp_fixture
from disrt_core.data.slp import raw_depth_path
from disrt_core.geometry.slp import KINECT_DEPTH_K
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
from disrt_ros.tools.slp2bag import main, parse_ids

START = 1_700_000_000


@pytest.fixture(scope="module")
def slp(tmp_path_factory):
    return write_slp_fixture(tmp_path_factory.mktemp("slp"), subjects=(81, 82), poses=(1, 16))


def test_parse_ids():
    assert parse_ids("81-84,90,82", "x") == [81, 82, 83, 84, 90]
    with pytest.raises(Exception, match="ranges like"):
        parse_ids("81-x", "--subjects")


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_slp_bag_holds_frames_and_ground_truth(slp, tmp_path, storage):
    out = tmp_path / "slp"
    assert main(["--slp-root", str(slp.root), "--subjects", "81-82", "--poses", "1,16",
                 "--covers", "uncover,cover2", "--out", str(out), "--rate", "10",
                 "--start", str(START), "--storage", storage, "--quiet"]) == 0
    order = [(s, p, c) for s in (81, 82) for p in (1, 16) for c in ("uncover", "cover2")]
    with BagReader(out) as bag:
        assert {t: i.count for t, i in bag.topics.items()} == {
            DEPTH_TOPIC: 8, DEPTH_INFO_TOPIC: 8, GT_JOINTS_TOPIC: 8, GT_POSE_TOPIC: 8}
        images = list(bag.read(DEPTH_TOPIC, IMAGE))
        infos = list(bag.read(DEPTH_INFO_TOPIC, CAMERA_INFO))
        truths = [GroundTruth.from_json(m.data) for _, m in bag.read(GT_POSE_TOPIC, STRING)]
        markers = [m for _, m in bag.read(GT_JOINTS_TOPIC, MARKER_ARRAY)]
    stamps = [START * 10**9 + i * 100_000_000 for i in range(8)]
    for i, (s, p, c) in enumerate(order):
        t, image = images[i]
        assert t == stamps[i] == bag_msgs.stamp_ns(image.header)
        assert (image.encoding, image.height, image.width) == ("16UC1", 512, 424)
        np.testing.assert_array_equal(bag_msgs.image_to_array(image),
                                      slp.raw[("danaLab", s, c, p)])
        np.testing.assert_array_equal(bag_msgs.camera_info_K(infos[i][1]), KINECT_DEPTH_K)
        gt = truths[i]
        assert (gt.subject, gt.pose, gt.cover, gt.stamp_ns) == (s, p, c, stamps[i])
        label = slp.labels[(s, p)]
        # fits store float32: the label read back agrees with the fixture to ~1e-7
        np.testing.assert_allclose(gt.joints_bed_m, labels.label_joints_m(label), atol=1e-6)
        np.testing.assert_allclose(gt.body_params, labels.label_to_params(label), atol=1e-6)
        assert gt.posture == ("supine" if p == 1 else "left")
        assert gt.gender == ("female" if label[157] == 1 else "male")
        np.testing.assert_allclose(gt.homography_depth_to_pm, slp.homography[("danaLab", s)])
        # the bed pose from the homography is the fixture camera's, to a fraction of a mm
        np.testing.assert_allclose(gt.T_cam_bed, slp.T_cam_bed[("danaLab", s)], atol=1e-6)
        T = gt.T_cam_bed
        np.testing.assert_allclose(gt.joints_camera_m, gt.joints_bed_m @ T[:3, :3].T + T[:3, 3])
        spheres = markers[i].markers[0]
        got = np.array([[q.x, q.y, q.z] for q in spheres.points])
        np.testing.assert_allclose(got, gt.joints_camera_m)
        assert spheres.header.frame_id == image.header.frame_id


def test_unlabelled_frames_keep_calibration(slp, tmp_path):
    out = tmp_path / "nolabels"
    assert main(["--slp-root", str(slp.root), "--subjects", "81", "--poses", "1",
                 "--covers", "cover1", "--out", str(out), "--no-labels", "--quiet"]) == 0
    with BagReader(out) as bag:
        assert bag.topics[GT_JOINTS_TOPIC].count == 0
        (_, msg), = bag.read(GT_POSE_TOPIC, STRING)
    gt = GroundTruth.from_json(msg.data)
    assert gt.joints_bed_m is None and gt.body_params is None
    np.testing.assert_allclose(gt.homography_depth_to_pm, slp.homography[("danaLab", 81)])


def test_errors_write_nothing(slp, tmp_path, capsys):
    out = tmp_path / "bag"
    assert main(["--slp-root", str(tmp_path / "nowhere"), "--subjects", "81",
                 "--out", str(out)]) == 1
    assert "SLP folder not found" in capsys.readouterr().err
    assert main(["--slp-root", str(slp.root), "--subjects", "81", "--poses", "1-3",
                 "--out", str(out)]) == 1
    assert "raw depth frame not found" in capsys.readouterr().err  # pose 2 does not exist
    assert main(["--slp-root", str(slp.root), "--subjects", "81", "--covers", "blanket",
                 "--out", str(out)]) == 1
    assert "covers must be" in capsys.readouterr().err
    # a damaged frame half-way: the error names it and no (partial) bag is left behind
    bad = raw_depth_path(slp.root, "danaLab", 82, "uncover", 16)
    original = bad.read_bytes()
    try:
        np.save(bad, np.zeros((424, 512), np.uint16))
        assert main(["--slp-root", str(slp.root), "--subjects", "81-82", "--poses", "1,16",
                     "--out", str(out), "--quiet"]) == 1
    finally:
        bad.write_bytes(original)
    err = capsys.readouterr().err
    assert "has shape (424, 512), expected (512, 424)" in err and "was not written" in err
    assert not list(tmp_path.iterdir())
