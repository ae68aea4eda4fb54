"""disrt-score: results matched to ground truth by stamp; MPJPE/PVE per cover against
hand-derived values (a known rigid shift of joints and body translation)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from disrt_core.data.fixtures import write_slp_fixture
from disrt_ros.bag_msgs import ground_truth_msg
from disrt_ros.bags import (
    GT_POSE_TOPIC,
    IMAGE,
    STRING,
    BagError,
    BagReader,
    BagWriter,
    GroundTruth,
)
from disrt_ros.tools import score as score_tool
from disrt_ros.tools.slp2bag import main as slp2bag

pytest.importorskip("rclpy")
SHIFT = {"uncover": (0.010, 0.0, 0.0), "cover1": (0.0, 0.020, 0.0), "cover2": (0.0, 0.0, 0.030)}
OUT_TOPIC = "/bed_monitor/pose_json"


@pytest.fixture(scope="module")
def bag_in(tmp_path_factory):
    folder = tmp_path_factory.mktemp("score")
    fx = write_slp_fixture(folder / "slp", subjects=(81,), poses=(1, 16))
    assert slp2bag(["--slp-root", str(fx.root), "--subjects", "81", "--poses", "1,16",
                    "--out", str(folder / "in"), "--start", "1700000000", "--quiet"]) == 0
    return folder / "in"


def _truths(bag):
    with BagReader(bag) as reader:
        return [GroundTruth.from_json(m.data) for _, m in reader.read(GT_POSE_TOPIC, STRING)]


def _result_msg(gt: GroundTruth, shift, model_id="smpl-both", stamp_ns=None):
    """The node's pose_json (disrt_ros.conversions.pose_json) for ground truth + shift."""
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header

    from disrt_ros.conversions import FrameResult, pose_json

    stamp_ns = gt.stamp_ns if stamp_ns is None else stamp_ns
    header = Header(frame_id="camera_depth_optical_frame")
    header.stamp.sec, header.stamp.nanosec = divmod(stamp_ns, 10**9)
    params = gt.body_params.copy()
    params[10:13] += shift  # x0's root translation (SPEC §1.1): moves every vertex by shift
    result = FrameResult(
        camera="camera", header=header, joints_bed=gt.joints_bed_m + shift,
        joints_cam=np.zeros((24, 3)), vertices_cam=np.zeros((1, 3)), joint_spread=np.zeros(24),
        params=params, root_quat_cam=np.array([0.0, 0.0, 0.0, 1.0]), posture="supine",
        hypotheses=1, T_cam_bed=gt.T_cam_bed, net_image=np.zeros((128, 54)))
    return serialize_message(pose_json(result, [f"j{i}" for i in range(24)], model_id))


def _write_out(path, messages):
    with BagWriter(path) as out:
        out.add_topic(OUT_TOPIC, STRING)
        out.add_topic("/camera/camera/depth/image_rect_raw", IMAGE)  # other topics are ignored
        for t, data in messages:
            out.write(OUT_TOPIC, t, data)


def test_score_matches_hand_derived_values(bag_in, tmp_path, smpl_fixture_dir):
    truths = _truths(bag_in)
    assert [gt.cover for gt in truths] == ["uncover", "cover1", "cover2"] * 2
    dropped = truths[4]  # pose 16, cover1: never answered
    messages = [(gt.stamp_ns + 5_000_000, _result_msg(gt, SHIFT[gt.cover]))
                for gt in truths if gt is not dropped]
    late = truths[-1].stamp_ns + 10**9  # a second answer for frame 0, recorded later
    messages.append((late, _result_msg(truths[0], (1.0, 0, 0))))
    messages.append((1, _result_msg(truths[0], (0, 0, 0), stamp_ns=123)))  # unknown stamp
    out = tmp_path / "out"
    _write_out(out, messages)

    result = score_tool.score(bag_in, out, smpl_dir=smpl_fixture_dir)
    assert (result.frames, result.matched, result.missed) == (6, 5, 1)
    assert (result.duplicates, result.unmatched) == (1, 1)
    assert result.missed_stamps == [dropped.stamp_ns]
    # pose_json rounds joints to 10 µm, so MPJPE is exact to ~0.01 mm
    want = {"uncover": 10.0, "cover1": 20.0, "cover2": 30.0, "all": (2 * 10 + 20 + 2 * 30) / 5}
    for cover, value in want.items():
        assert result.mpjpe[cover] == pytest.approx(value, abs=0.02)
        assert result.pve[cover] == pytest.approx(value, abs=0.02)
    assert "missed" in score_tool.format_score(result)


