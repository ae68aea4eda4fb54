"""Parameters of the bed monitor node: declaration (with descriptions and ranges), validation
with messages that say what to change, and the typed configuration the node runs on.

Global parameters are in ``GLOBAL``; each camera named in ``cameras`` gets the parameters of
``PER_CAMERA`` under its name (``<camera>.bed_region`` ...). Only ``ddim_steps``,
``hypotheses`` and ``eta`` change at run time (``DYNAMIC``); the others are read-only after
start-up. ``config/bed_monitor.yaml`` lists them all with their defaults.

Bed region of a camera (``<camera>.bed_region``):

* ``auto`` [default without ``corners_px`` or ``T_cam_bed``]: the mattress is found on the
  first frame (``bedfit.fit_bed``: a
  raised rectangle 0.7–2.1 m × 1.8–2.4 m, not the floor, a table or a sofa; with or without
  someone on it). ``head_side`` says on which image side its head end is, or ``auto``
  [default]: decided from the person lying there, a pillow and the boards; while nothing
  tells (an empty bed without a pillow) the head end is taken toward ``head_fallback`` (or,
  where the bed runs across that image side, the likelier end) and the bed is fitted again
  every few seconds until something does. No mattress: the frames
  are refused (ERROR in /diagnostics, the reason in its message) and it is looked for again.
* ``corners`` [default when ``corners_px`` is given]: the four mattress-corner pixels
  ``corners_px`` = [u0, v0, ..., u3, v3] in the order head-left, head-right, foot-right,
  foot-left (clockwise seen from above, as in
  ``disrt_core.geometry.bedfit.bed_from_corners``); the mattress plane is fitted to the
  depth inside them on the first frame.
* ``pose`` [default when ``T_cam_bed`` is given]: a fixed installation. ``T_cam_bed`` (16
  numbers, row-major 4×4, bed (label) frame -> camera optical frame) when given, else a
  camera ``camera_height_m`` above the mattress, over the centre of the bed, looking
  straight down with image row 0 toward the head end
  (``disrt_core.geometry.camera.overhead_camera_pose``; set ``bed_region: pose`` for it).

``disrt-fit-bed`` shows what ``auto`` finds on a frame of the camera (and prints the
``corners_px`` / ``T_cam_bed`` lines for the other two).

``posture_source``: where ``~/posture`` (and the monitor's posture) comes from: the
posture classifier on the network image (``classifier``, the default,
:mod:`disrt_core.model.posture_net`) or the estimated body's root orientation (``pose``).

Pressure and the repositioning monitor (:mod:`disrt_ros.monitoring`): ``pressure`` computes
the pressure under the body (on by default), ``pressure_method`` how: ``learned`` (the
default: a small CNN's map from the depth image read under the predicted body) or
``physical`` (the predicted mesh sunk into the mattress); costs in ``bench_pressure``;
``turn_interval_min``, ``pressure_alert_kpa`` / ``pressure_alert_min``,
``pressure_load_kpa`` and ``monitor_hold_s`` set the monitor
(:mod:`disrt_core.repositioning`; durations in minutes of the frames' stamps);
``monitor_state_file`` keeps its state across restarts.

For ``corners`` and ``auto`` the bed is fitted on the per-pixel median of the last
``bed_fit_frames`` frames (``geometry.camera.median_depth``; a fit from fewer, at start-up,
is fitted again after a few seconds), re-checked the same way every ``refit_period_s``
(``bedfit.bed_change``; 0 = never) and re-fitted when it moved; the check runs on the
inference thread, so that frame's latency grows by the fit time (tens of ms).

Input of a camera (global, each overridable per camera as ``<camera>.input_qos`` ...):

* ``input_qos``: QoS of the depth and CameraInfo subscriptions. ``reliable`` [default]
  matches what realsense-ros (``depth_qos`` SYSTEM_DEFAULT, CameraInfo DEFAULT), the Azure
  Kinect and Orbbec ROS 2 drivers (``image_transport`` / ``default`` QoS) publish by
  default, and loses no frame: with Fast DDS's defaults a best-effort subscriber received 4
  of 30 640×480 16UC1 frames here, a reliable one all. ``sensor_data`` (best effort, keep
  last 5) is for best-effort publishers (e.g. realsense-ros with ``depth_qos:=SENSOR_DATA``),
  which a reliable subscription cannot match: the node reports that as an incompatible-QoS
  problem naming this parameter. ``system_default`` is the middleware's default (reliable
  with Fast DDS).
* ``input_transport``: ``raw`` (``sensor_msgs/Image`` on the depth topic) or
  ``compressedDepth`` (image_transport's ``sensor_msgs/CompressedImage`` on
  ``<depth topic>/compressedDepth``, PNG or RVL inside; decoded on the inference thread by
  :func:`disrt_ros.conversions.decode_compressed_depth`).
"""

