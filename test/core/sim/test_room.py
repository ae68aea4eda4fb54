"""Room scenes: cameras anywhere above the bed, exact floor and walls, boxes with outward
faces and materials, the room render seen through a sensor, room samples of the generator."""

import math

import pytest
import torch

from disrt_core.geometry.bedframe import BED_CENTRE_LABEL
from disrt_core.geometry.camera import invert_rigid, transform_points
from disrt_core.sim.noise import apply_sensor_noise, spatial_filter
from disrt_core.sim.room import (
    DARK,
    MATTE,
    NUM_BOXES,
    RIM_BY_BASE,
    SHINY,
    Room,
    clip_below_camera,
    mattress_corners,
    sample_rooms,
    view_points,
)
from disrt_core.sim.room_render import render_room, render_room_planes, room_mesh
from disrt_core.sim.scene import GRID, bed_heightfield, sample_beds
from disrt_core.sim.sensors import SENSORS, overhead_camera_poses, sample_room_cameras


def _project(T, K, points):
    cam = transform_points(T, points)
    uvw = cam @ K.transpose(-1, -2)
    return uvw[..., :2] / uvw[..., 2:], cam[..., 2]


@pytest.mark.parametrize("sensor", ["d455_640x360", "kinect2", "d435_1280x720"])
def test_room_cameras_see_the_whole_bed_from_1p4_to_3p2_m(sensor):
    spec = SENSORS[sensor]
    gen = torch.Generator().manual_seed(0)
    beds = sample_beds(256, gen)
    room = sample_rooms(beds, gen)
    points = view_points(beds, room)
    T, in_view = sample_room_cameras(spec, points, gen)
    assert in_view.float().mean() > 0.97
    K = spec.K(256)
    uv, z = _project(T, K, points)
    rows, cols = spec.size
    inside = (uv[..., 0] >= 0) & (uv[..., 0] <= cols - 1) & (uv[..., 1] >= 0) & (
        uv[..., 1] <= rows - 1) & (z > 0)
    assert inside[in_view].all()
    # Camera height above the mattress top and pitch of the optical axis from vertical.
    T_bed_cam = invert_rigid(T)
    height = T_bed_cam[:, 2, 3]
    assert ((height >= 1.4 - 1e-4) & (height <= 3.2 + 1e-4)).all()
    pitch = torch.rad2deg(torch.acos(-T_bed_cam[:, 2, 2]))
    assert pitch.max() <= 30.0 + 1e-3 and pitch.max() > 20.0
    # Any in-plane angle: the bed's long axis in the image points every which way.
    head, foot = uv[:, :2].mean(1), uv[:, 2:4].mean(1)
    angle = torch.atan2(*(head - foot).unbind(-1)[::-1])
    assert torch.histc(angle, 4, -math.pi, math.pi).min() > 30


def test_floor_and_walls_are_exact_planes():
    n = 1
    beds = sample_beds(n, torch.Generator().manual_seed(0))
    room = Room(floor_z=torch.tensor([-0.5]), walls=torch.tensor([[-0.5, 1.5, 2.5, -1.5]]),
                boxes=torch.zeros(n, NUM_BOXES, 7), box_material=torch.zeros(n, NUM_BOXES,
                                                                           dtype=torch.long),
                floor_material=torch.zeros(n, dtype=torch.long),
                base_type=torch.zeros(n, dtype=torch.long), headboard=beds.headboard,
                footboard=beds.footboard)
    K = SENSORS["kinect2"].K(1)
    T = overhead_camera_poses(torch.tensor([2.0]), torch.tensor([[0.5, 0.5]]),
                              torch.zeros(1, 2), torch.zeros(1))
    depth, which = render_room_planes(K, T, room, (512, 424))
    # Straight down at the principal point: 2.0 m to the mattress plane + 0.5 to the floor.
    r, c = round(259.7), round(208.1)
    assert abs(float(depth[0, r, c]) - 2.5) < 1e-4 and int(which[0, r, c]) == 0
    # Every pixel's 3D point lies on the plane it is said to see.
    v, u = torch.meshgrid(torch.arange(512.0), torch.arange(424.0), indexing="ij")
    rays = torch.stack([(u - 208.1) / 367.8, (v - 259.7) / 367.8, torch.ones_like(u)], -1)
    points = transform_points(invert_rigid(T), (rays * depth[0, ..., None]).reshape(1, -1, 3))
    points, which = points[0], which[0].reshape(-1)
    level = torch.stack([points[:, 2] + 0.5, points[:, 0] + 0.5, points[:, 0] - 1.5,
                         points[:, 1] - 2.5, points[:, 1] + 1.5], -1)
    on_plane = level.gather(1, which[:, None])[:, 0]
    assert on_plane.abs().max() < 1e-3
    assert (which == 1).any() and (which == 2).any()  # both side walls are in view


