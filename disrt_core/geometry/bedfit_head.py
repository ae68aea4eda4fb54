"""Bed finding, stage 4: which end of the mattress is the head end (``head="auto"``).

Batched torch, part of :func:`bedfit_batch.fit_beds`, on the fine grid of the chosen
rectangle (heights of the points above the mattress level, less a noise allowance of
2σ + 1 cm). Three cues, each a score in [−1, 1] (+1: the head is at the +axis end):

* **person**: the occupied volume over each half of the mattress (central 80 % of the
  width). Lying on the back, side or front, the torso and head are bulkier than the legs,
  and a blanket over the body keeps that difference; (V₊ − V₋)/(V₊ + V₋ + V₀) with V₀ a
  1.5 cm layer over a half, so an empty mattress scores about 0;
* **pillow / head**: the mean height in the last 55 cm of each end (central 70 % of the
  width): a pillow (8–15 cm) or a head on it raises it; tanh(difference / 3 cm);
* **boards and walls**: the mean over the width of the highest point in the 15 cm beyond
  each end: headboards are usually higher than footboards, and a bed's head end usually
  stands against a wall; tanh(difference / 10 cm), 0 unless one of them reaches 10 cm.

The log-odds ``2.5·person + 2·pillow + 1.5·boards`` give the probability of the +axis end;
the confidence is the larger of p and 1 − p, in [0.5, 1]: 0.5 when no cue is seen (an empty
bed without pillow or boards), in which case the head end is unknown. [choice] The weights
and scales were set on the test scenes (test/core/geometry/bedscenes.py), where each cue
alone gets the side right; see the bed-finding benchmark for the rate on generated rooms.

:func:`bedfit_batch.fit_beds` no longer decides by these log-odds: the three cues are inputs
of the learned classifier of :mod:`bedfit_headnet` (with the height profiles along the bed),
which decides; they are still returned (``head_cues``) to show what the bed looks like.

**The head itself** (:func:`head_bump`): none of the three cues looks for the head, so raised
knees under a blanket (a bulky, high foot half) can outweigh them. A head is a round bump of
15-20 cm, 10-20 cm high, usually uncovered, lying within 60 cm of its end: per cell the
lowest height within 5 cm of it, less the height of 8 points on a ring of 14 cm round it,
6 of which must be lower (the neck and a shoulder may not). [choice] A bump of
``HEAD_MIN_M`` = 13 cm or more at the end the classifier did not choose, 8 cm higher than
at its end, makes the head end unknown (:func:`bedfit_headnet.head_known`); it never
chooses the end itself. On the tuning rooms (seeds 3000-3047, median of 5 frames, 8
sensors) it turns 1 of 6 confident wrong ends into unknown and no right one (10 cm turned a
right one on an L515 unknown); on the tuning bed scenes (seeds 9000-9095 with Anny bodies,
9000-9063 with the SMPL fixture) it changes nothing. The benchmark's bodies (the SMPL
fixture: blobs of points round the joints) have no head-shaped head, so it is measured on
Anny bodies too (see the bed-finding benchmark's notes).
"""

from __future__ import annotations

import torch
from torch import Tensor

from disrt_core.geometry.bedfit_rect import axis_coords

WEIGHTS = (0.5, 0.3, 2.0)


def head_cues(height: Tensor, high: Tensor, cell: Tensor, rect: Tensor, sigma: Tensor
              ) -> tuple[Tensor, Tensor]:
    """Log-odds [B] that the head end is the +end of the rectangle's long axis, and the
    three cue scores [B,3]; height [B,F,F] (3×3 mean height above the level, rows v,
    columns u), high [B,F,F] (count of points above the bed band), cell, sigma [B], rect
    [B,4] = (u0, u1, v0, v1)."""
    s, t, half_l, half_w, u_long = axis_coords(cell, rect)
    noise = (2 * sigma + 0.01)[:, None, None]
    above = (height - noise).clamp(min=0)
    inside = (s.abs() <= half_l) & (t.abs() <= 0.8 * half_w)
    area = cell[:, None, None] ** 2

    def vol(mask):
        return (above * mask * area).sum((-1, -2))

    v_plus, v_minus = vol(inside & (s > 0)), vol(inside & (s < 0))
    v0 = 0.015 * (half_l * 0.8 * half_w * 2)[:, 0, 0]
    person = (v_plus - v_minus) / (v_plus + v_minus + v0)

    end = (t.abs() <= 0.7 * half_w) & (s.abs() <= half_l - 0.03) & (s.abs() >= half_l - 0.55)

    def mean(mask):
        m = mask.to(above.dtype)
        return (above * m).sum((-1, -2)) / m.sum((-1, -2)).clamp(min=1)

    pillow = torch.tanh((mean(end & (s > 0)) - mean(end & (s < 0))) / 0.03)

    board_h = torch.where(high > 0, 0.7, height)
    across = t.abs() <= 0.9 * half_w

    def board(sign):
        strip = across & (sign * s > half_l) & (sign * s <= half_l + 0.15)
        top = torch.where(strip, board_h, 0.0)
        # highest point per position across the bed, averaged over the width
        per = torch.where(u_long[:, None], top.amax(-1), top.amax(-2))  # [B,F]
        pos = torch.where(u_long[:, None], strip.any(-1), strip.any(-2)).to(per.dtype)
        return (per * pos).sum(-1) / pos.sum(-1).clamp(min=1)

    b_plus, b_minus = board(1.0), board(-1.0)
    boards = torch.where(torch.maximum(b_plus, b_minus) >= 0.1,
                         torch.tanh((b_plus - b_minus) / 0.1), 0.0)
    cues = torch.stack([person, pillow, boards], -1)
    logit = (cues * cues.new_tensor(WEIGHTS)).sum(-1)
    return logit, cues


