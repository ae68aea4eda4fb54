"""Depth-sensor noise: what turns a clean z-buffer into a raw frame a real camera gives.

Applied to clean depth [B,H,W] (metres along the optical axis, 0 = nothing), returning
uint16-ready millimetres (0 = no reading). Per sensor (``NOISE`` table), in this order:

1. **Axial noise**, Gaussian with a standard deviation that depends on distance z (m) and
   on the angle θ between the surface normal and the viewing ray (:func:`axial_sigma_mm`):

   * Kinect v2 (ToF), Fankhauser et al. 2015 ("Kinect v2 for mobile robot navigation:
     evaluation and modeling"): σ = 1.5 − 0.5·z + 0.3·z² + 0.1·z^{3/2}·θ²/(π/2 − θ)² mm;
     independent per pixel (θ held at 75° beyond that, for both sensors);
   * D4xx (stereo), Intel's depth RMS-error formula: σ = z²·s / (f·b) with sub-pixel
     disparity error s = 0.08 px, focal length f px and baseline b, times
     (1 + 0.1·θ²/(π/2 − θ)²) for slanted surfaces [choice]; spatially correlated like a matching
     window (white noise averaged over 3×3 pixels, rescaled so each pixel keeps σ);
   * lidar (L515-like) [choice]: σ = 1.1 + 1.5·z mm (its datasheet's 2.5 mm at 1 m to
     15.5 mm at 9 m), with the time-of-flight angle term.

   On **dark** surfaces (room scenes' materials, :mod:`disrt_core.sim.room`) time-of-flight
   and lidar returns are weak: σ ×3.

2. **Flying pixels** at depth discontinuities (neighbour difference > 4 cm): with
   probability p_fly (Kinect 0.5, D435 0.15) such a pixel takes a random mix of the near
   and far depths (ToF mixed pixels / stereo edge smearing).
3. **Dropout**: readings vanish (0) on surfaces seen at grazing angles (probability rising
   linearly from θ₀ to θ₁: Kinect 75°–88°, D435 65°–85°); in random blobs (smoothed noise
   thresholded so that U[0, hole_max] of the frame is lost: Kinect 0.5 %, D435 2 %); as
   isolated speckle (Kinect 0.1 %, D435 0.3 %); outside the sensor's range. D435 also loses
   its left-edge band (as wide as the disparity of the nearest surface, f·b/z) and the stereo
   shadow beside near objects (pixels whose surface the second imager cannot see: a surface
   further than a neighbour to its right by more than their column gap in disparity), and
   half of the pixels right at depth edges (the matching window straddles two surfaces).
   Materials [choice]: a stereo camera loses U[30, 95] % of the pixels on dark surfaces
   (per frame: the projector's pattern is absorbed) and 40 % on shiny ones (specular), where
   5 % more read a wrong depth (±20 %); time of flight and lidar lose U[10, 50] % on dark
   surfaces and 30 % on shiny ones, whose readings also carry a multipath bias of
   U[1, 8] cm (per frame).
4. **SDK smoothing** (stereo, per frame when asked): the RealSense spatial filter's
   edge-preserving smoothing, as an average over valid 3×3 neighbours within
   δ = max(2 cm, 3σ) of the centre, twice (:func:`spatial_filter`).
5. **Quantisation**: Kinect to 1 mm; D4xx disparity to 1/32 px, then to 1 mm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from disrt_core.sim.fused import fused
from disrt_core.sim.room import DARK, SHINY
from disrt_core.sim.scene import blur
from disrt_core.sim.sensors import SensorSpec


@dataclass(frozen=True)
class NoiseSpec:
    """Noise parameters of one sensor (see the module docstring)."""

    p_fly: float
    edge_jump_m: float
    grazing_deg: tuple[float, float]
    hole_max: float
    speckle: float
    subpixel: float = 0.08  # stereo only
    disparity_step: float = 1.0 / 32.0  # stereo only


#: The angle terms grow without bound toward 90°; beyond 75° they are held (such readings
#: are mostly dropped anyway, step 3).
MAX_NOISE_ANGLE = math.radians(75.0)

NOISE = {
    "tof": NoiseSpec(p_fly=0.5, edge_jump_m=0.04, grazing_deg=(75.0, 88.0), hole_max=0.005,
                     speckle=0.001),
    "stereo": NoiseSpec(p_fly=0.15, edge_jump_m=0.04, grazing_deg=(65.0, 85.0),
                        hole_max=0.02, speckle=0.003),
    "lidar": NoiseSpec(p_fly=0.3, edge_jump_m=0.04, grazing_deg=(70.0, 87.0), hole_max=0.01,
                       speckle=0.002),
}
#: Per kind: (share lost on dark surfaces, lo and hi; on shiny ones), see the docstring.
MATERIAL_LOSS = {"stereo": ((0.3, 0.95), 0.4), "tof": ((0.1, 0.5), 0.3),
                 "lidar": ((0.1, 0.5), 0.3)}
DARK_SIGMA = 3.0  # time of flight / lidar noise gain on dark surfaces
SHINY_OUTLIERS = 0.05  # stereo: wrong matches on shiny surfaces
MULTIPATH_M = (0.01, 0.08)  # time of flight / lidar bias on shiny surfaces


def axial_sigma_mm(spec: SensorSpec, z_m: Tensor, theta: Tensor | float = 0.0) -> Tensor:
    """Standard deviation (mm) of the axial depth noise at distance z (m) and incidence
    angle θ (rad): the formulas of the module docstring."""
    theta = torch.as_tensor(theta, dtype=z_m.dtype, device=z_m.device).clamp(0, MAX_NOISE_ANGLE)
    slant = theta**2 / (math.pi / 2 - theta) ** 2
    if spec.kind == "tof":
        return 1.5 - 0.5 * z_m + 0.3 * z_m**2 + 0.1 * z_m * z_m.sqrt() * slant
    if spec.kind == "lidar":
        return 1.1 + 1.5 * z_m + 0.1 * z_m * z_m.sqrt() * slant
    s = NOISE["stereo"].subpixel
    return (z_m * 1000.0) ** 2 * s / (spec.focal[0] * spec.baseline_m * 1000.0) * (1 + 0.1 * slant)


@fused
def incidence_angle(depth: Tensor, K: Tensor) -> Tensor:
    """Angle [B,H,W] (rad) between each pixel's viewing ray and the surface normal, from
    the depth image; 0 where unknown.

    With p(u, v) = d·r, r = ((u − cx)/fx, (v − cy)/fy, 1), the normal ∂p/∂u × ∂p/∂v is
    parallel to n = (−fx·d_u, −fy·d_v, d + fx·r_x·d_u + fy·r_y·d_v) and n·r = d, so
    cos θ = d / (|n|·|r|), with d_u, d_v the smaller of the forward and backward
    differences of the depth (so a pixel beside a depth edge takes its own surface's
    slope, not the jump).
    """
    _batch, rows, cols = depth.shape
    fx, fy = K[:, 0, 0, None, None], K[:, 1, 1, None, None]
    cx, cy = K[:, 0, 2, None, None], K[:, 1, 2, None, None]
    u = torch.arange(cols, device=depth.device, dtype=depth.dtype)
    v = torch.arange(rows, device=depth.device, dtype=depth.dtype)
    rx, ry = (u - cx) / fx, (v[:, None] - cy) / fy
    du = _one_sided(depth, -1)
    dv = _one_sided(depth, -2)
    nx, ny = -fx * du, -fy * dv
    nz = depth + fx * rx * du + fy * ry * dv
    norm = torch.sqrt((nx * nx + ny * ny + nz * nz) * (rx * rx + ry * ry + 1))
    theta = torch.acos((depth / norm.clamp(min=1e-12)).clamp(0, 1))
    valid = (depth > 0) & (du.abs() < 0.5) & (dv.abs() < 0.5)  # not beside a hole
    return torch.where(valid, theta, torch.zeros_like(theta))


def _one_sided(depth: Tensor, dim: int) -> Tensor:
    """Per pixel, the smaller in magnitude of the forward and backward difference along
    ``dim`` (−1 columns, −2 rows); 0 on the border."""
    diff = depth.diff(dim=dim)
    pad = (1, 0) if dim == -1 else (0, 0, 1, 0)
    back = F.pad(diff, pad)
    fwd = F.pad(diff, (0, 1) if dim == -1 else (0, 0, 0, 1))
    return torch.where(fwd.abs() < back.abs(), fwd, back)


def _box3(noise: Tensor) -> Tensor:
    """Unit noise [B,H,W] averaged over 3×3 pixels (a stereo matching window) and rescaled
    by 3 so each pixel keeps unit variance (borders, with fewer neighbours, a little less)."""
    p = F.pad(noise, (1, 1, 1, 1))
    rows = p[:, :, :-2] + p[:, :, 1:-1] + p[:, :, 2:]
    return (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]) / 3.0  # 3·mean of 9


@fused
def _with_axial(depth: Tensor, theta: Tensor, noise: Tensor, material: Tensor | None,
                spec: SensorSpec) -> Tensor:
    """Depth plus ``noise`` (unit Gaussian draws [B,H,W]; a stereo camera's averaged over
    3×3) times :func:`axial_sigma_mm` on valid pixels, ×``DARK_SIGMA`` on dark surfaces
    for time of flight and lidar."""
    sigma = axial_sigma_mm(spec, depth, theta) / 1000.0
    if material is not None and spec.kind != "stereo":
        sigma = torch.where(material == DARK, DARK_SIGMA * sigma, sigma)
    if spec.kind == "stereo":
        noise = _box3(noise)
    return torch.where(depth > 0, depth + sigma * noise, depth)


def add_axial_noise(depth: Tensor, K: Tensor, spec: SensorSpec, gen: torch.Generator,
                    theta: Tensor | None = None, material: Tensor | None = None) -> Tensor:
    """Depth (m) plus Gaussian axial noise of :func:`axial_sigma_mm` (valid pixels only),
    ×``DARK_SIGMA`` on dark surfaces for time of flight and lidar."""
    if theta is None:
        theta = incidence_angle(depth, K)
    noise = torch.randn(depth.shape, generator=gen, device=depth.device)
    return _with_axial(depth, theta, noise, material, spec)


def max3x3(x: Tensor) -> Tensor:
    """Maximum over each pixel's 3×3 neighbourhood of [B,H,W] (border: the pixels present);
    shifted maxima, much faster than ``max_pool2d`` on the CPU."""
    p = F.pad(x, (1, 1, 1, 1), value=float("-inf"))
    r = torch.maximum(torch.maximum(p[:, :, :-2], p[:, :, 1:-1]), p[:, :, 2:])
    return torch.maximum(torch.maximum(r[:, :-2], r[:, 1:-1]), r[:, 2:])


@fused
def _edges(depth: Tensor, jump: float) -> tuple[Tensor, Tensor, Tensor]:
    """Edge mask and the nearest / farthest depth in each pixel's 3×3 neighbourhood."""
    far = max3x3(depth.masked_fill(depth <= 0, float("-inf")))
    near = -max3x3(-depth.masked_fill(depth <= 0, float("inf")))
    edge = (far - near > jump) & (depth > 0) & torch.isfinite(far - near)
    return edge, near, far


