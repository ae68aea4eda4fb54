"""The pseudo-real target domain: each effect present, where it should be, and seeded.

The cloth simulation runs at toy resolutions here (it is meant for the GPU); its batched
solver is checked value for value against the reference single-cloth simulation.
"""

import json
import math

import numpy as np
import pytest
import torch

from disrt_core.data import shards
from disrt_core.geometry.bedframe import BED_CENTRE_LABEL
from disrt_core.posture import LEFT, RIGHT
from disrt_core.sim import cli
from disrt_core.sim.cloth import SHEET, _sample, simulate_cloth
from disrt_core.sim.generator import to_shard_arrays
from disrt_core.sim.noise import apply_sensor_noise
from disrt_core.sim.poses import PosePrior
from disrt_core.sim.scene import GRID, RIM, BedScene, bed_heightfield
from disrt_core.sim.sensors import SENSORS, sample_camera_poses
from disrt_core.sim.target import TARGET_SENSORS, TargetConfig, TargetGenerator
from disrt_core.sim.target.blankets import Cloths, drape_cloths
from disrt_core.sim.target.bodies import TargetPosePrior, TargetShapeSampler
from disrt_core.sim.target.cloth import ClothState, simulate_cloths
from disrt_core.sim.target.clutter import (
    hair_heightfield,
    head_pillow_heightfield,
    prop_heightfield,
    rail_heightfield,
    sample_clutter,
)
from disrt_core.sim.target.sensors import (
    TARGET_NOISE,
    apply_tof_noise,
    multipath_bias,
    sample_target_camera_poses,
)

TINY = {"cloth_grid": (10, 8), "throw_grid": (6, 6), "cloth_steps": 20, "cloth_iterations": 2,
        "cloth_dt": 1 / 40}


@pytest.fixture(scope="module")
def target_generator(anny_body):
    return TargetGenerator(TargetConfig(**TINY), anny_body, "cpu")


@pytest.fixture(scope="module")
def target_batch(target_generator):
    torch.set_num_threads(1)
    return target_generator.sample(6, 4, with_mesh=True, with_raw=True)


def beds_of(n, width=0.9, length=2.0):
    z = torch.zeros(n)
    return BedScene(width=z + width, length=z + length, frame_z=z - 0.1, floor_z=z - 0.6,
                    headboard=z * float("nan"), footboard=z * float("nan"),
                    rails=z * float("nan"), pillow=torch.zeros(n, 6), rim=z + RIM)


# --- the cloth solver ---------------------------------------------------------------------

def test_batched_cloth_matches_the_reference_simulation():
    x, y = GRID.xy()
    cx, cy = BED_CENTRE_LABEL
    base = torch.where(((x - cx).abs() < 0.45) & ((y - cy).abs() < 1.0), 0.0, -0.5)
    bumps = [0.2 * torch.exp(-((x - cx) ** 2 + (y - cy - d) ** 2) / 0.02) for d in (0.1, -0.2)]
    supports = torch.stack([base + b for b in bumps])
    x_range, y_range, spacing = (0.0, 0.6), (0.5, 1.3), 0.05
    xs = torch.arange(x_range[0], x_range[1] + 1e-9, spacing)
    ys = torch.arange(y_range[1], y_range[0] - 1e-9, -spacing)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    xy = torch.stack([xx.reshape(-1), yy.reshape(-1)], -1)
    starts = []
    for s in supports:
        floor = _sample(s, xy, GRID) + SHEET.thickness
        starts.append(torch.cat([xy, torch.full_like(xy[:, :1], float(floor.max()) + 0.02)], -1))
    state = ClothState(start=torch.stack(starts), spacing=torch.full((2, 2), spacing),
                       stiffness=torch.tensor([[SHEET.stretch, SHEET.shear, SHEET.bend]] * 2),
                       thickness=torch.full((2,), SHEET.thickness))
    out = simulate_cloths(supports, state, len(ys), len(xs), steps=30, dt=1 / 300, iterations=2,
                          inelastic=False, wall_m=None)
    for k in range(2):
        ref, _ = simulate_cloth(supports[k], x_range, y_range, SHEET, spacing=spacing, steps=30,
                                iterations=2)
        torch.testing.assert_close(out[k], ref, atol=1e-5, rtol=0)


