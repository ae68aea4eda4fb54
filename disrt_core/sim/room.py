"""Whole rooms around the bed, for cameras that see more than the mattress.

A real ceiling camera sees the floor, walls, the bed's base, legs and boards, furniture
lower and higher than the mattress and clutter; :func:`sample_rooms` draws such a room
around each sample's bed and :func:`room_mesh` / :func:`render_room_planes` make it
renderable. Everything is in the label (bed) frame of the bed scene (metres, z up from the
undeformed mattress top, y toward the head end; :mod:`disrt_core.sim.scene`).

**Geometry** [choice], per sample (every draw made for every sample, so the random stream
does not depend on what is present):

* *floor* U[0.3, 0.8] m below the mattress top; *walls*: four vertical planes, the room
  axis-aligned with the bed: the head wall U[0, 8] cm behind the head end (80 %; else
  U[0.4, 1.5] m), each side wall U[0, 5] cm from the bed (one side, 35 %) or U[0.5, 2.0] m,
  the foot wall U[0.6, 2.5] m beyond the foot end;
* *bed base*: a divan box down to the floor (40 %), a frame U[8, 20] cm deep on four legs
  (40 %), or a hospital frame on four posts over a narrower base (20 %), reaching
  :data:`RIM_BY_BASE` beyond the mattress (divan 0-1.5 cm, frame 1-6, hospital 1-4); a headboard
  (60 %) from the floor to U[0.15, 0.6] m above the mattress and a footboard (40 %, to
  U[0.05, 0.6] m: low bedroom boards, and the tall ones of sleigh and hospital beds, often
  as tall as the headboard or taller, so that a board's height alone does not tell the
  head end), both boxes U[2, 6] cm thick;
* *furniture* (each present with its probability, placed in the floor area left and right
  of the bed and beyond its foot, inside the walls, turned with the walls ±10° or any way
  for chairs and clutter): bedside tables at the head end (60 % left, 50 % right; top
  U[0.4, 0.75] m above the floor, with a lamp half the time), a chair (50 %, seat at
  U[0.42, 0.48] m, back), a table or desk (50 %, top at U[0.7, 0.8] m: often nearer the
  camera than the mattress; with a laptop or books), a sofa or armchair (35 %), a wardrobe
  or dresser against a wall (45 %, U[0.8, 2.1] m high), a rug (30 %), a floor lamp or an IV
  pole (30 %), an overbed table reaching over the foot half of the bed (7 %, top U[0.2,
  0.4] m above the mattress), and up to five small boxes on the floor (shoes, bags, boxes;
  40 % each).

**Materials**: each furniture item (and the floor) is matte (70 %), dark (20 %: black
leather, dark wood; a stereo camera's projector pattern is lost there, a time-of-flight
return is weak) or shiny (10 %: glossy tops, metal; specular: lost or mis-measured
readings); hospital frames and rails are shiny. :mod:`disrt_core.sim.noise` uses the
per-pixel material.

**Rendering** (:mod:`disrt_core.sim.room_render`): furniture and the bed's base are boxes
(:data:`NUM_BOXES` slots per sample, absent ones of size 0, which the rasteriser skips),
rendered with the body and the bed's height field in one z-buffer; the floor and walls are
planes rendered exactly per pixel.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import torch
from torch import Tensor

from disrt_core.constants import const
from disrt_core.geometry.bedframe import BED_CENTRE_LABEL
from disrt_core.sim.scene import BedScene

MATTE, DARK, SHINY = 0, 1, 2
MATERIAL_SHARES = (0.7, 0.2, 0.1)
#: Box slots per sample (bed base, boards and furniture; see :func:`sample_rooms`).
NUM_BOXES = 48
#: [choice] How far the base reaches beyond the mattress on every side (m, uniform), by
#: BASE_TYPES: a divan is the mattress's own footprint, a frame on legs holds it inside side
#: rails and end boards (a few cm; a headboard on the frame stands that far from the
#: mattress), a hospital deck a little wider than its mattress. Generator 1.5 drew 4 cm for
#: every bed.
RIM_BY_BASE = ((0.0, 0.015), (0.01, 0.06), (0.01, 0.04))
RIM_STREAM = 7919  # offset of the rim's random stream's seed
BASE_TYPES = ("divan", "legs", "hospital")


@dataclass
class Room:
    """Per-sample room geometry (label frame, metres)."""

    floor_z: Tensor  # [B]
    walls: Tensor  # [B,4] x of the left and right walls, y of the head and foot walls
    boxes: Tensor  # [B,N,7] centre (x, y, z), half sizes (x, y, z), yaw (rad)
    box_material: Tensor  # [B,N] long: MATTE, DARK or SHINY
    floor_material: Tensor  # [B] long
    base_type: Tensor  # [B] long, BASE_TYPES index
    headboard: Tensor  # [B] top above the mattress (m), nan for none
    footboard: Tensor  # [B]

    def to(self, device) -> Room:
        return Room(**{k: v.to(device) for k, v in self.__dict__.items()})


class _Boxes:
    """Collects box slots [B,N,7] and materials while items are added (batched)."""

    def __init__(self, n: int, device) -> None:
        self.boxes = torch.zeros(n, NUM_BOXES, 7, device=device)
        self.material = torch.zeros(n, NUM_BOXES, dtype=torch.long, device=device)
        self.used = 0

    def add(self, centre: Tensor, half: Tensor, yaw: Tensor, present: Tensor,
            material: Tensor) -> None:
        """One box per sample: centre [B,3], half sizes [B,3], yaw [B], present [B] bool,
        material [B] long."""
        if self.used >= NUM_BOXES:
            raise RuntimeError("room.NUM_BOXES is too small for the items drawn")
        half = torch.where(present[:, None], half.clamp(min=0), torch.zeros_like(half))
        self.boxes[:, self.used] = torch.cat([centre, half, yaw[:, None]], -1)
        self.material[:, self.used] = material
        self.used += 1

    def item(self, origin: Tensor, yaw: Tensor, parts, present: Tensor,
             material: Tensor) -> None:
        """An item made of boxes given in its own frame: ``parts`` is a list of (local centre
        [B,3], half sizes [B,3]) with z measured from the floor at the item's ``origin``
        [B,3] (floor point), turned by ``yaw`` [B]."""
        c, s = torch.cos(yaw), torch.sin(yaw)
        for local, half in parts:
            x = origin[:, 0] + c * local[:, 0] - s * local[:, 1]
            y = origin[:, 1] + s * local[:, 0] + c * local[:, 1]
            z = origin[:, 2] + local[:, 2]
            self.add(torch.stack([x, y, z], -1), half, yaw, present, material)


def _u(gen, n, device, lo=0.0, hi=1.0) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=device)


def _material(gen, n, device) -> Tensor:
    u = torch.rand(n, generator=gen, device=device)
    return (u >= MATERIAL_SHARES[0]).long() + (u >= MATERIAL_SHARES[0] + MATERIAL_SHARES[1]).long()


def _v(*parts: Tensor | float, like: Tensor) -> Tensor:
    """Stack scalars / [B] tensors into [B,3]."""
    return torch.stack([p if isinstance(p, Tensor) else torch.full_like(like, float(p))
                        for p in parts], -1)


def sample_rooms(beds: BedScene, gen: torch.Generator) -> Room:
    """A room around each bed of ``beds`` (see the module docstring). The beds' own
    ``floor_z`` is replaced by the room's floor (U[0.3, 0.8] m below the mattress top) and
    their head- and footboards by boxes (set to nan in ``beds`` so the height field leaves
    them out), and their ``rim`` is drawn by the base's type; callers pass the returned
    room's ``floor_z`` on."""
    n, device = beds.width.shape[0], beds.width.device

    def u(lo=0.0, hi=1.0):
        return _u(gen, n, device, lo, hi)

    def chance(p):
        return torch.rand(n, generator=gen, device=device) < p

    zero = torch.zeros(n, device=device)
    floor_z = -u(0.3, 0.8)
    cx, cy = BED_CENTRE_LABEL
    # Walls.
    head_gap = torch.where(chance(0.8), u(0.0, 0.08), u(0.4, 1.5))
    near_side = chance(0.35)
    left_near = chance(0.5)
    gap_l = torch.where(near_side & left_near, u(0.0, 0.05), u(0.5, 2.0))
    gap_r = torch.where(near_side & ~left_near, u(0.0, 0.05), u(0.5, 2.0))
    gap_f = u(0.6, 2.5)
    boxes = _Boxes(n, device)

    # Bed base, and its rim: drawn from a stream of its own (seeded by this one's state, so
    # each batch of a shared generator gets its own), so that every other number of a room
    # stays what generator 1.5 drew.
    base_u = u()
    base_type = (base_u >= 0.4).long() + (base_u >= 0.8).long()
    state = zlib.crc32(gen.get_state().cpu().numpy().tobytes())
    rim_gen = torch.Generator(device).manual_seed(state + RIM_STREAM)
    lo, hi = const(RIM_BY_BASE, device)[base_type].unbind(-1)
    beds.rim = lo + (hi - lo) * torch.rand(n, generator=rim_gen, device=device)
    hw, hl = beds.width / 2 + beds.rim, beds.length / 2 + beds.rim
    bx0, bx1, by0, by1 = cx - hw, cx + hw, cy - hl, cy + hl
    walls = torch.stack([bx0 - gap_l, bx1 + gap_r, by1 + head_gap, by0 - gap_f], -1)
    frame_top = beds.frame_z
    divan = base_type == 0
    hospital = base_type == 2
    frame_depth = u(0.08, 0.20)
    frame_bottom = torch.where(divan, floor_z, frame_top - frame_depth)
    base_mat = torch.where(hospital, torch.full_like(base_type, SHINY), _material(gen, n, device))
    boxes.add(_v(cx, cy, (frame_top + frame_bottom) / 2, like=zero),
              _v(hw, hl, (frame_top - frame_bottom) / 2, like=zero), zero,
              torch.ones(n, dtype=torch.bool, device=device), base_mat)
    # Mattress sides below its rounded edge (the height field's skirt covers the rest).
    boxes.add(_v(cx, cy, (frame_top - 0.03) / 2, like=zero),
              _v(beds.width / 2, beds.length / 2, (-0.03 - frame_top).clamp(min=0) / 2,
                 like=zero), zero, torch.ones(n, dtype=torch.bool, device=device),
              torch.full_like(base_type, MATTE))
    leg = u(0.025, 0.04)
    for sx in (-1, 1):
        for sy in (-1, 1):
            x, y = cx + sx * (hw - leg - 0.03), cy + sy * (hl - leg - 0.03)
            boxes.add(_v(x, y, (floor_z + frame_bottom) / 2, like=zero),
                      _v(leg, leg, (frame_bottom - floor_z) / 2, like=zero), zero, ~divan,
                      base_mat)
    # Hospital: a narrower base box between castors.
    base_top = frame_bottom
    boxes.add(_v(cx, cy, (floor_z + 0.12 + base_top) / 2, like=zero),
              _v(hw - 0.15, hl - 0.35, (base_top - floor_z - 0.12).clamp(min=0) / 2,
                 like=zero), zero, hospital, base_mat)
    # Boards: from the floor to their top, across the bed's end.
    headboard = torch.where(chance(0.6), u(0.15, 0.6), torch.full_like(zero, math.nan))
    footboard = torch.where(chance(0.4), u(0.05, 0.6), torch.full_like(zero, math.nan))
    board_mat = _material(gen, n, device)
    for top, end, sign in ((headboard, by1, 1.0), (footboard, by0, -1.0)):
        thick = u(0.01, 0.03)
        present = ~torch.isnan(top)
        height = torch.nan_to_num(top) - floor_z
        boxes.add(_v(cx, end + sign * thick, floor_z + height / 2, like=zero),
                  _v(hw, thick, height / 2, like=zero), zero, present, board_mat)
    beds.headboard = torch.full_like(zero, math.nan)
    beds.footboard = torch.full_like(zero, math.nan)
    beds.floor_z = floor_z

    # Furniture. A free strip beside the bed: x from the wall to the bed (left / right).
    def side_spot(width: Tensor, left: Tensor, y_lo: Tensor, y_hi: Tensor, clear: Tensor):
        """Centre x, y of an item ``width`` across in the strip left or right of the bed,
        its far side against the wall or anywhere in between; and whether it fits."""
        room_x = torch.where(left, gap_l, gap_r) - clear
        fits = room_x >= width
        off = clear + width / 2 + (room_x - width).clamp(min=0) * u()
        x = torch.where(left, bx0 - off, bx1 + off)
        y = y_lo + (y_hi - y_lo).clamp(min=0) * u()
        return x, y, fits

    def foot_spot(depth_: Tensor, width: Tensor):
        room_y = gap_f - 0.05
        fits = room_y >= depth_
        y = by0 - 0.05 - depth_ / 2 - (room_y - depth_).clamp(min=0) * u()
        x = walls[:, 0] + width / 2 + (walls[:, 1] - walls[:, 0] - width).clamp(min=0) * u()
        return x, y, fits

    def anywhere(width: Tensor, depth_: Tensor):
        """A spot left, right or beyond the foot, picked per sample."""
        which = (u() * 3).floor()
        xl, yl, fl = side_spot(width, torch.ones_like(which, dtype=torch.bool),
                               by0 - gap_f + width, by1 - width, 0.05 + u(0, 0.3))
        xr, yr, fr = side_spot(width, torch.zeros_like(which, dtype=torch.bool),
                               by0 - gap_f + width, by1 - width, 0.05 + u(0, 0.3))
        xf, yf, ff = foot_spot(depth_, width)
        x = torch.where(which == 0, xl, torch.where(which == 1, xr, xf))
        y = torch.where(which == 0, yl, torch.where(which == 1, yr, yf))
        fits = torch.where(which == 0, fl, torch.where(which == 1, fr, ff))
        return x, y, fits

    def wall_yaw(spread_deg: float = 10.0) -> Tensor:
        return math.radians(spread_deg) * (2 * u() - 1) + (math.pi / 2) * (u() * 4).floor()

    # Bedside tables (+ lamp, + a small object on top).
    for left, p in ((True, 0.6), (False, 0.5)):
        w, d, h = u(0.35, 0.55), u(0.30, 0.45), u(0.40, 0.75)
        side = torch.full((n,), left, dtype=torch.bool, device=device)
        x, y, fits = side_spot(w, side, by1 - d / 2 - u(0.0, 0.15), by1 - d / 2, u(0.0, 0.1))
        here = chance(p) & fits
        origin = _v(x, y, floor_z, like=zero)
        mat = _material(gen, n, device)
        boxes.item(origin, wall_yaw(5), [(_v(0, 0, h / 2, like=zero), _v(w / 2, d / 2, h / 2,
                                                                          like=zero))],
                   here, mat)
        lamp = here & chance(0.5)
        lamp_h = u(0.15, 0.35)
        boxes.item(origin, zero, [(_v(0, 0, h + lamp_h / 2, like=zero),
                                   _v(0.05, 0.05, lamp_h / 2, like=zero)),
                                  (_v(0, 0, h + lamp_h + 0.08, like=zero),
                                   _v(0.13, 0.13, 0.08, like=zero))], lamp,
                   _material(gen, n, device))
        thing = _v(u(0.04, 0.12), u(0.04, 0.1), u(0.01, 0.06), like=zero)
        boxes.item(origin, u(0, math.pi), [(_v(u(-0.1, 0.1), u(-0.08, 0.08), h + thing[:, 2],
                                              like=zero), thing)], here & ~lamp,
                   _material(gen, n, device))
    # A chair: seat, back, four legs.
    seat_w, seat_h, back_h = u(0.42, 0.5), u(0.42, 0.48), u(0.35, 0.5)
    x, y, fits = anywhere(seat_w + 0.1, seat_w + 0.1)
    here = chance(0.5) & fits
    origin, yaw = _v(x, y, floor_z, like=zero), u(0, 2 * math.pi)
    leg_w = torch.full_like(zero, 0.018)
    parts = [(_v(0, 0, seat_h - 0.02, like=zero), _v(seat_w / 2, seat_w / 2, 0.02, like=zero)),
             (_v(0, -seat_w / 2 + 0.02, seat_h + back_h / 2, like=zero),
              _v(seat_w / 2, 0.02, back_h / 2, like=zero))]
    parts += [(_v(sx * (seat_w / 2 - 0.03), sy * (seat_w / 2 - 0.03), (seat_h - 0.04) / 2,
                  like=zero), _v(leg_w, leg_w, (seat_h - 0.04) / 2, like=zero))
              for sx in (-1, 1) for sy in (-1, 1)]
    boxes.item(origin, yaw, parts, here, _material(gen, n, device))
    # A table or desk (often higher than the mattress) with a laptop or books on it.
    tw, td, th = u(0.6, 1.6), u(0.5, 0.9), u(0.7, 0.8)
    x, y, fits = anywhere(torch.maximum(tw, td), torch.maximum(tw, td))
    here = chance(0.5) & fits
    origin, yaw = _v(x, y, floor_z, like=zero), wall_yaw()
    parts = [(_v(0, 0, th - 0.015, like=zero), _v(tw / 2, td / 2, 0.015, like=zero))]
    parts += [(_v(sx * (tw / 2 - 0.05), sy * (td / 2 - 0.05), (th - 0.03) / 2, like=zero),
               _v(0.025 + zero, 0.025 + zero, (th - 0.03) / 2, like=zero))
              for sx in (-1, 1) for sy in (-1, 1)]
    parts += [(_v(u(-0.25, 0.25) * tw, u(-0.25, 0.25) * td, th + 0.015, like=zero),
               _v(u(0.1, 0.18), u(0.08, 0.14), u(0.005, 0.02), like=zero)) for _ in range(2)]
    boxes.item(origin, yaw, parts, here, _material(gen, n, device))
    # A sofa or armchair against a wall: seat block, back, two arms.
    sw, sd = u(0.8, 2.0), u(0.8, 0.95)
    seat, back, arm = u(0.38, 0.46), u(0.75, 0.9), u(0.55, 0.65)
    x, y, fits = anywhere(torch.maximum(sw, sd), torch.maximum(sw, sd))
    here = chance(0.35) & fits
    origin, yaw = _v(x, y, floor_z, like=zero), wall_yaw()
    parts = [(_v(0, 0.05, seat / 2, like=zero), _v(sw / 2, sd / 2 - 0.05, seat / 2, like=zero)),
             (_v(0, -sd / 2 + 0.1, back / 2, like=zero), _v(sw / 2, 0.1, back / 2, like=zero))]
    parts += [(_v(sx * (sw / 2 - 0.08), 0.05, arm / 2, like=zero),
               _v(0.08 + zero, sd / 2 - 0.05, arm / 2, like=zero)) for sx in (-1, 1)]
    boxes.item(origin, yaw, parts, here, _material(gen, n, device))
    # A wardrobe or dresser against a side or the foot wall.
    ww, wd, wh = u(0.6, 2.0), u(0.4, 0.6), u(0.8, 2.1)
    left = chance(0.5)
    x, y, fits = side_spot(wd, left, by0 - gap_f + ww / 2, by1 - ww / 2, 0.3 + zero)
    x = torch.where(left, walls[:, 0] + wd / 2, walls[:, 1] - wd / 2)
    boxes.add(_v(x, y, floor_z + wh / 2, like=zero), _v(wd / 2, ww / 2, wh / 2, like=zero),
              zero, chance(0.45) & fits, _material(gen, n, device))
    # A rug beside the bed (partly under it is fine: hidden there).
    rug_w, rug_l = u(0.6, 1.4), u(0.6, 2.0)
    rx = torch.where(chance(0.5), bx0 - rug_w / 2 + 0.2, bx1 + rug_w / 2 - 0.2)
    boxes.add(_v(rx, cy + u(-0.5, 0.5), floor_z + 0.005, like=zero),
              _v(rug_w / 2, rug_l / 2, 0.005 + zero, like=zero), wall_yaw(5), chance(0.3),
              _material(gen, n, device))
    # A floor lamp or an IV pole near the head end.
    pole_h = u(1.4, 1.9)
    side = chance(0.5)
    x, y, fits = side_spot(0.3 + zero, side, by1 - 0.6, by1 - 0.2, u(0.05, 0.3))
    here = chance(0.3) & fits
    origin = _v(x, y, floor_z, like=zero)
    boxes.item(origin, u(0, math.pi), [
        (_v(0, 0, 0.015, like=zero), _v(0.15 + zero, 0.15 + zero, 0.015 + zero, like=zero)),
        (_v(0, 0, pole_h / 2, like=zero), _v(0.015 + zero, 0.015 + zero, pole_h / 2, like=zero)),
        (_v(0, 0, pole_h + 0.08, like=zero), _v(u(0.08, 0.15), u(0.05, 0.15), 0.08 + zero,
                                                 like=zero))], here, torch.full_like(base_type,
                                                                                     SHINY))
    # An overbed table: a top over the foot half of the bed on a post at its side.
    here = chance(0.07) & (gap_r > 0.3)
    top_z = u(0.2, 0.4)
    ox = bx1 + 0.15
    oy = cy - u(0.1, 0.6)
    reach = u(0.3, 0.7)
    boxes.add(_v(ox - reach / 2, oy, top_z, like=zero),
              _v(reach / 2 + 0.1, u(0.18, 0.25), 0.015 + zero, like=zero), zero, here,
              torch.full_like(base_type, SHINY))
    boxes.add(_v(ox + 0.05, oy, (floor_z + top_z) / 2, like=zero),
              _v(0.03 + zero, 0.03 + zero, (top_z - floor_z) / 2, like=zero), zero, here,
              torch.full_like(base_type, SHINY))
    # Small things on the floor.
    for _ in range(5):
        size = _v(u(0.05, 0.25), u(0.05, 0.25), u(0.03, 0.22), like=zero)
        x, y, fits = anywhere(0.3 + zero, 0.3 + zero)
        boxes.add(_v(x, y, floor_z + size[:, 2], like=zero), size, u(0, math.pi),
                  chance(0.4) & fits, _material(gen, n, device))
    return Room(floor_z=floor_z, walls=walls, boxes=boxes.boxes, box_material=boxes.material,
                floor_material=_material(gen, n, device), base_type=base_type,
                headboard=headboard, footboard=footboard)


