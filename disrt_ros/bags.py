"""Rosbag2 plumbing for the bag tools, on the ``rosbags`` library (no ROS install needed).

**Files.** :class:`BagWriter` writes rosbag2 bags as ``ros2 bag record`` on Jazzy does:
metadata version 9, storage ``mcap`` (the Jazzy default) or ``sqlite3``, serialization
``cdr``, the Jazzy type names, definitions and RIHS01 hashes (``rosbags``' ``ROS2_JAZZY``
type store), and per topic the offered-QoS profile a recorder stores for a discovered
publisher (:func:`recorded_qos`), so ``ros2 bag info``/``play`` open them on a real ROS
install. A bag is written under a hidden temporary name next to its target and renamed into
place only when complete; on any error (or Ctrl-C) the partial output is deleted and the
exception says so. :class:`BagReader` reads a bag directory or a single ``.mcap``/``.db3``
file and turns every failure (missing, empty, truncated, corrupted, wrong topic type) into a
:class:`BagError` that names the bag and the fix.

**Topic layout** of the bags this project writes (``disrt-slp2bag``, ``disrt-synth2bag``;
the depth side follows realsense-ros 4.x with ``camera_namespace:=camera camera_name:=camera``):

- ``/camera/camera/depth/image_rect_raw``: sensor_msgs/msg/Image, 16UC1 in mm (0 = no reading);
- ``/camera/camera/depth/camera_info``: sensor_msgs/msg/CameraInfo of that frame;
- ``/ground_truth/joints``: visualization_msgs/msg/MarkerArray, 24 joints and the bones, in the
  camera optical frame (``camera_depth_optical_frame``);
- ``/ground_truth/pose``: std_msgs/msg/String, JSON of :class:`GroundTruth`.

All four messages of one frame carry the depth frame's header stamp, and the bag's log time
of each message equals that stamp, so tools match ground truth to predictions by stamp.
The ground-truth JSON schema is documented on :class:`GroundTruth` (``disrt_ros.bag_msgs``
builds the messages).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

#: Jazzy message types (names, definitions, RIHS01 hashes) for writing and decoding.
TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
STORAGES = ("mcap", "sqlite3")
METADATA_VERSION = 9  # rosbag2 in Jazzy writes version 9 (QoS as a YAML list, enum names)

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"  # image_transport compressedDepth
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
MARKER_ARRAY = "visualization_msgs/msg/MarkerArray"
STRING = "std_msgs/msg/String"

DEPTH_TOPIC = "/camera/camera/depth/image_rect_raw"
DEPTH_INFO_TOPIC = "/camera/camera/depth/camera_info"
DEPTH_FRAME_ID = "camera_depth_optical_frame"
GT_JOINTS_TOPIC = "/ground_truth/joints"
GT_POSE_TOPIC = "/ground_truth/pose"
#: topic -> type of the layout above
LAYOUT = {DEPTH_TOPIC: IMAGE, DEPTH_INFO_TOPIC: CAMERA_INFO,
          GT_JOINTS_TOPIC: MARKER_ARRAY, GT_POSE_TOPIC: STRING}

_INFINITE = QosTime(9223372036, 854775807)  # RMW's "infinite" duration, as bags store it


class BagError(RuntimeError):
    """A bag cannot be written or read; the message names the bag, the problem and the fix."""


def recorded_qos(*, reliable: bool = True, transient_local: bool = False) -> Qos:
    """The offered-QoS profile ``ros2 bag record`` stores for a discovered publisher.

    Discovery does not carry history and depth, so a recorder stores them as unknown/0;
    deadline, lifespan and liveliness lease are RMW's infinite duration. ``ros2 bag play``
    publishes reliable (volatile) when every recorded publisher offered that.
    """
    return Qos(
        history=QosHistory.UNKNOWN, depth=0,
        reliability=QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
        durability=QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE,
        deadline=_INFINITE, lifespan=_INFINITE, liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=_INFINITE, avoid_ros_namespace_conventions=False)


def _check_storage(storage: str) -> StoragePlugin:
    if storage not in STORAGES:
        raise BagError(f"unknown bag storage {storage!r}; use one of {', '.join(STORAGES)}")
    return StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3


class BagWriter:
    """Write a rosbag2 bag atomically (context manager).

    ``with BagWriter(path, storage="mcap") as bag: bag.add_topic(...); bag.write(...)``.
    The bag is built in a hidden ``.<name>.partial-*`` folder beside ``path`` and moved to
    ``path`` when the ``with`` block ends without error; on an error the partial folder is
    deleted and a note saying so is added to the exception. An existing ``path`` is refused
    unless ``overwrite`` (then it is replaced only once the new bag is complete).
    """

    def __init__(self, path: str | os.PathLike, *, storage: str = "mcap",
                 overwrite: bool = False, version: int = METADATA_VERSION,
                 typestore=TYPESTORE) -> None:
        self.path = Path(path)
        self.storage = storage
        self._plugin = _check_storage(storage)
        self.overwrite = overwrite
        self.version = version
        self.typestore = typestore
        self._tmp: Path | None = None
        self._writer: Writer | None = None
        self._connections: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def __enter__(self) -> BagWriter:
        if self.path.exists() and not self.overwrite:
            raise BagError(f"{self.path} exists already; delete it or choose another --out "
                           "(or pass overwrite=True / --overwrite)")
        parent = self.path.parent
        if not parent.is_dir():
            raise BagError(f"cannot write {self.path}: folder {parent} does not exist")
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.partial-", dir=parent))
        self._writer = Writer(self._tmp / self.path.name, version=self.version,
                              storage_plugin=self._plugin)
        self._writer.open()
        return self

    def add_topic(self, topic: str, msgtype: str,
                  qos: Sequence[Qos] | None = None) -> None:
        """Declare ``topic`` of ``msgtype`` ("pkg/msg/Name"), offered with ``qos``."""
        if self._writer is None:
            raise BagError("BagWriter.add_topic outside its with-block")
        if topic in self._connections:
            raise BagError(f"topic {topic} declared twice in {self.path}")
        if msgtype not in self.typestore.fielddefs:
            raise BagError(f"unknown message type {msgtype!r} for topic {topic}")
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=self.typestore,
            offered_qos_profiles=list(qos) if qos is not None else [recorded_qos()])
        self.counts[topic] = 0

    def write(self, topic: str, timestamp_ns: int, msg: object) -> None:
        """Write one message (a ``rosbags`` message object, or CDR bytes) at log time
        ``timestamp_ns`` (ns since the epoch; the bags here use the header stamp)."""
        if self._writer is None:
            raise BagError("BagWriter.write outside its with-block")
        try:
            conn = self._connections[topic]
        except KeyError:
            raise BagError(f"topic {topic} was not declared with add_topic") from None
        if isinstance(msg, bytes | bytearray | memoryview):
            data = msg
        else:
            data = self.typestore.serialize_cdr(msg, conn.msgtype)
        self._writer.write(conn, int(timestamp_ns), data)
        self.counts[topic] += 1

    def __exit__(self, exc_type, exc, tb) -> bool:
        writer, self._writer = self._writer, None
        tmp, self._tmp = self._tmp, None
        if exc_type is None:
            try:
                writer.close()
                if self.path.exists():  # overwrite: replace only now that the new bag is whole
                    shutil.rmtree(self.path) if self.path.is_dir() else self.path.unlink()
                os.replace(tmp / self.path.name, self.path)
                tmp.rmdir()
                return False
            except BaseException as err:
                shutil.rmtree(tmp, ignore_errors=True)
                raise BagError(f"finishing {self.path} failed ({err}); nothing was written "
                               "there (the partial bag was deleted)") from err
        try:
            writer.abort()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if exc is not None and hasattr(exc, "add_note"):
            exc.add_note(f"{self.path} was not written: the partial bag was deleted")
        return False


@dataclass(frozen=True)
class TopicInfo:
    """One topic of a bag."""

    name: str
    msgtype: str
    count: int
    qos: tuple[Qos, ...] = ()


class BagMessage(NamedTuple):
    """One message as stored: log time in ns and its CDR bytes."""

    topic: str
    msgtype: str
    timestamp_ns: int
    data: bytes


def _resolve(path: Path) -> Path:
    """A bag directory, or the single storage file of a directory that lost its metadata."""
    if not path.exists():
        raise BagError(f"bag {path} does not exist")
    if path.is_dir() and not (path / "metadata.yaml").exists():
        files = sorted(path.glob("*.mcap")) + sorted(path.glob("*.db3"))
        if not files:
            raise BagError(f"{path} is not a rosbag2 bag: no metadata.yaml and no .mcap or "
                           ".db3 file in it (an empty or unfinished recording?)")
        if len(files) > 1:
            raise BagError(f"{path} has no metadata.yaml and {len(files)} storage files; "
                           "rebuild the metadata with `ros2 bag reindex` first")
        return files[0]
    return path


def _explain(path: Path, err: BaseException) -> BagError:
    text = f"{type(err).__name__}: {err}"
    plain = str(err).replace(str(path), "")  # judge by the message, not by the bag's name
    if "empty" in plain or "missing tables" in plain:
        hint = "the storage file is empty; the recording never wrote anything"
    elif "magic" in plain:
        hint = ("the file ends early (a recording that was interrupted?); `mcap recover` "
                "or `ros2 bag reindex` may rescue what was written")
    else:
        hint = "the bag is corrupted or not a rosbag2 bag"
    return BagError(f"cannot read bag {path}: {hint} ({text})")


class BagReader:
    """Read a rosbag2 bag (directory, or a single ``.mcap``/``.db3`` file).

    ``allow_empty=False`` refuses a bag without messages. Use as a context manager or call
    :meth:`close`. Messages come in log-time order as :class:`BagMessage` (raw CDR);
    :meth:`decode` turns one into a ``rosbags`` message object. Damage is detected where the
    storage can see it: mcap chunk CRCs and record framing, sqlite3 page structure (sqlite3
    has no checksum over message bytes, so a flipped pixel there reads back as data).
    """

    def __init__(self, path: str | os.PathLike, *, allow_empty: bool = False,
                 typestore=TYPESTORE) -> None:
        self.path = Path(path)
        self.typestore = typestore
        try:
            self._reader = Reader(_resolve(self.path))
            self._reader.open()
        except BagError:
            raise
        except Exception as err:
            raise _explain(self.path, err) from err
        self.topics: dict[str, TopicInfo] = {}
        for name, info in self._reader.topics.items():
            qos = tuple(q for c in info.connections
                        for q in getattr(c.ext, "offered_qos_profiles", ()))
            self.topics[name] = TopicInfo(name, info.msgtype or "", info.msgcount, qos)
            for conn in info.connections:
                self._register(conn)
        self.message_count = self._reader.message_count
        if self.message_count == 0 and not allow_empty:
            self.close()
            raise BagError(f"bag {self.path} is empty (no messages)")

    def _register(self, conn) -> None:
        """Make a type the bag brings (not in the Jazzy store) decodable."""
        if conn.msgtype in self.typestore.fielddefs or not conn.msgdef.data:
            return
        try:
            self.typestore.register(get_types_from_msg(conn.msgdef.data, conn.msgtype))
        except Exception:  # an IDL definition or a broken one: raw messages still work
            pass

    @property
    def start_ns(self) -> int:
        return self._reader.start_time

    @property
    def end_ns(self) -> int:
        """Log time of the last message (ns)."""
        return max(self._reader.end_time - 1, self.start_ns)

    def require(self, topic: str, msgtype: str) -> TopicInfo:
        """The topic's info; a clear error if it is missing or of another type."""
        info = self.topics.get(topic)
        if info is None:
            raise BagError(f"bag {self.path} has no topic {topic} (it has: "
                           f"{', '.join(sorted(self.topics)) or 'none'})")
        if info.msgtype != msgtype:
            raise BagError(f"topic {topic} in bag {self.path} has type {info.msgtype}, "
                           f"expected {msgtype}")
        return info

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
        """Messages in log-time order (all topics, or those named)."""
        wanted = None if topics is None else set(topics)
        if wanted is not None:
            missing = wanted - set(self.topics)
            if missing:
                raise BagError(f"bag {self.path} has no topic {', '.join(sorted(missing))} "
                               f"(it has: {', '.join(sorted(self.topics)) or 'none'})")
        conns = [c for c in self._reader.connections if wanted is None or c.topic in wanted]
        count = 0
        try:
            for conn, stamp, data in self._reader.messages(connections=conns):
                count += 1
                yield BagMessage(conn.topic, conn.msgtype, stamp, bytes(data))
        except BagError:
            raise
        except Exception as err:
            raise BagError(f"bag {self.path} is corrupted or truncated after {count} good "
                           f"messages ({type(err).__name__}: {err})") from err

    def decode(self, message: BagMessage) -> Any:
        """The ``rosbags`` message object of a :class:`BagMessage`."""
        try:
            return self.typestore.deserialize_cdr(message.data, message.msgtype)
        except Exception as err:
            raise BagError(f"bag {self.path}: a {message.msgtype} message on {message.topic} "
                           f"at {message.timestamp_ns} ns cannot be decoded ({err}); the bag "
                           "is corrupted") from err

    def read(self, topic: str, msgtype: str) -> Iterator[tuple[int, Any]]:
        """(log time ns, decoded message) of one topic, checking its type first."""
        self.require(topic, msgtype)
        for message in self.messages([topic]):
            yield message.timestamp_ns, self.decode(message)

    def close(self) -> None:
        if self._reader.is_open:
            self._reader.close()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