def test_pinned_particles_are_led_to_their_targets_and_pull_the_cloth():
    rows, cols, spacing = 5, 5, 0.05
    xs = torch.arange(cols) * spacing + 0.1
    ys = 1.0 - torch.arange(rows) * spacing
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    start = torch.stack([xx, yy, torch.full_like(xx, 0.3)], -1).reshape(1, -1, 3)
    pinned = torch.zeros(1, rows * cols, dtype=torch.bool)
    pinned[0, :cols] = True  # the first row
    target = start.clone()
    target[0, :cols, 2] = 0.1
    support = torch.full((1, *GRID.shape), -1.0)
    state = ClothState(start=start, spacing=torch.full((1, 2), spacing),
                       stiffness=torch.tensor([[1.0, 0.8, 0.05]]),
                       thickness=torch.full((1,), 0.002), pinned=pinned)
    out = simulate_cloths(support, state, rows, cols, steps=300, dt=1 / 200, iterations=4,
                          pin_target=target)
    torch.testing.assert_close(out[0, :cols], target[0, :cols])
    # The free cloth hangs from the pinned row: below it, about one spacing per row.
    z = out[0, :, 2].reshape(rows, cols)
    assert (z[1:].mean(1).diff() < 0).all() and float(z[-1].mean()) < 0.1 - 0.15


def _one_blanket(n, **change):
    """An axis-aligned 1.5 m wide blanket over a 0.9 × 2.0 m mattress, no folds."""
    cx, cy = BED_CENTRE_LABEL
    values = {"present": torch.ones(n, dtype=torch.bool),
              "centre": torch.tensor([[cx, cy - 0.2]]).repeat(n, 1), "angle": torch.zeros(n),
              "x_range": torch.tensor([[-0.75, 0.75]]).repeat(n, 1),
              "y_range": torch.tensor([[-0.9, 0.7]]).repeat(n, 1),
              "bend": torch.full((n,), 0.02), "thickness": torch.full((n,), 0.003),
              "gather": torch.ones(n), "gather_dir": torch.zeros(n), "wave": torch.zeros(n, 3),
              "tuck": torch.zeros(n, 3, dtype=torch.bool)}
    values["wave"][:, 1] = 0.2
    values.update(change)
    return Cloths(**values)


def test_tucked_side_ends_at_the_mattress_edge_untucked_side_hangs_over():
    beds = beds_of(1)
    support = bed_heightfield(beds)
    tuck = torch.tensor([[True, False, False]])
    cloth = drape_cloths(support, torch.full_like(support, float("-inf")),
                         _one_blanket(1, tuck=tuck), beds, 20, 20, steps=120, iterations=3)[0]
    x, y = GRID.xy()
    cx, _ = BED_CENTRE_LABEL
    left = x < cx - 0.45 - 0.01
    right = x > cx + 0.45 + 0.01
    # Tucked: nothing of the cloth lies beyond the left edge above the mattress top.
    assert not bool((torch.isfinite(cloth) & left & (cloth > -0.01)).any())
    # Untucked: the cloth reaches beyond the right edge, hanging below the mattress top.
    hang = torch.isfinite(cloth) & right
    assert int(hang.sum()) > 200 and float(cloth[hang].median()) < -0.05
    # Over the mattress the cloth rests on it (its thickness above the top).
    middle = ((x - cx).abs() < 0.3) & ((y - 0.9).abs() < 0.5)
    assert float((cloth[middle] - support[0][middle]).abs().median()) < 0.01


def test_a_gathered_cloth_lies_in_folds():
    beds = beds_of(2)
    support = bed_heightfield(beds)
    cloths = _one_blanket(2, gather=torch.tensor([1.0, 0.88]),
                          gather_dir=torch.tensor([0.0, math.pi / 2]))
    cloth = drape_cloths(support, torch.full_like(support, float("-inf")), cloths, beds, 20, 20,
                         steps=120, iterations=3)
    x, y = GRID.xy()
    cx, _ = BED_CENTRE_LABEL
    inner = ((x - cx).abs() < 0.35) & ((y - 0.7).abs() < 0.6)
    relief = [(cloth[k] - support[k])[inner] for k in range(2)]
    assert float(relief[0].std()) < 0.01  # flat start: flat cloth
    assert float(relief[1].std()) > 2 * float(relief[0].std())
    assert float(relief[1].max()) > 0.012  # folds a centimetre or more high


# --- sensors ------------------------------------------------------------------------------

def _overhead(spec, n=1, height=2.0):
    mount = torch.full((n,), spec.mount_yaw)
    gen = torch.Generator().manual_seed(0)
    T, _ = sample_target_camera_poses(n, gen, mount, height_m=(height, height), tilt_deg=0.0)
    return T, spec.K(n)


def _flat_depth(spec, T, K, mattress_top=0.0):
    """Depth (m) of the plane z = mattress_top seen by cameras T (exact)."""
    from disrt_core.sim.render import render_plane

    return render_plane(K, T, mattress_top, spec.size)


