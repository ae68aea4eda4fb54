"""Bodies at rest: every limb and the head settled under gravity onto what is below it.

The pose prior only says where a limb starts; here it is turned about its joints until it
rests on its support (batched, CPU or GPU, no per-sample loops): the mattress, the pillow
or another body part, each sunk into by the part's own load (:mod:`disrt_core.sim.support`
says what supports a point and how resting is measured; :mod:`disrt_core.sim.bodyparts`
which joints turn together and which skin is tested).

**Algorithm** (:func:`settle`): ``iterations`` rounds of

1. skin the body; put it at the height where the trunk rests at its sinking depth (of
   someone sitting, carrying the whole weight; from the second round, where the springs of
   mattress and pillow carry the whole body, or a sitter's share ``load``, as the
   generator's sinkage will; a sitter's underside from the face centres too, module
   notes in :func:`settle`);
2. per part, its top surface on the 2 cm grid and how deep it sinks;
3. for each chain of :data:`~disrt_core.sim.bodyparts.CHAINS` in turn (the head, then each
   leg, then each arm; the last round settles the left limbs once more after the right
   ones, as a body on its right side lays its left limbs on the right ones): its
   clearance ``z − support + sink`` per test vertex after turning it by θ about its axis,
   for ``ANGLES_DEG`` both ways, each rotation clipped to ``JOINT_LIMITS``. A chain with a
   vertex sunk more than ``BAND`` deeper than its own load sinks it is raised until it just
   touches; otherwise one whose far end (hand, foot, head) is more than ``TOLERANCE`` above its
   support is lowered to the first θ where that end touches (interpolated between the
   candidates), no vertex going deeper than ``BAND``; where no θ gets there, the θ that
   comes nearest. A rotation may not bring a capsule pair of :mod:`disrt_core.sim.capsules`
   closer than ``CLEARANCE`` to interpenetrating (the gross self-intersection test of the
   pose prior), or, each pair on its own, closer than it was where it already is; the
   turns that would are cut off, and an interpolated θ that would falls back to the
   candidate before it. After each part the moved part's top is remade.

Near a limb's root its skin sinks with the trunk, further out by the limb's own load
(``LIMB_ROOT`` blend). The head's two chains split their turn between the neck and head
joints. Cost: ``iterations`` − 1 extra body-model passes and, per round, 16 to 23 chain
searches of 17 candidate angles over at most 200 vertices each (about 18 ms a body on one
CPU thread).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import roma
import torch
from torch import Tensor

from disrt_core.body.skeleton import SMPL_PARENTS
from disrt_core.constants import const, on_device
from disrt_core.sim.bodyparts import CHAIN, CHAINS, Chain, RestModel, descendants
from disrt_core.sim.capsules import CAPSULE_PAIRS, CAPSULES, segment_distance
from disrt_core.sim.graphs import replay
from disrt_core.sim.mattress import GRAVITY, MAX_DEPTH, sink_depth
from disrt_core.sim.poses import JOINT_LIMITS, global_rotations
from disrt_core.sim.scene import GRID, pillow_height_at
from disrt_core.sim.support import (
    PENETRATION,
    PITCH,
    Support,
    cells,
    erode,
    grid_shape,
    others_top,
    part_maps,
    part_sinks,
)

ANGLES_DEG = (1.5, 4.0, 8.0, 14.0, 22.0, 33.0, 50.0, 75.0)
BODY_SINK = 0.005  # m a part sinks into another part it rests on
TOLERANCE = 0.004  # m: a chain this little above its support is left alone
BAND = 0.015  # m: nor is one sunk this much deeper than its own load would sink it
#: m: capsule pairs a turn leaves this far clear of ``self_intersecting``'s threshold
#: (or no closer than they were): a turn stopped exactly at it ended a hair inside it
#: (rounding, angles interpolated between candidates), which that test counts.
CLEARANCE = 0.001
NOISE = 1e-6  # m: float32 rounding of an unchanged margin


def _pick(theta: Tensor, g_all: Tensor, g_end: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """The chosen angle [B] from candidates θ [K] (θ[0] = 0, then +ANGLES, then −ANGLES),
    clearances [B,K] of all test vertices and of those that must rest (the far end), and
    validity [B,K] (module docstring): a chain sunk deeper than ``BAND`` anywhere is raised
    until it just touches, else one whose end is more than ``TOLERANCE`` above its support
    lowered until the end rests, no vertex going deeper than ``BAND``. Also the valid
    candidate [B] to fall back on: the one before the crossing where the angle was
    interpolated between two (validity is only known at the candidates), else the angle."""
    m = len(ANGLES_DEG)
    lift = g_all[:, :1] < -BAND
    lower = ~lift & (g_end[:, :1] > TOLERANCE)
    keep = ~lift & ~lower
    g = torch.where(lift, g_all, g_end)
    valid = valid & (lift | (g_all >= -BAND))
    g0 = g[:, :1]
    best = torch.full_like(g0[:, 0], torch.inf)
    safe = torch.zeros_like(best)
    reach = torch.zeros_like(valid)
    reach[:, 0] = True
    for sl in (slice(1, m + 1), slice(m + 1, 2 * m + 1)):
        gs = torch.cat([g0, g[:, sl]], 1)
        ts = torch.cat([theta[:1], theta[sl]]).expand_as(gs)
        ok = torch.cat([valid[:, :1] | True, valid[:, sl]], 1).cumprod(1).bool()  # prefix
        reach[:, sl] = ok[:, 1:]
        cross = (torch.sign(gs[:, 1:]) != torch.sign(g0)) & ok[:, 1:]
        first = torch.where(cross.any(1), cross.float().argmax(1), -1)
        i = first.clamp(min=0)
        ga, gb = gs.gather(1, i[:, None])[:, 0], gs.gather(1, i[:, None] + 1)[:, 0]
        ta, tb = ts.gather(1, i[:, None])[:, 0], ts.gather(1, i[:, None] + 1)[:, 0]
        t = ta + (tb - ta) * ga / (ga - gb).where((ga - gb).abs() > 1e-9, torch.ones_like(ga))
        t = torch.where(first >= 0, t, torch.full_like(t, torch.inf))
        nearer = t.abs() < best.abs()
        best, safe = torch.where(nearer, t, best), torch.where(nearer, ta, safe)
    # No crossing: the reachable angle nearest the target.
    reach &= valid | (theta == 0)
    fallback = theta[torch.where(reach, g.abs(), torch.full_like(g, torch.inf)).argmin(1)]
    crossed = torch.isfinite(best)
    chosen = torch.where(crossed, best, fallback)
    safe = torch.where(crossed, safe, fallback)
    zero = torch.zeros_like(chosen)
    return torch.where(keep[:, 0], zero, chosen), torch.where(keep[:, 0], zero, safe)


@dataclass
class _State:
    """One round's body: vertices [B,V,3], joints [B,24,3], global rotations [B,24,3,3],
    local rotation matrices [B,23,3,3], size."""

    points: Tensor
    joints: Tensor
    glob: Tensor
    local: Tensor
    scale: Tensor  # [B] stature / 1.75 m (capsule radii)


def _motion(chain: Chain, st: _State, rot: Tensor) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Each chain joint turned by the world rotation ``rot`` [B,K,3,3] about itself, the
    result clipped to ``JOINT_LIMITS``: per joint (world rotation of its frame [B,K,3,3],
    its new position [B,K,3], its new local rotation [B,K,3,3])."""
    limits = on_device(JOINT_LIMITS, rot)
    out, acc, old_prev, new_prev = [], None, None, None
    for j in chain.joints:
        gp = st.glob[:, SMPL_PARENTS[j]][:, None]  # the parent's frame before this chain
        local = st.local[:, j - 1][:, None]
        rv = roma.rotmat_to_rotvec(gp.transpose(-1, -2) @ rot @ gp @ local)
        clipped = roma.rotvec_to_rotmat(torch.maximum(torch.minimum(rv, limits[j - 1, :, 1]),
                                                      limits[j - 1, :, 0]))
        turn = gp @ clipped @ local.transpose(-1, -2) @ gp.transpose(-1, -2)
        old = st.joints[:, j][:, None]
        if acc is None:
            new = old.expand(-1, rot.shape[1], -1)
        else:
            turn = acc @ turn
            new = new_prev + (acc @ (old - old_prev)[..., None])[..., 0]
        out.append((turn, new, clipped))
        acc, old_prev, new_prev = turn, old, new
    return out


