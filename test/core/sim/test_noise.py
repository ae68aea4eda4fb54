"""Sensor noise: the empirical depth noise matches the model's formula; edges, holes."""

import math

import pytest
import torch

from disrt_core.sim.noise import (
    apply_sensor_noise,
    axial_sigma_mm,
    flying_pixels,
    incidence_angle,
)
from disrt_core.sim.sensors import SENSORS


def plane(spec, z, batch=4):
    rows, cols = spec.size
    return torch.full((batch, rows, cols), z), spec.K(batch)


@pytest.mark.parametrize("sensor", ["kinect2", "d435"])
@pytest.mark.parametrize("z", [1.0, 2.0])
def test_noise_std_matches_the_formula_at_1_and_2_m(sensor, z):
    spec = SENSORS[sensor]
    clean, K = plane(spec, z)
    gen = torch.Generator().manual_seed(0)
    raw = apply_sensor_noise(clean, K, spec, gen)  # full model: noise, holes, quantisation
    theta = incidence_angle(clean, K)
    rows, cols = spec.size
    inner = (slice(None), slice(20, rows - 20), slice(20, cols - 20))  # away from borders
    valid = raw[inner] > 0
    assert valid.float().mean() > 0.9
    residual = (raw[inner] - 1000 * z)[valid]
    expected = axial_sigma_mm(spec, torch.tensor(z), theta[inner][valid])
    ratio = float((residual / expected).std())
    assert abs(ratio - 1) < 0.1, ratio
    assert abs(float(residual.mean())) < 0.2 * float(expected.mean())


def test_formulas_by_hand():
    kinect, d435 = SENSORS["kinect2"], SENSORS["d435"]
    z = torch.tensor([1.0, 2.0])
    # Fankhauser et al.: 1.5 − 0.5z + 0.3z² at normal incidence.
    torch.testing.assert_close(axial_sigma_mm(kinect, z), torch.tensor([1.3, 1.7]))
    # Stereo: z²·0.08/(f·b), z in mm, f = 426 px, b = 50 mm.
    torch.testing.assert_close(axial_sigma_mm(d435, z),
                               (z * 1000) ** 2 * 0.08 / (426.0 * 50.0))
    # Noise grows with the incidence angle.
    assert axial_sigma_mm(kinect, z, 1.0)[1] > axial_sigma_mm(kinect, z, 0.3)[1]


def test_incidence_angle_of_a_tilted_plane():
    # Plane z = d + a·x (camera frame) at the optical centre: angle between the view ray
    # (0,0,1) and the normal (−a,0,1) is atan(a).
    spec = SENSORS["kinect2"]
    rows, cols = spec.size
    K = spec.K(1)
    u = torch.arange(cols, dtype=torch.float64)
    rx = (u - 208.1) / 367.8
    a, d = 0.8, 2.0
    depth = (d / (1 - a * rx))[None, None].expand(1, rows, cols).float()  # z = d + a·x, x = rx·z
    theta = incidence_angle(depth, K)
    c = round(208.1)
    r = round(259.7)
    assert abs(float(theta[0, r, c]) - math.atan(a)) < 0.01


def test_flying_pixels_only_at_depth_edges_and_between_the_surfaces():
    spec = SENSORS["kinect2"]
    clean = torch.full((1, 100, 100), 2.1)
    clean[:, 30:70, 30:70] = 1.8  # a box top 30 cm above the bed
    gen = torch.Generator().manual_seed(0)
    out = flying_pixels(clean.clone(), clean, spec, gen)
    changed = out != clean
    assert changed.sum() > 40  # p_fly = 0.5 of the ~320 edge pixels
    rows, cols = changed[0].nonzero(as_tuple=True)
    near_edge = ((rows - 29.5).abs() < 2) | ((rows - 69.5).abs() < 2) | (
        (cols - 29.5).abs() < 2) | ((cols - 69.5).abs() < 2)
    assert near_edge.all()
    assert ((out[changed] >= 1.8) & (out[changed] <= 2.1)).all()


def test_grazing_surfaces_and_range_drop_out():
    spec = SENSORS["kinect2"]
    rows, cols = spec.size
    K = spec.K(1)
    u = torch.arange(cols, dtype=torch.float32)
    rx = (u - 208.1) / 367.8
    a = math.tan(math.radians(86))  # a plane seen at ~86°
    depth = (2.0 / (1 - a * rx)).clamp(0.1, 9.0)[None, None].expand(1, rows, cols)
    gen = torch.Generator().manual_seed(0)
    depth = torch.cat([depth, torch.full_like(depth, 2.0)])  # and a plane seen head-on
    raw = apply_sensor_noise(depth, K.expand(2, 3, 3), spec, gen)
    theta = incidence_angle(depth, K.expand(2, 3, 3))[0]
    steep = (depth[0] > 0.6) & (depth[0] < 4.4) & (theta > math.radians(87))
    assert steep.sum() > 1000
    assert (raw[0][steep] == 0).float().mean() > 0.8  # dropped with p = (87−75)/13 or more
    assert (raw[1] == 0).float().mean() < 0.02  # head-on: only speckle and small holes
    assert (raw[0][depth[0] > 4.6] == 0).all()  # beyond the Kinect's 4.5 m range


def test_quantised_to_millimetres_and_deterministic():
    spec = SENSORS["d435"]
    clean, K = plane(spec, 1.5, 2)
    a = apply_sensor_noise(clean, K, spec, torch.Generator().manual_seed(5))
    b = apply_sensor_noise(clean, K, spec, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert torch.equal(a, a.round())
    # D435 left band: about f·b/z = 426·0.05/1.5 ≈ 14 columns without readings.
    assert (a[:, :, :14] == 0).all() and (a[:, 100:380, 20:] > 0).float().mean() > 0.9
