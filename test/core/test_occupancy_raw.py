"""The sitter's trunk in the raw frame: found where it is, not beside the bed, and unknown
where the camera does not see the band along the mattress's edges."""

import math

import pytest
import torch

from disrt_core.geometry.bedframe import BED_CENTRE_LABEL, SLP_DANALAB_BED_MM
from disrt_core.geometry.camera import invert_rigid, overhead_camera_pose, raw_to_network
from disrt_core.occupancy import (
    EMPTY,
    IN_BED,
    SITTING,
    SITTING_COEFFICIENTS,
    occupancy_state,
    sitting_from,
    tall_shares,
)
from disrt_core.occupancy_raw import MIN_COVERAGE, trunk_features

W, L = 0.9, 2.0  # the mattress
CX, CY = BED_CENTRE_LABEL
SIZE = torch.tensor([[W, L]])


def _box(x, y, z, half):
    """(min, max) corners of a box centred on (x, y) across / along the bed from its centre,
    from z[0] to z[1] m above the mattress, half sizes (hx, hy)."""
    return ((CX + x - half[0], CY + y - half[1], z[0]), (CX + x + half[0], CY + y + half[1], z[1]))


MATTRESS = _box(0, 0, (-0.25, 0.0), (W / 2, L / 2))
FLOOR = ((-10.0, -10.0, -0.65), (10.0, 10.0, -0.55))
EDGE = W / 2  # the long edge at +x
#: A sitter facing away across the +x edge: trunk and head over the mattress near the edge,
#: thighs on it to the edge, lower legs down to the floor beyond it.
SITTER = [_box(EDGE - 0.2, 0.1, (0.0, 0.62), (0.12, 0.2)),  # trunk, shoulders
          _box(EDGE - 0.2, 0.1, (0.0, 0.85), (0.08, 0.08)),  # head
          _box(EDGE - 0.05, 0.1, (0.0, 0.15), (0.2, 0.18)),  # thighs
          _box(EDGE + 0.2, 0.1, (-0.55, 0.1), (0.06, 0.16))]  # lower legs
#: A chair with its back to the bed's edge, its top 0.55 m above the mattress.
CHAIR = [_box(EDGE + 0.3, -0.6, (-0.55, -0.1), (0.22, 0.22)),  # seat
         _box(EDGE + 0.1, -0.6, (-0.55, 0.55), (0.03, 0.22))]  # back
NIGHTSTAND = [_box(EDGE + 0.3, 0.75, (-0.55, 0.0), (0.22, 0.2)),
              _box(EDGE + 0.3, 0.75, (0.0, 0.45), (0.08, 0.08))]  # lamp
STANDING = [_box(EDGE + 0.25, -0.2, (-0.55, 1.15), (0.12, 0.22))]  # beside the bed
#: Someone standing against the other edge (the camera's), the front of their body over the
#: mattress.
LEANING = [_box(-EDGE + 0.05, -0.2, (-0.55, 1.25), (0.12, 0.22))]
#: Someone beside the bed, bent toward it: 0.95 m high, a little of it over the mattress.
BENDING = [_box(EDGE + 0.12, -0.2, (-0.55, 0.95), (0.18, 0.22))]
WALL = [_box(EDGE + 0.1, 0, (-0.55, 2.0), (0.05, 3.0))]
#: A hospital bed's side rail, a panel 0.5 m above the mattress along its edge.
RAIL = [_box(EDGE - 0.02, 0, (-0.3, 0.5), (0.06, 0.6))]


def _render(boxes, T_cam_bed, K, size=(240, 320)):
    """Depth (mm along the optical axis) of axis-aligned boxes in the bed frame, ray cast."""
    height, width = size
    v, u = torch.meshgrid(torch.arange(height).float(), torch.arange(width).float(),
                          indexing="ij")
    rays = torch.stack([u, v, torch.ones_like(u)], -1).reshape(-1, 3) @ torch.linalg.inv(K).T
    T_bed_cam = invert_rigid(T_cam_bed)
    origin, direction = T_bed_cam[:3, 3], rays @ T_bed_cam[:3, :3].T  # z-depth = t
    depth = torch.full((len(rays),), math.inf)
    for lo, hi in boxes:
        with torch.no_grad():
            t1 = (torch.tensor(lo) - origin) / direction
            t2 = (torch.tensor(hi) - origin) / direction
        near = torch.minimum(t1, t2).amax(-1)
        far = torch.maximum(t1, t2).amin(-1)
        hit = (far >= near) & (near > 0)
        depth = torch.where(hit, torch.minimum(depth, near), depth)
    depth = torch.where(depth.isfinite(), 1000 * depth, torch.zeros_like(depth))
    return depth.reshape(1, height, width)


