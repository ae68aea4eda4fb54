"""disrt-fit-bed: depth files (PNG mm, npy m) with intrinsics or camera info, a bag (median
of frames), the picture, the config lines, and the refusals (exit 2, still a picture)."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest
import yaml

from disrt_core.geometry.camera import median_depth
from disrt_ros import bag_msgs
from disrt_ros.bags import (
    CAMERA_INFO,
    COMPRESSED_IMAGE,
    DEPTH_FRAME_ID,
    DEPTH_INFO_TOPIC,
    DEPTH_TOPIC,
    IMAGE,
    BagWriter,
)
from disrt_ros.depth_codec import encode
from disrt_ros.tools.fit_bed import EXIT_INPUT, EXIT_NO_BED, main
from test.core.geometry.bedscenes import Room, bedroom, view

T0 = 1_700_000_000_000_000_000


@pytest.fixture(scope="module")
def frame():
    """A small time-of-flight camera 2.6 m over a bedroom, the bed across the image."""
    scene = view(bedroom(), "tof_320x240", 2.6, tilt=(0.1, 0.05), yaw=1.4, seed=3)
    depth = scene.depth_raw[0].numpy().astype(np.uint16)
    corners = scene.mattress_corners[0].numpy()
    uv = corners @ scene.K[0].numpy().T
    return depth, scene.K[0].numpy(), uv[:, :2] / uv[:, 2:]


def intrinsics(K):
    return ["--intrinsics", *(f"{v:.6f}" for v in (K[0, 0], K[1, 1], K[0, 2], K[1, 2]))]


def corners_px(text: str) -> np.ndarray:
    line = re.search(r"corners_px: \[([^\]]*)\]", text).group(1)
    return np.array([float(v) for v in line.split(",")]).reshape(4, 2)


def test_png_in_mm_prints_the_fit_and_draws_it(frame, tmp_path, capsys):
    depth, K, truth_uv = frame
    cv2.imwrite(str(tmp_path / "d.png"), depth)
    out = tmp_path / "fit.png"
    assert main(["--depth", str(tmp_path / "d.png"), *intrinsics(K), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "read as millimetres" in text and "T_cam_bed: [" in text
    size = re.search(r"mattress ([\d.]+) x ([\d.]+) m", text).groups()
    assert [float(v) for v in size] == pytest.approx([0.90, 2.00], abs=0.03)  # the truth
    np.testing.assert_allclose(corners_px(text), truth_uv, atol=8.0)  # within ~5 cm
    picture = cv2.imread(str(out))
    assert picture.shape[0] > depth.shape[0] and picture.shape[1] > depth.shape[1]  # + network
    # The outline is drawn in green on the depth panel, along the mattress edge.
    top = picture.shape[0] - depth.shape[0]
    mid = np.round((truth_uv[1] + truth_uv[2]) / 2).astype(int)
    patch = picture[top + mid[1] - 4:top + mid[1] + 5, mid[0] - 4:mid[0] + 5]
    assert ((patch[..., 1] > 200) & (patch[..., 0] < 80) & (patch[..., 2] < 80)).any()


def test_a_far_mount_is_said_to_be_one(frame, tmp_path, capsys):
    depth, K, _ = frame  # 2.6 m over the mattress: its farthest corner within 3 m
    np.save(tmp_path / "near.npy", depth)
    assert main(["--depth", str(tmp_path / "near.npy"), *intrinsics(K),
                 "--out", str(tmp_path / "near.png")]) == 0
    assert "FAR MOUNT" not in capsys.readouterr().out
    far = view(bedroom(), "d455_640x360", 3.4, offset=(0.4, -1.6), tilt=(0.45, 0.0), yaw=0.2,
               seed=4)
    np.save(tmp_path / "far.npy", far.depth_raw[0].numpy().astype(np.uint16))
    truth = float(np.linalg.norm(far.mattress_corners[0].numpy(), axis=1).max())
    assert truth > 4.0
    assert main(["--depth", str(tmp_path / "far.npy"), *intrinsics(far.K[0].numpy()),
                 "--out", str(tmp_path / "far.png")]) == 0
    text = capsys.readouterr().out
    said = re.search(r"FAR MOUNT: the farthest corner is ([\d.]+) m", text)
    assert said and float(said.group(1)) == pytest.approx(truth, abs=0.15)


def test_npy_in_metres_and_camera_info_yaml(frame, tmp_path, capsys):
    depth, K, _ = frame
    np.save(tmp_path / "d.npy", depth.astype(np.float32) / 1000.0)
    info = {"image_width": depth.shape[1], "image_height": depth.shape[0],
            "camera_matrix": {"rows": 3, "cols": 3, "data": K.reshape(-1).tolist()}}
    (tmp_path / "info.yaml").write_text(yaml.safe_dump(info))
    assert main(["--depth", str(tmp_path / "d.npy"), "--camera-info", str(tmp_path / "info.yaml"),
                 "--out", str(tmp_path / "a.png")]) == 0
    metres = capsys.readouterr().out
    assert "read as metres" in metres
    cv2.imwrite(str(tmp_path / "d.png"), depth)
    assert main(["--depth", str(tmp_path / "d.png"), *intrinsics(K), "--out",
                 str(tmp_path / "b.png")]) == 0
    np.testing.assert_allclose(corners_px(metres), corners_px(capsys.readouterr().out),
                               atol=0.5)


def test_bag_median_of_frames(frame, tmp_path, capsys):
    depth, K, truth_uv = frame
    rng = np.random.default_rng(0)
    with BagWriter(tmp_path / "night") as bag:
        bag.add_topic(DEPTH_TOPIC, IMAGE)
        bag.add_topic(DEPTH_INFO_TOPIC, CAMERA_INFO)
        for i in range(3):
            stamp = T0 + i * 33_333_333
            noisy = depth.copy()
            noisy[rng.random(depth.shape) < 0.05] = 0  # holes the median fills
            bag.write(DEPTH_TOPIC, stamp, bag_msgs.depth_image(noisy, stamp, DEPTH_FRAME_ID))
            bag.write(DEPTH_INFO_TOPIC, stamp, bag_msgs.camera_info(
                K, depth.shape[1], depth.shape[0], stamp, DEPTH_FRAME_ID))
    assert main(["--bag", str(tmp_path / "night"), "--median", "3", "--out",
                 str(tmp_path / "bag.png")]) == 0
    text = capsys.readouterr().out
    assert "3 frame(s)" in text and "median" in text
    np.testing.assert_allclose(corners_px(text), truth_uv, atol=8.0)
    assert (tmp_path / "bag.png").is_file()


@pytest.mark.parametrize("codec", ["png", "rvl"])
def test_bag_of_a_compressed_depth_topic(frame, tmp_path, capsys, codec):
    """A bag recorded from image_transport's .../compressedDepth (CompressedImage, 32FC1 in
    metres here) fits as the raw image does; its CameraInfo is the one beside the image's
    topic, not beside compressedDepth."""
    depth, K, truth_uv = frame
    topic = DEPTH_TOPIC + "/compressedDepth"
    fmt, data = encode(depth.astype(np.float32) / 1000.0, "32FC1", codec=codec)
    with BagWriter(tmp_path / "c") as bag:
        bag.add_topic(topic, COMPRESSED_IMAGE)
        bag.add_topic(DEPTH_INFO_TOPIC, CAMERA_INFO)
        bag.write(topic, T0, bag_msgs.new_msg(
            COMPRESSED_IMAGE, header=bag_msgs.header(T0, DEPTH_FRAME_ID), format=fmt,
            data=np.frombuffer(data, np.uint8)))
        bag.write(DEPTH_INFO_TOPIC, T0, bag_msgs.camera_info(
            K, depth.shape[1], depth.shape[0], T0, DEPTH_FRAME_ID))
    assert main(["--bag", str(tmp_path / "c"), "--topic", topic, "--median", "1", "--out",
                 str(tmp_path / "c.png")]) == 0
    compressed = corners_px(capsys.readouterr().out)
    cv2.imwrite(str(tmp_path / "d.png"), depth)
    assert main(["--depth", str(tmp_path / "d.png"), *intrinsics(K), "--out",
                 str(tmp_path / "d_fit.png")]) == 0
    # the same fit within the inverse-depth quantisation (< 1 mm at 2.6 m)
    np.testing.assert_allclose(compressed, corners_px(capsys.readouterr().out), atol=0.5)
    np.testing.assert_allclose(compressed, truth_uv, atol=8.0)


def test_median_leaves_out_missing_readings():
    """The tool's median is the node's (``geometry.camera.median_depth``): missing readings
    are left out, and a pixel read in fewer than half of the frames has none."""
    a = np.array([[1000, 0], [0, 0]], np.uint16)
    b = np.array([[1010, 2000], [0, 0]], np.uint16)
    c = np.array([[0, 2010], [0, 3000]], np.uint16)
    np.testing.assert_allclose(median_depth([a, b, c]), [[1005, 2005], [0, 0]])


def test_no_bed_exit_2_and_still_a_picture(tmp_path, capsys):
    floor = Room(floor=0.6)
    floor.flags = {"bed": False}
    scene = view(floor, "tof_320x240", 2.0, seed=4)
    cv2.imwrite(str(tmp_path / "floor.png"), scene.depth_raw[0].numpy().astype(np.uint16))
    out = tmp_path / "floor_fit.png"
    code = main(["--depth", str(tmp_path / "floor.png"), *intrinsics(scene.K[0].numpy()),
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == EXIT_NO_BED and "no bed found" in err and "the floor?" in err
    assert out.is_file() and cv2.imread(str(out)).shape[1] == 320  # depth only, outlined


def test_unusable_input_exit_1(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "d.png"), np.full((10, 10), 2000, np.uint16))
    assert main(["--depth", str(tmp_path / "d.png")]) == EXIT_INPUT
    assert "--intrinsics FX FY CX CY" in capsys.readouterr().err
    assert main(["--depth", str(tmp_path / "missing.png"), "--intrinsics", "1", "1", "0",
                 "0"]) == EXIT_INPUT
    assert "does not exist" in capsys.readouterr().err
    cv2.imwrite(str(tmp_path / "rgb.png"), np.zeros((10, 10, 3), np.uint8))
    assert main(["--depth", str(tmp_path / "rgb.png"), "--intrinsics", "1", "1", "0",
                 "0"]) == EXIT_INPUT
    assert "16-bit" in capsys.readouterr().err
    assert main(["--bag", str(tmp_path / "nobag"), "--out", str(tmp_path / "x.png")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_realsense_without_a_camera_says_so(capsys):
    """Without pyrealsense2 (or without a camera) the live path stops with a clear error."""
    assert main(["--realsense"]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "pyrealsense2" in err or "RealSense" in err


def test_bag_of_a_raw_topic_is_undistorted_with_its_camera_info(frame, tmp_path, capsys):
    """A raw depth topic (``depth/image_raw``) whose CameraInfo has a lens: the frames are
    moved onto the pinhole of K before the fit, so the corners are found where the pinhole
    camera sees them."""
    depth, K, truth_uv = frame
    d = np.array([-0.3, 0.1, 0.0, 0.0, 0.0])
    h, w = depth.shape
    # the raw frame: each raw pixel reads the pinhole pixel of its ray (OpenCV's inverse)
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    ideal = cv2.undistortPoints(np.stack([u, v], -1).reshape(-1, 1, 2), K, d, P=K)
    iu, iv = np.round(ideal.reshape(h, w, 2)).astype(int).transpose(2, 0, 1)
    inside = (iu >= 0) & (iu < w) & (iv >= 0) & (iv < h)
    raw = np.where(inside, depth[iv.clip(0, h - 1), iu.clip(0, w - 1)], 0).astype(np.uint16)
    topic, info_topic = "/camera/depth/image_raw", "/camera/depth/camera_info"
    with BagWriter(tmp_path / "raw") as bag:
        bag.add_topic(topic, IMAGE)
        bag.add_topic(info_topic, CAMERA_INFO)
        bag.write(topic, T0, bag_msgs.depth_image(raw, T0, DEPTH_FRAME_ID))
        bag.write(info_topic, T0, bag_msgs.camera_info(K, w, h, T0, DEPTH_FRAME_ID, d))
    assert main(["--bag", str(tmp_path / "raw"), "--topic", topic, "--median", "1",
                 "--out", str(tmp_path / "raw.png")]) == 0
    text = capsys.readouterr().out
    assert "undistorted (plumb_bob" in text
    # read as a pinhole frame, this lens puts the corners up to 6.3 px off and the
    # mattress 1.92 m long (8 cm short); undistorted, the foot corners under a pixel and the head
    # corners 2.6 px out: the 3 cm gap before the headboard, about a pixel wide here, is
    # lost in the two resamplings (the raw frame's and the undistortion's), so the mattress
    # is taken to reach the board (bedfit_boards.flush_faces; under a pixel before it)
    np.testing.assert_allclose(corners_px(text), truth_uv, atol=3.0)
    size = re.search(r"mattress ([\d.]+) x ([\d.]+) m", text).groups()
    assert [float(v) for v in size] == pytest.approx([0.90, 2.00], abs=0.03)


def test_the_person_lying_there_decides_the_head_end(frame, tmp_path, capsys, monkeypatch):
    """--head auto asks the posture classifier's head-end output on the network image: the
    shipped one confirms the end the fit found (right: the other test checks the corners'
    order against the truth) for the blocky sleeper of the test's bedroom; one sure the
    head lies at the other end turns the bed (its corners listed from the other end)."""
    import torch

    import disrt_core.model.posture_net as posture_net

    depth, K, _ = frame
    cv2.imwrite(str(tmp_path / "d.png"), depth)
    args = ["--depth", str(tmp_path / "d.png"), *intrinsics(K), "--out", str(tmp_path / "f.png")]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert re.search(r"head-end log-odds \+\d+\.\d\): confirmed", text)
    before = corners_px(text)

    class Other(posture_net.PostureNet):
        def __init__(self):
            super().__init__(posture_net.PostureNetConfig(widths=(4,), head_end=True))

        def forward(self, depth):
            return torch.cat([torch.zeros(len(depth), 4), torch.full((len(depth), 1), -6.0)], 1)

    monkeypatch.setattr(posture_net, "load_posture_net", lambda *a, **k: Other().eval())
    assert main(args) == 0
    text = capsys.readouterr().out
    assert re.search(r"log-odds -6\.0\): (turned|decided)", text)
    np.testing.assert_allclose(corners_px(text), before[[2, 3, 0, 1]], atol=0.2)


def test_labels_sit_outside_the_outline_and_inside_the_image():
    """A label beside a point is moved outward (away from the outline's middle) by half its
    diagonal and the gap, and kept whole inside the image: a head end at the image's right
    border had its "HEAD" cut off."""
    from disrt_ros.tools.fit_bed import label_origin

    # Room to its right: the label's middle lies (hypot(40, 10) / 2 + 4) px right of the point.
    x, y = label_origin(np.array([100.0, 100.0]), np.array([1.0, 0.0]), (40, 10), (480, 640, 3), 4)
    assert x + 20 == pytest.approx(100 + np.hypot(40, 10) / 2 + 4, abs=1) and y - 5 == 100
    # At the right border: the whole label stays in the image (origin at the left of the text).
    x, y = label_origin(np.array([635.0, 100.0]), np.array([1.0, 0.0]), (40, 10), (480, 640, 3), 4)
    assert x + 40 <= 640 and x >= 0 and 10 <= y <= 478
    # Above the top border: pushed down until the text's top is at row 0.
    x, y = label_origin(np.array([300.0, 2.0]), np.array([0.0, -1.0]), (40, 10), (480, 640, 3), 4)
    assert y - 10 >= 0