def test_multipath_bias_near_the_mattress_edge_and_in_creases():
    spec = TARGET_SENSORS["azure_nfov"]
    T, K = _overhead(spec)
    depth = _flat_depth(spec, T, K)
    from disrt_core.sim.target.sensors import pixel_points

    points = pixel_points(depth, K, T)
    size = torch.tensor([[0.9, 2.0]])
    bias = multipath_bias(depth, points, size, TARGET_NOISE["azure_nfov"],
                          torch.Generator().manual_seed(1))[0]
    cx, cy = BED_CENTRE_LABEL
    d_edge = torch.minimum(0.45 - (points[0, ..., 0] - cx).abs(),
                           1.0 - (points[0, ..., 1] - cy).abs())
    near, far = (d_edge > 0) & (d_edge < 0.01), d_edge > 0.3
    assert 0.006 < float(bias[near].mean()) < 0.026  # a_edge ∈ [8, 25] mm at the edge
    assert float(bias[far].max()) < 0.1 * float(bias[near].mean())  # decays inward
    off = d_edge < -0.05  # the floor beside the bed: no edge term
    assert float(bias[off].abs().max()) < 1e-6
    # A crease (a pixel deeper than its surroundings) adds a bias there only.
    pit = depth.clone()
    pit[0, 280:296, 300:316] += 0.05
    crease = multipath_bias(pit, points, size, TARGET_NOISE["azure_nfov"],
                            torch.Generator().manual_seed(1))[0]
    extra = crease - bias
    assert float(extra[280:296, 300:316].mean()) > 0.002
    assert float(extra[:200].abs().max()) < 1e-6


def test_tof_noise_is_seeded_flying_pixels_and_hair():
    spec = TARGET_SENSORS["azure_nfov"]
    T, K = _overhead(spec, 2)
    depth = _flat_depth(spec, T, K)
    depth[:, :, 320:] -= 0.2  # a 20 cm step along the middle column
    size = torch.tensor([[0.9, 2.0]] * 2)
    hair = torch.zeros(2, *GRID.shape, dtype=torch.bool)
    hair[:, 20:60, 30:90] = True  # head end of the bed
    noise = TARGET_NOISE["azure_nfov"]

    def run(seed):
        return apply_tof_noise(depth, K, T, spec, noise, size, hair,
                               torch.Generator().manual_seed(seed))

    a, b, c = run(3), run(3), run(4)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)
    # Flying pixels: readings between the two surfaces, in a band wider than the source's.
    near, far = 1000 * depth[..., 330:340].mean(), 1000 * depth[..., 300:310].mean()
    band = a[..., 310:330]
    between = ((band > near + 30) & (band < far - 30)).float().mean()
    source = apply_sensor_noise(depth, K, SENSORS["kinect2"], torch.Generator().manual_seed(3))
    src_between = ((source[..., 310:330] > near + 30) & (source[..., 310:330] < far - 30)).float()
    assert float(between) > 2 * float(src_between.mean())
    # Hair: about 35 % of its pixels lost; elsewhere almost none.
    from disrt_core.sim.target.sensors import lookup_grid, pixel_points

    on_hair = lookup_grid(hair, pixel_points(depth, K, T)) & (depth > 0)
    lost_hair = float((a[on_hair] == 0).float().mean())
    lost_else = float((a[~on_hair & (depth > 0)] == 0).float().mean())
    assert 0.3 < lost_hair < 0.42 and lost_else < 0.05


def test_target_cameras_hang_lower_and_tilt_more_than_the_source():
    n = 2000
    gen = torch.Generator().manual_seed(0)
    spec = TARGET_SENSORS["tof_qvga"]
    T, h = sample_target_camera_poses(n, gen, torch.full((n,), spec.mount_yaw))
    Ts, hs = sample_camera_poses(SENSORS["kinect2"], n, torch.Generator().manual_seed(0))

    def tilt(T):  # angle of the optical axis from straight down
        axis = T[:, 2, :3]  # the bed frame's z axis seen in the camera: −optical axis
        return torch.rad2deg(torch.acos((-axis[:, 2]).clamp(-1, 1)))

    assert 1.75 <= float(h.min()) and float(h.max()) <= 2.2
    assert float(h.mean()) < float(hs.mean()) - 0.2
    assert float(tilt(T).mean()) > 1.6 * float(tilt(Ts).mean())
    assert float(tilt(T).max()) < 9.0 * math.sqrt(2) + 0.01  # clipped per axis


# --- clutter ------------------------------------------------------------------------------

