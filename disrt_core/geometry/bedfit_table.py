"""Bed finding, stage 4a: an overbed table's top, hidden from the head-end decision.

An overbed table (hospitals, care homes, and beds at home after surgery) stands on a post
beside the bed, its top 0.2–0.4 m above the mattress reaching across part of it: over the
chest or lap at a meal, pushed over the feet otherwise. Seen from above, that top is a
bulky, raised block over one part of the bed with a raised block beside the bed at the same
place. Over the foot half it looks like a head on a pillow with a bedside table beside it:
the head-end cues and classifier (:mod:`bedfit_head`, :mod:`bedfit_headnet`) took the
table's end for the head end. On the test bedroom (no headboard; D435, Kinect v2, L515,
D455 from 2.6 m; with and without a blanket or a footboard; two heights, two places) 50 of
64 fits had a confidently wrong head end with a table over the foot half, 5 of 64 with one
over the head half, none without the table.

**What is hidden** (:func:`overbed_tops`): a top is a flat surface beside a long edge of
the mattress, 15 cm or more above it, that runs on over the edge at its height: at a
position along the bed, the strip 3–25 cm outside the edge is read on 80 % of its cells at
0.15–0.6 m above the level and within 5 cm of flat, and 80 % of the cells within 5 cm of
the edge are within 4 cm of the strip's mean height (no gap between the bed and the top);
over 10 cm or more of positions in a row. At those positions the cells at that height are
the top: beside the bed up to 40 cm out (the head features' band), and inside from the edge
inward as far as the height goes on (one cell round them too). The head-end stage
(:func:`bedfit_headnet.head_end`) takes them as unseen (:func:`hidden`), alone and with
their mirror at the other end (:func:`mirrored`), and knows the end only where both agree.
[choice] Nothing else in a bed looks like this: a body, a pillow or a blanket does
not continue beyond the mattress at its height (it drops to the floor), a bedside table
stands beyond a gap (and mostly lower), a wall rises above the band and hides what is
behind it, a rail is a few centimetres wide, a sitter's legs drop to the floor. The fit's
geometry is untouched (the grid and edges already leave points above the band out).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from disrt_core.geometry.bedfit_rect import along_last, axis_coords
from disrt_core.geometry.bedfit_regions import dilate

TOP_M = (0.15, 0.6)  # a table's top over the mattress (m)
STRIP_M = (0.03, 0.25)  # the strips beside a long edge, inside and outside it (m)
EDGE_M = 0.05  # and the cells this near the edge: no gap between the two
READ_SHARE = 0.8  # of a strip's cells at a top's height
FLAT_M = 0.05  # largest height range within a strip
RUN_CELLS = 5  # positions in a row (10-12 cm at the fine grid's 2-2.4 cm cells)
NEAR_M = 0.04  # cells this near the top's height are the top
BESIDE_M = 0.4  # how far beyond the edge the top is looked at (the head features' band)


def overbed_tops(height: Tensor, seen: Tensor, cell: Tensor, rect: Tensor) -> Tensor:
    """[B,F,F] bool: the cells of the fine grid (height above the level, seen [B,F,F], rows
    v, columns u; cells [B] m) of the rectangles rect [B,4] = (u0, u1, v0, v1) that an
    overbed table's top covers, see the module."""
    _, t, _, half_w, u_long = axis_coords(cell, rect)
    h, read, tt = (along_last(x, u_long) for x in (height, seen, t))
    read = read > 0
    top = read & (h >= TOP_M[0]) & (h <= TOP_M[1])
    covered = torch.zeros_like(top)
    pad = RUN_CELLS // 2
    for side in (1.0, -1.0):
        d = side * tt - half_w  # distance beyond this long edge (m), negative inside
        strip = (d >= STRIP_M[0]) & (d <= STRIP_M[1])
        on = strip & top
        level = (torch.where(on, h, 0.0).sum(-2) / on.sum(-2).clamp(min=1))[:, None, :]
        span = torch.where(on, h, -1.0).amax(-2) - torch.where(on, h, 9.0).amin(-2)
        near = read & ((h - level).abs() <= NEAR_M)
        edge = d.abs() <= EDGE_M
        run = ((on.sum(-2) >= READ_SHARE * strip.sum(-2).clamp(min=1)) & (span <= FLAT_M)
               & ((near & edge).sum(-2) >= READ_SHARE * edge.sum(-2).clamp(min=1)))
        # positions in a run of RUN_CELLS or more (an opening along the bed)
        run = run[:, None].to(h.dtype)
        run = F.max_pool1d(-F.max_pool1d(-run, RUN_CELLS, 1, pad), RUN_CELLS, 1, pad) > 0
        # Inside, the top reaches from the edge inward as far as its height goes on: a
        # running product from the outermost row in (rows run with t, so the + side's
        # outermost row is the last).
        step = (near | (d > 0)).to(h.dtype)
        if side > 0:
            inward = step.flip(-2).cumprod(-2).flip(-2) > 0
        else:
            inward = step.cumprod(-2) > 0
        beside = near & (d > 0) & (d <= BESIDE_M)
        covered = covered | (run & ((inward & (d <= 0)) | beside))
    covered = dilate(covered.to(h.dtype), 3) > 0
    return along_last(covered, u_long)


def mirrored(mask: Tensor, cell: Tensor, rect: Tensor) -> Tensor:
    """mask [B,F,F] (rows v, columns u) reflected end for end through the centre of the
    rectangles rect [B,4] = (u0, u1, v0, v1) along their long axis (cells [B] m): the cell
    at s along the axis goes to −s (nearest cell; reflections off the grid are dropped)."""
    B, F_ = mask.shape[0], mask.shape[-1]
    u0, u1, v0, v1 = rect.unbind(-1)
    u_long = (u1 - u0) >= (v1 - v0)
    centre = torch.where(u_long, u0 + u1, v0 + v1) / 2  # along the long axis (m)
    j = torch.arange(F_, device=mask.device)
    # cell centres (j + 0.5 - F/2)·cell; the reflection of j lands at 2c/cell - j - 1 + F
    k = torch.round(2 * centre[:, None] / cell[:, None] + F_ - 1 - j[None]).long()  # [B,F]
    inside = (k >= 0) & (k < F_)
    k = k.clamp(0, F_ - 1)
    lines = along_last(mask, u_long)
    out = lines.gather(2, k[:, None, :].expand(B, F_, F_)) & inside[:, None, :]
    return along_last(out, u_long)


def hidden(height: Tensor, seen: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """height and seen [B,F,F] with the cells of ``mask`` taken as unseen: height 0, seen 0."""
    return height.masked_fill(mask, 0.0), seen.masked_fill(mask, 0.0)