def test_cli_json_and_model_mismatch(bag_in, tmp_path, capsys):
    truths = _truths(bag_in)
    out = tmp_path / "out"
    _write_out(out, [(gt.stamp_ns, _result_msg(gt, SHIFT["uncover"], model_id="anny-0.6"))
                     for gt in truths])
    report = tmp_path / "score.json"
    assert score_tool.main([str(bag_in), str(out), "--pose-topic", OUT_TOPIC,
                            "--json", str(report)]) == 0
    text = capsys.readouterr().out
    assert "PVE not computed" in text and "n/a" in text
    saved = json.loads(report.read_text())
    assert saved["missed"] == 0 and saved["mpjpe"]["all"] == pytest.approx(10.0, abs=0.02)
    assert len(saved["per_frame"]) == 6 and saved["pve"] == {}


def test_errors(bag_in, tmp_path, capsys):
    assert score_tool.main([str(bag_in), str(bag_in)]) == 1  # the input has no results
    assert "no bed monitor results" in capsys.readouterr().err
    assert score_tool.main([str(bag_in), str(bag_in), "--pose-topic",
                            "/camera/camera/depth/image_rect_raw"]) == 1
    assert "has type sensor_msgs/msg/Image, expected std_msgs/msg/String" in \
        capsys.readouterr().err
    empty = tmp_path / "empty"
    with BagWriter(empty) as bag:
        bag.add_topic(OUT_TOPIC, STRING)
    assert score_tool.main([str(bag_in), str(empty)]) == 1
    assert "is empty" in capsys.readouterr().err
    unlabelled = tmp_path / "unlabelled"
    with BagWriter(unlabelled) as bag:
        bag.add_topic(GT_POSE_TOPIC, STRING)
        gt = GroundTruth(stamp_ns=5, joints_bed_m=None, cover="uncover", source="slp")
        bag.write(GT_POSE_TOPIC, 5, ground_truth_msg(gt))
    with pytest.raises(BagError, match="no labelled ground truth"):
        score_tool.score(unlabelled, bag_in)


def test_pve_uses_the_body_model_the_node_used(bag_in, tmp_path, smpl_fixture_dir):
    """A smpl-neutral prediction of the exact ground-truth parameters still has a PVE: the
    neutral mesh against the gendered ground-truth mesh (computed here independently)."""
    import torch

    from disrt_core.body import load_body_model

    truths = _truths(bag_in)
    out = tmp_path / "out"
    _write_out(out, [(gt.stamp_ns, _result_msg(gt, (0.0, 0.0, 0.0), model_id="smpl-neutral"))
                     for gt in truths])
    result = score_tool.score(bag_in, out, smpl_dir=smpl_fixture_dir)
    assert result.mpjpe["all"] == pytest.approx(0.0, abs=0.01)
    neutral = load_body_model("smpl", smpl_fixture_dir, gender="neutral")
    both = load_body_model("smpl", smpl_fixture_dir, gender="both")
    params = torch.tensor(np.stack([gt.body_params for gt in truths]), dtype=torch.float32)
    female = torch.tensor([gt.gender == "female" for gt in truths])
    gender = torch.stack([female, ~female], -1).float()
    with torch.no_grad():
        want = (neutral(params)[0] - both(params, gender)[0]).norm(dim=-1).mean(-1) * 1000
    assert result.pve["all"] == pytest.approx(float(want.mean()), abs=0.01)
    assert result.pve["all"] > 1.0  # the fixture's genders really differ
