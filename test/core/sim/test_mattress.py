"""Spring-bed sinkage and the pressure map: hand-derived cases and generated bodies."""

import torch

from disrt_core.sim.mattress import GRAVITY, penetration, pressure_kpa, sink_depth
from disrt_core.sim.scene import GRID

INF = float("inf")


def test_flat_bottom_sinks_weight_over_stiffness_times_area():
    # 400 cells of 1 cm² flat at the lowest point: s = W / (k·A·N).
    under = torch.full((1, 50, 50), INF)
    under[0, 10:30, 10:30] = 0.0
    weight, k = torch.tensor([700.0]), torch.tensor([1.0e5])
    s = sink_depth(under, weight, k, 1e-4)
    torch.testing.assert_close(s, weight / (k * 1e-4 * 400))


def test_wedge_bottom_matches_the_hand_solution():
    # Underside rising 1 mm per cell along a strip of 1 cell: cells i = 0..n-1 at b = i mm.
    # With s between b_m and b_{m+1}: k·A·(m+1)·s − k·A·Σ_{i≤m} b_i = W.
    b = torch.arange(100, dtype=torch.float32) * 1e-3
    k, area = 1.0e5, 1e-4
    weight = torch.tensor([30.0])  # load = W/(kA) = 3.0 m·cells
    s = sink_depth(b[None], weight, torch.tensor([k]), area)
    # Solve by hand: (m+1)·s − m(m+1)/2·1e-3 = 3 with s in [m·1e-3, (m+1)·1e-3]: m = 76.
    m = 76
    expected = (3.0 + m * (m + 1) / 2 * 1e-3) / (m + 1)
    assert m * 1e-3 <= expected <= (m + 1) * 1e-3
    torch.testing.assert_close(s, torch.tensor([expected]), atol=1e-6, rtol=0)
    force = (penetration(b[None], s) * k * area).sum()
    torch.testing.assert_close(force, weight[0], rtol=1e-4, atol=0)


def test_heavier_sinks_deeper_and_pressure_integrates_to_weight():
    torch.manual_seed(0)
    under = torch.rand(1, 60, 40) * 0.1  # a bumpy underside, 0..10 cm
    under[0, :5] = INF  # cells beside the body
    under = under.expand(2, -1, -1)
    weight = torch.tensor([600.0, 900.0])
    k = torch.tensor([8e4, 8e4])
    s = sink_depth(under, weight, k, 1e-4)
    assert s[1] > s[0] + 1e-3
    p = pressure_kpa(penetration(under, s), k)  # kPa
    torch.testing.assert_close(p.sum((1, 2)) * 1000 * 1e-4, weight, rtol=1e-4, atol=0)


def test_generated_pressure_maps_carry_the_body_weight(sim_batch, sim_generator):
    # The PM window holds all contact unless a body reaches past the 192×84 mat: check
    # samples whose contact lies inside it, integrated in float16 as stored.
    pressure = sim_batch["pressure"]
    weight = sim_batch["mass"] * GRAVITY
    stored = pressure.half().float().sum((1, 2)) * 1000 * GRID.pitch**2
    _, under = sim_generator.heightmaps(sim_batch["vertices"])
    rows, cols = GRID.pm_window
    contact = (under < 0).float()
    inside = contact[:, rows, cols].sum((1, 2)) == contact.sum((1, 2))
    assert inside.sum() >= 3  # about two bodies in three (seed 3 gives 4 of the 12)
    ratio = stored[inside] / weight[inside]
    assert ((ratio - 1).abs() < 0.02).all(), ratio
    assert (sim_batch["sink"] > 0.005).all() and (sim_batch["sink"] < 0.15).all()


def test_generated_heavier_body_sinks_deeper(sim_generator):
    # The same scene (seed) with the mattress springs carrying a heavier load: the body
    # sits lower. Heavier phenotype at equal stiffness through a direct call.
    batch = sim_generator.sample(2, 7, with_mesh=True)
    _, under = sim_generator.heightmaps(batch["vertices"])
    under = under - under.amin((1, 2), keepdim=True)
    k = torch.full((2,), 1e5)
    light = sink_depth(under, batch["mass"] * GRAVITY, k, 1e-4)
    heavy = sink_depth(under, 1.3 * batch["mass"] * GRAVITY, k, 1e-4)
    assert (heavy > light).all()
