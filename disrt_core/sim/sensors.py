"""Depth sensors the generator imitates, and where the camera hangs.

* ``kinect2`` — Microsoft Kinect v2 (time of flight) as SLP mounted it: portrait raw frames
  of 512 rows × 424 columns, f = 367.8 px, c = (208.1, 259.7) px (SPEC §7.2), range
  0.5–4.5 m, image rows along the bed (head end at row 0).
* ``d435`` — Intel RealSense D435-class active stereo camera at its 848 × 480 depth mode:
  f ≈ 426 px (about 89° × 59° field of view), c = (424, 240), baseline 50 mm, range
  0.3–10 m; mounted with its long image axis along the bed (yawed 90°) so that the whole
  bed fits in view.

Noise parameters per sensor are in :mod:`disrt_core.sim.noise`.

**Camera pose** [choice] (:func:`sample_camera_poses`): 1.9–2.5 m above the mattress top
(uniform), looking down at a point within ±10 cm (x) / ±15 cm (y) of the bed centre, tilted
by N(0, 2°) about each image axis (clipped to ±5°) and yawed ±3° (plus the mounting yaw).
``T_cam_bed`` is :func:`disrt_core.geometry.camera.overhead_camera_pose` of those values,
computed for the whole batch at once on the device (:func:`overhead_camera_poses`, the same
formula; the tests check it against the single-pose function).
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
    """A depth camera: raw frame size (rows, cols), intrinsics, range, mounting yaw."""

    name: str
    size: tuple[int, int]
    focal: tuple[float, float]
    centre: tuple[float, float]
    range_m: tuple[float, float]
    kind: str  # "tof" or "stereo"
    mount_yaw: float = 0.0
    baseline_m: float = 0.0

    def K(self, batch: int = 1, device=None) -> Tensor:
        """Intrinsics [batch,3,3] (pixel centres at integer coordinates)."""
        k = torch.tensor([[self.focal[0], 0.0, self.centre[0]],
                          [0.0, self.focal[1], self.centre[1]], [0.0, 0.0, 1.0]],
                         device=device)
        return k.expand(batch, 3, 3).clone()


SENSORS: dict[str, SensorSpec] = {
    "kinect2": SensorSpec("kinect2", (512, 424), (367.8, 367.8), (208.1, 259.7), (0.5, 4.5),
                          "tof"),
    "d435": SensorSpec("d435", (480, 848), (426.0, 426.0), (424.0, 240.0), (0.3, 10.0),
                       "stereo", mount_yaw=math.pi / 2, baseline_m=0.05),
}


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
    """Random overhead cameras: ``T_cam_bed`` [n,4,4] and camera heights [n] (m)."""
    u = torch.rand(n, 6, generator=gen, device=device)
    tilt = (torch.randn(n, 2, generator=gen, device=device) * math.radians(2.0)).clamp(
        -math.radians(5.0), math.radians(5.0))
    height = height_m[0] + (height_m[1] - height_m[0]) * u[:, 0]
    centre = torch.stack([BED_CENTRE_LABEL[0] + 0.2 * (u[:, 1] - 0.5),
                          BED_CENTRE_LABEL[1] + 0.3 * (u[:, 2] - 0.5)], -1)
    yaw = spec.mount_yaw + math.radians(3.0) * (2 * u[:, 3] - 1)
    return overhead_camera_poses(height, centre, tilt, yaw), height
