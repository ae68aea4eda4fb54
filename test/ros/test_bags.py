"""disrt_ros.bags / bag_msgs: writing and reading rosbag2 bags, atomic output, clear errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml

from disrt_ros import bag_msgs
from disrt_ros.bags import (
    CAMERA_INFO,
    DEPTH_FRAME_ID,
    DEPTH_INFO_TOPIC,
    DEPTH_TOPIC,
    GT_POSE_TOPIC,
    IMAGE,
    STRING,
    TYPESTORE,
    BagError,
    BagReader,
    BagWriter,
    GroundTruth,
)

T0 = 1_700_000_000_000_000_000
K = np.array([[367.8, 0.0, 208.1], [0.0, 367.8, 259.7], [0.0, 0.0, 1.0]])


def _frames(n=3, shape=(8, 6)):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 3000, size=shape, dtype=np.uint16) for _ in range(n)]


def _write(path, storage="mcap", frames=None):
    frames = _frames() if frames is None else frames
    with BagWriter(path, storage=storage) as bag:
        bag.add_topic(DEPTH_TOPIC, IMAGE)
        bag.add_topic(DEPTH_INFO_TOPIC, CAMERA_INFO)
        bag.add_topic(GT_POSE_TOPIC, STRING)
        for i, frame in enumerate(frames):
            stamp = T0 + i * 33_333_333
            bag.write(DEPTH_TOPIC, stamp, bag_msgs.depth_image(frame, stamp, DEPTH_FRAME_ID))
            bag.write(DEPTH_INFO_TOPIC, stamp,
                      bag_msgs.camera_info(K, frame.shape[1], frame.shape[0], stamp,
                                           DEPTH_FRAME_ID))
            bag.write(GT_POSE_TOPIC, stamp, bag_msgs.string(f"frame {i}"))
    return frames


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_roundtrip_and_metadata(tmp_path, storage):
    path = tmp_path / "night"
    frames = _write(path, storage)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["night"]  # no partial left
    meta = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["version"] == 9 and meta["storage_identifier"] == storage
    topics = {t["topic_metadata"]["name"]: t for t in meta["topics_with_message_count"]}
    image = topics[DEPTH_TOPIC]["topic_metadata"]
    assert image["type"] == IMAGE and image["serialization_format"] == "cdr"
    assert image["type_description_hash"] == TYPESTORE.hash_rihs01(IMAGE)
    qos = image["offered_qos_profiles"][0]
    assert qos["reliability"] == "reliable" and qos["durability"] == "volatile"
    assert qos["deadline"] == {"sec": 9223372036, "nsec": 854775807}
    assert topics[DEPTH_TOPIC]["message_count"] == 3

    with BagReader(path) as reader:
        assert reader.message_count == 9 and reader.start_ns == T0
        assert reader.end_ns == T0 + 2 * 33_333_333
        images = list(reader.read(DEPTH_TOPIC, IMAGE))
        assert [t for t, _ in images] == [T0 + i * 33_333_333 for i in range(3)]
        for (stamp, msg), frame in zip(images, frames):
            assert bag_msgs.stamp_ns(msg.header) == stamp
            np.testing.assert_array_equal(bag_msgs.image_to_array(msg), frame)
        _, info = next(reader.read(DEPTH_INFO_TOPIC, CAMERA_INFO))
        np.testing.assert_array_equal(bag_msgs.camera_info_K(info), K)
        # log-time order across topics
        order = [m.topic for m in reader.messages()]
        assert order[:3] == [DEPTH_TOPIC, DEPTH_INFO_TOPIC, GT_POSE_TOPIC]


def test_messages_decode_with_rclpy():
    """CDR written by rosbags is what rclpy's typesupport reads (a real ROS reads the bag)."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image
    from visualization_msgs.msg import MarkerArray

    frame = np.arange(20, dtype=np.uint16).reshape(4, 5) * 100
    msg = bag_msgs.depth_image(frame, T0 + 5, "cam")
    out = deserialize_message(bytes(TYPESTORE.serialize_cdr(msg, IMAGE)), Image)
    assert (out.header.stamp.sec, out.header.stamp.nanosec) == (T0 // 10**9, 5)
    assert out.encoding == "16UC1" and out.step == 10
    np.testing.assert_array_equal(bag_msgs.image_to_array(out), frame)
    joints = np.random.default_rng(1).normal(size=(24, 3))
    markers = bag_msgs.joint_markers(joints, T0, "cam")
    out = deserialize_message(
        bytes(TYPESTORE.serialize_cdr(markers, "visualization_msgs/msg/MarkerArray")),
        MarkerArray)
    spheres, bones = out.markers
    got = np.array([[p.x, p.y, p.z] for p in spheres.points])
    np.testing.assert_allclose(got, joints)
    assert len(bones.points) == 46 and bones.type == 5


def test_image_decoding_step_and_endianness():
    frame = np.array([[1, 2, 3], [4, 5, 65535]], dtype=np.uint16)
    msg = bag_msgs.depth_image(frame, 0, "cam")
    big = frame.astype(">u2").view(np.uint8).reshape(2, 6)
    padded = np.zeros((2, 8), np.uint8)
    padded[:, :6] = big
    msg.data, msg.is_bigendian, msg.step = padded.reshape(-1), 1, 8
    np.testing.assert_array_equal(bag_msgs.image_to_array(msg), frame)
    metres = bag_msgs.depth_image(frame.astype(np.float32) / 1000, 0, "cam")
    assert metres.encoding == "32FC1"
    np.testing.assert_allclose(bag_msgs.image_to_array(metres), frame / 1000, rtol=1e-6)
    msg.encoding = "rgb8"
    with pytest.raises(BagError, match="encoding 'rgb8'"):
        bag_msgs.image_to_array(msg)


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "bag"
    with pytest.raises(RuntimeError, match="boom") as info:
        with BagWriter(path) as bag:
            bag.add_topic(GT_POSE_TOPIC, STRING)
            bag.write(GT_POSE_TOPIC, T0, bag_msgs.string("x"))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    assert any("was not written" in note for note in getattr(info.value, "__notes__", []))


def test_existing_bag_refused_then_overwritten_only_when_complete(tmp_path):
    path = tmp_path / "bag"
    _write(path)
    with pytest.raises(BagError, match="exists already"):
        BagWriter(path).__enter__()
    with pytest.raises(ValueError):
        with BagWriter(path, overwrite=True) as bag:
            bag.add_topic(GT_POSE_TOPIC, STRING)
            raise ValueError("interrupted")
    with BagReader(path) as reader:  # the old bag survived the failed overwrite
        assert reader.message_count == 9
    with BagWriter(path, overwrite=True) as bag:
        bag.add_topic(GT_POSE_TOPIC, STRING)
        bag.write(GT_POSE_TOPIC, T0, bag_msgs.string("new"))
    with BagReader(path) as reader:
        assert reader.message_count == 1


def test_writer_errors(tmp_path):
    with pytest.raises(BagError, match="unknown bag storage"):
        BagWriter(tmp_path / "b", storage="rosbag1")
    with pytest.raises(BagError, match="does not exist"):
        BagWriter(tmp_path / "no" / "b").__enter__()
    with pytest.raises(BagError, match="not declared"):
        with BagWriter(tmp_path / "b") as bag:
            bag.write("/x", T0, bag_msgs.string("x"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("storage,suffix", [("mcap", ".mcap"), ("sqlite3", ".db3")])
def test_truncated_and_corrupted_bags(tmp_path, storage, suffix):
    good = tmp_path / "good"
    _write(good, storage, frames=_frames(40, (64, 48)))
    (data_file,) = good.glob(f"*{suffix}")
    raw = data_file.read_bytes()

    truncated = tmp_path / "truncated"
    shutil.copytree(good, truncated)
    (truncated / data_file.name).write_bytes(raw[: len(raw) // 2])
    with pytest.raises(BagError, match=r"truncated|corrupted|ends early"):
        with BagReader(truncated) as reader:
            list(reader.messages())

    # Damage the start of every 4 KiB page (sqlite3 page headers, mcap record headers);
    # for mcap also a stretch of message payload (its chunk CRCs catch that; sqlite3 has no
    # payload checksum, so there only structural damage is detectable).
    damages = {"pages": [(i, 16) for i in range(4096, len(raw), 4096)]}
    if storage == "mcap":
        damages["payload"] = [(len(raw) // 3, 4000)]
    for name, spans in damages.items():
        corrupted = tmp_path / f"corrupted_{name}"
        shutil.copytree(good, corrupted)
        bad = bytearray(raw)
        for start, size in spans:
            bad[start:start + size] = b"\xab" * size
        (corrupted / data_file.name).write_bytes(bytes(bad))
        with pytest.raises(BagError, match=r"bag .*corrupted"):
            with BagReader(corrupted) as reader:
                for message in reader.messages():
                    reader.decode(message)

    zero = tmp_path / "zero"
    shutil.copytree(good, zero)
    (zero / data_file.name).write_bytes(b"")
    with pytest.raises(BagError, match="empty"):
        BagReader(zero)


def test_empty_missing_and_wrong_type(tmp_path):
    empty = tmp_path / "empty"
    with BagWriter(empty) as bag:
        bag.add_topic(GT_POSE_TOPIC, STRING)
    with pytest.raises(BagError, match="is empty"):
        BagReader(empty)
    with BagReader(empty, allow_empty=True) as reader:
        assert reader.message_count == 0 and GT_POSE_TOPIC in reader.topics
    with pytest.raises(BagError, match="does not exist"):
        BagReader(tmp_path / "nothing")
    (tmp_path / "folder").mkdir()
    with pytest.raises(BagError, match="not a rosbag2 bag"):
        BagReader(tmp_path / "folder")

    path = tmp_path / "bag"
    _write(path)
    with BagReader(path) as reader:
        with pytest.raises(BagError, match=f"{GT_POSE_TOPIC} .* has type {STRING}, expected "
                                           f"{IMAGE}"):
            list(reader.read(GT_POSE_TOPIC, IMAGE))
        with pytest.raises(BagError, match="has no topic /nope"):
            reader.require("/nope", IMAGE)
    (path / "metadata.yaml").unlink()  # a bag that lost its metadata: the mcap alone reads
    with BagReader(path) as reader:
        assert reader.message_count == 9


def test_ground_truth_json_roundtrip():
    rng = np.random.default_rng(2)
    gt = GroundTruth(stamp_ns=T0, joints_bed_m=rng.normal(size=(24, 3)), cover="cover1",
                     source="slp", joints_camera_m=rng.normal(size=(24, 3)),
                     homography_depth_to_pm=rng.normal(size=(3, 3)), bed_distance_mm=2101.0,
                     subject=81, pose=3, gender="male", body_model="smpl",
                     body_params=rng.normal(size=88), posture="supine")
    back = GroundTruth.from_json(bag_msgs.ground_truth_msg(gt).data)
    np.testing.assert_array_equal(back.joints_bed_m, gt.joints_bed_m)  # exact floats
    np.testing.assert_array_equal(back.body_params, gt.body_params)
    assert (back.cover, back.subject, back.pose, back.T_cam_bed) == ("cover1", 81, 3, None)
    with pytest.raises(BagError, match="schema"):
        GroundTruth.from_json('{"schema": "other"}')
    with pytest.raises(BagError, match="shape"):
        GroundTruth(stamp_ns=0, joints_bed_m=np.zeros((23, 3)), cover="uncover",
                    source="slp").to_json()