GROUND_TRUTH_SCHEMA = "disrt_ros/ground_truth@1"


def _array(value, shape) -> np.ndarray | None:
    if value is None:
        return None
    out = np.asarray(value, dtype=np.float64)
    if shape is not None and out.shape != shape:
        raise BagError(f"ground truth: expected shape {shape}, got {out.shape}")
    return out


@dataclass
class GroundTruth:
    """Ground truth of one depth frame: the JSON on ``/ground_truth/pose``.

    JSON keys (``schema`` = ``"disrt_ros/ground_truth@1"``); lengths in metres:

    - ``stamp_ns``: the depth frame's header stamp; ``frame_id``: its optical frame.
    - ``source``: ``"slp"`` or ``"synthetic"``; ``subject``, ``pose`` (SLP's 1-based ids, or
      the person and frame index of a synthetic night); ``sample_id`` a readable id.
    - ``cover``: ``"uncover"``, ``"cover1"`` or ``"cover2"``; ``posture``: ``"supine"``,
      ``"left"``, ``"right"``, ``"prone"`` (``disrt_core.posture``) or null; ``gender``.
    - ``joint_names``: SMPL's 24 names; ``joints_bed_m`` [24][3] in the bed (label) frame of
      SPEC §1.4, which MPJPE is measured in (null for unlabelled frames, e.g. SLP simLab:
      the message then only carries the frame's ids and calibration); ``joints_camera_m``
      [24][3] in the depth camera's optical frame, or null where unknown.
    - ``T_cam_bed`` [4][4] (p_cam = T·p_bed) or null; ``homography_depth_to_pm`` [3][3]:
      SLP's ``align_PTr_depth`` (raw depth pixel (x=col, y=row) -> pressure-mat pixel), or
      null; ``bed_distance_mm``: camera-to-bed distance used for depth normalisation.
    - ``body_model`` (``model_id``) and ``body_params`` [P]: the body-model vector in the bed
      frame from which the ground-truth mesh (PVE) is recomputed; null if unknown.
    - ``extra``: free-form additions (readers ignore unknown keys).
    """

    stamp_ns: int
    joints_bed_m: np.ndarray | None
    cover: str
    source: str
    frame_id: str = DEPTH_FRAME_ID
    joints_camera_m: np.ndarray | None = None
    T_cam_bed: np.ndarray | None = None
    homography_depth_to_pm: np.ndarray | None = None
    bed_distance_mm: float | None = None
    posture: str | None = None
    subject: int | None = None
    pose: int | None = None
    sample_id: str | None = None
    gender: str | None = None
    body_model: str | None = None
    body_params: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        from disrt_core.body.skeleton import SMPL_JOINT_NAMES

        def listed(a):
            return None if a is None else np.asarray(a, dtype=np.float64).tolist()

        return json.dumps({
            "schema": GROUND_TRUTH_SCHEMA, "stamp_ns": int(self.stamp_ns),
            "frame_id": self.frame_id, "source": self.source, "subject": self.subject,
            "pose": self.pose, "sample_id": self.sample_id, "cover": self.cover,
            "posture": self.posture, "gender": self.gender,
            "joint_names": list(SMPL_JOINT_NAMES),
            "joints_bed_m": listed(_array(self.joints_bed_m, (24, 3))),
            "joints_camera_m": listed(_array(self.joints_camera_m, (24, 3))),
            "T_cam_bed": listed(_array(self.T_cam_bed, (4, 4))),
            "homography_depth_to_pm": listed(_array(self.homography_depth_to_pm, (3, 3))),
            "bed_distance_mm": self.bed_distance_mm, "body_model": self.body_model,
            "body_params": listed(_array(self.body_params, None)), "extra": self.extra,
        })

    @classmethod
    def from_json(cls, text: str) -> GroundTruth:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as err:
            raise BagError(f"ground truth is not JSON ({err})") from err
        if not isinstance(d, dict) or d.get("schema") != GROUND_TRUTH_SCHEMA:
            schema = d.get("schema") if isinstance(d, dict) else None
            raise BagError(f"ground truth has schema {schema!r}, expected "
                           f"{GROUND_TRUTH_SCHEMA!r}")
        return cls(
            stamp_ns=int(d["stamp_ns"]), joints_bed_m=_array(d.get("joints_bed_m"), (24, 3)),
            cover=d["cover"], source=d["source"], frame_id=d.get("frame_id", DEPTH_FRAME_ID),
            joints_camera_m=_array(d.get("joints_camera_m"), (24, 3)),
            T_cam_bed=_array(d.get("T_cam_bed"), (4, 4)),
            homography_depth_to_pm=_array(d.get("homography_depth_to_pm"), (3, 3)),
            bed_distance_mm=d.get("bed_distance_mm"), posture=d.get("posture"),
            subject=d.get("subject"), pose=d.get("pose"), sample_id=d.get("sample_id"),
            gender=d.get("gender"), body_model=d.get("body_model"),
            body_params=_array(d.get("body_params"), None), extra=d.get("extra") or {})