def _look_at(eye, target):
    """T_cam_bed of a camera at ``eye`` looking at ``target`` (bed frame, offsets from the
    mattress centre), the bed's length along the image's width."""
    eye = torch.tensor([CX + eye[0], CY + eye[1], eye[2]])
    z = torch.tensor([CX + target[0], CY + target[1], target[2]]) - eye
    z = z / z.norm()
    x = torch.linalg.cross(z, torch.tensor([1.0, 0.0, 0.0]))
    x = x / x.norm()
    T_bed_cam = torch.eye(4)
    T_bed_cam[:3, :3] = torch.stack([x, torch.linalg.cross(z, x), z], -1)
    T_bed_cam[:3, 3] = eye
    return invert_rigid(T_bed_cam)


K = torch.tensor([[250.0, 0, 159.5], [0, 250.0, 119.5], [0, 0, 1]])
#: A ceiling camera 2.2 m up, 1 m to the side of the bed's centre (away from the sitter's
#: edge), looking down at the bed.
BESIDE = _look_at((-1.0, 0.0, 2.2), (0.2, 0.0, 0.0))


def scene_depth(boxes, T=BESIDE):
    """[1,240,320] mm: the floor, the mattress and ``boxes`` seen by the camera ``T`` (K)."""
    return _render([FLOOR, MATTRESS, *boxes], T, K)


def _evidence(boxes, T=BESIDE):
    raw = scene_depth(boxes, T)
    return trunk_features(raw, K[None], T[None], SIZE)[0], raw


def test_a_sitters_trunk_is_found_where_the_network_grid_misses_it():
    trunk, raw = _evidence(SITTER)
    assert trunk[3] > 0.95  # the band along both long edges is seen
    # The trunk's 0.24 x 0.4 m and the head's 0.16 x 0.16 m: about 0.1 m² above 0.4 m and
    # 0.55 m, the head above 0.7 m (4 cm cells and the 2x2 opening round the outlines).
    assert 0.06 < trunk[0] < 0.14 and 0.06 < trunk[1] < 0.14
    assert 0.01 < trunk[2] < 0.05
    # The network grid samples where the mattress plane is seen: from a camera to the side
    # the trunk is drawn beyond the edge, and little of it is left tall on the grid.
    net = raw_to_network(raw, K[None], BESIDE[None], SLP_DANALAB_BED_MM)
    shares = tall_shares(net, SLP_DANALAB_BED_MM)[0]
    assert float(shares[1]) * 0.83 * 1.91 < 0.5 * float(trunk[1])
    # Presence says nobody lies in the bed: the grid alone says empty, the trunk sitting.
    present = torch.tensor([0.05])
    assert occupancy_state(present, net, SLP_DANALAB_BED_MM).item() == EMPTY
    assert occupancy_state(present, net, SLP_DANALAB_BED_MM, trunk[None]).item() == SITTING


@pytest.mark.parametrize("things", ["chair", "nightstand", "standing", "leaning", "bending",
                                    "wall", "rail", "nothing"])
def test_things_and_people_beside_the_bed_are_no_trunk(things):
    boxes = {"chair": CHAIR, "nightstand": NIGHTSTAND, "standing": STANDING,
             "leaning": LEANING, "bending": BENDING, "wall": WALL, "rail": RAIL,
             "nothing": []}[things]
    trunk, raw = _evidence(boxes)
    assert trunk[:3].tolist() == [0, 0, 0]
    # Someone right in front of the camera hides part of the mattress behind them.
    assert trunk[3] > (0.6 if things == "leaning" else 0.95)
    net = raw_to_network(raw, K[None], BESIDE[None], SLP_DANALAB_BED_MM).expand(2, -1, -1)
    present = torch.tensor([0.05, 0.95])
    state = occupancy_state(present, net, SLP_DANALAB_BED_MM, trunk[None].expand(2, -1))
    assert state.tolist() == [EMPTY, IN_BED]
    if things == "leaning":  # tall on the network grid: a sitter to the grid alone
        assert occupancy_state(present, net, SLP_DANALAB_BED_MM).tolist() == [SITTING] * 2


def test_the_sitter_next_to_a_chair_is_still_found():
    alone, _ = _evidence(SITTER)
    with_chair, _ = _evidence(SITTER + CHAIR + NIGHTSTAND)
    assert with_chair[:3].tolist() == pytest.approx(alone[:3].tolist())


