"""Bed finding, stage 4 (aside): an end of the mattress hidden behind its board.

Batched torch, part of :func:`bedfit_batch.fit_beds`. Seen from beyond a tall head- or
footboard, the strip of mattress just inside the board lies in the board's shadow: it reads
nothing, and the measured rectangle stops where the mattress shows again, 0.3-0.9 m short,
so the candidate fails the size check and the frame is refused. Extending such a rectangle
over the shadow misplaces the end (the board's outer face reads as the mattress's edge on
the raw pixels). Here the end is placed against the board instead
(:func:`infer_ends`: on the fine grid, beyond one end of a candidate too short to be a
mattress, perhaps pillows or bedding on part of the width, then a run of positions without
readings across it, then a board across it, with the camera beyond the board and the board
tall enough to cast that shadow), and the fit is ``weak`` (``inferred_end``): the end is
inferred, not seen (:func:`keep_ends` keeps it there through the later edge stages).
"""

from __future__ import annotations

import torch
from torch import Tensor

from disrt_core.geometry.bedfit_checks import size_flags
from disrt_core.geometry.bedfit_rect import CH_ALL, FINE, FLAG_SIZE, GAP_TO_BOARD, _overlap

# [choice] How far (m) beyond a short end the shadow and its board are looked for.
FAR_REACH = 0.9
# [choice] The board: raised 10 cm or more above the level on this share of the width's
# positions, right after the shadow.
BOARD_SHARE = 0.7
# [choice] Between the end and the shadow, pillows or bedding: raised 10 cm or more on at
# least this share of the width's positions (and less than BOARD_SHARE).
PILLOW_SHARE = 0.2
# [choice] The board is tall enough to cast the shadow: the height it needs at most this
# factor and margin (m) above its height on the grid (a mean over its top and face there,
# 0.42 m for a 0.6 m board in the unit test).
HEIGHT_SLACK = (1.5, 0.05)


def _shadow_runs(fine: dict, rect: Tensor, centre: Tensor, phi: Tensor, level: Tensor):
    """For both ends of the long axis ([...,2] = +end, −end) of candidate rectangles rect
    [B,K,4] on their grids: whether a board stands beyond a shadow there, and the new end
    position (m, grid coordinates) at the board's inner face less ``GAP_TO_BOARD``."""
    u0, u1, v0, v1 = rect.unbind(-1)
    cell, height, seen = fine["cell"], fine["height"], fine["seen"]
    any_reading = (fine["maps"][:, :, CH_ALL] > 0).to(height.dtype)
    raised = ((height >= 0.1) & (seen > 0)).to(height.dtype)
    steps = torch.arange(1, FINE, device=cell.device)
    steps = steps[steps * 0.02 <= FAR_REACH + 1e-6]
    sign = torch.tensor((1, -1), device=cell.device)
    # The camera (the origin) in grid coordinates: along u and v from the grid's centre.
    cos, sin = torch.cos(phi), torch.sin(phi)
    cam_u = -centre[..., 0] * cos - centre[..., 1] * sin
    cam_v = centre[..., 0] * sin - centre[..., 1] * cos
    u_long = (u1 - u0) >= (v1 - v0)
    found, ends = [], []
    for axis, (lo, hi, wlo, whi, cam) in enumerate(((u0, u1, v0, v1, cam_u),
                                                     (v0, v1, u0, u1, cam_v))):
        dim = -2 if axis == 0 else -1  # across the bed
        w = _overlap(cell, wlo + 0.1 * (whi - wlo), whi - 0.1 * (whi - wlo))
        w = w[..., :, None] if axis == 0 else w[..., None, :]
        norm = w.sum(dim).clamp(min=1e-6)
        read = (any_reading * w).sum(dim) / norm  # [B,K,F] per position along the bed
        board = (raised * w).sum(dim) / norm
        tall = torch.where(w > 0, height * seen, 0.0).amax(dim)  # the board's height
        edge = torch.stack([hi, lo], -1)
        last = torch.floor(edge / cell[..., None] + FINE / 2 - sign * 0.5).long()
        idx = last[..., None] + sign[:, None] * steps  # [B,K,2,S]
        inside = (idx >= 0) & (idx < FINE) & (steps * cell[..., None, None] <= FAR_REACH)
        idx = idx.clamp(0, FINE - 1).flatten(-2)
        seq = torch.gather(read, -1, idx).view(inside.shape)
        part = torch.gather(board, -1, idx).view(inside.shape)
        # Positions without readings; the first may be the edge's ramp (partly read); and
        # before them, pillows or bedding (raised on part of the width, not a board).
        dark = ((seq <= 0.1) | ((steps == 1) & (seq < 0.5))) & inside
        covered = (part >= PILLOW_SHARE) & (part < BOARD_SHARE) & inside
        lead = (covered | ((steps == 1) & dark)).long().cumprod(-1).sum(-1)  # pillows here
        pos = torch.arange(steps.shape[0], device=cell.device)
        run = ((dark | (pos < lead[..., None])) & inside).long().cumprod(-1).sum(-1)
        unread = (run - lead).clamp(min=0)
        at = run[..., None].clamp(max=steps.shape[0] - 1)
        hit = torch.gather(part, -1, at)[..., 0]
        hit_in = torch.gather(inside, -1, at)[..., 0]
        # The board's height: the highest of its first three positions (the grid's heights
        # are means over its top and face, lower than its top).
        tall_seq = torch.gather(tall, -1, idx).view(inside.shape)
        h = torch.gather(tall_seq, -1, torch.cat([at, at + 1, at + 2], -1).clamp(
            max=steps.shape[0] - 1)).amax(-1)
        face = (last + sign * (run + 1) - FINE / 2 + (sign < 0)).to(cell.dtype) * cell[..., None]
        # The camera beyond the board, and the shadow no longer than the board casts.
        beyond = (cam[..., None] - face) * sign
        # The height a board there needs to cast the shadow: a ray from the camera (level
        # above the plane) over its top ``beyond`` away reaches the plane ``length`` further.
        length = unread.to(cell.dtype) * cell[..., None]
        need = level[..., None] * length / (beyond + length).clamp(min=1e-3)
        ok = ((unread >= 1) & (hit >= BOARD_SHARE) & hit_in & (beyond > 0)
              & (need <= HEIGHT_SLACK[0] * h + HEIGHT_SLACK[1]))
        found.append(ok)
        ends.append(face - sign * GAP_TO_BOARD)
    pick = u_long[..., None]
    return torch.where(pick, found[0], found[1]), torch.where(pick, ends[0], ends[1])


