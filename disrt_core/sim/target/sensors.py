"""The target domain's cameras: two time-of-flight camera types the source never uses, hung
differently, with a noise model that has what the source's lacks.

**Cameras** (:data:`TARGET_SENSORS`, drawn per sample with ``sensor_weights``):

* ``azure_nfov`` — an Azure-Kinect-class ToF camera in its narrow unbinned mode: 640 × 576
  px, f ≈ 505 px, c = (320, 288), range 0.5–3.9 m, long image axis along the bed;
* ``tof_qvga`` — a low-resolution industrial ToF camera: 320 × 240 px, f = 220 px
  (≈ 72° × 57°), range 0.3–6 m, long axis along the bed, noisier (×2).

**Mounting** [choice] (:func:`sample_target_camera_poses`): U[``camera_height``] (default
1.75–2.2 m; the source hangs 1.9–2.5 m) above the mattress, above a point within ±12 cm
(across) / ±18 cm (along) of the bed centre, tilted by N(0, ``tilt_deg``) about each image
axis (default 4°, clipped to ±``tilt_max_deg`` = 9°; the source: 2°, ±5°), yawed ±8°. A low,
tilted camera can lose the ends of the bed from its view (no reading there), as real
installations sometimes do.

**ToF noise** (:func:`apply_tof_noise`, clean depth in m -> raw mm), in this order:

1. *multipath* (a positive bias: light that reaches a pixel over two bounces travels
   further): near the mattress edge, ``a_edge·exp(−d/λ)`` for points on the mattress at a
   distance d from its edge (a_edge U[8, 25] mm, λ U[4, 10] cm per frame), and in concave
   creases, ``a_cav·max(0, z − mean₁₅ₓ₁₅(z))`` (a pixel deeper than its 15×15 neighbourhood,
   capped at 15 cm; a_cav U[0.05, 0.2]);
2. *axial noise*: the Kinect v2 formula of :mod:`disrt_core.sim.noise` times the camera's
   factor, growing toward the image corners as the illumination falls off
   (× (1 + 1.5·r²), r = distance from the principal point over the half diagonal), plus
   15 mm on hair;
3. *flying pixels*: at depth jumps over 2.5 cm within a 5 × 5 neighbourhood (a wider band
   than the source's 3 × 3 and 4 cm), 70 % of the pixels take a random mix of the near and
   far depth;
4. *dropout*: 35 % of the hair pixels (dark, scattering), 0.1 % extra speckle, then the
   source ToF's losses (:func:`disrt_core.sim.noise.dropout`: grazing angles 75°–88°,
   blobs of up to 0.5 % of the frame, 0.1 % speckle, out of range);
5. quantisation to 1 mm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from disrt_core.geometry.bedframe import BED_CENTRE_LABEL
from disrt_core.geometry.camera import invert_rigid, transform_points
from disrt_core.sim.noise import axial_sigma_mm, incidence_angle, max3x3
from disrt_core.sim.noise import dropout as source_dropout
from disrt_core.sim.scene import GRID, SceneGrid
from disrt_core.sim.sensors import SensorSpec, overhead_camera_poses


@dataclass(frozen=True)
class TofNoise:
    """Parameters of the target ToF noise (module docstring)."""

    sigma_scale: float = 1.0
    radial_gain: float = 1.5
    edge_mm: tuple[float, float] = (8.0, 25.0)
    edge_decay_m: tuple[float, float] = (0.04, 0.10)
    cavity_gain: tuple[float, float] = (0.05, 0.2)
    cavity_window: int = 15
    p_fly: float = 0.7
    fly_jump_m: float = 0.025
    hair_sigma_mm: float = 15.0
    hair_dropout: float = 0.35
    speckle: float = 0.001


TARGET_SENSORS: dict[str, SensorSpec] = {
    "azure_nfov": SensorSpec("azure_nfov", (576, 640), (505.0, 505.0), (320.0, 288.0),
                             (0.5, 3.86), "tof", mount_yaw=math.pi / 2),
    "tof_qvga": SensorSpec("tof_qvga", (240, 320), (220.0, 220.0), (160.0, 120.0), (0.3, 6.0),
                           "tof", mount_yaw=math.pi / 2),
}
TARGET_NOISE: dict[str, TofNoise] = {"azure_nfov": TofNoise(),
                                     "tof_qvga": TofNoise(sigma_scale=2.0)}


def sample_target_camera_poses(n: int, gen: torch.Generator, mount_yaw: Tensor, device="cpu",
                               height_m: tuple[float, float] = (1.75, 2.2),
                               tilt_deg: float = 4.0, tilt_max_deg: float = 9.0
                               ) -> tuple[Tensor, Tensor]:
    """``T_cam_bed`` [n,4,4] and heights [n] of the target cameras (module docstring);
    mount_yaw [n]: each sample's camera's mounting yaw."""
    u = torch.rand(n, 4, generator=gen, device=device)
    tilt = (torch.randn(n, 2, generator=gen, device=device) * math.radians(tilt_deg)).clamp(
        -math.radians(tilt_max_deg), math.radians(tilt_max_deg))
    height = height_m[0] + (height_m[1] - height_m[0]) * u[:, 0]
    centre = torch.stack([BED_CENTRE_LABEL[0] + 0.24 * (u[:, 1] - 0.5),
                          BED_CENTRE_LABEL[1] + 0.36 * (u[:, 2] - 0.5)], -1)
    yaw = mount_yaw + math.radians(8.0) * (2 * u[:, 3] - 1)
    return overhead_camera_poses(height, centre, tilt, yaw), height


def pixel_points(depth: Tensor, K: Tensor, T_cam_bed: Tensor) -> Tensor:
    """Label-frame points [B,H,W,3] of the pixels of depth images [B,H,W] (m)."""
    batch, rows, cols = depth.shape
    u = torch.arange(cols, device=depth.device, dtype=depth.dtype)
    v = torch.arange(rows, device=depth.device, dtype=depth.dtype)
    fx, fy = K[:, 0, 0, None, None], K[:, 1, 1, None, None]
    cx, cy = K[:, 0, 2, None, None], K[:, 1, 2, None, None]
    cam = torch.stack([(u - cx) / fx * depth, (v[:, None] - cy) / fy * depth, depth], -1)
    return transform_points(invert_rigid(T_cam_bed), cam.reshape(batch, -1, 3)).reshape(
        batch, rows, cols, 3)


def multipath_bias(depth: Tensor, points: Tensor, mattress_size: Tensor, noise: TofNoise,
                   gen: torch.Generator) -> Tensor:
    """The multipath bias (m, ≥ 0) [B,H,W] of step 1; 0 where there is no reading.
    points [B,H,W,3] label frame; mattress_size [B,2] (width, length)."""
    batch, device = depth.shape[0], depth.device
    u = torch.rand(batch, 3, generator=gen, device=device)
    a_edge = (noise.edge_mm[0] + (noise.edge_mm[1] - noise.edge_mm[0]) * u[:, 0]) / 1000.0
    decay = noise.edge_decay_m[0] + (noise.edge_decay_m[1] - noise.edge_decay_m[0]) * u[:, 1]
    a_cav = noise.cavity_gain[0] + (noise.cavity_gain[1] - noise.cavity_gain[0]) * u[:, 2]
    hw = mattress_size[:, 0, None, None] / 2
    hl = mattress_size[:, 1, None, None] / 2
    dx = hw - (points[..., 0] - BED_CENTRE_LABEL[0]).abs()
    dy = hl - (points[..., 1] - BED_CENTRE_LABEL[1]).abs()
    d_edge = torch.minimum(dx, dy)
    on_bed = (d_edge >= 0) & (points[..., 2] < 0.15) & (points[..., 2] > -0.1)
    edge = torch.where(on_bed, a_edge[:, None, None] * torch.exp(-d_edge / decay[:, None, None]),
                       0.0)
    valid = (depth > 0).to(depth.dtype)
    k = noise.cavity_window
    mean = F.avg_pool2d((depth * valid)[:, None], k, 1, k // 2, count_include_pad=False)[:, 0]
    weight = F.avg_pool2d(valid[:, None], k, 1, k // 2, count_include_pad=False)[:, 0]
    mean = mean / weight.clamp(min=1e-6)
    cavity = a_cav[:, None, None] * (depth - mean).clamp(0, 0.15)
    return torch.where(depth > 0, edge + cavity, torch.zeros_like(depth))


def lookup_grid(mask: Tensor, points: Tensor, grid: SceneGrid = GRID) -> Tensor:
    """Nearest-cell values of a scene-grid mask [B,R,C] at label points [B,H,W,3] -> [B,H,W]
    (False off the grid)."""
    rows, cols = grid.shape
    col, row = grid.to_cells(points[..., 0], points[..., 1])
    col, row = col.round().long(), row.round().long()
    ok = (col >= 0) & (col < cols) & (row >= 0) & (row < rows)
    flat = mask.reshape(mask.shape[0], -1)
    index = (row.clamp(0, rows - 1) * cols + col.clamp(0, cols - 1)).reshape(mask.shape[0], -1)
    return (flat.gather(1, index).reshape(points.shape[:-1])) & ok


def apply_tof_noise(depth: Tensor, K: Tensor, T_cam_bed: Tensor, spec: SensorSpec,
                    noise: TofNoise, mattress_size: Tensor, hair_mask: Tensor,
                    gen: torch.Generator, enabled: bool = True) -> Tensor:
    """Clean depth (m) [B,H,W] -> raw millimetres [B,H,W] (float holding uint16 values) with
    the target ToF noise (module docstring). hair_mask: bool [B,R,C] on the scene grid."""
    if not enabled:
        return torch.round(depth * 1000.0).clamp(0, 65535)
    _, rows, cols = depth.shape
    points = pixel_points(depth, K, T_cam_bed)
    hair = lookup_grid(hair_mask, points) & (depth > 0)
    bias = multipath_bias(depth, points, mattress_size, noise, gen)
    theta = incidence_angle(depth, K)
    u = torch.arange(cols, device=depth.device, dtype=depth.dtype)
    v = torch.arange(rows, device=depth.device, dtype=depth.dtype)
    cx, cy = K[:, 0, 2, None, None], K[:, 1, 2, None, None]
    r2 = ((u - cx) ** 2 + (v[:, None] - cy) ** 2) / (cx**2 + cy**2)
    sigma = axial_sigma_mm(spec, depth, theta) * noise.sigma_scale * (1 + noise.radial_gain * r2)
    sigma = (sigma + hair * noise.hair_sigma_mm) / 1000.0
    noisy = torch.where(depth > 0, depth + bias + sigma * torch.randn(
        depth.shape, generator=gen, device=depth.device), depth)
    # Flying pixels over a 5×5 neighbourhood.
    far = max3x3(max3x3(depth.masked_fill(depth <= 0, float("-inf"))))
    near = -max3x3(max3x3(-depth.masked_fill(depth <= 0, float("inf"))))
    edge = (far - near > noise.fly_jump_m) & (depth > 0) & torch.isfinite(far - near)
    mix = torch.rand(depth.shape, generator=gen, device=depth.device)
    mixed = near + (mix / noise.p_fly) * (far - near) + (noisy - depth)
    noisy = torch.where(edge & (mix < noise.p_fly), mixed, noisy)
    drop = torch.rand(depth.shape, generator=gen, device=depth.device)
    lost = (hair & (drop < noise.hair_dropout)) | (drop > 1 - noise.speckle)
    noisy = torch.where(lost, torch.zeros_like(noisy), noisy)
    noisy = source_dropout(noisy, depth, theta, spec, gen)
    return torch.round(noisy * 1000.0).clamp(0, 65535)
