"""Bed finding, stage 4 (aside): the far end of the mattress beyond the camera's range.

Batched torch, part of :func:`bedfit_batch.fit_beds`. A time-of-flight camera reads nothing
beyond its range (Azure Kinect NFOV 3.86 m, Kinect v2 4.5 m of depth): where the mattress
runs away from the camera past that depth, its far end reads nothing, the measured rectangle
stops at the range's line 0.2-0.8 m short, and the candidate fails the size check. Nothing
beyond the line can be seen (the floor and the board there read nothing either), so the end
is put where a mattress usually ends, ``NOMINAL`` m from the end that is seen, and the fit
is ``weak`` (``beyond_range``): its length is assumed, not measured.

A candidate's end is beyond the range (:func:`range_ends`) when the candidate is too short
and fails no other check (as in :mod:`bedfit_shadow`), at least ``MIN_SEEN`` long, its end
lies at the depth of the frame's farthest readings (``REACH_QUANTILE`` of the valid blocks'
depths, less ``MARGIN``) and the plane rises in depth beyond it (``RISE``: past the end it is
at once out of range), along the bed (``ALIGN``: the range's line crosses the end, not a
side). Measured on the tuning rooms (median of 5 frames): the far ends of the 7 mattresses
refused as too short with that end cut by the range lay 0.02-0.11 m deeper than the frame's
99.5 % depth, and the plane rose 0.24-0.44 m of depth per metre beyond them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from disrt_core.geometry.bedfit_shadow import place_ends

# [choice] The length (m) given to a mattress whose far end is out of range: EU mattresses
# are 2.0 m, US ones 1.91-2.03 m (the generated ones 1.95-2.06 m).
NOMINAL = 2.0
MIN_SEEN = 1.0  # [choice] m of the mattress seen: at most 1 m of it is assumed
REACH_QUANTILE = 0.995  # the frame's farthest depth: robust to the odd flying pixel
MARGIN = 0.08  # [choice] m: the end this close to the farthest depth is at the range's line
RISE = 0.15  # [choice] m of depth per metre beyond the end, at least
# [choice] The long axis within 26° of the plane's steepest rise in depth (cosine ALIGN): the
# range's line (a line of equal depth on the plane) then crosses the bed's end, not a side.
# Crossing obliquely it cuts a side too, and the width is not measured: on the tuning rooms
# the 5 such fits (cosines 0.52-0.89) were 6-26 cm off, their widths 5-25 cm; the 2 above
# (0.955, 0.961) 7.6 cm (the usual length 5 cm short) and 4.4 cm. Any of 0.89-0.95 alike.
ALIGN = 0.9


def reach(points: Tensor, valid: Tensor) -> Tensor:
    """The farthest depth [B] (m, along the optical axis) the camera reads in each frame,
    from its blocks' points [B,N,3] (``valid`` [B,N]); 0 where none."""
    z = torch.where(valid, points[..., 2], float("nan"))
    return z.nanquantile(REACH_QUANTILE, dim=-1).nan_to_num(0.0)


def _far_end(ref: dict) -> tuple[Tensor, Tensor, Tensor]:
    """Of rectangles ``ref`` (centre, eu, ev, half [...,3 / 2]): the middle of the end of the
    long axis farther in depth, the outward unit direction there and the length."""
    half, centre = ref["half"], ref["centre"]
    axis = torch.where((half[..., 0] >= half[..., 1])[..., None], ref["eu"], ref["ev"])
    out = torch.where((axis[..., 2] >= 0)[..., None], axis, -axis)
    h = half.amax(-1)
    return centre + h[..., None] * out, out, 2 * h


def range_ends(short: Tensor, ref: dict, points: Tensor, valid: Tensor) -> tuple[dict, Tensor]:
    """The measured candidates ``ref`` (:func:`bedfit_edges.refine_some`) with, where
    ``short`` [B,K] (too short, no other check failing) and the far end is beyond the
    range (the frames' block points [B,N,3] and ``valid`` [B,N] give it, :func:`reach`;
    see the module docstring), that end put ``NOMINAL`` m from the other (marked
    ``moved``, support 0); and which [B,K]."""
    if not bool(short.any()):  # one host sync; the rest only for such candidates
        return ref, short
    end, out, length = _far_end(ref)
    normal = torch.linalg.cross(ref["eu"], ref["ev"])
    steepest = (1 - normal[..., 2] ** 2).clamp(min=0).sqrt()  # depth per metre along the plane
    use = (short & (length >= MIN_SEEN) & (end[..., 2] >= reach(points, valid)[:, None] - MARGIN)
           & (out[..., 2] >= RISE) & (out[..., 2] >= ALIGN * steepest))
    if not bool(use.any()):
        return ref, use
    point = end + (NOMINAL - length)[..., None] * out
    placed = place_ends({k: ref[k] for k in ("centre", "eu", "ev", "half", "support")}, use,
                        point, out)
    return {**ref, **placed, "moved": ref.get("moved", placed["moved"]) | placed["moved"]}, use


def keep_nominal(ref: dict, use: Tensor) -> tuple[dict, Tensor]:
    """The chosen fits ``ref`` (one a frame, after the edge and board stages) with, where
    ``use`` [B] (:func:`range_ends` placed their far end), that end put back ``NOMINAL`` m
    from the other one (the later stages measure the seen end again and may move it); and
    which edge [B,4] (+u, −u, +v, −v) that is."""
    if not bool(use.any()):
        return ref, torch.zeros_like(ref["moved"])
    end, out, length = _far_end(ref)
    placed = place_ends({k: ref[k] for k in ("centre", "eu", "ev", "half", "support")}, use,
                        end + (NOMINAL - length)[..., None] * out, out)
    return {**ref, **placed, "moved": ref["moved"] | placed["moved"]}, placed["moved"]
