"""Whole-room depth scenes for the bed finder's tests and benchmark (until the room generator
``disrt_core.sim.room`` is there): a raised mattress on a frame with legs, boards, rails,
pillow, a body made of boxes, a draped blanket, objects on the bed, walls, furniture lower
and higher than the mattress, clutter; any camera pose over the room; sensor noise.

Everything is built in the bed (label) frame (x across, y toward the head end, z up from
the mattress top; the mattress centre at ``BED_CENTRE_LABEL``), so ``T_cam_bed`` is the
ground truth the fitter must find. Boxes are ``(cx, cy, cz, sx, sy, sz, yaw)`` (centre, full
sizes, turn about z) and rendered with ``disrt_core.sim.render.render_depth`` (12 triangles
each), the floor with ``render_plane``, the blanket as a height-field mesh; a batch of one
sensor is rendered in one call (unused box slots sit behind the camera).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from disrt_core.geometry.bedframe import BED_CENTRE_LABEL
from disrt_core.sim.noise import apply_sensor_noise
from disrt_core.sim.render import grid_faces, render_depth, render_plane
from disrt_core.sim.sensors import SensorSpec, overhead_camera_poses

CX, CY = BED_CENTRE_LABEL
#: name -> (rows, cols, f, kind, baseline m[, (cx, cy)]); the issue's sensors, SLP's Kinect
#: (portrait, rows along the bed) and a small time-of-flight camera for quick tests.
SENSORS = {
    "kinect2_slp": (512, 424, 367.8, "tof", 0.0, (208.1, 259.7)),
    "tof_320x240": (240, 320, 230.0, "tof", 0.0),
    "d455_640x360": (360, 640, 337.2, "stereo", 0.095),
    "d435_424x240": (240, 424, 213.0, "stereo", 0.05),
    "d435_640x480": (480, 640, 383.0, "stereo", 0.05),
    "d435_848x480": (480, 848, 426.0, "stereo", 0.05),
    "d435_1280x720": (720, 1280, 640.0, "stereo", 0.05),
    "kinect2": (424, 512, 365.0, "tof", 0.0),
    "azure_nfov": (576, 640, 505.0, "tof", 0.0),
    "l515": (480, 640, 460.0, "tof", 0.0),
}
NUM_BOXES = 40
_BOX_FACES = torch.tensor([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                           [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
BLANKET_GRID = (40, 80)  # across, along


def corner_errors(fit, truth) -> tuple[float, float]:
    """Largest corner distance (m) of fitted corners [4,3] (head-left, head-right, foot-right,
    foot-left; numpy or torch) from the true ones: in the fit's head order, and in either
    order (the mattress found, whichever end it took for the head)."""
    fit, truth = np.asarray(fit, np.float64), np.asarray(truth, np.float64)
    ordered = float(np.linalg.norm(fit - truth, axis=-1).max())
    flipped = float(np.linalg.norm(fit[[2, 3, 0, 1]] - truth, axis=-1).max())
    return ordered, min(ordered, flipped)


def fit_error(fits, scenes: Scenes, i: int = 0) -> float:
    """The either-order corner distance (m, :func:`corner_errors`) of frame ``i``'s fit."""
    return corner_errors(fits.corners[i], scenes.mattress_corners[i])[1]


def sensor_spec(name: str) -> SensorSpec:
    rows, cols, f, kind, baseline, *centre = SENSORS[name]
    centre = centre[0] if centre else ((cols - 1) / 2, (rows - 1) / 2)
    return SensorSpec(name, (rows, cols), (f, f), centre, (0.3, 10.0), kind,
                      baseline_m=baseline)


