"""Depth sensors the generator imitates, and where the camera hangs.

**Sensors** (:data:`SENSORS`, raw frames at their native sizes, rows × columns; intrinsics
of the depth stream as the drivers report them, pixel centres at integer coordinates):

========================= ========= ============= ========== =================== =========
name                      kind      size          f (px)     range (m)           baseline
========================= ========= ============= ========== =================== =========
``kinect2``               tof       512 × 424     367.8      0.5–4.5             –
``d435`` (848×480)        stereo    480 × 848     426        0.3–10              50 mm
``d435_1280x720``         stereo    720 × 1280    640        0.3–10              50 mm
``d435_640x480``          stereo    480 × 640     383        0.3–10              50 mm
``d435_424x240``          stereo    240 × 424     213        0.3–10              50 mm
``d455_640x360``          stereo    360 × 640     320        0.4–10              95 mm
``azure_nfov``            tof       576 × 640     505        0.5–3.86            –
``l515``                  lidar     480 × 640     460        0.25–9              –
========================= ========= ============= ========== =================== =========

* ``kinect2`` — Microsoft Kinect v2 (time of flight) as SLP mounted it: portrait frames,
  f = 367.8 px, c = (208.1, 259.7) px (SPEC §7.2), image rows along the bed in bed scenes.
* ``d435*`` / ``d455*`` — Intel RealSense D4xx active stereo at its depth modes (16:9 modes
  about 87° wide; the 4:3 640×480 mode about 80°); the D455's longer baseline halves the
  stereo error at a given distance. Mounted with the long image axis along the bed in bed
  scenes (``mount_yaw``).
* ``azure_nfov`` — Azure Kinect / Orbbec Femto time of flight in its narrow unbinned mode
  (about 75° × 65°).
* ``l515`` — an Intel L515-like solid-state lidar (time of flight by a scanned laser,
  about 70° × 55°).

Noise parameters per kind are in :mod:`disrt_core.sim.noise`.

**Camera pose, bed scenes** [choice] (:func:`sample_camera_poses`): 1.9–2.5 m above the
mattress top (uniform), looking down at a point within ±10 cm (x) / ±15 cm (y) of the bed
centre, tilted by N(0, 2°) about each image axis (clipped to ±5°) and yawed ±3° (plus the
mounting yaw). ``T_cam_bed`` is :func:`disrt_core.geometry.camera.overhead_camera_pose` of
those values, computed for the whole batch at once (:func:`overhead_camera_poses`).

**Camera pose, room scenes** [choice] (:func:`sample_room_cameras`), as cameras are mounted
on real ceilings: U[1.4, 3.2] m above the mattress top; pitched away from looking straight
down by 30°·u^1.5 (u uniform: most mounts are nearly vertical, some up to 30°) in a uniform
direction; rolled by U[−3°, 3°]; the bed at any in-plane angle (uniform yaw); and anywhere in
the frame: the bed centre is put at a uniform point of the central 80 % of the image, and a
draw is kept only when all four mattress corners (and the head and foot boards' tops) project
inside the image with a 2 % margin. Up to ``tries`` draws are made at once per sample; the
first that fits is kept (a sample without any, rare, keeps the draw nearest to fitting and
``in_view`` False).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from disrt_core.geometry.bedframe import BED_CENTRE_LABEL
from disrt_core.geometry.camera import invert_rigid


@dataclass(frozen=True)
class SensorSpec:
    """A depth camera: raw frame size (rows, cols), intrinsics, range, noise kind, mounting
    yaw (bed scenes), stereo baseline."""

    name: str
    size: tuple[int, int]
    focal: tuple[float, float]
    centre: tuple[float, float]
    range_m: tuple[float, float]
    kind: str  # "tof", "stereo" or "lidar"
    mount_yaw: float = 0.0
    baseline_m: float = 0.0

    def K(self, batch: int = 1, device=None) -> Tensor:
        """Intrinsics [batch,3,3] (pixel centres at integer coordinates)."""
        k = torch.tensor([[self.focal[0], 0.0, self.centre[0]],
                          [0.0, self.focal[1], self.centre[1]], [0.0, 0.0, 1.0]],
                         device=device)
        return k.expand(batch, 3, 3).clone()


def _d4xx(name: str, rows: int, cols: int, f: float, baseline: float = 0.05,
          near: float = 0.3) -> SensorSpec:
    return SensorSpec(name, (rows, cols), (f, f), (cols / 2.0, rows / 2.0), (near, 10.0),
                      "stereo", mount_yaw=math.pi / 2, baseline_m=baseline)


SENSORS: dict[str, SensorSpec] = {
    "kinect2": SensorSpec("kinect2", (512, 424), (367.8, 367.8), (208.1, 259.7), (0.5, 4.5),
                          "tof"),
    "d435": _d4xx("d435", 480, 848, 426.0),
    "d435_1280x720": _d4xx("d435_1280x720", 720, 1280, 640.0),
    "d435_640x480": _d4xx("d435_640x480", 480, 640, 383.0),
    "d435_424x240": _d4xx("d435_424x240", 240, 424, 213.0),
    "d455_640x360": _d4xx("d455_640x360", 360, 640, 320.0, baseline=0.095, near=0.4),
    "azure_nfov": SensorSpec("azure_nfov", (576, 640), (505.0, 505.0), (320.0, 288.0),
                             (0.5, 3.86), "tof", mount_yaw=math.pi / 2),
    "l515": SensorSpec("l515", (480, 640), (460.0, 460.0), (320.0, 240.0), (0.25, 9.0),
                       "lidar", mount_yaw=math.pi / 2),
}
#: What ``sensor="all"`` cycles through (training pools, benchmarks): every sensor above.
ALL_SENSORS = tuple(SENSORS)


def get_sensor(name: str) -> SensorSpec:
    if name not in SENSORS:
        raise ValueError(f"unknown sensor {name!r}; choose one of {sorted(SENSORS)}")
    return SENSORS[name]


def overhead_camera_poses(height: Tensor, centre: Tensor, tilt: Tensor, yaw: Tensor) -> Tensor:
    """Batched :func:`disrt_core.geometry.camera.overhead_camera_pose`: ``T_cam_bed``
    [B,4,4] of cameras ``height`` [B] above the bed points ``centre`` [B,2], turned by the
    rotation vectors (tilt_x, tilt_y, yaw) in camera axes (tilt [B,2], yaw [B])."""
    import roma

    n = height.shape[0]
    # Optical axes in the bed frame: x_c = +x_L, y_c = −y_L, z_c = −z_L (looking down).
    base = torch.diag(height.new_tensor([1.0, -1.0, -1.0]))
    r_bed_cam = base @ roma.rotvec_to_rotmat(torch.cat([tilt, yaw[:, None]], -1))
    T_bed_cam = torch.eye(4, device=height.device, dtype=height.dtype).repeat(n, 1, 1)
    T_bed_cam[:, :3, :3] = r_bed_cam
    T_bed_cam[:, :3, 3] = torch.cat([centre, height[:, None]], -1)
    return invert_rigid(T_bed_cam)


def sample_camera_poses(spec: SensorSpec, n: int, gen: torch.Generator, device="cpu",
                        height_m: tuple[float, float] = (1.9, 2.5)) -> tuple[Tensor, Tensor]:
    """Random overhead cameras of bed scenes: ``T_cam_bed`` [n,4,4] and heights [n] (m)."""
    u = torch.rand(n, 6, generator=gen, device=device)
    tilt = (torch.randn(n, 2, generator=gen, device=device) * math.radians(2.0)).clamp(
        -math.radians(5.0), math.radians(5.0))
    height = height_m[0] + (height_m[1] - height_m[0]) * u[:, 0]
    centre = torch.stack([BED_CENTRE_LABEL[0] + 0.2 * (u[:, 1] - 0.5),
                          BED_CENTRE_LABEL[1] + 0.3 * (u[:, 2] - 0.5)], -1)
    yaw = spec.mount_yaw + math.radians(3.0) * (2 * u[:, 3] - 1)
    return overhead_camera_poses(height, centre, tilt, yaw), height


def _look_down(yaw: Tensor, pitch: Tensor, pitch_dir: Tensor, roll: Tensor) -> Tensor:
    """Rotations [B,3,3] camera -> bed frame of cameras looking down: the overhead base
    (x_c = +x_L, y_c = −y_L, z_c = −z_L) turned by ``yaw`` about the vertical, then the
    optical axis tipped by ``pitch`` toward the horizontal direction ``pitch_dir`` (bed
    frame angle), then rolled by ``roll`` about the optical axis."""
    import roma

    zeros = torch.zeros_like(yaw)
    base = torch.diag(yaw.new_tensor([1.0, -1.0, -1.0]))
    turn = roma.rotvec_to_rotmat(torch.stack([zeros, zeros, yaw], -1))
    # Tipping the optical axis (−z) toward d = (cos a, sin a, 0): rotate about d × z.
    axis = torch.stack([torch.sin(pitch_dir), -torch.cos(pitch_dir), zeros], -1)
    tip = roma.rotvec_to_rotmat(axis * pitch[:, None])
    spin = roma.rotvec_to_rotmat(torch.stack([zeros, zeros, roll], -1))
    return tip @ turn @ base @ spin


def sample_room_cameras(spec: SensorSpec, corners: Tensor, gen: torch.Generator, *,
                        height_m: tuple[float, float] = (1.4, 3.2), max_pitch_deg: float = 30.0,
                        max_roll_deg: float = 3.0, margin: float = 0.02,
                        tries: int = 32) -> tuple[Tensor, Tensor]:
    """Cameras of room scenes (see the module docstring): ``T_cam_bed`` [B,4,4] and
    ``in_view`` [B] (bool).

    corners: [B,C,3] bed-frame points that must be in view, the first four the mattress
    corners (their centre is what is placed in the image; the mattress top is z = 0 and the
    camera's height is above it), then any others (the tops of the boards).
    """
    n, device = corners.shape[0], corners.device
    m = n * tries
    u = torch.rand(m, 7, generator=gen, device=device)
    height = height_m[0] + (height_m[1] - height_m[0]) * u[:, 0]
    yaw = 2 * math.pi * u[:, 1]
    pitch = math.radians(max_pitch_deg) * u[:, 2] ** 1.5
    pitch_dir = 2 * math.pi * u[:, 3]
    roll = math.radians(max_roll_deg) * (2 * u[:, 4] - 1)
    rows, cols = spec.size
    # Where the bed centre appears: uniform over the central 80 % of the image.
    target_u = cols * (0.1 + 0.8 * u[:, 5])
    target_v = rows * (0.1 + 0.8 * u[:, 6])
    R = _look_down(yaw, pitch, pitch_dir, roll)  # camera -> bed
    ray_cam = torch.stack([(target_u - spec.centre[0]) / spec.focal[0],
                           (target_v - spec.centre[1]) / spec.focal[1],
                           torch.ones_like(target_u)], -1)
    ray = (R @ ray_cam[..., None])[..., 0]  # bed frame
    centre = corners[:, :4].mean(1).repeat_interleave(tries, 0)  # [m,3]
    # The camera sits `height` above the mattress plane, on the ray back from the centre.
    t = height / (-ray[:, 2]).clamp(min=1e-3)
    origin = centre - ray * t[:, None]
    origin[:, 2] = height
    T_bed_cam = torch.eye(4, device=device).repeat(m, 1, 1)
    T_bed_cam[:, :3, :3] = R
    T_bed_cam[:, :3, 3] = origin
    T = invert_rigid(T_bed_cam)
    pts = corners.repeat_interleave(tries, 0) @ T[:, :3, :3].transpose(-1, -2) + T[:, None, :3, 3]
    z = pts[..., 2]
    px = pts[..., 0] / z.clamp(min=1e-3) * spec.focal[0] + spec.centre[0]
    py = pts[..., 1] / z.clamp(min=1e-3) * spec.focal[1] + spec.centre[1]
    mu, mv = margin * cols, margin * rows
    # How far the worst corner lies outside the allowed window (0 = in view), in pixels.
    outside = torch.stack([mu - px, px - (cols - 1 - mu), mv - py, py - (rows - 1 - mv)],
                          -1).clamp(min=0).amax(-1)
    outside = torch.where(z > 0.2, outside, torch.full_like(outside, 1e9)).amax(-1)
    outside = outside.view(n, tries)
    ok = outside <= 0
    # The first draw that fits, else the one nearest to fitting.
    first = torch.where(ok.any(1), ok.float().argmax(1), outside.argmin(1))
    pick = torch.arange(n, device=device) * tries + first
    return T[pick], ok.any(1)
