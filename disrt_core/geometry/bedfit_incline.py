"""Bed finding: a raised head section (an adjustable bed's backrest), measured and reported.

Hospital and care beds raise the head section, commonly by 30° (head-of-bed elevation for
breathing, feeding and against reflux), and the person lies on it half sitting. The rest of
the mattress stays level and is found as usual, but what the model was trained on is a
flat bed: the upper body of a person on a raised section is outside it. And the fit's own
words then misled: a 30° backrest on the test bedroom read as "an edge hardly seen, an end
placed at a board, a low ridge across an end".

**Measure** (:func:`raised_section`): seen from above, the raised section is a straight
ramp over the last 0.5–0.75 m of one end, across the whole width. A person, pillows and
a blanket lie mostly in the middle of the width, so the ramp is read beside them: per
position along the bed (a column of the fine grid), the 30th percentile of the heights
above the level in the two side strips (0.55–0.95 of the half width from the long axis).
Over the positions 8–45 cm from an end a least-squares line must fall away from the end by
at least tan 10° a metre, its residuals within 2 cm RMS (a ramp, not a pillow's block),
its height 8 cm from the end 10 cm or more, while the strips 1.0–1.3 m from that end lie
within 4 cm of the level (the seat and leg sections). The angle is atan of the slope.
[choice] A wedge pillow under the whole width reads the same, and for the model it is the
same thing.

The fit stays as it is; :mod:`bedfit_batch` makes it weak (cause ``raised_section``) with
the angle in the words, so the node warns and ``disrt-fit-bed`` says why. The causes the
ramp itself makes at the ends (an end hardly seen, inferred, past a board, a low ridge read
as a footboard) are then left out of the words (:func:`explained`): they said nothing true.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from disrt_core.geometry.bedfit_boards import split_ends
from disrt_core.geometry.bedfit_rect import along_last, axis_coords
from disrt_core.geometry.bedfit_result import WEAK_CAUSES, WEAK_SUPPORT

SIDE = (0.55, 0.95)  # side strips, in half widths from the long axis
QUANTILE = 0.3
RAMP_M = (0.08, 0.45)  # positions from the end the line is fitted over
FLAT_M = (1.0, 1.3)  # positions that must stay level
MIN_DEG = 10.0
MIN_RISE_M = 0.10  # the line's height at the ramp's first position
FLAT_TOL_M = 0.04
STRAIGHT_M = 0.02  # residual RMS of the line


def raised_section(height: Tensor, seen: Tensor, cell: Tensor, rect: Tensor) -> Tensor:
    """Angle [B,2] (degrees; 0: none) of a raised section at the −axis and the +axis end of
    the rectangles rect [B,4] = (u0, u1, v0, v1), from their fine grids (height above the
    level and seen [B,F,F], rows v, columns u; cells [B] m); see the module."""
    s, t, half_l, half_w, u_long = axis_coords(cell, rect)
    side = (t.abs() >= SIDE[0] * half_w) & (t.abs() <= SIDE[1] * half_w) & (seen > 0)
    # per position along the bed, the low quantile of the side strips (nan: none seen)
    level = torch.nanquantile(along_last(torch.where(side, height, float("nan")), u_long),
                              QUANTILE, dim=1)
    s_pos, half_l = along_last(s, u_long)[:, 0, :], half_l[:, 0]  # [B,F], [B,1]
    out = []
    for sign in (-1.0, 1.0):
        pos = half_l - sign * s_pos  # distance from this end (m)
        inside = (pos >= RAMP_M[0]) & (pos <= RAMP_M[1])
        ramp = inside & level.isfinite()
        w = ramp.to(height.dtype)
        n = w.sum(1).clamp(min=1)
        h = level.nan_to_num(0.0)
        mx, my = (w * pos).sum(1) / n, (w * h).sum(1) / n
        sxx = (w * (pos - mx[:, None]) ** 2).sum(1).clamp(min=1e-9)
        slope = (w * (pos - mx[:, None]) * (h - my[:, None])).sum(1) / sxx
        rms = ((w * (h - my[:, None] - slope[:, None] * (pos - mx[:, None])) ** 2).sum(1)
               / n).sqrt()
        start = my + slope * (RAMP_M[0] - mx)
        flat = (pos >= FLAT_M[0]) & (pos <= FLAT_M[1]) & level.isfinite()
        flat_ok = (torch.where(flat, level.abs(), 0.0).amax(1) <= FLAT_TOL_M) & flat.any(1)
        enough = w.sum(1) >= 0.6 * inside.sum(1)
        found = (enough & flat_ok & (-slope >= math.tan(math.radians(MIN_DEG)))
                 & (rms <= STRAIGHT_M) & (start >= MIN_RISE_M))
        out.append(torch.where(found, torch.rad2deg(torch.atan(-slope)), 0.0))
    return torch.stack(out, -1)


#: Causes about the ends that a raised section makes by itself (the ramp is no step, its top
#: reads as a board past or before the end); "unseen_edge" too where only ends are unseen.
EXPLAINED = ("inferred_end", "past_board", "low_board")


def explained(causes: Tensor, support: Tensor, half: Tensor, raised: Tensor) -> Tensor:
    """Weak causes [B,len(WEAK_CAUSES)] without those a raised section (``raised`` [B]
    degrees, 0: none) explains: :data:`EXPLAINED`, and ``unseen_edge`` where both long sides
    are seen (support [B,4] of the edges +u, −u, +v, −v; half sizes [B,2])."""
    sides = split_ends(support, half)[1]
    drop = torch.zeros_like(causes)
    for name in EXPLAINED:
        drop[:, WEAK_CAUSES.index(name)] = True
    drop[:, WEAK_CAUSES.index("unseen_edge")] = sides.amin(-1) >= WEAK_SUPPORT
    return causes & ~(drop & (raised > 0)[:, None])