HEAD_RING_M = 0.14  # ring radius: beyond a head's 15-20 cm, short of the shoulders
HEAD_CORE_M = 0.05  # a head's top is high this far round its centre (a foot's is not)
HEAD_ZONE_M = 0.6  # a head on the pillow lies within this of its end
HEAD_TOP_M = (0.08, 0.5)  # height of a head's top over the mattress
HEAD_SIDES = 6  # of the 8 ring points must lie lower (the neck and a shoulder may not)
HEAD_SEEN = 5  # of the 8 ring points must have readings
HEAD_MIN_M = 0.13  # a bump this high at the end the classifier did not choose ...
HEAD_MARGIN_M = 0.08  # ... and this much higher than at its end makes the end unknown


def _ring(x: Tensor, known: Tensor, cell: Tensor, radius: float) -> tuple[Tensor, Tensor]:
    """The values [8,B,F,F] of x [B,F,F] at 8 points on a circle of ``radius`` m round each
    cell (cells [B] m), and whether each was seen (and on the grid); the 8 at once, few
    operations on a small grid."""
    B, F_, _ = x.shape
    ang = torch.arange(8, device=x.device, dtype=cell.dtype) * (torch.pi / 4)
    step = radius / cell  # [B] cells
    dr = torch.round(torch.sin(ang)[:, None] * step).long()[..., None, None]  # [8,B,1,1]
    dc = torch.round(torch.cos(ang)[:, None] * step).long()[..., None, None]
    j = torch.arange(F_, device=x.device)
    rr, cc = j[:, None] + dr, j[None, :] + dc  # [8,B,F,1], [8,B,1,F]
    on = ((rr >= 0) & (rr < F_)) & ((cc >= 0) & (cc < F_))
    idx = (rr.clamp(0, F_ - 1) * F_ + cc.clamp(0, F_ - 1)).reshape(8, B, -1)
    values = x.flatten(1)[None].expand(8, -1, -1).gather(2, idx).view(8, B, F_, F_)
    seen = known.flatten(1)[None].expand(8, -1, -1).gather(2, idx).view(8, B, F_, F_) & on
    return values, seen


def _kth_smallest(values: Tensor, k: int) -> Tensor:
    """The k-th smallest [...] of values [n,...] (no nan) along dim 0: the k smallest so far
    kept in order, each value inserted by minima and maxima (the same value as topk's, a few
    dozen ops on the grid instead of a slow topk along the leading dim)."""
    low: list[Tensor] = []
    for x in values.unbind(0):
        new = [torch.minimum(low[0], x)] if low else [x]
        new += [torch.minimum(low[i], torch.maximum(low[i - 1], x)) for i in range(1, len(low))]
        if low and len(low) < k:
            new.append(torch.maximum(low[-1], x))
        low = new
    return low[k - 1]


def head_bump(height: Tensor, seen: Tensor, cell: Tensor, rect: Tensor, sigma: Tensor
              ) -> Tensor:
    """Heights [B,2] of the most head-like bump within ``HEAD_ZONE_M`` of the −axis and of
    the +axis end (0: none); height, seen [B,F,F] (3×3 mean height above the level, rows v,
    columns u), cell, sigma [B], rect [B,4] = (u0, u1, v0, v1).

    A head is a round bump of 15-20 cm, 10-20 cm high, usually uncovered: per cell, the
    lowest height ("core") within ``HEAD_CORE_M`` of it (a foot or a hand is narrower and
    falls off within it), less the height of 8 points on a ring of ``HEAD_RING_M``; the
    bump is the drop that ``HEAD_SIDES`` of the 8 reach (the neck and a raised shoulder
    may not be lower). An unseen ring point counts as the mattress (the head's depth
    shadow), and at least ``HEAD_SEEN`` of them must be seen."""
    s, t, half_l, half_w, _ = axis_coords(cell, rect)
    known = seen > 0
    h = torch.where(known, height, 0.0)
    core_h, core_k = _ring(h, known, cell, HEAD_CORE_M)
    core = torch.minimum(torch.where(core_k, core_h, 0.0).amin(0), h)
    ring_h, ring_k = _ring(h, known, cell, HEAD_RING_M)
    # an unseen ring point counts as the mattress (a depth shadow reaches no lower)
    drops = torch.where(ring_k, core - ring_h, core)
    drop = _kth_smallest(drops, 9 - HEAD_SIDES)  # [B,F,F]
    # and most of the ring must be seen: a lone reading amid holes is no head
    drop = torch.where(ring_k.sum(0) >= HEAD_SEEN, drop, 0.0)
    lo, hi = HEAD_TOP_M
    top = known & (core >= lo + (2 * sigma + 0.01)[:, None, None]) & (h <= hi) & (
        t.abs() <= 0.8 * half_w)
    out = []
    for sign in (-1.0, 1.0):
        zone = top & (sign * s <= half_l) & (sign * s >= half_l - HEAD_ZONE_M)
        out.append(torch.where(zone, drop, 0.0).flatten(1).amax(1))
    return torch.stack(out, -1)


def head_against(bump: Tensor, logit: Tensor) -> Tensor:
    """[B] bool: the head-like bump (:func:`head_bump`, [B,2]) at the end that ``logit``
    [B] (log-odds of the +axis end) did not choose is at least ``HEAD_MIN_M`` high and
    ``HEAD_MARGIN_M`` higher than the one at the chosen end."""
    chosen = torch.where(logit >= 0, bump[:, 1], bump[:, 0])
    other = torch.where(logit >= 0, bump[:, 0], bump[:, 1])
    return (other >= HEAD_MIN_M) & (other - chosen >= HEAD_MARGIN_M)