def test_box_faces_point_outward():
    room = sample_rooms(sample_beds(8, torch.Generator().manual_seed(1)),
                        torch.Generator().manual_seed(2))
    vertices, faces, owner = room_mesh(room)
    tri = vertices[:, faces]
    normal = torch.linalg.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])
    centre = room.boxes[:, owner[faces[:, 0]], :3]
    outward = (normal * (tri.mean(2) - centre)).sum(-1)
    area = normal.norm(dim=-1)
    assert (outward[area > 1e-9] > 0).all()
    assert (area > 1e-9).any() and (area <= 1e-9).any()  # absent boxes are empty


def test_room_render_depth_and_material_of_a_box():
    n = 1
    boxes = torch.zeros(n, NUM_BOXES, 7)
    boxes[0, 0] = torch.tensor([0.5, 0.5, -0.25, 0.3, 0.2, 0.25, 0.3])  # floor to z = 0
    material = torch.zeros(n, NUM_BOXES, dtype=torch.long)
    material[0, 0] = DARK
    room = Room(floor_z=torch.tensor([-0.5]), walls=torch.tensor([[-3.0, 4.0, 4.0, -3.0]]),
                boxes=boxes, box_material=material,
                floor_material=torch.tensor([SHINY]), base_type=torch.zeros(n, dtype=torch.long),
                headboard=torch.full((n,), math.nan), footboard=torch.full((n,), math.nan))
    K = SENSORS["kinect2"].K(1)
    T = overhead_camera_poses(torch.tensor([2.0]), torch.tensor([[0.5, 0.5]]),
                              torch.zeros(1, 2), torch.zeros(1))
    empty = torch.zeros(1, 0, 3)
    depth, mat = render_room(empty, torch.zeros(0, 3, dtype=torch.long), room, K, T, (512, 424))
    r, c = round(259.7), round(208.1)
    assert abs(float(depth[0, r, c]) - 2.0) < 1e-4 and int(mat[0, r, c]) == DARK
    # The floor, 2.5 m along the optical axis everywhere for a camera looking straight down.
    assert abs(float(depth[0, 5, 5]) - 2.5) < 1e-4 and int(mat[0, 5, 5]) == SHINY


def test_furniture_stays_below_a_ceiling_camera():
    gen = torch.Generator().manual_seed(3)
    beds = sample_beds(64, gen)
    room = sample_rooms(beds, gen)
    T, _ = sample_room_cameras(SENSORS["d435"], view_points(beds, room), gen)
    clipped = clip_below_camera(room, T)
    camera_z = invert_rigid(T)[:, 2, 3]
    top = clipped.boxes[..., 2] + clipped.boxes[..., 5]
    present = clipped.boxes[..., 3:6].prod(-1) > 0
    assert (top[present] <= (camera_z[:, None] - 0.4 + 1e-5).expand_as(top)[present]).all()


def test_rooms_have_the_furniture_of_real_rooms():
    gen = torch.Generator().manual_seed(4)
    beds = sample_beds(512, gen)
    room = sample_rooms(beds, gen)
    assert ((beds.floor_z <= -0.3) & (beds.floor_z >= -0.8)).all()
    present = room.boxes[..., 3:6].prod(-1) > 0
    top = room.boxes[..., 2] + room.boxes[..., 5]
    higher = (present & (top > 0.05)).any(1).float().mean()
    lower = (present & (top < -0.1) & (room.boxes[..., 2] - room.boxes[..., 5]
                                       > beds.floor_z[:, None] - 1e-4)).any(1).float().mean()
    assert higher > 0.6 and lower > 0.6  # things above and below the mattress top
    corners = mattress_corners(beds)
    assert torch.allclose(corners[:, 1, 0] - corners[:, 0, 0], beds.width)
    assert torch.allclose(corners[:, 0, 1] - corners[:, 3, 1], beds.length)
    shares = torch.bincount(room.box_material[present], minlength=3).float()
    assert shares[DARK] > 0 and shares[SHINY] > 0


