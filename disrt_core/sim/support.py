"""What bodies rest on, on the 2 cm settling grid, and how well they rest.

**Support** (:class:`Support`) under a point: the highest of the mattress top (z = 0, the
label frame's bed plane; [choice] it stays there beyond the mattress's edges, as a bedside
table would, so that no limb of a lying body drops off the bed), the head pillow compressed
to ``squash`` (40–70 %) of its free height (a *pillow* arm goes under it), and the top of
another body part within ``PENETRATION`` above the point (a part's top further above it
means the point lies under or beside that part). Part tops are eroded by one cell first: a
hand beside the face does not rest on it, only a point over a part's footprint does.

**Sinking** (:func:`part_sinks`): a part that rests sinks into the springs of
:mod:`disrt_core.sim.mattress` by the depth at which they carry its share of the weight:
the trunk ``TRUNK_LOAD`` (its 49.7 % and 30 % of the limbs', carried through the joints),
each limb and the head their own (``PART_LOAD``: Winter's segment masses, 70 % of a limb's
through its contact), from the part's underside on the grid.

**Resting, and "held"** (:func:`rest_gaps`, :func:`resting`): a chain's **gap** is the
clearance of its test vertices above their support (no sinking; ≤ 0 where it touches). The
head rests when its gap is at most ``HELD_GAP`` (3 cm); an arm or leg when the far end of
its lower segment (hand with wrist, foot with ankle) does: the upper arm or thigh may then
be higher, held between the root joint and that contact (a raised knee whose foot is
planted, an elbow out with the hand on the chest). Either also rests when it leans on
another part (:func:`touching`: the capsules of :mod:`disrt_core.sim.capsules` within the
sum of their radii; a forearm against the thigh of a side-lying body).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from disrt_core.constants import const
from disrt_core.geometry.bedframe import BED_CENTRE_LABEL
from disrt_core.sim.bodyparts import CHAIN, CHAINS, PARTS, REST_CHAINS, RestModel
from disrt_core.sim.capsules import CAPSULES, segment_distance
from disrt_core.sim.mattress import sink_depth
from disrt_core.sim.scene import GRID, pillow_height_at

PITCH = 0.02  # m, the settling grid (2 × the scene grid)
PENETRATION = 0.03  # m a point may lie below another part's top and still rest on it
HELD_GAP = 0.03  # m
PILLOW_SINK = 0.005  # m a part sinks into the compressed pillow it rests on
TRUNK_LOAD = 0.62  # of m·g: the trunk's 49.7 % + 30 % of the limbs' (through the joints)
PART_LOAD = (TRUNK_LOAD, 0.081, 0.035, 0.035, 0.113, 0.113)  # per PARTS, of m·g


@dataclass
class Support:
    """What bodies rest on, per sample [B] (label frame, m): the mattress rectangle
    (centre ``BED_CENTRE_LABEL``), the floor height (kept for callers; not a support, see
    the module docstring) and the head pillow (boxes of :func:`disrt_core.sim.scene.
    pillow_boxes`, compressed fraction)."""

    width: Tensor
    length: Tensor
    floor_z: Tensor
    pillow: Tensor  # [B,6]: present, centre x, centre y, half width, half length, height
    squash: Tensor

    @staticmethod
    def plain(n: int, device) -> Support:
        """A 0.9 × 2.0 m mattress without pillow, floor 0.5 m below (for callers without a
        bed scene)."""
        full = torch.ones(n, device=device)
        return Support(0.9 * full, 2.0 * full, -0.5 * full, torch.zeros(n, 6, device=device),
                       0.55 * full)

    @staticmethod
    def from_batch(batch: dict[str, Tensor]) -> Support:
        """The support of a generator batch made ``with_mesh``."""
        size = batch["mattress_size"]
        return Support(size[:, 0], size[:, 1], batch["floor_z"], batch["pillow_boxes"],
                       batch["pillow_squash"])

    def on_mattress(self, x: Tensor, y: Tensor) -> Tensor:
        """Bool [B,...]: points x, y [B,...] (or [1,...]) over the mattress."""
        w, ln = (t.reshape(-1, *([1] * (x.dim() - 1))) for t in (self.width, self.length))
        return ((x - BED_CENTRE_LABEL[0]).abs() <= w / 2) & ((y - BED_CENTRE_LABEL[1]).abs()
                                                              <= ln / 2)

    def at(self, x: Tensor, y: Tensor, sink: Tensor | float, pillow_ok: Tensor) -> Tensor:
        """Height [B,...] of the mattress or pillow under points x, y [B,...]: the mattress
        top lowered by ``sink`` (broadcast to x), or the compressed pillow's top lowered by
        ``PILLOW_SINK`` where it is higher (its compression is already its ``squash``);
        pillow_ok [B] bool (module docstring)."""
        shape = (-1, *([1] * (x.dim() - 1)))
        pillow = pillow_height_at(self.pillow, x, y) * self.squash.reshape(shape)
        mattress = -torch.as_tensor(sink, dtype=x.dtype, device=x.device).expand_as(x)
        pillow = torch.where(pillow_ok.reshape(shape) & (pillow > 0), pillow - PILLOW_SINK,
                             mattress)
        return torch.maximum(mattress, pillow)


def grid_shape() -> tuple[int, int]:
    """Rows and columns of the settling grid (the scene grid's extent at ``PITCH``)."""
    rows, cols = GRID.shape
    return math.ceil(rows * GRID.pitch / PITCH), math.ceil(cols * GRID.pitch / PITCH)


def cells(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Flat cell index on the settling grid and whether inside it."""
    rows, cols = grid_shape()
    x0 = GRID.origin[0] - GRID.pitch / 2
    y0 = GRID.origin[1] + GRID.pitch / 2
    c = torch.floor((x - x0) / PITCH).long()
    r = torch.floor((y0 - y) / PITCH).long()
    inside = (c >= 0) & (c < cols) & (r >= 0) & (r < rows)
    return (r.clamp(0, rows - 1) * cols + c.clamp(0, cols - 1)), inside


def part_maps(vertices: Tensor, part: Tensor | int, parts: int = len(PARTS),
              under: bool = True) -> tuple[Tensor, Tensor | None]:
    """Top (max z) and (with ``under``) underside (min z) of every part on the settling
    grid, [B,parts,R·C] (−inf / +inf where a part has no vertex), from vertices [B,V,3] and
    part ids [V] (or one id for all)."""
    n, size = vertices.shape[0], math.prod(grid_shape())
    idx, inside = cells(vertices[..., 0], vertices[..., 1])
    idx = idx + part * size + (  # (an int part: no tensor made from it, no host copy)
        torch.arange(n, device=idx.device) * parts * size)[:, None]
    z = vertices[..., 2]
    out = []
    for fill, how in ((-torch.inf, "amax"), (torch.inf, "amin"))[:2 if under else 1]:
        flat = torch.full((n * parts * size,), fill, device=z.device, dtype=z.dtype)
        # Points off the grid are written as the fill value (no boolean indexing, no sync).
        flat.scatter_reduce_(0, idx.reshape(-1), torch.where(inside, z, fill).reshape(-1), how)
        out.append(flat.view(n, parts, size))
    return out[0], (out[1] if under else None)


def erode(top: Tensor) -> Tensor:
    """Each map of top heights [B,P,cells] at the lowest of its 3×3 neighbours."""
    n, parts, size = top.shape
    rows, cols = grid_shape()
    x = top.reshape(n * parts, rows, cols)
    r = x.clone()
    r[:, 1:] = torch.minimum(r[:, 1:], x[:, :-1])
    r[:, :-1] = torch.minimum(r[:, :-1], x[:, 1:])
    c = r.clone()
    c[:, :, 1:] = torch.minimum(c[:, :, 1:], r[:, :, :-1])
    c[:, :, :-1] = torch.minimum(c[:, :, :-1], r[:, :, 1:])
    return c.reshape(n, parts, size)


def others_top(top: Tensor, part: int | None = None) -> Tensor:
    """The highest of the other parts' tops [B,P,cells] per part p (or [B,cells] for one
    ``part``), from (eroded, see :func:`erode`) tops [B,P,cells]."""
    parts = top.shape[1]
    if part is not None:
        out = torch.full_like(top[:, 0], -torch.inf)
        for q in range(parts):
            if q != part:
                out = torch.maximum(out, top[:, q])
        return out
    return torch.stack([others_top(top, p) for p in range(parts)], 1)


def part_sinks(under: Tensor, weight: Tensor, stiffness: Tensor) -> Tensor:
    """Depth [B,P] each part sinks into the mattress carrying its load share, from its
    underside [B,P,cells] (on 4 cm cells: the lowest of each 2 × 2; an estimate)."""
    n, parts, _ = under.shape
    rows, cols = grid_shape()
    low = -F.max_pool2d(-under.reshape(n * parts, 1, rows, cols), 2, ceil_mode=True)
    low = low.reshape(n * parts, -1)
    rel = low - low.amin(-1, keepdim=True)
    rel = torch.where(torch.isfinite(low), rel, torch.full_like(rel, torch.inf))
    load = weight[:, None] * const(PART_LOAD, under.device, under.dtype)[None]
    k = stiffness[:, None].expand(n, parts).reshape(-1)
    return sink_depth(rel, load.reshape(-1), k, 4 * PITCH**2).view(n, parts)


def rest_gaps(model: RestModel, vertices: Tensor, support: Support,
              pillow_ok: Tensor | None = None) -> Tensor:
    """Gap (m) of every chain's test vertices above their support, [B,len(CHAINS)]: the
    smallest height above the mattress top, compressed pillow or other parts' tops (module
    docstring); ≤ 0 where the chain touches. vertices [B,V,3] in the label frame."""
    n = vertices.shape[0]
    pillow_ok = (torch.ones(n, len(CHAINS), dtype=torch.bool, device=vertices.device)
                 if pillow_ok is None else pillow_ok)
    top, _ = part_maps(vertices, model.part, under=False)
    others = others_top(erode(top))
    out = []
    for k, chain in enumerate(CHAINS):
        x, y, z = vertices[:, model.tests[k]].unbind(-1)
        base = support.at(x, y, 0.0, pillow_ok[:, k])
        idx, inside = cells(x, y)
        other = others[:, chain.part].gather(1, idx)
        other = torch.where(inside & (other <= z + PENETRATION), other,
                            torch.full_like(other, -torch.inf))
        out.append((z - torch.maximum(base, other)).amin(-1))
    return torch.stack(out, -1)


def clearance(model: RestModel, vertices: Tensor, support: Support,
              pillow_ok: Tensor | None = None) -> Tensor:
    """Height (m) of every vertex [B,V] above its support (as :func:`rest_gaps`, per vertex;
    a trunk vertex's support may be a limb under it). pillow_ok [B,len(CHAINS)]."""
    n = vertices.shape[0]
    top, _ = part_maps(vertices, model.part, under=False)
    others = others_top(erode(top))  # [B,P,cells]
    x, y, z = vertices.unbind(-1)
    ok = torch.ones(n, len(PARTS), dtype=torch.bool, device=vertices.device)
    if pillow_ok is not None:
        for k, chain in enumerate(CHAINS):
            ok[:, chain.part] &= pillow_ok[:, k]
    base = support.at(x, y, 0.0, torch.ones(n, dtype=torch.bool, device=vertices.device))
    base = torch.where(ok.gather(1, model.part[None].expand(n, -1)), base,
                       torch.zeros_like(base))
    idx, inside = cells(x, y)
    size = others.shape[-1]
    other = others.reshape(n, -1).gather(1, idx + model.part[None] * size)
    other = torch.where(inside & (other <= z + PENETRATION), other,
                        torch.full_like(other, -torch.inf))
    return z - torch.maximum(base, other)


def underside(model: RestModel, vertices: Tensor, depth: float = 0.015) -> Tensor:
    """Bool [B,V]: vertices within ``depth`` of their part's underside (the skin that can
    touch what is below), on the settling grid."""
    n = vertices.shape[0]
    _, under = part_maps(vertices, model.part)
    idx, _ = cells(vertices[..., 0], vertices[..., 1])
    low = under.reshape(n, -1).gather(1, idx + model.part[None] * under.shape[-1])
    return vertices[..., 2] <= low + depth


#: Per ``REST_CHAINS`` entry: its capsules (:data:`CAPSULES`) and those it may lean on.
_OWN = {"head": ("head",), "left_forearm": ("l_fore", "l_hand"),
        "right_forearm": ("r_fore", "r_hand"), "left_shin": ("l_shin", "l_foot"),
        "right_shin": ("r_shin", "r_foot")}
_LIMB = {"head": ("head", "trunk_high"), "left_forearm": ("l_upper", "l_fore", "l_hand"),
         "right_forearm": ("r_upper", "r_fore", "r_hand"),
         "left_shin": ("l_thigh", "l_shin", "l_foot"),
         "right_shin": ("r_thigh", "r_shin", "r_foot")}


def touching(joints: Tensor, scale: Tensor | None = None) -> Tensor:
    """Bool [B,5] per ``REST_CHAINS``: the head / the forearm or hand / the lower leg or
    foot touches another body part (capsules of :data:`CAPSULES` within the sum of their
    radii, scaled by ``scale`` [B] = stature / 1.75 m), i.e. leans on it."""
    scale = joints.new_ones(joints.shape[0]) if scale is None else scale
    out = []
    for name in REST_CHAINS:
        pairs = [(p, q) for p in _OWN[name] for q in CAPSULES if q not in _LIMB[name]]
        ends = const([[CAPSULES[p][0], CAPSULES[p][1], CAPSULES[q][0], CAPSULES[q][1]]
                      for p, q in pairs], joints.device)
        radius = const([CAPSULES[p][2] + CAPSULES[q][2] for p, q in pairs], joints.device,
                       joints.dtype)
        dist = segment_distance(*(joints[:, ends[:, i]] for i in range(4)))
        out.append((dist <= radius * scale[:, None]).any(-1))
    return torch.stack(out, -1)


def resting(gaps: Tensor, joints: Tensor | None = None, scale: Tensor | None = None) -> Tensor:
    """Bool [B,5] per ``REST_CHAINS`` (head, forearms, lower legs): whether the head and
    each limb rest: the gap of the head / the limb's hand or foot end ≤ ``HELD_GAP``, or
    (with ``joints`` [B,24,3]) it leans on another part (:func:`touching`); module
    docstring."""
    out = gaps[:, [CHAIN[c] for c in REST_CHAINS]] <= HELD_GAP
    return out if joints is None else out | touching(joints, scale)