def test_rails_pillows_props_and_hair():
    n = 64
    clutter = sample_clutter(n, torch.Generator().manual_seed(2), rail_prob=1.0,
                             head_pillow_prob=1.0, prop_prob=1.0, hair_prob=1.0)
    beds = beds_of(n)
    rails = rail_heightfield(clutter, beds)
    x, _ = GRID.xy()
    cx, _ = BED_CENTRE_LABEL
    on = torch.isfinite(rails)
    assert bool(on.any(-1).any(-1).all())  # every sample has its rails
    assert float(rails[on].min()) >= 0.28 and float(rails[on].max()) <= 0.45
    dist = ((x - cx).abs() - 0.45).expand_as(rails)[on]
    assert float(dist.min()) >= 0.0 and float(dist.max()) <= 0.061
    # Head pillows above the head, heights by kind.
    head_y = torch.full((n,), 1.55)
    pillow = head_pillow_heightfield(clutter, beds, head_y)
    top = pillow.amax((-1, -2))
    assert set(clutter.pillow_kind.tolist()) == {1, 2, 3}
    assert float(top.min()) > 0.07 and float(top.max()) < 0.26
    rows = torch.nonzero(pillow[0] > 0)[:, 0]
    assert float(GRID.origin[1] - 0.01 * rows.float().mean()) > 1.55
    # Props beside a supine body lying along the bed: wedge ramps, bolster of radius r.
    joints = torch.zeros(n, 24, 3)
    joints[:, 0, :2] = torch.tensor([cx, 0.9])
    joints[:, 9, :2] = torch.tensor([cx, 1.3])
    root = torch.zeros(n, 3)
    props = prop_heightfield(clutter, joints, root, torch.zeros(n, dtype=torch.long))
    for k in range(n):
        kind, p = int(clutter.prop_kind[k]), clutter.prop[k]
        if kind == 2:  # bolster: top at twice the radius
            radius = 0.06 + 0.04 * float(p[3])
            assert abs(float(props[k].max()) - 2 * radius) < 0.012
        if kind == 1:  # wedge: highest on the body's side
            cols = torch.nonzero(props[k] > 0)[:, 1].float()
            high = torch.nonzero(props[k] >= props[k].max() - 1e-6)[:, 1].float()
            side = float(p[0])
            assert side * (high.mean() - cols.mean()) < 0
    # Hair: strands around the head, nothing far from it; none without hair.
    joints[:, 12, :2] = torch.tensor([cx, 1.45])
    joints[:, 15, :2] = torch.tensor([cx, 1.55])
    no_body = torch.full((n, *GRID.shape), float("-inf"))
    hair = hair_heightfield(clutter, joints, no_body)
    x, y = GRID.xy()
    far = ((x - cx) ** 2 + (y - 1.55) ** 2).sqrt() > 0.45
    assert bool((hair > 0).any(-1).any(-1).all()) and float(hair[:, far].max()) == 0.0
    assert float(hair.max()) <= 0.012
    clutter.hair[:, 0] = 0
    assert float(hair_heightfield(clutter, joints, no_body).max()) == 0.0


# --- bodies -------------------------------------------------------------------------------

def test_more_lateral_and_curled_poses():
    n = 4000
    poses = {"src": PosePrior().sample(n, torch.Generator().manual_seed(0)),
             "tgt": TargetPosePrior().sample(n, torch.Generator().manual_seed(0))}
    stats = {}
    for name, pose in poses.items():
        lateral = (pose.posture == LEFT) | (pose.posture == RIGHT)
        body = pose.body_pose.reshape(n, 23, 3)[lateral]
        stats[name] = (float(lateral.float().mean()),
                       float(body[:, [2, 5, 8], 0].sum(-1).mean()),  # spine flexion
                       float(body[:, [3, 4], 0].mean()))  # knee flexion
    assert stats["tgt"][0] > stats["src"][0] + 0.07
    assert stats["tgt"][1] > stats["src"][1] + math.radians(10)
    assert stats["tgt"][2] > stats["src"][2] + math.radians(15)


def test_heavier_and_taller_bodies(target_generator):
    from disrt_core.sim.shapes import ShapeSampler, body_mass, stature

    body = target_generator.body
    assert isinstance(target_generator.shapes, TargetShapeSampler)
    means = {}
    for name, sampler in (("src", ShapeSampler(body)), ("tgt", target_generator.shapes)):
        shape, _ = sampler.sample(48, torch.Generator().manual_seed(5))
        params = body.zero_params(48)
        params[:, body.param_layout.shape] = shape
        with torch.no_grad():
            vertices, _ = body(params)
        means[name] = (float(stature(vertices).mean()),
                       float(body_mass(vertices, body.faces).mean()))
    assert means["tgt"][0] > means["src"][0] + 0.03
    assert means["tgt"][1] > means["src"][1] + 5.0