def _moving_pairs(chain: Chain) -> list[tuple[str, str]]:
    """Capsule pairs of :data:`CAPSULE_PAIRS` of which the chain moves exactly one."""
    below = descendants(chain.joints[0]) - {chain.joints[0]}

    def moves(name: str) -> bool:
        a, b, _ = CAPSULES[name]
        return a in below or b in below

    return [(p, q) for p, q in CAPSULE_PAIRS if moves(p) != moves(q)]


PAIRS = [_moving_pairs(c) for c in CHAINS]


def _candidate_joints(chain: Chain, st: _State, frames) -> Tensor:
    """Joints [B,K,24,3] after each candidate motion ``frames`` of :func:`_motion`."""
    turn, pivot, _ = frames[-1]
    k = turn.shape[1]
    joints = st.joints[:, None].expand(-1, k, -1, -1).clone()
    below = sorted(descendants(chain.joints[0]) - set(chain.joints))
    if below:
        below = const(below, st.joints.device, torch.long)
        old = st.joints[:, chain.joints[-1]][:, None, None]
        joints[:, :, below] = pivot[:, :, None] + (st.joints[:, None, below] - old
                                                   ) @ turn.transpose(-1, -2)
    for j, (_, p, _) in zip(chain.joints, frames, strict=True):
        joints[:, :, j] = p
    return joints


