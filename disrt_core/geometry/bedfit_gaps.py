"""Bed finding (aside): thin lines without readings across a mattress bridged for the fine
grid's opening, on a second pass over the refused frames.

Part of :func:`bedfit_batch.fit_beds`. A stereo camera (RealSense D4xx) reads nothing along
a body's outline and in speckles on plain bedding: in the fine grid (:func:`bedfit_rect.
fine_maps`) these are lines of unknown cells that cut the mattress beside a person lying on
it into strips a few cells wide, and the opening that removes thin structures (rails, an
arm, walls) deletes the strips; the bed region loses its edge and the rectangle fails the
size or fill check. :func:`kept`: an unknown cell with bed cells on both sides of it along
its row or column, at most ``GAP`` apart, counts as bed for the opening only, and the bed
cells the opening then keeps stay bed; a gap that reads something (the floor between the
bed and a table) or a wide one (a shadow) still separates.

[why a second pass] Bridging on every frame moved the edges of fits that passed anyway by
a few cm, and the raw-edge stage then latched onto another step now and then: on the tuning
rooms 3000-3047 it gained 5 right fits but turned 2 weak fits into unflagged wrong ones
(8-10 cm off). Only frames refused without it are fitted again with it
(:func:`refit_refused`), so a fit that the first pass accepts is the same fit.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from disrt_core.geometry.bedfit_regions import dilate, enclosed_cells, erode
from disrt_core.geometry.bedfit_result import BedFits

# [choice] m: the widest unread line bridged. Tuning rooms 3000-3047, bridging every frame:
# 0.06 took refusals 24 -> 21, 0.1 24 -> 19 (lines of 2-3 cells at 3 cm cells).
GAP = 0.1


def kept(hard: Tensor, opened: Tensor, known: Tensor, cell: Tensor, size: int) -> Tensor:
    """The opening ``opened`` [B,K,F,F] (0/1, ``size`` cells) of the bed cells ``hard``
    plus the bed cells that the opening keeps once the unknown cells (``known`` False)
    between bed cells at most ``GAP`` m apart (cells [B,K] m) are bed; the bridging cells
    themselves stay unknown (the fine grid's enclosed holes count them)."""
    reach = (GAP / cell).floor().clamp(min=1)  # a run of r unknown cells needs reach r
    gap = enclosed_cells(hard > 0, reach) & ~known
    joined = dilate(erode(torch.maximum(hard, gap.to(hard.dtype)), size), size)
    return torch.maximum(opened, joined * hard)


def refit_refused(fit: Callable[..., BedFits], depth: Tensor, K: Tensor, opt: dict) -> BedFits:
    """``fit(depth, K, opt)`` (BedFits), and the frames it refuses fitted again with the
    bridging (``opt["bridge"]``): their second fit where that one passes. The refit frames
    are chosen by their own first fit, so a frame's result still does not depend on its
    batch."""
    first = fit(depth, K, opt)
    if bool(first.ok.all()):
        return first
    again = (~first.ok).nonzero()[:, 0]
    second = fit(depth[again], K[again], {**opt, "bridge": True, "debug": None})
    take = again[second.ok]
    if take.numel() == 0:
        return first
    for name in type(first).__dataclass_fields__:  # every field is [B,...]
        getattr(first, name)[take] = getattr(second, name)[second.ok]
    return first