# --- the pipeline -------------------------------------------------------------------------

def test_a_target_batch_is_a_valid_shard_with_both_cameras(target_batch, target_generator):
    b = target_batch
    arrays = to_shard_arrays(b)
    assert shards.validate(arrays, target_generator.layout.param_dim) == 6
    for i, s in enumerate(b["sensor_index"].tolist()):
        spec = TARGET_SENSORS[target_generator.config.sensors[s]]
        assert float(b["K"][i, 0, 0]) == spec.focal[0]
        rows, cols = spec.size
        padding = b["depth_raw"][i, rows:].abs().sum() + b["depth_raw"][i, :, cols:].abs().sum()
        assert float(padding) == 0
        assert float((b["depth_raw"][i, :rows, :cols] > 0).float().mean()) > 0.5
    assert set(b["sensor_index"].tolist()) == {0, 1}
    on_body = (b["depth"] > 0) & (b["depth"] < 2101 - 50)
    assert bool(on_body.flatten(1).any(1).all())  # every image shows something raised
    # the cover label keeps its meaning: a cloth exactly where there is a cover
    has_cloth = torch.isfinite(b["cloth_height"]).flatten(1).any(1)
    assert torch.equal(has_cloth, b["cover"] > 0)


def test_same_seed_same_batch_other_seed_other_batch(target_generator):
    torch.set_num_threads(1)
    a = target_generator.sample(2, 9)
    again = target_generator.sample(2, 9)
    other = target_generator.sample(2, 10)
    for key in ("depth", "params", "K", "T_cam_bed"):
        torch.testing.assert_close(a[key], again[key], rtol=0, atol=0)
    assert not torch.equal(a["depth"], other["depth"])


def test_config_refuses_unknown_sensors():
    with pytest.raises(ValueError, match="target sensors must be among"):
        TargetConfig(sensors=("kinect2",))
    with pytest.raises(ValueError, match="one non-negative weight per sensor"):
        TargetConfig(sensor_weights=(1.0,))


# --- disrt-generate --domain target ---------------------------------------------------------

def test_cli_writes_a_target_manifest_and_resumes(tmp_path, target_generator, monkeypatch):
    monkeypatch.setattr(cli, "_make_generator", lambda args: target_generator)
    out = tmp_path / "target"
    argv = ["--domain", "target", "--n", "4", "--out", str(out), "--shard-size", "2",
            "--batch-size", "2", "--seed", "5", "--quiet", "--workers", "1"]
    assert cli.main(argv) == 0
    manifest = json.loads((out / shards.MANIFEST).read_text())
    assert manifest["complete"] and manifest["total"] == 4
    assert manifest["settings"]["domain"] == "target"
    assert manifest["generator_version"] == TargetGenerator.version
    assert manifest["settings"]["config"]["sensors"] == list(TARGET_SENSORS)
    first, _ = shards.read_shard(out / shards.shard_name(1))
    (out / shards.shard_name(1)).unlink()
    assert cli.main(argv) == 0  # resumes: makes shard 1 again, identical
    again, _ = shards.read_shard(out / shards.shard_name(1))
    for key in first:
        np.testing.assert_array_equal(first[key], again[key], err_msg=key)


def test_cli_domain_options(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["--domain", "target", "--sensor", "d435", "--out", str(tmp_path)])
    assert "source-domain options" in capsys.readouterr().err
    args = cli.build_parser().parse_args(["--domain", "target", "--covers", "0,1,2"])
    args.covers, args.device, args.body_model, args.smpl_dir = (0, 1, 2), "cpu", "anny", None
    assert isinstance(cli._make_generator(args), TargetGenerator)


def test_heavier_bodies_for_a_model_without_phenotypes(smpl_fixture_dir):
    from disrt_core.body import load_body_model
    from disrt_core.sim.shapes import ShapeSampler, mesh_volume

    body = load_body_model("smpl", smpl_fixture_dir)
    base = ShapeSampler(body, calibration_size=64)
    target = TargetShapeSampler(base, body, calibration_size=64)
    assert abs(float(target.heavy.norm()) - 1) < 1e-5
    assert float(target.heavy[target.height_index]) == 0.0
    volumes = []
    for sampler in (base, target):
        shape, _ = sampler.sample(64, torch.Generator().manual_seed(0))
        params = body.zero_params(64)
        params[:, body.param_layout.shape] = shape
        with torch.no_grad():
            vertices, _ = body(params)
        volumes.append(float(mesh_volume(vertices, body.faces).abs().mean()))
    assert volumes[1] > volumes[0]
