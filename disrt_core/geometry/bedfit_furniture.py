"""Bed finding, stage 4 (aside): furniture standing against an end of the mattress.

Batched torch, part of :func:`bedfit_batch.fit_beds`. A desk, a dresser or a chest pushed
against the foot (or head) end, its top 10-60 cm above the mattress, lies in the fine
grid's band (which reaches 0.6 m above the level to take in bodies, pillows and people
sitting), so the rectangle runs on over it: too long for a mattress (the frame refused, or
another candidate taken), or within the limits and 30-60 cm long at that end.

:func:`proposals` cuts each end of a rectangle back to a raised run standing at it (from
the end inward, at least ``MIN_RUN`` long, positions raised ``RAISED`` or more above the
level on ``SHARE`` of the width's seen cells) where that leaves a mattress's length; a
board (shorter) is :func:`bedfit_rect.trim_boards`'s. Pillows, a body or a duvet raised
across most of the width at an end make such runs too, so the raw pixels decide
(:func:`measure_cuts`): a cut end is kept where the edge stage then finds the mattress's
step down to free space at it on ``CUT_SUPPORT`` of its lines: the gap between a mattress
and furniture pushed against it (the frame's rim, the mattress's rounded edge), which a
pillow or a body lying on the mattress never shows. Furniture flush with the mattress's
top and no gap stays unseen (as before: a long rectangle).
"""

from __future__ import annotations

import torch
from torch import Tensor

from disrt_core.constants import const
from disrt_core.geometry import bedfit_edges as edges_mod
from disrt_core.geometry.bedfit_rect import FINE, _overlap

RAISED = 0.1  # [choice] m above the level: the furniture's top (a thick duvet is 5-9 cm)
# [choice] Of the width's seen cells (its inner 80 %) raised at a position: 0.8 missed a
# desk narrower than the bed in a benchmark room (68 % of the width).
SHARE = 0.6
MIN_SEEN = 0.3  # [choice] of the width's cells seen at a position that counts
MIN_RUN = 0.15  # [choice] m: shorter raised runs at an end are boards
# [choice] Share of a cut end's lines with a clear step at it that keeps the cut: a D455
# at 3 m over a 3 cm gap shows it on 38-42 % of the lines, a Kinect v2 on 69-96 %.
CUT_SUPPORT = 0.35


def proposals(fine: dict, rect: Tensor, limits: dict) -> tuple[Tensor, Tensor]:
    """For rectangles rect [B,K,4] = (u0, u1, v0, v1) (grid coordinates, m) of the fine
    grids ``fine`` (:func:`bedfit_rect.fine_maps`), per end of the long axis ([...,2] = the
    + end, the − end): the rectangle with that end cut back to the raised run standing at
    it [B,K,2,4] and whether there is such a run and the cut leaves a mattress's length
    [B,K,2] (module docstring)."""
    u0, u1, v0, v1 = rect.unbind(-1)
    cell, height, seen = fine["cell"], fine["height"], fine["seen"]
    raised = ((height >= RAISED) & (seen > 0)).to(height.dtype)
    sign = const((1, -1), rect.device)  # [..., 2] = (the + end hi, the − end lo)
    steps = torch.arange(FINE, device=rect.device)
    (llo, lhi), tol = limits["length"], limits["size_tol"]
    faces, valid = [], []
    for axis, (lo, hi, wlo, whi) in enumerate(((u0, u1, v0, v1), (v0, v1, u0, u1))):
        dim = -2 if axis == 0 else -1  # across the bed
        w = _overlap(cell, wlo + 0.1 * (whi - wlo), whi - 0.1 * (whi - wlo))
        w = w[..., :, None] if axis == 0 else w[..., None, :]
        seen_w = (seen * w).sum(dim)  # [B,K,F] per position along the bed
        share = (raised * w).sum(dim) / seen_w.clamp(min=1e-6)
        up = (share >= SHARE) & (seen_w >= MIN_SEEN * w.sum(dim))
        edge = torch.stack([hi, lo], -1)  # [B,K,2]
        last = torch.floor(edge / cell[..., None] + FINE / 2 - sign * 0.5).long()
        idx = (last[..., None] - sign[:, None] * steps).clamp(0, FINE - 1)  # end inward
        run = torch.gather(up, -1, idx.flatten(-2)).view(idx.shape).long().cumprod(-1).sum(-1)
        inner = last - sign * (run - 1)  # the innermost raised position; its inner side:
        face = (inner - FINE / 2 + (sign < 0)).to(cell.dtype) * cell[..., None]
        left = (hi - lo)[..., None] - (edge - face) * sign  # the length the cut leaves
        faces.append(face)
        valid.append((run.to(cell.dtype) * cell[..., None] >= MIN_RUN) & (left >= llo - tol)
                     & (left <= lhi + tol))
    u_long = ((u1 - u0) >= (v1 - v0))[..., None]  # [B,K,1]
    face = torch.where(u_long, faces[0], faces[1])  # [B,K,2]
    # The + end's cut changes the long axis's hi, the − end's its lo.
    hi_new = torch.stack([face[..., 0], torch.where(u_long[..., 0], u1, v1)], -1)
    lo_new = torch.stack([torch.where(u_long[..., 0], u0, v0), face[..., 1]], -1)
    r = rect[..., None, :].expand(*rect.shape[:-1], 2, 4)
    new = torch.stack([torch.where(u_long, lo_new, r[..., 0]),
                       torch.where(u_long, hi_new, r[..., 1]),
                       torch.where(u_long, r[..., 2], lo_new),
                       torch.where(u_long, r[..., 3], hi_new)], -1)
    return new, torch.where(u_long, valid[0], valid[1])