def _capsule_margins(k: int, st: _State, joints: Tensor) -> Tensor:
    """Margins [B,K,P] (m) of the capsule pairs chain ``k`` moves, of candidate joints
    [B,K,24,3]: axis distance less ``self_intersecting``'s tolerance × the radii (negative:
    the pair interpenetrates by that test); P = 0 where the chain moves none."""
    pairs = PAIRS[k]
    if not pairs:
        return joints.new_zeros(*joints.shape[:2], 0)
    ends = const([[CAPSULES[p][0], CAPSULES[p][1], CAPSULES[q][0], CAPSULES[q][1]]
                  for p, q in pairs], joints.device)
    radius = const([CAPSULES[p][2] + CAPSULES[q][2] for p, q in pairs], joints.device,
                   joints.dtype)
    dist = segment_distance(*(joints[:, :, ends[:, i]] for i in range(4)))  # [B,K,P]
    return dist - 0.5 * radius * st.scale[:, None, None]


def _margin_floor(start: Tensor) -> Tensor:
    """The least margin [B,1,P] each pair may be left with, from its margin before the turn
    ``start`` [B,1,P]: ``CLEARANCE``, or no less than it was where it already is less (a
    pair is judged on its own: another pair interpenetrating does not free it)."""
    return torch.minimum(start - NOISE, torch.full_like(start, CLEARANCE))


