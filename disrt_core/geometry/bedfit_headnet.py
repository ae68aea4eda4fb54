"""Bed finding, stage 4b: the head end from a small learned classifier on the height grid.

The three hand-set cues of :mod:`bedfit_head` (person, pillow, boards) get a head end wrong
where a footboard, a pile of bedding or a blanket folded at the foot outweighs them, and
they miss what stands around the bed (a wall right behind the head end, bedside tables).
This module reads the same fine grid of the chosen rectangle as profiles along the
mattress's long axis and scores them with weights fitted on generated rooms and SLP-like
bed scenes (``training/fit_head_end.py``; ``disrt_core/weights/bedfit_head.safetensors``,
5 kB).

**Features** (:func:`head_features`): the grid cells are pooled into ``S_BINS`` positions
along the long axis (8 of a quarter of the half-length over the mattress, and 2 of 15 cm
beyond each end, where boards and walls stand) times ``T_BANDS`` bands across it (|t|
below 0.35, 0.35 to 0.8 and 0.8 to 1 half-widths: a head and shoulders are wide, feet
narrow, a pillow spans the width; and a band 40 cm wide beside the mattress, where bedside
tables stand); per pool the mean height above the mattress (less a 2σ + 1 cm noise
allowance, points higher than the bed band counted as 0.7 m), the mean of the highest
point across the mattress at each position, the share of cells 5 cm or more above it, the
share of cells with readings, the spread of the height (a pillow's flat top against an
irregular pile), the share of cells with floor readings and of cells with points higher
than the bed band (walls, tall boards).

**Score** (:func:`score`): ``g(x) − g(flip(x)) + w·cues`` with ``flip`` reversing the
positions along the axis, ``g`` a one-hidden-layer network (tanh) on the standardised
features and ``cues`` the hand-set cues (which change sign with the end themselves): a bed
seen end for end gets the opposite score, and a bed that looks the same from both ends (an
empty mattress without pillow, boards or furniture) scores 0, the head end unknown. The
probability of the +axis end is sigmoid of the score; below the confidence stored with the
weights (``min_conf``, chosen in cross-validation so that few confident ends are wrong) the
head end is unknown, and also where the hand-set cues point the other way firmly, their
pillow cue too (:func:`head_known`). [choice] Fitted on generated rooms and bed scenes only,
so its rates hold for scenes like the generator's (see the training script's docstring for
the data and the rates).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor

from disrt_core.geometry.bedfit_head import head_against, head_bump, head_cues
from disrt_core.geometry.bedfit_incline import raised_section
from disrt_core.geometry.bedfit_rect import CH_HIGH, CH_LOW, FINE, axis_coords
from disrt_core.geometry.bedfit_table import hidden, mirrored, overbed_tops

WEIGHTS_PATH = Path(__file__).resolve().parents[1] / "weights" / "bedfit_head.safetensors"
S_INSIDE, S_BEYOND = 8, 2
S_BINS = S_INSIDE + 2 * S_BEYOND
BEYOND_M = 0.15  # length of each bin beyond an end
T_EDGES = (0.35, 0.8, 1.0)  # band limits across, in half-widths
BESIDE_M = 0.4  # and a band beside the mattress, this wide
T_BANDS = len(T_EDGES) + 1
CHANNELS = 7  # mean height, mean highest, share raised, seen, spread, floor seen, high
RAISED_M = 0.05
CUE_VETO = 1.0  # hand-set cues' log-odds against the classifier that make the end unknown
FEATURES = S_BINS * T_BANDS * CHANNELS


def head_features(height: Tensor, maps: Tensor, seen: Tensor, cell: Tensor, rect: Tensor,
                  sigma: Tensor) -> Tensor:
    """Pooled height features [B, S_BINS, T_BANDS, CHANNELS] of the fine grid of the chosen
    rectangle, positions from the −axis end to the +axis end of its long axis; height,
    seen [B,F,F] and the per-cell sums maps [B,CH,F,F] (``bedfit_rect.CH_*``; rows v,
    columns u), cell, sigma [B], rect [B,4] = (u0, u1, v0, v1)."""
    high = maps[:, CH_HIGH]
    B, dev, dt = height.shape[0], height.device, height.dtype
    s, t, half_l, half_w, u_long = axis_coords(cell, rect)
    ul = u_long[:, None, None]
    h = torch.where(high > 0, 0.7, height)
    above = (h - (2 * sigma + 0.01)[:, None, None]).clamp(min=0, max=0.7) * (seen > 0)
    # position bin along: beyond the −end, over the mattress, beyond the +end
    inner = S_BEYOND + torch.floor((s / half_l + 1) * S_INSIDE / 2).clamp(0, S_INSIDE - 1)
    lo = S_BEYOND - 1 - torch.floor((-s - half_l) / BEYOND_M)
    hi = S_BEYOND + S_INSIDE + torch.floor((s - half_l) / BEYOND_M)
    sb = torch.where(s < -half_l, lo, torch.where(s > half_l, hi, inner))
    ta = t.abs() / half_w
    tb = torch.zeros_like(ta)
    for edge in T_EDGES:
        tb = tb + (ta > edge).to(dt)
    use = (sb >= 0) & (sb < S_BINS) & (t.abs() <= half_w + BESIDE_M)
    idx = torch.where(use, sb * T_BANDS + tb, S_BINS * T_BANDS).long()
    idx = idx.flatten(1)
    n_pool = S_BINS * T_BANDS + 1

    def pool(x: Tensor) -> Tensor:
        out = torch.zeros(B, n_pool, device=dev, dtype=dt)
        return out.scatter_add_(1, idx, x.flatten(1))[:, :-1]

    n = pool(torch.ones_like(above)).clamp(min=1)
    mean = pool(above) / n
    spread = (pool(above ** 2) / n - mean ** 2).clamp(min=0).sqrt()
    raised = pool((above >= RAISED_M).to(dt)) / n
    seen_share = pool((seen > 0).to(dt)) / n
    # the highest point across the bed at each position along it, averaged per pool
    across = above * (ta <= T_EDGES[-1])
    top = torch.where(ul, across.amax(-1, keepdim=True).expand(-1, -1, FINE),
                      across.amax(-2, keepdim=True).expand(-1, FINE, -1))
    highest = pool(top) / n
    low = pool((maps[:, CH_LOW] > 0).to(dt)) / n
    tall = pool((high > 0).to(dt)) / n
    feats = torch.stack([mean, highest, raised, seen_share, spread, low, tall], -1)
    return feats.view(B, S_BINS, T_BANDS, CHANNELS)


def flip(features: Tensor) -> Tensor:
    """The features of the same bed seen from its other end."""
    return features.flip(1)


def score(features: Tensor, cues: Tensor, params: dict[str, Tensor]) -> Tensor:
    """Log-odds [B] of the head at the +axis end: g(x) − g(flip(x)) plus a weighted sum of
    the hand-set cues [B,3] of :mod:`bedfit_head` (each already changes sign with the
    end), see the module."""

    def g(x: Tensor) -> Tensor:
        z = (x.flatten(1) - params["mean"]) / params["std"]
        hidden = torch.tanh(z @ params["w1"] + params["b1"])
        return hidden @ params["w2"]

    return g(features) - g(flip(features)) + cues @ params["w_cues"]


@lru_cache(maxsize=4)
def _load(path: str, device: str, dtype: torch.dtype) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(path)
    except (OSError, SafetensorError) as err:  # ValueError: the node reports a failed fit
        raise ValueError(f"the head-end classifier's weights {path} cannot be read ({err}); "
                         "they ship with disrt_core: reinstall the package, or remake them "
                         "with training/fit_head_end.py") from err
    with torch.inference_mode(False):  # normal tensors, also when first loaded in a fit
        return {k: v.to(device=device, dtype=dtype) for k, v in tensors.items()}


def head_known(logit: Tensor, cue_logit: Tensor, pillow: Tensor, min_conf: float,
               bump: Tensor | None = None) -> Tensor:
    """[B] bool: the classifier's end is taken (confidence sigmoid(|logit|) ≥ ``min_conf``)
    unless the hand-set cues' own log-odds ``cue_logit`` (:mod:`bedfit_head`) point the other
    way by ``CUE_VETO`` or more while their pillow cue ``pillow`` [B] does too, or a
    head-like bump lies at the other end (``bump`` [B,2], :func:`bedfit_head.head_against`).
    [choice] In cross-validation on the generated rooms the cues' veto turns a quarter of
    the confident wrong ends into unknown ones at the cost of a few right ones; it guards
    rooms unlike the generator's, such as a free-standing bed (no wall behind it) with a
    footboard and a heap of bedding at the foot, where the classifier alone claimed the foot
    (test_bedfit_head) and the boards' cue did not. The boards' cue (weight 2) reaches the
    veto alone, and a footboard or wall higher than what stands at the head end is common
    (a footboard and no headboard, the head wall 0.4 m or more away). Where the pillow cue
    was for the classifier's end the veto took right ends only: 13 of 379 fits of tuning
    rooms (seeds 3000-3047, median of 5 frames, 8 sensors) and 11 of the 768 of seeds
    6000-6095, which the classifier never saw; so the pillow cue must agree with it."""
    sign = torch.sign(logit)
    veto = (cue_logit * sign <= -CUE_VETO) & (pillow * sign < 0)
    known = (torch.sigmoid(logit.abs()) >= min_conf) & ~veto
    return known if bump is None else known & ~head_against(bump, logit)


def min_confidence(path: Path | str = WEIGHTS_PATH) -> float:
    """The confidence below which the head end is taken as unknown, chosen with the
    weights in cross-validation (``training/fit_head_end.py``)."""
    return float(_load(str(path), "cpu", torch.float64)["min_conf"][0])


def head_logit(features: Tensor, cues: Tensor, path: Path | str = WEIGHTS_PATH) -> Tensor:
    """The shipped classifier's log-odds [B] of the head at the +axis end."""
    params = _load(str(path), str(features.device), features.dtype)
    return score(features, cues, params)