@dataclass
class Room:
    """One scene's geometry in the bed frame."""

    width: float = 0.9
    length: float = 2.0
    floor: float = 0.55  # mattress top above the floor
    boxes: list = field(default_factory=list)  # (cx, cy, cz, sx, sy, sz, yaw)
    blanket: dict | None = None  # x0, x1, y0, y1, top [R,C] heights, hang
    flags: dict = field(default_factory=dict)

    def box(self, x0, x1, y0, y1, z0, z1, yaw=0.0):
        self.boxes.append(((x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2, x1 - x0, y1 - y0,
                           z1 - z0, yaw))


def body_boxes(x0: float, y_head: float, posture: str, scale: float, arm_out: bool):
    """Boxes (x0, x1, y0, y1, z0, z1) of a person lying along the bed, head toward +y."""
    side = posture == "side"
    tw, th = (0.26, 0.40) if side else (0.40, 0.22)
    s = scale
    parts = [(0.0, -0.02, -0.24, 0.17, 0.20),  # head: x offset, y0, y1, width, height
             (0.0, -0.24, -0.78, tw, th), (0.0, -0.78, -1.0, 0.36 if not side else 0.30,
                                                0.20 if not side else 0.32)]
    legs = [(-0.1, 0.15, 0.15), (0.1, 0.15, 0.15)] if not side else [(0.0, 0.2, 0.24)]
    for lx, w, h in legs:
        parts += [(lx, -1.0, -1.45, w, h), (lx, -1.45, -1.86, w * 0.75, h * 0.75),
                  (lx, -1.86, -1.94, w * 0.6, 0.14)]
    arm_x = tw / 2 + 0.06
    parts += [(-arm_x, -0.26, -0.85, 0.09, 0.09)]
    parts += [(arm_x + (0.25 if arm_out else 0.0), -0.26, -0.85, 0.09, 0.09)]
    out = []
    for px, ya, yb, w, h in parts:
        out.append((x0 + px - w / 2, x0 + px + w / 2, y_head + yb * s, y_head + ya * s, 0.0, h))
    return out


def random_room(rng: np.random.Generator, *, person=None, pillow=None, blanket=None,
                furniture=True, bed=True) -> Room:
    """A random bedroom or ward around the bed (see the module docstring); ``person``,
    ``pillow``, ``blanket`` force those (None: random)."""
    u = rng.uniform
    room = Room(width=u(0.8, 2.0), length=u(1.9, 2.3), floor=u(0.3, 0.8))
    W, L, fl = room.width, room.length, room.floor
    x0, x1, y0, y1 = CX - W / 2, CX + W / 2, CY - L / 2, CY + L / 2
    person = rng.random() < 0.65 if person is None else person
    pillow = rng.random() < 0.7 if pillow is None else pillow
    blanket = person and rng.random() < 0.4 if blanket is None else blanket
    room.flags = {"person": person, "pillow": pillow, "blanket": blanket, "bed": bed}
    if bed:
        thick = u(0.15, 0.3)
        room.box(x0, x1, y0, y1, -thick, 0.0)
        rim = u(0.0, 0.05)
        base = fl - thick
        if rng.random() < 0.4:  # divan to the floor
            room.box(x0 - rim, x1 + rim, y0 - rim, y1 + rim, -fl, -thick)
        else:  # frame on legs
            room.box(x0 - rim, x1 + rim, y0 - rim, y1 + rim, -thick - min(0.15, base * 0.4),
                     -thick)
            for lx in (x0, x1 - 0.06):
                for ly in (y0, y1 - 0.06):
                    room.box(lx, lx + 0.06, ly, ly + 0.06, -fl, -thick)
        head_top = u(0.15, 0.6) if rng.random() < 0.6 else None
        foot_top = u(0.05, 0.35) if rng.random() < 0.4 else None
        t = u(0.02, 0.06)
        if head_top is not None:
            room.box(x0 - rim, x1 + rim, y1 + rim, y1 + rim + t, -fl, head_top)
        if foot_top is not None:
            room.box(x0 - rim, x1 + rim, y0 - rim - t, y0 - rim, -fl, foot_top)
        room.flags.update(headboard=head_top, footboard=foot_top)
        if rng.random() < 0.2:  # hospital rails, head half
            for side in (-1, 1):
                xr = CX + side * (W / 2 + 0.02)
                room.box(xr - 0.015, xr + 0.015, y1 - 1.0, y1 - 0.15, -0.1, u(0.25, 0.4))
        pillow_top = 0.0
        if pillow:
            pw, pl, ph = min(u(0.5, 0.75), W - 0.1), u(0.3, 0.45), u(0.08, 0.15)
            px = CX + u(-0.1, 0.1) * (W - pw)
            room.box(px - pw / 2, px + pw / 2, y1 - 0.04 - pl, y1 - 0.04, 0.0, ph)
            pillow_top = ph * 0.7
        bodies = []
        if person:
            scale = u(0.8, 0.95)
            xb = CX + u(-0.25, 0.25) * max(0.0, W - 0.6)
            y_head = y1 - u(0.06, 0.3)
            posture = "side" if rng.random() < 0.35 else "back"
            bodies = body_boxes(xb, y_head, posture, scale, rng.random() < 0.2)
            bodies = [(a, b, c, d, e + (pillow_top if i == 0 else 0.0),
                       f + (pillow_top if i == 0 else 0.0))
                      for i, (a, b, c, d, e, f) in enumerate(bodies)]
            for bx in bodies if not blanket else bodies[:1]:
                room.box(*bx)
        for _ in range(rng.integers(0, 3)):  # objects lying on the bed
            ow, ol = u(0.15, 0.4), u(0.15, 0.35)
            ox, oy = u(x0 + ow / 2, x1 - ow / 2), u(y0 + ol / 2, y1 - ol / 2)
            room.box(ox - ow / 2, ox + ow / 2, oy - ol / 2, oy + ol / 2, 0.0, u(0.02, 0.1))
        if blanket:
            room.blanket = _blanket(rng, room, bodies[1:], y_head - 0.25 if person else y1)
    if furniture:
        _furnish(rng, room)
    return room


def bedroom(width: float = 0.9, length: float = 2.0, floor: float = 0.5, *,
            person: bool = True, pillow: bool = True, blanket: bool = False,
            headboard: float | None = 0.4, furniture: bool = True) -> Room:
    """A fixed bedroom (no randomness): the mattress (0.2 m thick) on a frame with legs, a
    headboard ``headboard`` m above the mattress (None: none), a pillow, someone lying on
    the back (under a blanket), a bedside table touching the bed at the head end, a table
    whose top is nearer the camera than the mattress, a sofa and a box on the floor."""
    room = Room(width=width, length=length, floor=floor)
    x0, x1, y0, y1 = CX - width / 2, CX + width / 2, CY - length / 2, CY + length / 2
    room.box(x0, x1, y0, y1, -0.2, 0.0)
    room.box(x0 - 0.03, x1 + 0.03, y0 - 0.03, y1 + 0.03, -0.3, -0.2)
    for lx in (x0, x1 - 0.06):
        for ly in (y0, y1 - 0.06):
            room.box(lx, lx + 0.06, ly, ly + 0.06, -floor, -0.3)
    if headboard is not None:
        room.box(x0 - 0.03, x1 + 0.03, y1 + 0.03, y1 + 0.07, -floor, headboard)
    lift = 0.0
    if pillow:
        room.box(CX - 0.3, CX + 0.3, y1 - 0.44, y1 - 0.04, 0.0, 0.12)
        lift = 0.08
    bodies = []
    if person:
        bodies = body_boxes(CX - 0.05, y1 - 0.12, "back", 0.88, False)
        bodies[0] = (*bodies[0][:4], bodies[0][4] + lift, bodies[0][5] + lift)
        for box in bodies if not blanket else bodies[:1]:
            room.box(*box)
    if blanket:
        rng = np.random.default_rng(0)
        room.blanket = _blanket(rng, room, bodies[1:], y1 - 0.37 if person else y1 - 0.45,
                                thick=0.02)
    room.flags = {"person": person, "pillow": pillow, "blanket": blanket,
                  "headboard": headboard, "bed": True}
    if furniture:
        room.box(x1 + 0.0, x1 + 0.45, y1 - 0.45, y1, -floor, 0.55 - floor)  # bedside table
        room.box(x0 - 1.6, x0 - 0.8, CY - 0.6, CY + 0.6, 0.72 - floor, 0.75 - floor)  # table
        room.box(x0 - 1.55, x0 - 1.5, CY - 0.55, CY - 0.5, -floor, 0.72 - floor)
        room.box(x1 + 0.9, x1 + 1.8, CY - 1.0, CY + 1.0, -floor, 0.45 - floor)  # sofa seat
        room.box(x1 + 1.6, x1 + 1.8, CY - 1.0, CY + 1.0, 0.45 - floor, 0.85 - floor)  # back
        room.box(CX - 0.2, CX + 0.2, y0 - 0.9, y0 - 0.5, -floor, 0.3 - floor)  # a box
    return room


def view(room: Room, sensor: str, height: float, *, offset=(0.0, 0.0), tilt=(0.0, 0.0),
         yaw: float = 0.0, seed: int = 0, noise: bool = True) -> Scenes:
    """One frame of ``room`` by ``sensor`` from ``height`` m above the mattress, above the
    point ``offset`` (m, from the bed centre), turned by (tilt_x, tilt_y, yaw) rad."""
    T = overhead_camera_poses(torch.tensor([height], dtype=torch.float64),
                              torch.tensor([[CX + offset[0], CY + offset[1]]],
                                           dtype=torch.float64),
                              torch.tensor([tilt], dtype=torch.float64),
                              torch.tensor([yaw], dtype=torch.float64))
    return render_rooms([room], T, sensor, seed, noise)


def _blanket(rng, room: Room, bodies, y_top: float, thick: float | None = None) -> dict:
    W, L = room.width, room.length
    thick = rng.uniform(0.02, 0.06) if thick is None else thick
    over = thick  # the cloth folds down over the edge, its thickness beyond it
    xs = np.linspace(CX - W / 2 - over, CX + W / 2 + over, BLANKET_GRID[0])
    ys = np.linspace(CY - L / 2 - over, y_top, BLANKET_GRID[1])
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    top = np.zeros_like(gx)
    for a, b, c, d, _, f in bodies:  # body heights under the blanket, widened by the drape
        inside = (gx > a - 0.05) & (gx < b + 0.05) & (gy > c - 0.05) & (gy < d + 0.05)
        top = np.where(inside, np.maximum(top, f), top)
    kernel = np.ones(3) / 3
    for axis in (0, 1):
        top = np.apply_along_axis(lambda r: np.convolve(r, kernel, "same"), axis, top)
    return {"xs": xs, "ys": ys, "top": top + thick, "hang": min(0.35, room.floor - 0.05)}


def _furnish(rng, room: Room) -> None:
    W, L, fl = room.width, room.length, room.floor
    u = rng.uniform
    placed = [(CX, CY, math.hypot(W, L) / 2 + 0.05)]

    def spot(radius, near=(0.3, 2.2)):
        for _ in range(30):
            ang, dist = u(0, 2 * math.pi), u(*near) + math.hypot(W, L) / 2
            x, y = CX + dist * math.cos(ang), CY + dist * math.sin(ang)
            if all(math.hypot(x - px, y - py) > radius + pr for px, py, pr in placed):
                placed.append((x, y, radius))
                return x, y
        return None

    def add(x, y, yaw, parts):  # parts relative to (x, y), turned by yaw
        c, s = math.cos(yaw), math.sin(yaw)
        for px, py, z0, z1, sx, sy in parts:
            room.boxes.append((x + c * px - s * py, y + s * px + c * py, (z0 + z1) / 2, sx, sy,
                               z1 - z0, yaw))

    if rng.random() < 0.6:  # bedside table touching the bed at the head end
        size, side = u(0.35, 0.55), rng.choice([-1, 1])
        x = CX + side * (W / 2 + u(0.0, 0.06) + size / 2)
        add(x, CY + L / 2 - size / 2 - u(0, 0.15), 0.0,
            [(0, 0, -fl, u(0.4, 0.75) - fl, size, size)])
    if rng.random() < 0.4 and (p := spot(1.1)):  # sofa: seat, back, arms
        d, ln, yaw = u(0.8, 0.95), u(1.8, 2.2), u(0, 2 * math.pi)
        add(*p, yaw, [(0, 0, -fl, 0.45 - fl, ln, d), (0, d / 2 - 0.1, -fl, u(0.75, 0.9) - fl, ln,
                                                      0.2),
                      (-ln / 2 + 0.08, 0, -fl, 0.62 - fl, 0.16, d),
                      (ln / 2 - 0.08, 0, -fl, 0.62 - fl, 0.16, d)])
    if rng.random() < 0.5 and (p := spot(0.8)):  # table: top nearer the camera, four legs
        a, b, top = u(0.6, 0.9), u(0.9, 1.4), u(0.7, 0.8) - fl
        legs = [(sx * (b / 2 - 0.04), sy * (a / 2 - 0.04), -fl, top - 0.03, 0.05, 0.05)
                for sx in (-1, 1) for sy in (-1, 1)]
        add(*p, u(0, 2 * math.pi), [(0, 0, top - 0.03, top, b, a), *legs])
    for _ in range(rng.integers(0, 3)):  # chairs
        if p := spot(0.35):
            add(*p, u(0, 2 * math.pi), [(0, 0, 0.4 - fl, 0.46 - fl, 0.45, 0.45),
                                        (0, 0.2, 0.46 - fl, 0.9 - fl, 0.45, 0.05),
                                        (0, 0, -fl, 0.4 - fl, 0.3, 0.3)])
    for _ in range(rng.integers(0, 5)):  # clutter on the floor
        if p := spot(0.3, (0.1, 2.0)):
            sx, sy = u(0.1, 0.5), u(0.1, 0.5)
            add(*p, u(0, 2 * math.pi), [(0, 0, -fl, u(0.05, 0.4) - fl, sx, sy)])
    if rng.random() < 0.5:  # a wall behind the head end
        gap = 0.06 + u(0.0, 0.3)
        room.box(CX - 3, CX + 3, CY + L / 2 + gap, CY + L / 2 + gap + 0.1, -fl, 1.2)
        room.flags["head_wall"] = gap


def _box_corners(boxes: torch.Tensor) -> torch.Tensor:
    """[N,7] boxes -> [N,8,3] corners (index bit 0: +x, bit 1: +y, bit 2: +z)."""
    signs = torch.tensor([[(i >> 0) & 1, (i >> 1) & 1, (i >> 2) & 1] for i in range(8)],
                         dtype=boxes.dtype) - 0.5
    local = signs[None] * boxes[:, None, 3:6]
    c, s = torch.cos(boxes[:, 6:7]), torch.sin(boxes[:, 6:7])
    x = c * local[..., 0] - s * local[..., 1]
    y = s * local[..., 0] + c * local[..., 1]
    return torch.stack([x, y, local[..., 2]], -1) + boxes[:, None, :3]


@dataclass
class Scenes:
    depth_raw: torch.Tensor  # [B,H,W] mm (float, uint16 values), 0 = no reading
    K: torch.Tensor  # [B,3,3]
    T_cam_bed: torch.Tensor  # [B,4,4]
    mattress_corners: torch.Tensor  # [B,4,3] camera frame: head-left, head-right, foot-r, foot-l
    mattress_size: torch.Tensor  # [B,2] width, length
    present: torch.Tensor  # [B] bool: a bed whose whole mattress is in view
    rooms: list


def mattress_corners(room: Room) -> torch.Tensor:
    hw, hl = room.width / 2, room.length / 2
    return torch.tensor([[CX - hw, CY + hl, 0.0], [CX + hw, CY + hl, 0.0],
                         [CX + hw, CY - hl, 0.0], [CX - hw, CY - hl, 0.0]], dtype=torch.float64)


def random_camera(rng, room: Room, rows: int, cols: int, f: float, *, pitch_max=30.0,
                  in_view=True, tries=200) -> torch.Tensor:
    """T_cam_bed [4,4] of a ceiling camera over the room, U[1.4, 3.2] m above the mattress,
    pitched up to ``pitch_max``°, the bed at any in-plane angle; with ``in_view`` the four
    mattress corners project inside the image with a 2 % margin and the bed fills 10-90 %."""
    corners = mattress_corners(room)
    best = None
    for _ in range(tries):
        pitch = math.radians(pitch_max) * rng.random() ** 1.5
        direction = rng.uniform(0, 2 * math.pi)
        tilt = torch.tensor([[pitch * math.cos(direction), pitch * math.sin(direction)]])
        height = rng.uniform(1.4, 3.2)
        offset = rng.uniform(-1, 1, 2) * 0.6 * height
        T = overhead_camera_poses(torch.tensor([height], dtype=torch.float64),
                                  torch.tensor([[CX + offset[0], CY + offset[1]]]),
                                  tilt.double(), torch.tensor([rng.uniform(0, 2 * math.pi)],
                                                              dtype=torch.float64))[0]
        cam = corners @ T[:3, :3].T + T[:3, 3]
        if (cam[:, 2] <= 0.3).any():
            continue
        uv = cam[:, :2] * f / cam[:, 2:] + torch.tensor([(cols - 1) / 2, (rows - 1) / 2])  # ~
        m = 0.02 * max(rows, cols)
        inside = bool(((uv[:, 0] > m) & (uv[:, 0] < cols - 1 - m) & (uv[:, 1] > m)
                       & (uv[:, 1] < rows - 1 - m)).all())
        x, y = uv[:, 0], uv[:, 1]
        area = 0.5 * abs(float((x * y.roll(-1) - x.roll(-1) * y).sum())) / (rows * cols)
        if inside == in_view and (not in_view or 0.1 <= area <= 0.9):
            return T
        best = T
    return best


def render_rooms(rooms: list, T_cam_bed: torch.Tensor, sensor: str, seed: int = 0,
                 noise: bool = True) -> Scenes:
    """Render rooms (one sensor) with their cameras T_cam_bed [B,4,4] into raw frames."""
    spec = sensor_spec(sensor)
    rows, cols = spec.size
    B = len(rooms)
    K = spec.K(B).double()
    T = T_cam_bed.double()
    verts, faces = [], []
    R, C = BLANKET_GRID
    for i, room in enumerate(rooms):
        boxes = torch.tensor(room.boxes[:NUM_BOXES], dtype=torch.float64).reshape(-1, 7)
        corners = _box_corners(boxes)
        cam = corners.reshape(-1, 3) @ T[i, :3, :3].T + T[i, :3, 3]
        pad = torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64).expand(
            8 * (NUM_BOXES - len(boxes)), 3)
        if room.blanket is not None:
            bl = room.blanket
            gx, gy = np.meshgrid(bl["xs"], bl["ys"], indexing="ij")
            z = bl["top"].copy()
            z[[0, -1], :] = -bl["hang"]  # hang down over the sides and the foot end
            z[:, 0] = -bl["hang"]
            pts = torch.from_numpy(np.stack([gx, gy, z], -1).reshape(-1, 3))
            sheet = pts @ T[i, :3, :3].T + T[i, :3, 3]
        else:
            sheet = torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64).expand(R * C, 3)
        verts.append(torch.cat([cam, pad, sheet]))
    box_faces = (_BOX_FACES[None] + 8 * torch.arange(NUM_BOXES)[:, None, None]).reshape(-1, 3)
    faces = torch.cat([box_faces, grid_faces(R, C) + 8 * NUM_BOXES])
    depth = render_depth(torch.stack(verts).float(), faces, K.float(), (rows, cols),
                         cull_back=False)
    floor = render_plane(K.float(), T.float(), torch.tensor([-r.floor for r in rooms]),
                         (rows, cols))
    depth = torch.where((depth > 0) & ((floor <= 0) | (depth < floor)), depth, floor)
    gen = torch.Generator().manual_seed(seed)
    raw = apply_sensor_noise(depth, K.float(), spec, gen) if noise else \
        torch.round(depth * 1000)
    corners = torch.stack([mattress_corners(r) for r in rooms])
    cam_corners = corners @ T[:, :3, :3].transpose(1, 2) + T[:, None, :3, 3]
    uv = (cam_corners @ K.transpose(1, 2))
    uv = uv[..., :2] / uv[..., 2:]
    inside = ((uv[..., 0] >= 0) & (uv[..., 0] <= cols - 1) & (uv[..., 1] >= 0)
              & (uv[..., 1] <= rows - 1) & (cam_corners[..., 2] > 0)).all(-1)
    present = inside & torch.tensor([r.flags.get("bed", True) for r in rooms])
    size = torch.tensor([[r.width, r.length] for r in rooms], dtype=torch.float64)
    return Scenes(raw, K, T, cam_corners, size, present, rooms)


def random_scenes(n: int, sensor: str, seed: int, **room_options) -> Scenes:
    """``n`` random rooms seen by ``sensor`` with the whole mattress in view."""
    rng = np.random.default_rng(seed)
    rows, cols, f = SENSORS[sensor][:3]
    rooms = [random_room(rng, **room_options) for _ in range(n)]
    T = torch.stack([random_camera(rng, r, rows, cols, f) for r in rooms])
    return render_rooms(rooms, T, sensor, seed)