def infer_ends(short: Tensor, fine: dict, rect: Tensor, centre: Tensor, phi: Tensor,
               level: Tensor, limits: dict) -> tuple[Tensor, Tensor, Tensor]:
    """Candidates ``short`` [B,K] (too short to be a mattress, otherwise passing) whose
    rectangle rect [B,K,4] (grid coordinates) reaches a mattress's size with one end of its
    long axis placed against a board beyond a shadow (see the module docstring): which
    [B,K], their rectangles [B,K,4] with that end moved and whether it is the + end [B,K].
    A rectangle with a board beyond a shadow at both ends (which end is the mattress's?),
    or a length outside the limits, is left as it was (refused)."""
    found, end = _shadow_runs(fine, rect, centre, phi, level)
    u0, u1, v0, v1 = rect.unbind(-1)
    u_long = (u1 - u0) >= (v1 - v0)
    hi, lo = torch.where(u_long, u1, v1), torch.where(u_long, u0, v0)
    hi_new = torch.where(found[..., 0], end[..., 0], hi)
    lo_new = torch.where(found[..., 1], end[..., 1], lo)
    width = torch.minimum(u1 - u0, v1 - v0)
    one = found[..., 0] ^ found[..., 1]
    use = short & one & (size_flags(width, hi_new - lo_new, limits) & FLAG_SIZE == 0)
    new = torch.stack([torch.where(u_long, lo_new, u0), torch.where(u_long, hi_new, u1),
                       torch.where(u_long, v0, lo_new), torch.where(u_long, v1, hi_new)], -1)
    return use, torch.where(use[..., None], new, rect), found[..., 0]


def end_point(rect: Tensor, hi_end: Tensor, origin: Tensor, eu: Tensor, ev: Tensor):
    """The middle [...,3] of the moved end (``hi_end``: the long axis's + end, else its −
    end) of rectangles rect [...,4] (grid coordinates; the grid's origin and axes eu, ev
    [...,3] on the plane) and the outward direction there [...,3]."""
    u0, u1, v0, v1 = rect.unbind(-1)
    u_long = (u1 - u0) >= (v1 - v0)
    pu = torch.where(u_long, torch.where(hi_end, u1, u0), (u0 + u1) / 2)[..., None]
    pv = torch.where(u_long, (v0 + v1) / 2, torch.where(hi_end, v1, v0))[..., None]
    out = torch.where(hi_end, 1.0, -1.0)[..., None]
    return origin + pu * eu + pv * ev, out * torch.where(u_long[..., None], eu, ev)


