"""Bed finding (weak causes): an end over a low board, and a cover domed over both sides.

Batched torch, part of :func:`bedfit_batch.fit_beds`. Two ways a fit goes several cm wrong
with every edge clearly seen (a step down at each), found on the tuning rooms' unflagged
wrong fits; on lines across the fitted rectangle's edges the rays' seen points are put back
on the mattress plane (:func:`bedfit_boards.seen_across`: their height above it and how far
beyond the edge they lie):

* :func:`low_board`: an end that took in a low footboard (5-30 cm above the mattress,
  often under the blanket's drape): the board's top, a few cm above the plane, lies just
  inside the end straight across the whole width and the step down that the ray test
  found is at its outer face (``bedfit_boards.in_to_boards`` moves such an end in where it
  sees the board's inner face; these are the ends where it did not: the face lay in the
  board's shadow, or deeper than it looks);
* :func:`domed`: a thick cover (a blanket over a person on a narrow mattress) that touches
  the mattress nowhere: the surface slopes down to both long sides, so the plane is the
  cover's level near the edges, several cm above the mattress top, and each edge is where
  the cover bends over the mattress's rounded edge, some cm inside it; or (:func:`shoulder`,
  a thick duvet domed over an empty bed) each long side is where the dome has fallen
  a noise band below the plane, several cm inside the mattress, and the cover goes on sloping
  down beyond it to the mattress's edge.
"""

from __future__ import annotations

import torch
from torch import Tensor

from disrt_core.geometry.bedfit_boards import seen_across, split_ends

# Lines across each edge (a board and a slope are measured per line), from REACH inside to
# REACH beyond it, STEP apart.
LINES, REACH, STEP = 32, 0.25, 0.01
# [choice] A low board inside an end: seen points RIDGE m or more above the plane, lying 1-12
# cm inside the end (a board stands 0-5 cm beyond the mattress and is 2-6 cm thick), and
# further in (up to BEHIND m) the surface DIP m or more below that top again (a board is
# narrow: a blanket or a cover lying level over the whole foot end is not one), on
# RIDGE_SHARE of the end's lines, whose tops spread (interquartile range) at most
# RIDGE_SPREAD m: a board's top is straight and level; feet, a pillow or bunched bedding
# cover part of the width, at heights of their own. Set on the tuning rooms 3000-3047 and
# 4000-4095 (median of 5 frames; 5 of their 11 unflagged wrong fits had an end 7-12 cm out
# over a footboard): 3 of them, no right fit (in the fit and offline on the fitted
# rectangles; offline DIP 1.5-3 cm, BEHIND 0.2-0.3 m, spread 1.5-2 cm alike; 0.75 of the
# lines: 4 and one right fit; without the dip 3 and 9, a blanket 3-5 cm thick lying level
# over the foot end). The other two: the top under 3 cm, or feet hide it on a third of the
# lines. A board seen from beyond it, its face within the 12 cm, spreads more: a synthetic
# 12 cm board 2-2.5 cm (missed), 6-8 cm ones 0.1-1.7 cm. The spread raised 2 -> 3 cm
# (2026-12-07): a D435 848x480 3.3-4 m from a tuning room's 10 cm board (σ 1.6 cm) read its top
# with a 2.5 cm spread, an end 10 cm out unflagged; on the cached benchmark and tuning rooms
# (seeds 500-531, 3000-3047, 5 frames) every fit with an end at RIDGE_SHARE or more is wrong
# but one right fit, whose tops spread 18 cm (bedding), and the wrong ones spread 0.5-6 cm.
RIDGE, RIDGE_IN, RIDGE_SHARE, RIDGE_SPREAD = 0.03, (0.01, 0.12), 0.85, 0.03
DIP, BEHIND = 0.025, 0.25
# [choice] A domed cover: on both long sides the surface 13-17 cm inside the edge lies DOME
# m or more above that 1-5 cm inside it (median over the side's lines). Tuning rooms: the
# fits of one scene seen by four cameras (corners 7-8 cm off, 5 cm of it the plane's
# height) at 6.1-6.3 cm, no right fit of the rooms above 5.2 cm, one right bed scene at 6.0
# (0.05: one more right fit; 0.04: a fifth wrong fit, at 4.1 cm, and 9 right ones).
DOME, DOME_OUT, DOME_IN = 0.055, (0.13, 0.17), (0.01, 0.05)
# [choice] A duvet domed over an empty bed (no body: the dome spans the whole width, the
# slope near the fitted sides gentler than DOME): on SHOULDER_SHARE of the lines of both
# long sides a seen point SHOULDER_AT m beyond the edge and 1.5-6 cm below the plane
# (SHOULDER_H): the cover still sloping down there. A mattress's edge has dropped more by
# then (its side face at the edge, the frame or the floor 15 cm or more below), a level
# neighbour as high as the plane is no slope. Set on synthetic empty beds under a cover 2-4
# cm thick domed by 0, 5, 8, 12 or 16 cm (0.9 and 1.4 m wide, a time-of-flight and a stereo
# camera, 2 views): 96 of their 112 unflagged fits 9-23 cm off reach 0.5, none of the 72
# under flat covers is above 0 (missed: mostly flat-topped covers, 1 - u^8,
# the plane on their top, the edges near the mattress's: a taller mattress to the camera);
# right fits of the tuning rooms 3000-3047 and 4000-4095 at most 0.25, of the benchmark
# rooms 0.34 (a level neighbour beyond a side read 1.5 cm low by a stereo camera): 0.5
# flags none of them (0.4: 98 of the 112; heights from the surface just inside the edge
# instead of from the plane: the rooms' right fits reach 0.5, 81-101 of the 112 caught).
SHOULDER_AT, SHOULDER_H, SHOULDER_SHARE = (0.03, 0.08), (-0.06, -0.015), 0.5