def flying_pixels(noisy: Tensor, clean: Tensor, spec: SensorSpec,
                  gen: torch.Generator, edges: tuple[Tensor, Tensor, Tensor] | None = None
                  ) -> Tensor:
    """Replace a fraction of the pixels at depth edges of ``clean`` by a random mix of the
    near and far depth around them (plus the pixel's own noise). edges: ``_edges`` of
    ``clean`` if already made."""
    ns = NOISE[spec.kind]
    edge, near, far = edges if edges is not None else _edges(clean, ns.edge_jump_m)
    u = torch.rand(clean.shape, generator=gen, device=clean.device)
    return _fly(noisy, clean, u, edge, near, far, ns.p_fly)


@fused
def _fly(noisy: Tensor, clean: Tensor, u: Tensor, edge: Tensor, near: Tensor, far: Tensor,
         p_fly: float) -> Tensor:
    """:func:`flying_pixels` given its uniform draws ``u``: one uniform does both, u < p
    picks the pixel, u / p (uniform on [0, 1)) mixes."""
    mixed = near + (u / p_fly) * (far - near) + (noisy - clean)
    return torch.where(edge & (u < p_fly), mixed, noisy)


def dropout(depth: Tensor, clean: Tensor, theta: Tensor, spec: SensorSpec,
            gen: torch.Generator, material: Tensor | None = None,
            edge: Tensor | None = None) -> Tensor:
    """Zero the readings a real sensor loses (see the module docstring); the geometric
    losses (grazing angle, range, stereo shadows and edges) are decided on the ``clean``
    depth, the material losses on ``material`` (None: all matte). edge: the edge mask of
    ``_edges(clean)`` if already made."""
    ns = NOISE[spec.kind]
    batch, rows, cols = depth.shape
    device = depth.device
    # The draws in their order, then the maths on them.
    u = torch.rand((batch, rows, cols), generator=gen, device=device)
    # Blobs: smooth noise (made at 1/4 resolution, blurred by 1 cell, std known) above the
    # Gaussian quantile that loses U[0, hole_max] of the frame.
    low = torch.randn((batch, (rows + 3) // 4, (cols + 3) // 4), generator=gen, device=device)
    blob = F.interpolate(_smooth(low)[:, None], size=(rows, cols), mode="bilinear",
                         align_corners=False)[:, 0]
    frac = ns.hole_max * torch.rand(batch, generator=gen, device=device)
    lost = _losses(clean, theta, u, blob, frac, spec)
    if spec.kind == "stereo":
        lost |= _stereo_invalid(clean, spec)
        if edge is None:
            edge = _edges(clean, ns.edge_jump_m)[0]
        lost |= edge & (torch.rand((batch, rows, cols), generator=gen, device=device) < 0.5)
    if material is not None:
        (dark_lo, dark_hi), shiny = MATERIAL_LOSS[spec.kind]
        p_dark = dark_lo + (dark_hi - dark_lo) * torch.rand(batch, 1, 1, generator=gen,
                                                            device=device)
        v = torch.rand((batch, rows, cols), generator=gen, device=device)
        lost |= ((material == DARK) & (v < p_dark)) | ((material == SHINY) & (v < shiny))
    return torch.where(lost, torch.zeros_like(depth), depth)


@fused
def _losses(clean: Tensor, theta: Tensor, u: Tensor, blob: Tensor, frac: Tensor,
            spec: SensorSpec) -> Tensor:
    """:func:`dropout`'s grazing, speckle, blob and range losses, given its draws."""
    ns = NOISE[spec.kind]
    lo, hi = (math.radians(a) for a in ns.grazing_deg)
    grazing = ((theta - lo) / (hi - lo)).clamp(0, 1)
    # Grazing loss or speckle, independent: lost with 1 − (1 − p_grazing)(1 − p_speckle).
    lost = u < 1 - (1 - grazing) * (1 - ns.speckle)
    thresh = torch.special.ndtri((1 - frac).clamp(0.5, 1 - 1e-7))
    lost |= (blob > thresh[:, None, None]) & (frac[:, None, None] > 0)
    return lost | (clean < spec.range_m[0]) | (clean > spec.range_m[1])


def shiny_errors(depth: Tensor, material: Tensor, spec: SensorSpec,
                 gen: torch.Generator) -> Tensor:
    """Readings of shiny surfaces: stereo mismatches (5 % of them off by up to ±20 %), a
    time-of-flight / lidar multipath bias of U[1, 8] cm per frame (depth in m)."""
    batch = depth.shape[0]
    shiny = (material == SHINY) & (depth > 0)
    if spec.kind == "stereo":
        u = torch.rand(depth.shape, generator=gen, device=depth.device)
        wrong = shiny & (u < SHINY_OUTLIERS)
        scale = 1 + 0.4 * (u / SHINY_OUTLIERS - 0.5)  # the same uniform, rescaled
        return torch.where(wrong, depth * scale, depth)
    lo, hi = MULTIPATH_M
    bias = lo + (hi - lo) * torch.rand(batch, 1, 1, generator=gen, device=depth.device)
    return torch.where(shiny, depth + bias, depth)


def spatial_filter(depth: Tensor, spec: SensorSpec, iterations: int = 2) -> Tensor:
    """Edge-preserving smoothing like the RealSense SDK's spatial filter: each valid pixel
    becomes the mean of the valid pixels of its 3×3 neighbourhood that lie within
    δ = max(2 cm, 3σ(z)) of it, ``iterations`` times (depth in m, 0 = none, kept)."""
    for _ in range(iterations):
        delta = (3 * axial_sigma_mm(spec, depth) / 1000.0).clamp(min=0.02)
        padded = F.pad(depth, (1, 1, 1, 1))
        rows, cols = depth.shape[-2:]
        total = torch.zeros_like(depth)
        count = torch.zeros_like(depth)
        for dr in range(3):
            for dc in range(3):
                nb = padded[:, dr:dr + rows, dc:dc + cols]
                near = (nb > 0) & ((nb - depth).abs() <= delta)
                total += torch.where(near, nb, torch.zeros_like(nb))
                count += near.to(depth.dtype)
        depth = torch.where(depth > 0, total / count.clamp(min=1), depth)
    return depth


def _smooth(noise: Tensor) -> Tensor:
    """Blur unit noise by one cell and rescale it back to unit variance."""
    return blur(noise, 1.0) / _SMOOTH_STD


def _blurred_std() -> float:
    """Standard deviation of unit white noise after :func:`blur` by one cell: the 2-D
    kernel's L2 norm (float32, made once on the CPU: no frame waits for a host copy)."""
    t = torch.arange(-3, 4, dtype=torch.float32)
    k = torch.exp(-0.5 * t**2)
    k = k / k.sum()
    return float((k[:, None] * k[None]).pow(2).sum().sqrt())


_SMOOTH_STD = _blurred_std()


def _stereo_invalid(depth: Tensor, spec: SensorSpec, max_shift: int = 12) -> Tensor:
    """Left band and occlusion shadows of a stereo pair whose second imager sits to the
    right (+x) of the reference one: pixel u is shadowed if some pixel u+k (k ≥ 1) is nearer
    by more than k pixels of disparity."""
    fb = spec.focal[0] * spec.baseline_m
    disp = torch.where(depth > 0, fb / depth.clamp(min=1e-3), torch.zeros_like(depth))
    cols = depth.shape[-1]
    shadow = torch.zeros_like(depth, dtype=torch.bool)
    high = float(disp.max())
    if high <= 0:
        return shadow
    low = float(torch.where(disp > 0, disp, torch.full_like(disp, high)).min())
    # No shadow can be wider than the scene's spread of disparities.
    max_shift = min(max_shift, math.ceil(high - low))
    for k in range(1, max_shift + 1):
        right = F.pad(disp[..., k:], (0, k))
        shadow |= right - disp > k
    # The band is as wide as the disparity of the nearest surface the camera can measure
    # (nearer ones are out of its range and matched by nothing).
    measurable = torch.where(depth >= spec.range_m[0], disp, torch.zeros_like(disp))
    band = measurable.amax((-1, -2), keepdim=True).ceil().clamp(max=cols)
    u = torch.arange(cols, device=depth.device, dtype=depth.dtype)
    return shadow | (u < band)


@fused
def quantise_mm(depth: Tensor, spec: SensorSpec) -> Tensor:
    """Depth (m) -> millimetres rounded as the sensor reports them (float, 0 kept)."""
    if spec.kind == "stereo":
        fb = spec.focal[0] * spec.baseline_m
        step = NOISE["stereo"].disparity_step
        disp = torch.round(fb / depth.clamp(min=1e-3) / step) * step
        depth = torch.where(depth > 0, fb / disp.clamp(min=step), depth)
    return torch.round(depth * 1000.0).clamp(0, 65535)


def apply_sensor_noise(depth: Tensor, K: Tensor, spec: SensorSpec, gen: torch.Generator,
                       enabled: bool = True, *, material: Tensor | None = None,
                       smooth: Tensor | None = None) -> Tensor:
    """Clean depth (m) [B,H,W] -> raw millimetres [B,H,W] (float holding uint16 values).

    material: [B,H,W] long (``disrt_core.sim.room`` MATTE / DARK / SHINY) or None (matte).
    smooth: [B] bool, frames of a stereo camera to pass through :func:`spatial_filter`
    (the SDK's post-processing) or None (none)."""
    if not enabled:
        return quantise_mm(depth, spec)
    theta = incidence_angle(depth, K)
    noisy = add_axial_noise(depth, K, spec, gen, theta, material)
    if material is not None:
        noisy = shiny_errors(noisy, material, spec, gen)
    edges = _edges(depth, NOISE[spec.kind].edge_jump_m)  # of the clean depth, used twice
    noisy = flying_pixels(noisy, depth, spec, gen, edges)
    noisy = dropout(noisy, depth, theta, spec, gen, material, edges[0])
    if smooth is not None and spec.kind == "stereo" and bool(smooth.any()):
        # Only the frames that are filtered (half of them by default) go through it.
        idx = smooth.nonzero()[:, 0]
        noisy = noisy.index_copy(0, idx, spatial_filter(noisy[idx], spec))
    return quantise_mm(noisy, spec)
