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

    board_h = torch.where(high > 0, torch.full_like(height, 0.7), height)
    across = t.abs() <= 0.9 * half_w

    def board(sign):
        strip = across & (sign * s > half_l) & (sign * s <= half_l + 0.15)
        top = torch.where(strip, board_h, torch.zeros_like(board_h))
        # highest point per position across the bed, averaged over the width
        per = torch.where(u_long[:, None], top.amax(-1), top.amax(-2))  # [B,F]
        pos = torch.where(u_long[:, None], strip.any(-1), strip.any(-2)).to(per.dtype)
        return (per * pos).sum(-1) / pos.sum(-1).clamp(min=1)

    b_plus, b_minus = board(1.0), board(-1.0)
    boards = torch.where(torch.maximum(b_plus, b_minus) >= 0.1,
                         torch.tanh((b_plus - b_minus) / 0.1), torch.zeros_like(b_plus))
    cues = torch.stack([person, pillow, boards], -1)
    logit = (cues * cues.new_tensor(WEIGHTS)).sum(-1)
    return logit, cues
