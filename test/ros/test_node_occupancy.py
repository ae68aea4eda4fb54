"""Nobody in bed, or depth that makes no sense: the node says so (stamped ~/occupancy,
/diagnostics) and publishes no body, clearing what RViz shows."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticStatus
from visualization_msgs.msg import Marker

from .fakes import CAM_HEIGHT, FakeEstimator, K, depth_frame
from .rosutil import fake_monitor, wait_until

pytestmark = pytest.mark.ros
FRAME = "camera_depth_optical_frame"


@pytest.fixture
def monitor(ros, request):
    name = request.node.name.split("[")[0][5:30]
    fake = FakeEstimator()
    node, player = fake_monitor(ros, name, estimator=fake)
    assert wait_until(lambda: node.cameras["camera"].pubs["joints"].get_subscription_count()
                      and player.depth_pubs["camera"].get_subscription_count())
    yield node, player, fake
    ros.remove(player)
    ros.remove(node)


def _camera_status(player, pred):
    return next((s for s, v in reversed(player.history("camera camera")) if pred(s, v)), None)


def _serve(player, depth, stamp, **kw):
    """Send a frame until the node answers it (its occupancy state, stamped, comes back)."""
    return wait_until(lambda: (player.publish("camera", depth, stamp, FRAME, K, **kw),
                               player.stamped("camera", "occupancy", stamp))[1])


def test_someone_in_bed_then_nobody(monitor):
    _, player, fake = monitor
    assert _serve(player, depth_frame(CAM_HEIGHT, body_mm=250.0), 1)
    state = player.stamped("camera", "occupancy", 1)
    assert state.header.frame_id == FRAME and state.status[0].message == "in_bed"
    assert wait_until(lambda: player.stamped("camera", "joints", 1))
    skeleton = player.stamped("camera", "joints", 1).markers
    assert skeleton[0].action == Marker.ADD

    fake.present = 0.1  # the bed is empty now
    assert _serve(player, depth_frame(CAM_HEIGHT, body_mm=0.0), 2)
    state = player.stamped("camera", "occupancy", 2)
    assert state.status[0].message == "empty"
    values = {kv.key: kv.value for kv in state.status[0].values}
    assert float(values["present_prob"]) == pytest.approx(0.1)
    assert wait_until(lambda: player.latest("camera", "occupancy_text").data == "empty")
    # The skeleton and mesh are taken off RViz (once: the first empty answer, which may be
    # a repeat of frame 1), and no body is published for the empty frames.
    assert wait_until(lambda: player.latest("camera", "joints").markers[0].action
                      == Marker.DELETEALL)
    # frame 2 gets at most the clearing (when no repeat of frame 1 was answered empty first)
    joints = player.stamped("camera", "joints", 2)
    assert joints is None or joints.markers[0].action == Marker.DELETEALL
    assert player.stamped("camera", "pose", 2) is None
    assert player.stamped("camera", "posture", 2) is None
    assert wait_until(lambda: _camera_status(player, lambda s, v: v.get("occupancy") == "empty"))
    assert _camera_status(player, lambda s, v: v.get("occupancy") == "empty").level \
        == DiagnosticStatus.OK


@pytest.mark.parametrize("case", ["camera_farther", "millimetres_in_32FC1"])
def test_nonsense_depth_is_an_error_without_a_pose(monitor, case):
    _, player, _ = monitor
    if case == "camera_farther":  # configured 2.0 m above the mattress, really 3.3 m
        depth, kw, words = depth_frame(3.3, body_mm=250.0), {}, "farther"
    else:
        metres = depth_frame(CAM_HEIGHT, body_mm=250.0).astype(np.float32)  # mm as floats
        depth, kw, words = metres, {"encoding": "32FC1"}, "millimetres"
    for stamp in range(1, 4):
        player.publish("camera", depth, stamp, FRAME, K, **kw)
    assert wait_until(lambda: (player.publish("camera", depth, 9, FRAME, K, **kw),
                               _camera_status(player, lambda s, v: words in s.message))[1])
    status = _camera_status(player, lambda s, v: words in s.message)
    assert status.level == DiagnosticStatus.ERROR
    for stamp in (1, 2, 3, 9):
        assert player.stamped("camera", "pose", stamp) is None
        assert player.stamped("camera", "occupancy", stamp) is None


def test_a_sitter_and_someone_standing_at_the_edge_from_a_camera_beside_the_bed(ros, request):
    """The node looks for the trunk in the raw frame: a sitter the network grid misses is
    sitting, someone standing at the edge (tall on the grid) is not."""
    from ..core.test_occupancy_raw import BESIDE, LEANING, SITTER, scene_depth
    from ..core.test_occupancy_raw import K as K_BESIDE

    fake = FakeEstimator()
    fake.present = 0.1  # nobody lies in the bed
    node, player = fake_monitor(ros, request.node.name[5:30], estimator=fake, params={
        "camera.T_cam_bed": BESIDE.double().flatten().tolist()})
    assert wait_until(lambda: node.cameras["camera"].pubs["joints"].get_subscription_count()
                      and player.depth_pubs["camera"].get_subscription_count())
    K_side = K_BESIDE.numpy()
    for stamp, boxes, expected in ((1, SITTER, "sitting_on_edge"), (2, LEANING, "empty")):
        depth = scene_depth(boxes)[0].round().numpy().astype(np.uint16)

        def answered(depth=depth, stamp=stamp):
            player.publish("camera", depth, stamp, FRAME, K_side)
            return player.stamped("camera", "occupancy", stamp)

        assert wait_until(answered)
        assert player.stamped("camera", "occupancy", stamp).status[0].message == expected
    ros.remove(player)
    ros.remove(node)