def mattress_corners(beds: BedScene) -> Tensor:
    """The mattress top's corners [B,4,3] (label frame): head-left, head-right, foot-right,
    foot-left, as ``geometry.bedfit`` orders them (seen from above with the head end up,
    left is −x)."""
    cx, cy = BED_CENTRE_LABEL
    hw, hl = beds.width / 2, beds.length / 2
    zero = torch.zeros_like(hw)
    return torch.stack([torch.stack([cx - hw, cy + hl, zero], -1),
                        torch.stack([cx + hw, cy + hl, zero], -1),
                        torch.stack([cx + hw, cy - hl, zero], -1),
                        torch.stack([cx - hw, cy - hl, zero], -1)], 1)


def view_points(beds: BedScene, room: Room) -> Tensor:
    """Points a room camera must see [B,8,3]: the mattress corners, then the outer top
    corners of the head- and footboard (the mattress's head and foot corners when there is
    no board)."""
    corners = mattress_corners(beds)
    head = corners[:, :2].clone()
    foot = corners[:, 2:].clone()
    head[..., 1] += beds.rim[:, None]
    foot[..., 1] -= beds.rim[:, None]
    head[..., 2] = torch.nan_to_num(room.headboard)[:, None]
    foot[..., 2] = torch.nan_to_num(room.footboard)[:, None]
    return torch.cat([corners, head, foot], 1)


def clip_below_camera(room: Room, T_cam_bed: Tensor, clearance: float = 0.4) -> Room:
    """The room with every box cut to end ``clearance`` below the camera (a ceiling camera
    hangs above the furniture: a wardrobe does not reach past it), boxes left empty
    dropped."""
    origin_z = -(T_cam_bed[:, :3, 2] * T_cam_bed[:, :3, 3]).sum(-1)  # camera height, bed frame
    boxes = room.boxes.clone()
    bottom = boxes[..., 2] - boxes[..., 5]
    top = torch.minimum(boxes[..., 2] + boxes[..., 5], (origin_z - clearance)[:, None])
    keep = top > bottom + 0.01
    boxes[..., 2] = torch.where(keep, (top + bottom) / 2, boxes[..., 2])
    boxes[..., 5] = torch.where(keep, (top - bottom) / 2, torch.zeros_like(top))
    boxes[..., 3:5] = torch.where(keep[..., None], boxes[..., 3:5], 0.0)
    return Room(**{**room.__dict__, "boxes": boxes})