def _search_chain(k: int, model: RestModel, st: _State, support: Support, others: Tensor,
                  sinks: Tensor, pillow_ok: Tensor, active: Tensor) -> None:
    """Turn chain ``k`` to rest (in place on the state); see the module docstring. others
    [B,cells]: the other parts' tops; sinks [B,P]; pillow_ok, active [B] bool."""
    chain = CHAINS[k]
    n, dev = st.points.shape[0], st.points.device
    points = st.points[:, model.sorted_tests[k]]  # [B,N,3]
    first, last = chain.joints[0], chain.joints[-1]
    if chain.axis == "across":
        d = points.mean(1) - st.joints[:, first]
        d = torch.cat([d[:, :2], torch.zeros_like(d[:, :1])], -1)
        out = st.joints[:, first] - st.joints[:, 0]
        out = torch.cat([out[:, :2], torch.zeros_like(out[:, :1])], -1)
        d = torch.where(d.norm(dim=-1, keepdim=True) > 0.02, d, out)
        axis = torch.linalg.cross(const((0.0, 0.0, 1.0), d.device, d.dtype).expand_as(d), d)
    elif chain.axis == "long":  # the body's long axis, level
        axis = st.joints[:, 12] - st.joints[:, 0]
        axis = torch.cat([axis[:, :2], torch.zeros_like(axis[:, :1])], -1)
    elif chain.axis == "hinge":
        axis = st.glob[:, SMPL_PARENTS[first], :, chain.index]
    else:
        axis = st.joints[:, chain.index] - st.joints[:, first]
    axis = axis / axis.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    angles = const([math.radians(a) for a in ANGLES_DEG], dev)
    theta = torch.cat([angles.new_zeros(1), angles, -angles])  # [K]
    rot = roma.rotvec_to_rotmat(axis[:, None] * (theta / len(chain.joints))[None, :, None])
    frames = _motion(chain, st, rot)
    turn, pivot, _ = frames[-1]
    old = st.joints[:, last][:, None, None]
    own = model.own[k]
    if chain.end:  # the far end that must rest, tested beside the chain's own vertices
        e = CHAIN[chain.end]
        points = torch.cat([points, st.points[:, model.sorted_tests[e]]], 1)
        own = torch.cat([own, model.own[e]])
    turned = pivot[:, :, None] + (points[:, None] - old) @ turn.transpose(-1, -2)  # [B,K,N,3]
    x, y, z = turned.unbind(-1)
    # Near the limb's root the skin sinks with the trunk, further out by the part's own load.
    sink = sinks[:, :1] + own[None] * (sinks[:, chain.part, None] - sinks[:, :1])
    base = support.at(x, y, sink[:, None], pillow_ok)
    idx, inside = cells(x, y)
    other = others.gather(1, idx.reshape(n, -1)).view_as(z)
    other = torch.where(inside & (other <= z + PENETRATION), other - BODY_SINK,
                        torch.full_like(other, -torch.inf))
    clear = z - torch.maximum(base, other)  # [B,K,N]
    g_end = clear[..., len(model.own[k]):].amin(-1) if chain.end else clear.amin(-1)
    margin = _capsule_margins(k, st, _candidate_joints(chain, st, frames))
    floor = _margin_floor(margin[:, :1])
    chosen, safe = _pick(theta, clear.amin(-1), g_end, (margin >= floor).all(-1))
    both = torch.where(active[:, None], torch.stack([chosen, safe], 1), 0.0)
    step = roma.rotvec_to_rotmat(axis[:, None] * (both / len(chain.joints))[..., None])
    frames = _motion(chain, st, step)  # K = 2: the chosen angle, the candidate before it
    # An angle interpolated between two candidates can cut into a capsule pair that both
    # leave clear (validity is known at the candidates only): then the candidate before.
    ok = (_capsule_margins(k, st, _candidate_joints(chain, st, frames))[:, :1] >= floor)
    col = torch.where(ok.all(-1)[:, 0], 0, 1)
    rows = torch.arange(n, device=dev)
    frames = [tuple(f[rows, col][:, None] for f in frame) for frame in frames]  # K = 1
    turn, pivot = frames[-1][0][:, 0], frames[-1][1][:, 0]
    old = st.joints[:, last].clone()

    def carry(p: Tensor) -> Tensor:  # what hangs on the chain's last joint
        return pivot[:, None] + (p - old[:, None]) @ turn.transpose(-1, -2)

    start, end = model.moves[k]
    st.points[:, start:end] = carry(st.points[:, start:end])
    below = const(sorted(descendants(first) - set(chain.joints)), dev, torch.long)
    st.joints[:, below] = carry(st.joints[:, below])
    st.glob[:, below] = turn[:, None] @ st.glob[:, below]
    for j, (t, p, clipped) in zip(chain.joints, frames, strict=True):
        st.local[:, j - 1] = clipped[:, 0]
        st.glob[:, j] = t[:, 0] @ st.glob[:, j]
        st.joints[:, j] = p[:, 0]