def _decide(height: Tensor, seen: Tensor, maps: Tensor, cell: Tensor, rect: Tensor,
            sigma: Tensor, auto: bool, min_conf: float) -> tuple[Tensor, Tensor, Tensor]:
    """The classifier's log-odds [B] of the +axis end (0 without ``auto``), whether its end
    is known [B] (:func:`head_known`) and the hand-set cues [B,3] (+: the +axis end)."""
    cue_logit, cues = head_cues(height, maps[:, CH_HIGH], cell, rect, sigma)
    logit = torch.zeros_like(sigma)
    if auto:
        logit = head_logit(head_features(height, maps, seen, cell, rect, sigma), cues)
    known = head_known(logit, cue_logit, cues[:, 1], min_conf,
                       head_bump(height, seen, cell, rect, sigma))
    return logit, known, cues


def head_end(height: Tensor, maps: Tensor, seen: Tensor, cell: Tensor, rect: Tensor,
             sigma: Tensor, auto: bool, min_conf: float
             ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The head end of the chosen rectangles from their fine grids (height, seen [B,F,F],
    maps [B,CH,F,F], cell, sigma [B], rect [B,4], as :func:`head_features`): the sign [B]
    (+1: the +axis end), its confidence [B] in [0.5, 1], whether it is known [B]
    (:func:`head_known`), the hand-set cues [B,3] (+: the +axis end) and the angle [B] of
    a raised section at an end (:func:`bedfit_incline.raised_section`, degrees, 0: none).

    [choice] An overbed table's top (:func:`bedfit_table.overbed_tops`) is taken as
    unseen, once alone and once with its mirror at the other end; the end is known only
    where both choose it and both are sure. Hidden alone, a table over the chest takes the
    head's and torso's volume away and the feet's end wins; mirrored, a table over the feet
    hides the pillow too and a footboard wins (test bedroom, 64 views each, confidently
    wrong hidden alone / mirrored / both required: 32 / 0 / 0 with the table over the head
    half, 1 / 16 / 1 over the foot half; benchmark notes of 2026-12-07).

    [choice] A raised section at one end is an adjustable bed's head section: it is the head
    end, known (confidence at least ``min_conf``), unless the classifier confidently chose
    the other end, which then is unknown (a foot section can be raised too). Without
    ``auto`` the classifier is not run (nor its weights read) and its log-odds are 0; the
    caller takes the given side."""
    raised = raised_section(height, seen, cell, rect)  # [B,2] at the −/+ axis end
    tops = overbed_tops(height, seen, cell, rect)
    logit, known, cues = _decide(*hidden(height, seen, tops), maps, cell, rect, sigma,
                                 auto, min_conf)
    if bool(tops.any()):  # frames without a top get the same answer twice
        both = tops | mirrored(tops, cell, rect)
        logit2, known2, _ = _decide(*hidden(height, seen, both), maps, cell, rect, sigma,
                                    auto, min_conf)
        agree = (logit >= 0) == (logit2 >= 0)
        known = known & known2 & agree
        logit = torch.where(agree & (logit2.abs() < logit.abs()), logit2, logit)
    sign, conf = torch.where(logit >= 0, 1.0, -1.0), torch.sigmoid(logit.abs())
    at = raised > 0
    alone, up = at[:, 0] ^ at[:, 1], torch.where(at[:, 1], 1.0, -1.0)  # the raised end
    take = alone & ~(known & (sign != up))
    conf = torch.where(take, torch.sigmoid(logit * up).clamp(min=min_conf), conf)
    sign, known = torch.where(take, up, sign), torch.where(alone, take, known)
    return sign, conf, known, cues, raised.amax(-1)