def place_ends(ref: dict, use: Tensor, point: Tensor, direction: Tensor) -> dict:
    """Rectangles ``ref`` (centre, eu, ev, half [...,3 / 2]) with, where ``use``, the end
    facing ``direction`` put through ``point`` (the other end and the sides kept); that
    end's ``support`` is 0 and ``moved`` [...,4] says which edge it is (+u, −u, +v, −v)."""
    eu, ev, half, centre = ref["eu"], ref["ev"], ref["half"], ref["centre"]
    along_u = (eu * direction).sum(-1).abs() >= (ev * direction).sum(-1).abs()
    axis = torch.where(along_u[..., None], eu, ev)
    sgn = torch.where((axis * direction).sum(-1) >= 0, 1.0, -1.0)
    h = torch.where(along_u, half[..., 0], half[..., 1])
    far = ((point - centre) * axis).sum(-1)
    near = -sgn * h
    new_h = (far - near).abs() / 2
    new_c = centre + ((far + near) / 2)[..., None] * axis
    new_half = torch.where(along_u[..., None], torch.stack([new_h, half[..., 1]], -1),
                           torch.stack([half[..., 0], new_h], -1))
    edge = torch.where(along_u, 0, 2) + (sgn < 0).long()
    moved = use[..., None] & (torch.arange(4, device=use.device) == edge[..., None])
    out = {**ref, "centre": torch.where(use[..., None], new_c, centre),
           "half": torch.where(use[..., None], new_half, half), "moved": moved}
    if "support" in ref:
        out["support"] = torch.where(moved, 0.0, ref["support"])
    return out


def too_short(need: Tensor, flags: Tensor, ref: dict, limits: dict) -> Tensor:
    """[B,K]: measured candidates ``ref`` (``need``: measured) whose only failing check
    (``flags``) is a length too short, their width within the limits."""
    half = ref["half"]
    width, length = 2 * half.amin(-1), 2 * half.amax(-1)
    (wlo, whi), (llo, _lhi) = limits["width"], limits["length"]
    tol = limits["size_tol"]
    return (need & ((flags & ~FLAG_SIZE) == 0) & (length < llo - tol)
            & (width >= wlo - tol) & (width <= whi + tol))


def shadow_ends(need: Tensor, flags: Tensor, ref: dict, fine: dict, rect: Tensor,
                centre: Tensor, phi: Tensor, level: Tensor, grid_axes: tuple,
                limits: dict) -> tuple[dict, Tensor, Tensor, tuple]:
    """The measured candidates ``ref`` (:func:`bedfit_edges.refine_some`) and their grid
    rectangles rect [B,K,4] with the ends :func:`infer_ends` places at boards (candidates
    ``need``ing measuring whose only failing check, ``flags``, is a length too short);
    which [B,K] and the placed ends (points and outward directions [B,K,3]) for
    :func:`keep_ends`. ``grid_axes`` = (origin, eu, ev) [B,K,3] of the grids."""
    short = too_short(need, flags, ref, limits)
    none = torch.zeros_like(need)
    if not bool(short.any()):  # one host sync; the rest only for such candidates
        return ref, rect, none, ()
    use, rect_new, hi_end = infer_ends(short, fine, rect, centre, phi, level, limits)
    point, direction = end_point(rect_new, hi_end, *grid_axes)
    return place_ends(ref, use, point, direction), rect_new, use, (point, direction)


def keep_ends(ref: dict, use: Tensor, ends: tuple, ok: Tensor, limits: dict):
    """The chosen fits ``ref`` (one a frame, after the edge and board stages) with the ends
    that :func:`shadow_ends` placed (``use`` [B]; ``ends`` its points and directions [B,3])
    put back at their boards and marked ``moved``; such a fit no longer mattress-sized is
    refused: ``ok`` [B] returned without it."""
    if not ends or not bool(use.any()):
        return ref, ok
    placed = place_ends({k: ref[k] for k in ("centre", "eu", "ev", "half")}, use, *ends)
    half = placed["half"]
    bad = use & (size_flags(2 * half.amin(-1), 2 * half.amax(-1), limits) > 0)
    return {**ref, "centre": placed["centre"], "half": half,
            "support": torch.where(placed["moved"], 0.0, ref["support"]),
            "moved": ref["moved"] | placed["moved"]}, ok & ~bad