def _chain_round(order: tuple[int, ...], model: RestModel, support: Support, tops: Tensor,
                 sinks: Tensor, pillow_ok: Tensor, active: Tensor, points: Tensor,
                 joints: Tensor, glob: Tensor, local: Tensor, scale: Tensor) -> list[Tensor]:
    """One round of the settling: chains ``order`` turned to rest one after the other
    (:func:`_search_chain`), each on the others' tops as they are then; tops [B,P,cells]
    eroded part tops (rewritten), sinks [B,P], pillow_ok and active [B,len(CHAINS)], the
    body as in :class:`_State`. Returns the local rotations [B,23,3,3] at rest."""
    st = _State(points, joints, glob, local, scale)
    for prev, k in zip([None, *order[:-1]], order, strict=True):
        if prev is None or CHAINS[k].part != CHAINS[prev].part:
            if prev is not None:  # remake the top of the part that moved last
                moved = CHAINS[prev].part
                start, end = model.part_range[moved]
                tops[:, moved] = erode(part_maps(st.points[:, start:end], 0, 1, False)[0])[:, 0]
            others = others_top(tops, CHAINS[k].part)
        _search_chain(k, model, st, support, others, sinks, pillow_ok[:, k], active[:, k])
    return [st.local]


_ORDER = tuple(range(len(CHAINS)))
#: The last round settles the left limbs again after the right ones: of a body lying on its
#: right side the left limbs are on top, and rest on where the right ones ended up.
_LAST_ORDER = tuple(k for parts in ((0, 1), (4, 5), (4,), (2, 3), (2,)) for k in _ORDER
                    if CHAINS[k].part in parts)


def _cell_centres(device) -> tuple[Tensor, Tensor]:
    """Label x, y [1,cells] of the settling grid's cell centres."""
    rows, cols = grid_shape()
    x0 = GRID.origin[0] - GRID.pitch / 2 + PITCH / 2
    y0 = GRID.origin[1] + GRID.pitch / 2 - PITCH / 2
    c = torch.arange(cols, device=device, dtype=torch.float32)
    r = torch.arange(rows, device=device, dtype=torch.float32)
    x = (x0 + PITCH * c)[None].expand(rows, cols).reshape(1, -1)
    y = (y0 - PITCH * r)[:, None].expand(rows, cols).reshape(1, -1)
    return x, y


def _whole_body_shift(under: Tensor, pillow_top: Tensor, weight: Tensor,
                      stiffness: Tensor) -> Tensor:
    """Height change [B] that rests the body, its parts' undersides [B,P,cells] (+inf off the
    mattress), on the mattress and compressed pillow ``pillow_top`` [B,cells]: the springs
    of :func:`disrt_core.sim.mattress.rest_on_mattress` on the settling grid."""
    whole = under.amin(1)
    on_pillow = (pillow_top > 0) & (whole >= 0.5 * pillow_top)
    b = whole - torch.where(on_pillow, pillow_top, torch.zeros_like(pillow_top))
    b = torch.where(whole < -MAX_DEPTH, torch.full_like(b, torch.inf), b)  # down the side
    low = b.amin(-1, keepdim=True)
    b = b - low
    return -(low[:, 0] + sink_depth(b, weight, stiffness, PITCH**2))