def profiles(depth_m: Tensor, K: Tensor, n: Tensor, offset: Tensor, centre: Tensor,
             eu: Tensor, ev: Tensor, half: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Offsets s [M] (+ outward) of the plane points on lines across the four edges (+u,
    −u, +v, −v) of fitted rectangles (centre, eu, ev [B,3], half [B,2]; planes
    ``n·p + offset = 0``), the heights h [B,4,N,M] (nan unknown) of what their rays see and
    how far beyond the edge [B,4,N,M] it lies (see :func:`bedfit_boards.seen_across`)."""
    return seen_across(depth_m, K, n, offset, centre, eu, ev, half, REACH, LINES, STEP)


def ridge(h: Tensor, beyond: Tensor) -> tuple[Tensor, Tensor]:
    """Per edge [B,4]: the share of its lines with a low board's top inside it (a seen point
    ``RIDGE`` above the plane ``RIDGE_IN`` inside the edge, and further in, up to ``BEHIND``,
    one ``DIP`` below that line's top) and the interquartile range (m; inf without such
    lines) of those lines' top heights (the median of their points at the top), from
    :func:`profiles`' h and beyond."""
    hk = torch.nan_to_num(h, nan=-1.0)
    hit = (beyond >= -RIDGE_IN[1]) & (beyond <= -RIDGE_IN[0]) & (hk >= RIDGE)
    top = torch.where(hit, hk, float("nan")).nanmedian(-1).values  # [B,4,N] per line
    behind = (torch.isfinite(h) & (beyond >= -BEHIND) & (beyond <= -0.03)
              & (h <= top[..., None] - DIP))
    line = hit.any(-1) & behind.any(-1)
    q = torch.nanquantile(torch.where(line, top, float("nan")), torch.tensor(
        [0.25, 0.75], dtype=h.dtype, device=h.device), dim=-1)
    return line.to(h.dtype).mean(-1), torch.nan_to_num(q[1] - q[0], nan=float("inf"))


def low_board(h: Tensor, beyond: Tensor, half: Tensor) -> Tensor:
    """[B] bool: an end of the rectangles (half sizes [B,2]) with a low board's top inside
    it on ``RIDGE_SHARE`` of its lines, level within ``RIDGE_SPREAD`` (:func:`ridge`)."""
    share, spread = ridge(h, beyond)
    ends, _ = split_ends(((share >= RIDGE_SHARE) & (spread <= RIDGE_SPREAD)).to(h.dtype), half)
    return ends.amax(-1) > 0


def domed(h: Tensor, half: Tensor) -> Tensor:
    """[B] bool: rectangles (half sizes [B,2]) whose surface slopes down to both long sides
    by ``DOME`` or more (module docstring), from :func:`profiles`' h."""
    def level(band: tuple[float, float]) -> Tensor:  # per line [B,4,N]
        # the points band[1] .. band[0] inside the edge (s = −REACH + STEP·index): a slice,
        # no mask (no host synchronisation on a GPU)
        lo, hi = round((REACH - band[1]) / STEP), round((REACH - band[0]) / STEP) + 1
        return h[..., lo:hi].nanmedian(-1).values

    slope = (level(DOME_OUT) - level(DOME_IN)).nanmedian(-1).values  # [B,4]
    _, sides = split_ends(torch.nan_to_num(slope, nan=-1.0), half)
    return sides.amin(-1) >= DOME


def shoulder(h: Tensor, beyond: Tensor, half: Tensor) -> Tensor:
    """[B] bool: rectangles (half sizes [B,2]) beyond both of whose long sides the surface
    goes on sloping down (``SHOULDER_AT``, ``SHOULDER_H``) on ``SHOULDER_SHARE`` of the
    lines, from :func:`profiles`' h and beyond (module docstring)."""
    hk = torch.nan_to_num(h, nan=-1.0)  # unknown: no slope
    hit = ((beyond >= SHOULDER_AT[0]) & (beyond <= SHOULDER_AT[1]) & (hk >= SHOULDER_H[0])
           & (hk <= SHOULDER_H[1]))
    _, sides = split_ends(hit.any(-1).to(h.dtype).mean(-1), half)
    return sides.amin(-1) >= SHOULDER_SHARE


def causes(h: Tensor, beyond: Tensor, half: Tensor) -> tuple[Tensor, Tensor]:
    """``(low_board, domed_cover)`` [B] bool each (``bedfit_result.WEAK_CAUSES``) of fitted
    rectangles (half sizes [B,2]) from their :func:`profiles`' h and beyond; a domed cover
    is :func:`domed` or :func:`shoulder`."""
    return low_board(h, beyond, half), domed(h, half) | shoulder(h, beyond, half)