def test_footboards_are_low_or_as_tall_as_a_headboard():
    """Bedroom footboards are low, sleigh and hospital beds' as tall as the headboard or
    taller: a board's height alone must not tell the bed finder the head end."""
    gen = torch.Generator().manual_seed(5)
    beds = sample_beds(1024, gen)
    room = sample_rooms(beds, gen)
    foot, head = room.footboard, room.headboard
    present = ~foot.isnan()
    assert 0.3 < present.float().mean() < 0.5
    assert ((foot[present] >= 0.05) & (foot[present] <= 0.6)).all()
    assert (foot[present] < 0.15).any() and (foot[present] > 0.45).any()
    both = present & ~head.isnan()
    assert (foot[both] >= head[both]).float().mean() > 0.2


def test_dark_and_shiny_surfaces_in_each_sensor_kind():
    gen = torch.Generator().manual_seed(0)
    clean = torch.full((2, 120, 160), 2.0)
    material = torch.full((2, 120, 160), MATTE)
    material[:, :, 80:] = DARK
    for name in ("d435_640x480", "azure_nfov", "l515"):
        spec = SENSORS[name]
        K = torch.tensor([[200.0, 0, 80], [0, 200.0, 60], [0, 0, 1]]).expand(2, 3, 3)
        raw = apply_sensor_noise(clean, K, spec, gen, material=material)
        lost_matte = (raw[:, 10:-10, 40:70] == 0).float().mean()
        lost_dark = (raw[:, 10:-10, 90:150] == 0).float().mean()
        assert lost_dark > lost_matte + 0.05, name
    shiny = torch.full_like(material, SHINY)
    raw = apply_sensor_noise(clean, K, SENSORS["azure_nfov"], gen, material=shiny)
    valid = raw > 0
    assert raw[valid].mean() > 2000 + 5  # the multipath bias, at least 1 cm


def test_sdk_spatial_filter_smooths_a_plane_and_keeps_a_step():
    spec = SENSORS["d435"]
    gen = torch.Generator().manual_seed(0)
    clean = torch.full((1, 100, 100), 2.0)
    clean[:, :, 50:] = 1.7  # a 30 cm step
    noisy = clean + 0.02 * torch.randn(clean.shape, generator=gen)
    smooth = spatial_filter(noisy, spec)
    assert (smooth - clean)[:, 5:-5, 5:45].std() < 0.6 * (noisy - clean)[:, 5:-5, 5:45].std()
    # The step stays sharp: no more values between the two surfaces than the noise made.
    def between(x):
        return int(((x > 1.78) & (x < 1.92)).sum())

    assert between(smooth) <= between(noisy)


def test_generator_room_samples_carry_their_ground_truth(anny_body):
    from disrt_core.sim import SceneGenerator, SimConfig

    gen = SceneGenerator(SimConfig(scene="room", sensor="d435_424x240", noise=False),
                         anny_body, "cpu")
    out = gen.sample(4, seed=0, with_raw=True)
    assert out["depth_raw"].shape == (4, 240, 424)
    corners = out["mattress_corners"]
    K, T = out["K"], out["T_cam_bed"]
    # The mattress corners are the bed frame's corners seen through T_cam_bed, and the
    # foot corners (8 cm inward: away from pillows, boards and the rounded edge) are seen
    # at their depth, up to what lies on the mattress (blanket, sag).
    assert torch.allclose(transform_points(invert_rigid(T), corners)[..., 2],
                          torch.zeros(4, 4), atol=1e-4)
    centre = corners.mean(1, keepdim=True)
    inner = corners[:, 2:] + 0.08 * torch.nn.functional.normalize(centre - corners[:, 2:],
                                                                  dim=-1)
    uv, z = _project(torch.eye(4).expand(4, 4, 4), K, inner)
    px = uv.round().long()
    seen = out["depth_raw"][torch.arange(4)[:, None], px[..., 1], px[..., 0]] / 1000.0
    assert ((z - seen) < 0.08).all()
    # Deeper than the mattress top only where a body presses it down: a foot or a leg within
    # 30 cm of that corner (the corners in the label frame against the joints).
    inner_label = transform_points(invert_rigid(T), inner)[..., :2]
    near = torch.cdist(inner_label, out["joints"][..., :2]).min(-1).values
    free = near > 0.3
    assert free.sum() >= 4 and ((z - seen) > -0.02)[free].all()
    assert out["in_view"].all()