def settle(body, model: RestModel, params: Tensor, vertices: Tensor, joints: Tensor,
           support: Support, stiffness: Tensor, mass: Tensor, *, active: Tensor | None = None,
           pillow_ok: Tensor | None = None, sitting: Tensor | None = None,
           scale: Tensor | None = None, load: Tensor | None = None,
           iterations: int = 3) -> Tensor:
    """Parameters [B,P] with every chain at rest and the pelvis height (transl z) at the
    trunk's rest depth (label frame: mattress top z = 0); see the module docstring.

    body: the body model (called ``iterations − 1`` times). vertices [B,V,3], joints
    [B,24,3]: ``body(params)``. stiffness [B] N/m³, mass [B] kg.
    active [B,len(CHAINS)] bool: chains to settle (default all). pillow_ok [B,len(CHAINS)]:
    whether the pillow supports the chain (default all). sitting [B] bool: the trunk's depth
    from every part over the mattress instead of the trunk alone (sitting on the edge).
    scale [B]: stature / 1.75 m (capsule radii of the self-intersection test; default 1).
    load [B]: the share of m·g the mattress carries (default 1; a sitter whose feet stand
    on the floor less), as the generator's sinkage takes it.
    """
    layout = body.param_layout
    n, dev = params.shape[0], params.device
    active = torch.ones(n, len(CHAINS), dtype=torch.bool, device=dev) if active is None else active
    pillow_ok = torch.ones_like(active) if pillow_ok is None else pillow_ok
    sitting = torch.zeros(n, dtype=torch.bool, device=dev) if sitting is None else sitting
    weight = mass * GRAVITY
    carried = weight * (1.0 if load is None else load)
    scale = torch.ones(n, device=dev) if scale is None else scale
    params = params.clone()
    z_index = layout.transl.start + 2
    centres = _cell_centres(dev)
    on_bed = support.on_mattress(*centres)[:, None]  # [B,1,cells]
    pillow_top = pillow_height_at(support.pillow, *centres) * support.squash[:, None]
    for it in range(iterations):
        if it > 0:
            vertices, joints = body(params)
        # A sitter's underside from the face centres too: where the buttocks and thighs
        # meet the mattress the mesh's triangles are larger than the grid's cells (its
        # vertices alone leave half the contact out and sink the body 2-7 cm too deep,
        # so that the propping hands floated above the mattress after the generator's
        # sinkage). Lying bodies keep the vertices (they agree within a few mm).
        faces = getattr(body, "faces", None)
        centres_low = None
        # (Always on the GPU: the test would wait for it; the result is the same.)
        if faces is not None and (sitting.is_cuda or bool(sitting.any())):
            centres_low = part_maps(vertices[:, faces].mean(2), 0, 1)[1]
        vertices = vertices[:, model.order]  # by segment (bodyparts.RestModel)
        p = layout.unpack(params)
        top, under = part_maps(vertices, model.part_sorted)
        under = torch.where(on_bed, under, torch.full_like(under, torch.inf))
        sinks = part_sinks(under, weight, stiffness)
        # Someone sitting: buttocks and thighs carry the whole weight (not what hangs down
        # the mattress's side: cells more than MAX_DEPTH below the trunk's lowest).
        trunk_low = under[:, 0].amin(-1, keepdim=True)
        seat = under.amin(1)
        seat = torch.where(seat >= trunk_low - MAX_DEPTH, seat - trunk_low, torch.inf)
        sit_depth = sink_depth(seat, weight, stiffness, PITCH**2)
        dz = -(trunk_low[:, 0] + torch.where(sitting, sit_depth, sinks[:, 0]))
        if it > 0:  # the limbs placed: the whole body on the mattress and pillow springs
            dz = _whole_body_shift(under, pillow_top, carried, stiffness)
            if centres_low is not None:
                whole = torch.cat([under, torch.where(on_bed, centres_low, torch.full_like(
                    centres_low, torch.inf))], 1)
                dz = torch.where(sitting, _whole_body_shift(whole, pillow_top, carried,
                                                            stiffness), dz)
        dz = torch.where(torch.isfinite(dz), dz, torch.zeros_like(dz))
        sinks = torch.minimum(sinks, sinks[:, :1])
        params[:, z_index] += dz
        shift = torch.stack([torch.zeros_like(dz), torch.zeros_like(dz), dz], -1)[:, None]
        tops = erode(top + dz[:, None, None])
        glob = global_rotations(roma.rotvec_to_rotmat(p.root_orient), p.body_pose)
        local = roma.rotvec_to_rotmat(p.body_pose.reshape(n, 23, 3))
        order = _ORDER if it < iterations - 1 else _LAST_ORDER

        def chains(*t: Tensor, order=order) -> list[Tensor]:
            return _chain_round(order, model, Support(*t[:5]), *t[5:])

        # One CUDA graph per round order and batch size on the GPU (disrt_core.sim.graphs).
        local = replay(("settle", order, id(model)), chains, [
            support.width, support.length, support.floor_z, support.pillow, support.squash,
            tops, sinks, pillow_ok, active, vertices + shift, joints + shift, glob, local,
            scale])[0]
        pose = roma.rotmat_to_rotvec(local)
        limits = on_device(JOINT_LIMITS, pose)
        pose = torch.maximum(torch.minimum(pose, limits[..., 1]), limits[..., 0])
        params = layout.pack(p.shape, params[:, layout.transl], p.root_orient,
                             pose.reshape(n, 69))
    return params