from __future__ import annotations

import array
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter

from disrt_ros.conversions import intrinsics_to_K

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / "disrt_core" / "weights" / \
    "default.safetensors"
#: camera_type -> (depth image topic, CameraInfo topic), relative to the camera namespace.
CAMERA_TOPICS = {
    "realsense": ("depth/image_rect_raw", "depth/camera_info"),  # realsense-ros
    "kinect": ("depth/image_raw", "depth/camera_info"),  # Azure Kinect / Orbbec / openni2
    "generic": ("depth/image", "depth/camera_info"),
}
BED_REGIONS = ("pose", "corners", "auto")
HEAD_SIDES = ("auto", "top", "bottom", "left", "right")
DYNAMIC = ("ddim_steps", "hypotheses", "eta")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
COMPILE_MODES = ("", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
PRESSURE_METHODS = ("learned", "physical")  # disrt_core.infer.PRESSURE_METHODS
POSTURE_SOURCES = ("classifier", "pose")  # ~/posture: disrt_core.model.posture_net or the root
INPUT_QOS = ("reliable", "sensor_data", "system_default")
INPUT_TRANSPORTS = ("raw", "compressedDepth")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class ParameterError(ValueError):
    """A parameter value the node cannot run with; the message says which and what to do."""


def _int(lo: int, hi: int) -> dict:
    return {"integer_range": [IntegerRange(from_value=lo, to_value=hi, step=1)]}


def _float(lo: float, hi: float) -> dict:
    return {"floating_point_range": [FloatingPointRange(from_value=lo, to_value=hi, step=0.0)]}


# name -> (default or Parameter.Type when it has none, description, range/constraint kwargs)
GLOBAL: dict[str, tuple[Any, str, dict]] = {
    "checkpoint": ("", "safetensors checkpoint of the model; empty = the embedded default "
                   "weights (disrt_core/weights/default.safetensors)", {}),
    "device": ("auto", "auto (cuda when available, else cpu), cpu, cuda or cuda:N", {}),
    "body_model_dir": ("", "folder of the SMPL model files, for SMPL checkpoints; empty = "
                       "$DISRT_SMPL_DIR (Anny checkpoints need none)", {}),
    "precision": ("auto", "network precision: auto (bf16 on CUDA, fp32 on CPU), fp32, bf16 "
                  "or fp16", {}),
    "compile": ("", "torch.compile mode of the network (on CUDA also of the decoding, "
                "presence and learned pressure); empty = eager (e.g. "
                "max-autotune-no-cudagraphs with cuda_graphs)", {}),
    "cuda_graphs": (False, "replay each predict (DDIM loop and decoding) as a CUDA graph "
                    "(CUDA only; one graph per batch size, captured at start-up)", {}),
    "ddim_steps": (5, "DDIM sampling steps (the paper uses 5); changeable at run time",
                   _int(1, 100)),
    "hypotheses": (1, "sampled hypotheses per frame (K); their spread colours the joints; "
                   "changeable at run time", _int(1, 64)),
    "eta": (0.0, "DDIM eta (0 = deterministic sampler); changeable at run time",
            _float(0.0, 1.0)),
    "seed": (-1, "sampler seed; -1 = not seeded", _int(-1, 2**31 - 1)),
    "cpu_threads": (0, "torch CPU threads of the inference thread; 0 = on the CPU one per "
                    "core less one (at least 1: a core for the executor and the camera "
                    "driver), on a GPU torch's default",
                    _int(0, 256)),
    "max_batch": (8, "most frames (one per camera) in one inference batch", _int(1, 64)),
    "rate_limit_hz": (0.0, "most inferences per second per camera; 0 = as fast as possible",
                      _float(0.0, 1000.0)),
    "bed_distance_mm": (2101.0, "camera-to-bed distance of the training data (SLP danaLab "
                        "2101 mm) in which depth is expressed for the network",
                        _float(1500.0, 3000.0)),
    "camera_type": ("realsense", "realsense, kinect or generic: sets the default depth and "
                    "CameraInfo topic names under each camera namespace", {}),
    "input_qos": ("reliable", "QoS of the depth and CameraInfo subscriptions: reliable (the "
                  "default of realsense-ros, Azure Kinect and Orbbec drivers; no frame lost), "
                  "sensor_data (best effort, for best-effort publishers) or system_default",
                  {}),
    "input_transport": ("raw", "raw (sensor_msgs/Image on the depth topic) or "
                        "compressedDepth (image_transport's CompressedImage on "
                        "<depth topic>/compressedDepth, PNG or RVL)", {}),
    "cameras": (["camera"], "names of the cameras (one per bed); each has the parameters "
                "<name>.namespace, <name>.bed_region, ...", {}),
    "min_valid_fraction": (0.05, "frames with fewer valid depth pixels are rejected",
                           _float(0.0, 1.0)),
    "marker_lifetime_s": (1.0, "lifetime of the RViz markers (0 = forever)",
                          _float(0.0, 3600.0)),
    "display_rate_hz": (10.0, "most ~/mesh, ~/mesh_cloud and ~/overlay messages per second "
                        "per camera; 0 = every result", _float(0.0, 1000.0)),
    "diagnostics_period_s": (1.0, "period of the /diagnostics report", _float(0.05, 60.0)),
    "overlay_scale": (4, "~/overlay pixels per network-grid pixel (128x54 grid)",
                      _int(1, 16)),
    "occupancy_check": (True, "decide whether someone lies in bed (disrt_core.occupancy) and "
                        "answer only then; false takes every plausible frame as someone "
                        "lying in bed (replaying a dataset such as SLP, where the bed is never "
                        "empty; the depth checks still apply)", {}),
    "pressure": (True, "compute the pressure under the body (~/pressure, ~/pressure_overlay, "
                 "per-region peaks in pose_json and the pressure alerts; pressure_method "
                 "says how)", {}),
    "pressure_method": ("learned", "learned (the map from the depth image by a small CNN, "
                        "disrt_core.model.pressure_net, read under the predicted body; the "
                        "more accurate in bench_pressure) or physical (the predicted mesh "
                        "sunk into a spring mattress, disrt_core.pressure)", {}),
    "posture_source": ("classifier", "where ~/posture comes from: classifier (a small CNN "
                       "on the depth image, disrt_core.model.posture_net; the more accurate "
                       "under blankets in docs/posture_eval.md) or pose (the root orientation "
                       "of the estimated body)", {}),
    "turn_interval_min": (120.0, "repositioning monitor: alert (~/alerts, /diagnostics WARN) "
                          "when nobody in bed has been turned for this many minutes",
                          _float(0.01, 10080.0)),
    "pressure_alert_kpa": (9.3, "repositioning monitor: pressure alert when a body region's "
                           "peak stays above this (kPa; 9.3 = 70 mmHg) for pressure_alert_min",
                           _float(0.5, 100.0)),
    "pressure_alert_min": (60.0, "repositioning monitor: minutes above pressure_alert_kpa "
                           "before a region's pressure alert", _float(0.01, 10080.0)),
    "pressure_load_kpa": (4.3, "repositioning monitor: the load per region is accumulated "
                          "above this pressure (kPa·min; 4.3 kPa = 32 mmHg)",
                          _float(0.0, 100.0)),
    "monitor_hold_s": (10.0, "repositioning monitor: a new posture, bed state or pressure "
                       "state counts once seen this many seconds longer than contradicted "
                       "(single-frame flicker changes nothing)", _float(0.0, 3600.0)),
    "monitor_state_file": ("", "repositioning monitor: JSON file the monitor's state is "
                           "kept in (written atomically), so that a restarted node continues "
                           "the timeline; empty = not kept", {}),
}
PER_CAMERA: dict[str, tuple[Any, str, dict]] = {
    "namespace": ("", "namespace of the camera's topics; empty = the camera name", {}),
    "depth_topic": ("", "depth image topic; empty = <namespace>/<camera_type default>", {}),
    "info_topic": ("", "CameraInfo topic; empty = <namespace>/depth/camera_info", {}),
    "frame_id": ("", "expected optical frame id of the depth images; frames with another "
                 "id are rejected as an unknown camera; empty = accept any", {}),
    "bed_region": ("", "auto (the mattress found in the depth), corners or pose (see "
                   "disrt_ros.params); empty = corners when corners_px is given, pose when "
                   "T_cam_bed is given, else auto", {}),
    "T_cam_bed": (Parameter.Type.DOUBLE_ARRAY, "bed_region pose: 4x4 row-major transform "
                  "bed (label) frame -> camera optical frame, metres", {}),
    "camera_height_m": (2.101, "bed_region pose without T_cam_bed: camera height above the "
                        "mattress, looking down over the bed centre", _float(0.3, 6.0)),
    "corners_px": (Parameter.Type.DOUBLE_ARRAY, "bed_region corners: [u0, v0, ..., u3, v3] "
                   "mattress-corner pixels: head-left, head-right, foot-right, foot-left", {}),
    "head_side": ("auto", "bed_region auto: image side of the head end (top, bottom, left, "
                  "right), or auto: decided from the person lying there, a pillow and the "
                  "boards", {}),
    "head_fallback": ("top", "bed_region auto with head_side auto: the image side taken for "
                      "the head end while nothing tells (an empty bed without pillow or "
                      "board; where the bed runs across that side, its likelier end); "
                      "re-decided once someone lies there", {}),
    "refit_period_s": (60.0, "bed_region corners/auto: re-check the bed every this many "
                       "seconds (re-fit if it moved); 0 = never", _float(0.0, 86400.0)),
    "bed_fit_frames": (5, "bed_region corners/auto: fit and re-check the bed on the "
                       "per-pixel median of the last this many frames (a stereo camera's "
                       "noise about halves over 5); 1 = on one frame", _int(1, 30)),
    "intrinsics": (Parameter.Type.DOUBLE_ARRAY, "[fx, fy, cx, cy] used (with a warning) "
                   "while no CameraInfo has arrived; empty = wait for CameraInfo", {}),
    "input_qos": ("", "this camera's input_qos; empty = the global input_qos", {}),
    "input_transport": ("", "this camera's input_transport; empty = the global one", {}),
}


@dataclass(frozen=True)
class CameraConfig:
    name: str
    depth_topic: str
    info_topic: str
    frame_id: str
    bed_region: str
    T_cam_bed: np.ndarray | None  # [4,4] for bed_region "pose"
    corners_px: np.ndarray | None  # [4,2] for "corners"
    head_side: str
    refit_period_s: float
    K_fallback: np.ndarray | None  # [3,3] from ``intrinsics``
    bed_fit_frames: int = 1  # frames whose per-pixel median the bed is fitted on
    input_qos: str = "reliable"  # one of INPUT_QOS
    head_fallback: str = "top"  # the image side of the head end while head_side auto cannot tell
    input_transport: str = "raw"  # one of INPUT_TRANSPORTS


@dataclass(frozen=True)
class MonitorConfig:
    checkpoint: Path
    device: str
    body_model_dir: str
    precision: str
    compile: str
    cuda_graphs: bool
    cpu_threads: int
    ddim_steps: int
    hypotheses: int
    eta: float
    seed: int | None
    max_batch: int
    rate_limit_hz: float
    bed_distance_mm: float
    camera_type: str
    min_valid_fraction: float
    marker_lifetime_s: float
    display_rate_hz: float
    diagnostics_period_s: float
    overlay_scale: int
    cameras: tuple[CameraConfig, ...]
    occupancy_check: bool = True
    pressure: bool = True
    pressure_method: str = "learned"
    posture_source: str = "classifier"
    turn_interval_min: float = 120.0
    pressure_alert_kpa: float = 9.3
    pressure_alert_min: float = 60.0
    pressure_load_kpa: float = 4.3
    monitor_hold_s: float = 10.0
    monitor_state_file: str = ""


def _declare(node: Node, name: str, spec: tuple[Any, str, dict], dynamic: bool) -> Any:
    default, description, constraints = spec
    descriptor = ParameterDescriptor(description=description, read_only=not dynamic,
                                     **constraints)
    try:
        param = node.declare_parameter(name, default, descriptor)
    except InvalidParameterTypeException as error:
        raise ParameterError(f"parameter '{name}': {error}. Write floats with a decimal point "
                             "(2.0, not 2) and lists in brackets") from error
    except InvalidParameterValueException as error:  # out of the descriptor's range
        raise ParameterError(f"parameter '{name}': {error}") from error
    if param.type_ == Parameter.Type.NOT_SET:
        return None
    return list(param.value) if isinstance(param.value, (list, tuple, array.array)) \
        else param.value


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ParameterError(f"parameter '{name}' is {value!r}; use one of {', '.join(choices)}")
    return value


def check_device(value: str) -> str:
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' -> the device to run on ('auto' resolved)."""
    import torch

    if value == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if value == "cpu":
        return value
    if re.fullmatch(r"cuda(:\d+)?", value):
        if not torch.cuda.is_available():
            raise ParameterError(f"parameter 'device' is {value!r} but no CUDA GPU is usable "
                                 "here (torch.cuda.is_available() is False); use device:=cpu "
                                 "or device:=auto")
        return value
    raise ParameterError(f"parameter 'device' is {value!r}; use auto, cpu, cuda or cuda:N")


def check_checkpoint(value: str) -> Path:
    path = Path(value).expanduser() if value else DEFAULT_CHECKPOINT
    if not path.is_file():
        what = "the embedded default weights" if not value else "the checkpoint"
        raise ParameterError(
            f"parameter 'checkpoint': {what} {path} not found. Pass checkpoint:=/path/to/"
            "model.safetensors (a checkpoint written by training/train.py), or install the "
            "package with its default weights")
    return path


def rigid_from_list(name: str, values: list[float]) -> np.ndarray:
    """4x4 row-major list -> rigid transform, checked (rotation orthonormal, det +1)."""
    if len(values) != 16:
        raise ParameterError(f"parameter '{name}' needs 16 numbers (4x4 row-major), got "
                             f"{len(values)}")
    T = np.asarray(values, dtype=np.float64).reshape(4, 4)
    R = T[:3, :3]
    if not (np.allclose(R @ R.T, np.eye(3), atol=1e-3) and np.linalg.det(R) > 0
            and np.allclose(T[3], [0, 0, 0, 1])):
        raise ParameterError(f"parameter '{name}' is not a rigid transform (rotation block "
                             "orthonormal with det +1, last row 0 0 0 1)")
    return T


def _camera(node: Node, name: str, camera_type: str, inputs: dict[str, str]) -> CameraConfig:
    if not _NAME.match(name):
        raise ParameterError(f"camera name {name!r} in 'cameras' must start with a letter and "
                             "hold only letters, digits and '_'")
    v = {key: _declare(node, f"{name}.{key}", spec, False) for key, spec in PER_CAMERA.items()}
    p = f"{name}."
    namespace = (v["namespace"] or name).rstrip("/")
    depth_default, info_default = CAMERA_TOPICS[camera_type]
    region = v["bed_region"] or ("corners" if v["corners_px"] else
                                 "pose" if v["T_cam_bed"] else "auto")
    region = _choice(p + "bed_region", region, BED_REGIONS)
    head_side = _choice(p + "head_side", v["head_side"], HEAD_SIDES)
    head_fallback = _choice(p + "head_fallback", v["head_fallback"], HEAD_SIDES[1:])
    T = corners = None
    if region == "pose":
        if v["T_cam_bed"]:
            T = rigid_from_list(p + "T_cam_bed", v["T_cam_bed"])
        else:
            from disrt_core.geometry.bedframe import BED_CENTRE_LABEL
            from disrt_core.geometry.camera import overhead_camera_pose

            T = overhead_camera_pose(v["camera_height_m"], BED_CENTRE_LABEL).double().numpy()
    elif region == "corners":
        if not v["corners_px"] or len(v["corners_px"]) != 8:
            raise ParameterError(f"parameter '{p}corners_px' needs 8 numbers [u0, v0, ..., "
                                 f"u3, v3] with bed_region corners, got {v['corners_px']}")
        corners = np.asarray(v["corners_px"], dtype=np.float64).reshape(4, 2)
    K = None
    if v["intrinsics"]:
        if len(v["intrinsics"]) != 4:
            raise ParameterError(f"parameter '{p}intrinsics' needs [fx, fy, cx, cy], got "
                                 f"{v['intrinsics']}")
        try:
            K = intrinsics_to_K(v["intrinsics"])
        except ValueError as error:
            raise ParameterError(f"parameter '{p}intrinsics': {error}") from error
    return CameraConfig(
        name=name,
        depth_topic=v["depth_topic"] or f"{namespace}/{depth_default}",
        info_topic=v["info_topic"] or f"{namespace}/{info_default}",
        frame_id=v["frame_id"], bed_region=region, T_cam_bed=T, corners_px=corners,
        head_side=head_side, head_fallback=head_fallback, refit_period_s=v["refit_period_s"],
        K_fallback=K, bed_fit_frames=v["bed_fit_frames"],
        input_qos=_choice(p + "input_qos", v["input_qos"] or inputs["input_qos"], INPUT_QOS),
        input_transport=_choice(p + "input_transport",
                                v["input_transport"] or inputs["input_transport"],
                                INPUT_TRANSPORTS),
    )


def declare_and_load(node: Node, *, check_files: bool = True) -> MonitorConfig:
    """Declare every parameter on ``node``, validate, and return the configuration.

    check_files: check that the checkpoint exists (off when an estimator is injected).
    Raises ParameterError with a message naming the parameter and the fix.
    """
    g = {name: _declare(node, name, spec, name in DYNAMIC) for name, spec in GLOBAL.items()}
    camera_type = _choice("camera_type", g["camera_type"], tuple(CAMERA_TOPICS))
    names = list(g["cameras"])
    if not names or len(set(names)) != len(names):
        raise ParameterError(f"parameter 'cameras' must list distinct camera names, got {names}")
    inputs = {"input_qos": _choice("input_qos", g["input_qos"], INPUT_QOS),
              "input_transport": _choice("input_transport", g["input_transport"],
                                         INPUT_TRANSPORTS)}
    cameras = tuple(_camera(node, name, camera_type, inputs) for name in names)
    device = check_device(g["device"]) if check_files else g["device"]
    if g["cuda_graphs"] and not device.startswith("cuda"):
        raise ParameterError(f"parameter 'cuda_graphs' needs a CUDA device, but device is "
                             f"{device!r}; set cuda_graphs:=false or device:=cuda")
    return MonitorConfig(
        checkpoint=check_checkpoint(g["checkpoint"]) if check_files else Path(g["checkpoint"]),
        device=device, body_model_dir=g["body_model_dir"],
        precision=_choice("precision", g["precision"], PRECISIONS),
        compile=_choice("compile", g["compile"], COMPILE_MODES), cuda_graphs=g["cuda_graphs"],
        cpu_threads=g["cpu_threads"],
        ddim_steps=g["ddim_steps"], hypotheses=g["hypotheses"], eta=g["eta"],
        seed=None if g["seed"] < 0 else g["seed"], max_batch=g["max_batch"],
        rate_limit_hz=g["rate_limit_hz"], bed_distance_mm=g["bed_distance_mm"],
        camera_type=camera_type, min_valid_fraction=g["min_valid_fraction"],
        marker_lifetime_s=g["marker_lifetime_s"], display_rate_hz=g["display_rate_hz"],
        diagnostics_period_s=g["diagnostics_period_s"], overlay_scale=g["overlay_scale"],
        cameras=cameras, occupancy_check=g["occupancy_check"], pressure=g["pressure"],
        pressure_method=_choice("pressure_method", g["pressure_method"], PRESSURE_METHODS),
        posture_source=_choice("posture_source", g["posture_source"], POSTURE_SOURCES),
        turn_interval_min=g["turn_interval_min"],
        pressure_alert_kpa=g["pressure_alert_kpa"], pressure_alert_min=g["pressure_alert_min"],
        pressure_load_kpa=g["pressure_load_kpa"], monitor_hold_s=g["monitor_hold_s"],
        monitor_state_file=g["monitor_state_file"],
    )