def test_generator_empty_beds_have_no_body(anny_body):
    from disrt_core.sim import SceneGenerator, SimConfig

    gen = SceneGenerator(SimConfig(scene="room", sensor="d435_424x240", noise=False,
                                   occupancy=(1.0, 1.0, 0.0), objects_on_bed=0.0),
                         anny_body, "cpu")
    out = gen.sample(8, seed=1, with_mesh=True)
    empty = out["occupancy"] == 1
    assert empty.any() and (~empty).any()
    assert (out["present"] == ~empty).all()
    assert torch.isnan(out["vertices"][empty]).all()
    assert (out["pressure"][empty] == 0).all() and (out["pressure"][~empty].sum((1, 2)) > 0).all()
    # Nothing body-sized lies on an empty bed: little of the network grid is 10 cm up or more
    # (the pillows; a folded throw, a rumpled cover's waves and its folds stay lower), more of
    # an occupied one is.
    raised = ((out["bed_mm"][:, None, None] - out["depth"]) > 100) & (out["depth"] > 0)
    share = raised.flatten(1).float().mean(1)
    assert share[empty].max() < 0.2 and share[~empty].mean() > share[empty].mean() + 0.1


def test_the_base_reaches_beyond_the_mattress_by_its_type():
    """A divan is the mattress's footprint, a frame on legs holds it inside a rim of a few
    cm, and the boards stand on the base's ends: the headboard as far from the mattress as
    the rim reaches (the bed fit assumes 0-4 cm there). The height field's ledge beside
    the mattress is the rim too."""
    gen = torch.Generator().manual_seed(6)
    beds = sample_beds(1024, gen)
    room = sample_rooms(beds, gen)
    rim = beds.rim
    for kind, (lo, hi) in enumerate(RIM_BY_BASE):
        mine = rim[room.base_type == kind]
        assert mine.numel() > 100 and (mine >= lo).all() and (mine <= hi).all()
    assert (rim[room.base_type == 0] <= 0.015).all() and (rim[room.base_type == 1] > 0.05).any()
    base = room.boxes[:, 0]  # the base's box: the first one of every room
    assert torch.allclose(base[:, 3], beds.width / 2 + rim)
    assert torch.allclose(base[:, 4], beds.length / 2 + rim)
    head = room.boxes[:, 7]  # base, mattress sides, 4 legs, hospital base, headboard
    has = ~room.headboard.isnan()
    inner = head[has, 1] - head[has, 4]  # the headboard's face toward the mattress
    end = BED_CENTRE_LABEL[1] + beds.length[has] / 2
    assert torch.allclose(inner - end, rim[has], atol=1e-5)
    points = view_points(beds, room)  # the boards' outer top corners at the base's ends
    assert torch.allclose(points[:, 4, 1] - points[:, 0, 1], rim, atol=1e-5)
    # The ledge beside the mattress: cells at the frame's height within the rim only.
    height = bed_heightfield(beds)
    x, _y = GRID.xy()
    dx = (x - BED_CENTRE_LABEL[0]).abs()[None].expand_as(height)
    ledge = (height == beds.frame_z[:, None, None]) & (dx > beds.width[:, None, None] / 2)
    reach = torch.where(ledge, dx - beds.width[:, None, None] / 2, 0.0).flatten(1).amax(1)
    assert (reach <= rim + 1e-6).all()
    wide = rim > 2 * GRID.pitch
    assert (reach[wide] > rim[wide] - GRID.pitch - 1e-6).all()


def test_batches_of_one_generator_get_their_own_rims():
    """The rim's stream is seeded from the room stream's state, not its seed: the batches
    that ``disrt-generate`` draws from one generator per shard do not repeat one set of
    rims, and the same seed gives the same rims."""
    def rims(gen, n=64):
        beds = sample_beds(n, gen)
        sample_rooms(beds, gen)
        return beds.rim

    gen = torch.Generator().manual_seed(7)
    first, second = rims(gen), rims(gen)
    assert not torch.allclose(first, second)
    assert torch.equal(rims(torch.Generator().manual_seed(7)), first)