def test_a_band_out_of_the_frame_is_unknown_not_nobody():
    # Camera above the -x half of the bed, looking straight down with a narrow view: the
    # +x edge (where the sitter is) is outside the frame.
    T = overhead_camera_pose(1.2, (CX - 0.35, CY), yaw_rad=math.pi / 2)
    trunk, _ = _evidence(SITTER, T)
    assert trunk[3] < MIN_COVERAGE and trunk[:3].tolist() == [0, 0, 0]
    # Unknown: the grid's evidence decides, as without the raw frame.
    shares = torch.tensor([[0.05, 0.04, 0.03], [0.0, 0.0, 0.0]])
    present = torch.tensor([0.1, 0.1])
    unseen = trunk[None].expand(2, -1)
    without = sitting_from(shares, present)
    assert torch.allclose(sitting_from(shares, present, unseen), without)
    assert without[0] > 0.5 > without[1]
    # A trunk found in the part that is seen still counts.
    found = torch.tensor([[0.1, 0.08, 0.03, 0.5]])
    assert sitting_from(shares[1:], present[1:], found)[0] > 0.5
    # The same frame seen whole without a trunk says nobody sits, whatever the grid says.
    seen = torch.tensor([[0.0, 0.0, 0.0, 1.0]])
    assert sitting_from(shares[:1], present[:1], seen)[0] < 0.5
    # No raw frame (NaN rows, as the node leaves them): the grid's model alone.
    none = torch.full((2, 4), math.nan)
    assert torch.allclose(sitting_from(shares, present, none), without)
    assert torch.allclose(without, torch.sigmoid(
        torch.cat([shares, present[:, None]], -1) @ torch.tensor(SITTING_COEFFICIENTS[:-1])
        + SITTING_COEFFICIENTS[-1]))


def test_an_slp_like_view_of_the_mattress_alone_sees_the_band():
    # SLP's camera: straight above the mattress, which fills most of the frame.
    T = overhead_camera_pose(2.1, (CX, CY), yaw_rad=math.pi / 2)
    empty, _ = _evidence([], T)
    sitter, _ = _evidence(SITTER, T)
    assert empty[3] > 0.95 and empty[:3].tolist() == [0, 0, 0]
    assert sitter[1] > 0.06


@pytest.fixture(scope="module")
def estimator():
    from disrt_core.infer import Estimator

    return Estimator.from_checkpoint("disrt_core/weights/default.safetensors", seed=0)


def _generated(estimator, occupancy, seed):
    """Generated room scenes (the d435 above the bed, furniture around it) and the bed's
    state from the grid alone and with the raw frame's trunk evidence."""
    from disrt_core.geometry.bedframe import normalize_depth
    from disrt_core.sim import SceneGenerator, SimConfig

    gen = SceneGenerator(SimConfig(scene="room", sensor="d435", occupancy=occupancy),
                         estimator.body_model)
    out = gen.sample(16, seed=seed, with_raw=True)
    present = estimator.predict(normalize_depth(out["depth"], out["bed_mm"][:, None, None]))
    trunk = torch.cat([trunk_features(out["depth_raw"][k:k + 1], out["K"][k:k + 1],
                                      out["T_cam_bed"][k:k + 1], out["mattress_size"][k:k + 1])
                       for k in range(16)])
    args = (present.present_prob, out["depth"], out["bed_mm"])
    return occupancy_state(*args), occupancy_state(*args, trunk), trunk


def test_generated_sitters_are_found_beside_furniture_no_sitter_is_made_up(estimator):
    # The grid alone misses sitters whose head and shoulders it draws beyond the bed region
    # (two of these sixteen; 0-4 in other seeds' sixteen, the trunk finds all).
    grid, raw, trunk = _generated(estimator, (0.0, 0.0, 1.0), 5005)
    assert (raw == SITTING).sum() >= 15 and ((raw == SITTING) & (grid != SITTING)).any()
    assert (trunk[:, 1] > 0.01).sum() >= 15  # head and shoulders above 0.55 m
    # The same rooms (chairs, nightstands, lamps, walls) with the beds empty: nobody sits.
    _, raw, trunk = _generated(estimator, (0.0, 1.0, 0.0), 5000)
    assert (raw != SITTING).all() and (trunk[:, :3] == 0).all()
    # Someone lying: nothing of them 0.7 m up. One of these sixteen has her knees drawn up
    # under the blanket to 0.65 m, 0.1-0.3 m inside an edge, which the trunk areas take for
    # a sitter (a remaining error: a sitter's head reaches 0.68 m or more in the generated
    # scenes, too near for a rule).
    _, raw, trunk = _generated(estimator, (1.0, 0.0, 0.0), 5000)
    assert (trunk[:, 2] == 0).all() and (raw == SITTING).sum() <= 1