def measure_cuts(tried: Tensor, cuts: tuple[Tensor, Tensor], ref: dict, rect: Tensor,
                 depth_m: Tensor, K: Tensor, n: Tensor, level: Tensor, sigma: Tensor,
                 axes: tuple, min_offset: Tensor | None = None) -> tuple[dict, Tensor, Tensor]:
    """Candidates ``tried`` [B,K] with their ends cut back to raised runs (``cuts``:
    :func:`proposals`' rectangles and validity per end) measured on the raw pixels
    (:func:`bedfit_edges.refine_some`); where a cut end then shows the mattress's step down
    to free space on ``CUT_SUPPORT`` of its lines (the end with more support where both
    do), that measurement replaces the candidate's in ``ref`` [B,K,...] and its rectangle
    ``rect`` [B,K,4] (grid coordinates). Returns ``ref``, ``rect`` and which end [B,K] was
    cut (+1 the long axis's + end, −1 its − end, 0 none). ``axes`` = (origin, eu, ev)
    [B,K,3] of the grids; level, sigma, min_offset [B,K] as :func:`bedfit_edges.refine_some`'s."""
    rects, valid = cuts
    origin, eu, ev = axes
    cut = torch.zeros_like(level, dtype=torch.int64)
    best = torch.full_like(level, CUT_SUPPORT)
    for k, end in enumerate((1, -1)):
        trying = tried & valid[..., k]
        if not bool(trying.any()):  # one host sync; the rest only for such candidates
            continue
        u0, u1, v0, v1 = rects[..., k, :].unbind(-1)
        centre = origin + ((u0 + u1) / 2)[..., None] * eu + ((v0 + v1) / 2)[..., None] * ev
        half = torch.stack([(u1 - u0) / 2, (v1 - v0) / 2], -1)
        got = edges_mod.refine_some(trying, depth_m, K, n, level, sigma, centre, eu, ev, half,
                                    min_offset)
        # The cut end's edge among (+u, −u, +v, −v).
        index = torch.where((u1 - u0) >= (v1 - v0), 0, 2) + (0 if end > 0 else 1)
        support = torch.gather(got["support"], -1, index[..., None])[..., 0]
        keep = trying & (support >= best)
        best = torch.where(keep, support, best)
        ref = {key: torch.where(keep.reshape(*keep.shape, *([1] * (v.ndim - 2))), got[key], v)
               for key, v in ref.items()}
        rect = torch.where(keep[..., None], rects[..., k, :], rect)
        cut = torch.where(keep, end, cut)
    return ref, rect, cut


def foot_end(cut: Tensor, sign: Tensor, conf: Tensor, known: Tensor
             ) -> tuple[Tensor, Tensor, Tensor]:
    """The head end decided (``sign`` [B]: +1 toward the long axis's + end; confidence,
    known) of fits whose chosen candidate had end ``cut`` [B] (:func:`measure_cuts`) cut
    back to furniture. [choice] Furniture stands against a bed's foot end (at its head
    stand a headboard or the wall): a head end decided at the cut end is unknown and put at
    the other end (benchmark rooms: one confidently wrong head end less)."""
    clash = cut == torch.where(sign > 0, 1, -1)
    return torch.where(clash, -sign, sign), torch.where(clash, 0.5, conf), known & ~clash
