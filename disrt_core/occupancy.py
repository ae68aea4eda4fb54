"""Is someone lying in the bed? Evidence from the depth and from the network's own answer.

The network always answers with a body, also for an empty bed, a pile of pillows or the
floor. Whether a person really lies on the mattress is decided here from the network input
(normalised depth on the 128×54 grid, ``geometry.bedframe``: 1 = the mattress, lower =
higher above it, 0 = 715 mm or more above it, or no reading) and the predicted mesh (label
frame), as a probability (:func:`presence_probability`) from a logistic model of
:data:`FEATURES`:

* ``agreement`` — the share of the predicted body's top-down footprint (cells where its top
  is ≥ 4 cm above the mattress) where something is seen at least 40 % as high as the body
  there (a blanket over a body is as high or higher; an empty bed is not): a body answered
  to a flat bed finds nothing under it;
* ``contrast`` — the mean height seen over that footprint minus the mean height seen in a
  band 6–15 cm around it (m): a body stands out from the mattress beside it, depth noise
  and a flat blanket do not;
* ``raised`` — the share of the network grid seen 5 cm or more above the mattress;
* ``volume`` — what lies above the mattress, m³ (the sum of heights times the cell area,
  up to 0.715 m a cell): an adult lying in bed is 0.05–0.1 m³, a pillow about 0.01 m³;
* ``shape_error`` — the mean absolute difference (m) between the predicted body's top and
  what is seen, over its footprint;
* ``high`` — the share of the grid seen 10 cm or more above the mattress (:data:`HIGH_M`): a
  person's trunk and thighs under a cover are, a folded throw or a crumpled blanket on an
  empty bed (2-8 cm) mostly is not;
* ``length`` — the share of the rows below the head end's quarter (:data:`HEAD_ROWS`, where
  the pillows lie) whose highest smoothed reading is 8 cm or more above the mattress
  (:data:`LENGTH_M`): a person lying reaches from the pillow to the feet, a throw over the
  legs or a thing on the bed covers a part of that.

The last two do not look at the network's answer: when the network's body lies beside the
person seen (a curled or half-covered person the network got wrong), the first, agreement
features fail, and a person was then taken for an empty bed.

The heights seen are averaged over 5×5 cells first (:func:`smoothed_heights`): a stereo
camera's noise at 3 m is several cm a pixel. Cells without a reading (0 in the input) count
for neither side.

The bed's state (:func:`occupancy_state`, :data:`STATES`): ``sitting_on_edge`` when
:func:`sitting_probability` says so, else ``in_bed`` when a person is present, else
``empty``. Sitting is a logistic model of the shares of the bed region seen more than 0.40,
0.55 and 0.70 m above the mattress (:data:`SITTING_HEIGHTS_M`: an upright trunk and head;
lying people, also with a knee up, stay lower over most of the bed) and of the presence
probability (a sitter's outline matches no lying body). The shares need the heights
unclipped, i.e. before ``normalize_depth`` (the network grid in mm, SLP convention). The
grid draws a tall thing displaced away from the camera, so a sitter's head and shoulders
mostly fall beyond its edge (82.8 % of sitters right on the held-out scenes with this
model alone). Given the raw frame's trunk evidence (:mod:`disrt_core.occupancy_raw`: the
areas of a trunk over the mattress near a long edge, found where the readings really are,
and how much of that band the camera sees) a second model adds the trunk areas
(:data:`SITTING_RAW_COEFFICIENTS`): where the band is seen (:data:`MIN_COVERAGE`) it
decides; where it is not, a trunk found counts but its absence does not (the larger of the
two probabilities). Without the raw frame (the Estimator alone, or old callers) the first
model decides as before.

The presence coefficients (:data:`COEFFICIENTS`) were fitted again on 2026-12-07 with the
two features that do not look at the network's answer (``high``, ``length``), on 768
generated scenes (``python benchmarks/bench_occupancy.py --n 768 --seed 5 --fit``; generator
1.3, the default of 2026-12-06) and checked on 768 others (seed 6): in bed 96.7 %, empty
99.3 %, sitting 99.6 %, ``present`` 98.2 % (the five features before, on 384 of them: in
bed 86.4 %); with 40 % of the covers rumpled (``disrt_core.sim.rumple``): 98.3, 98.9, 98.4,
98.0 %. The sitting models (:data:`SITTING_COEFFICIENTS`,
:data:`SITTING_RAW_COEFFICIENTS`) were kept: refitted beside the new presence model they were
no better on held-out scenes (sitting 98.5 against 99.3 %) and swapped the signs of the tall
shares' weights (the shares are nearly collinear). [choice]

On 2026-12-06 (third session) all three were fitted for
generator 1.3, whose beds may carry a second blanket thrown over the first (also empty
beds: a crumpled duvet or a folded throw 5-8 cm high), and the default continued on it
(``python benchmarks/bench_occupancy.py --n 384 --seed 5 --fit``), checked on seed 6: in bed
86.4 %, empty 99.2 %, sitting 99.3 %, ``present`` 94.0 %. With the coefficients before on
the same scenes: 99.2, 89.2, 99.3 and 85.7 %: one empty bed in nine with a throw on it was
taken for someone lying there.

Before that they were fitted on 384 generated scenes of seed 5 (room
scenes of seven sensors and SLP-like bed scenes, a third each lying in bed, empty beds with
pillows, blankets and things on them, someone sitting on the edge; ``python
benchmarks/bench_occupancy.py --n 384 --fit``, the default weights before their rooms
retrain) and checked on 384 others
(seed 6): in bed 96.0 %, empty 99.3 %, sitting 99.1 % right (the grid's model alone:
96.0, 98.6, 82.8 %), ``present`` (lying in bed or not) 96.4 %; on 384 scenes of seed 7,
looked at once at the end: 94.5, 99.2, 97.0 % (alone: 94.5, 96.0, 81.1 %; the in-bed
misses are the presence model's). With the default retrained on rooms, same coefficients,
seed 6: in bed 97.6 %, empty 98.6 %, sitting 99.1 %, ``present`` 95.6 %; BENCHMARKS.md.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from disrt_core.constants import const
from disrt_core.geometry.bedframe import (
    DEPTH_RANGE_MM,
    NET_PITCH_X,
    NET_PITCH_Y,
    NET_SHAPE,
    label_to_net,
)
from disrt_core.occupancy_raw import MIN_COVERAGE

FEATURES = ("agreement", "contrast", "raised", "volume", "shape_error", "high", "length")
#: Logistic model: p = σ(w · features + b), [w..., b] in :data:`FEATURES` order.
COEFFICIENTS = (10.165, -0.854, -11.973, -8.728, -46.271, 16.264, 8.257, -9.142)
FOOTPRINT_M = 0.04  # body cells: its top at least this high above the mattress
RAISED_M = 0.05
HIGH_M = 0.10
LENGTH_M = 0.08
HEAD_ROWS = 32  # the head end's quarter of the grid's 128 rows
AGREE_SHARE = 0.4
SMOOTH = 5  # cells of the neighbourhood the observed heights are averaged over
STATES = ("in_bed", "empty", "sitting_on_edge")
IN_BED, EMPTY, SITTING = range(3)
SITTING_HEIGHTS_M = (0.40, 0.55, 0.70)  # the tall shares of sitting_probability
#: Logistic model of sitting: p = σ(w · [tall shares..., present_prob] + b).
SITTING_COEFFICIENTS = (63.06, 11.63, 27.01, -3.23, -1.97)
#: With the raw frame's trunk evidence: p = σ(w · [tall shares..., present_prob, trunk
#: areas in dm² above occupancy_raw.TRUNK_HEIGHTS_M...] + b).
SITTING_RAW_COEFFICIENTS = (-11.49, 2.77, 2.87, -12.36, 0.19, 3.76, 2.61, -5.26)


def observed_heights(depth: Tensor) -> tuple[Tensor, Tensor]:
    """Heights above the mattress (m) [B,128,54] from the normalised network input
    [B,1,128,54] or [B,128,54], and where there is a reading (bool)."""
    x = depth.reshape(depth.shape[0], *NET_SHAPE).float()
    return (1.0 - x) * (DEPTH_RANGE_MM / 1000.0), x > 0


def body_top_map(vertices: Tensor) -> Tensor:
    """The top (max z, m) of bodies [B,V,3] (label frame) on the network grid [B,128,54],
    closed over 3×3 cells to fill the gaps between vertices; −inf off the body."""
    batch = vertices.shape[0]
    rows, cols = NET_SHAPE
    r, c = label_to_net(vertices[..., 0], vertices[..., 1])
    r, c = r.round().long(), c.round().long()
    inside = (r >= 0) & (r < rows) & (c >= 0) & (c < cols)
    flat = torch.where(inside, r * cols + c, torch.zeros_like(r))
    z = torch.where(inside, vertices[..., 2], torch.full_like(vertices[..., 2], -math.inf))
    top = torch.full((batch, rows * cols), -math.inf, device=vertices.device,
                     dtype=vertices.dtype)
    top.scatter_reduce_(1, flat, z, reduce="amax", include_self=True)
    top = F.max_pool2d(top.view(batch, 1, rows, cols), 3, stride=1, padding=1)
    # Closing: the maximum filter filled the gaps between vertices; a minimum filter takes
    # back what it added around the outline (the border counts as inside).
    padded = F.pad(-top, (1, 1, 1, 1), value=-math.inf)
    return -F.max_pool2d(padded, 3, stride=1)[:, 0]


def smoothed_heights(depth: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`observed_heights` averaged over the readings of each 5×5 neighbourhood
    (about 7.5 cm: the depth noise of a stereo camera at 3 m, several cm a pixel, averages
    out, a body does not), and where any reading is near."""
    seen, valid = observed_heights(depth)
    w = valid.float()[:, None]
    box = torch.ones(1, 1, SMOOTH, SMOOTH, device=seen.device) / SMOOTH**2
    total = F.conv2d((seen * valid)[:, None], box, padding=SMOOTH // 2)
    weight = F.conv2d(w, box, padding=SMOOTH // 2)
    return (total / weight.clamp(min=1e-6))[:, 0], weight[:, 0] > 0.2


def _box_max(x: Tensor, k: int) -> Tensor:
    """The maximum over each k×k neighbourhood of x [B,1,H,W] (odd k, same size), as a row
    then a column pass: the same values as one k×k pool at 2k instead of k² reads a cell
    (5× faster for k = 21 on a CPU)."""
    rows = F.max_pool2d(x, (1, k), stride=1, padding=(0, k // 2))
    return F.max_pool2d(rows, (k, 1), stride=1, padding=(k // 2, 0))


def occupancy_features(depth: Tensor, vertices: Tensor) -> Tensor:
    """[B, len(FEATURES)] from the network input (see :func:`observed_heights`) and the
    predicted mesh [B,V,3] (label frame, metres)."""
    seen, valid = smoothed_heights(depth)
    top = body_top_map(vertices.float())
    footprint = (top > FOOTPRINT_M) & valid
    area = footprint.flatten(1).sum(1).clamp(min=1)
    agree = (seen >= AGREE_SHARE * top) & footprint
    agreement = agree.flatten(1).sum(1) / area
    shape_error = torch.where(footprint, (seen - top).abs(), torch.zeros_like(seen))
    shape_error = shape_error.flatten(1).sum(1) / area
    # What lies on the body's outline against what lies around it (4..10 cells out).
    body = (top > FOOTPRINT_M).float()[:, None]
    near = _box_max(body, 9)[:, 0] > 0
    far = _box_max(body, 21)[:, 0] > 0
    ring = far & ~near & valid
    inside = torch.where(footprint, seen, torch.zeros_like(seen)).flatten(1).sum(1) / area
    around = torch.where(ring, seen, torch.zeros_like(seen)).flatten(1).sum(1) / \
        ring.flatten(1).sum(1).clamp(min=1)
    n_valid = valid.flatten(1).sum(1).clamp(min=1)
    raised = ((seen >= RAISED_M) & valid).flatten(1).sum(1) / n_valid
    cell = NET_PITCH_X * NET_PITCH_Y
    shown = torch.where(valid, seen, torch.zeros_like(seen))  # 0 where nothing was read
    volume = shown.clamp(min=0).flatten(1).sum(1)
    high = ((seen >= HIGH_M) & valid).flatten(1).sum(1) / n_valid
    length = (shown[:, HEAD_ROWS:].amax(2) >= LENGTH_M).float().mean(1)
    return torch.stack([agreement, inside - around, raised, volume * cell, shape_error, high,
                        length], -1)


def presence_probability(depth: Tensor, vertices: Tensor,
                         coefficients=COEFFICIENTS) -> Tensor:
    """Probability [B] that a person lies on the mattress (see the module docstring)."""
    features = occupancy_features(depth, vertices)
    # made once per device: a copy from the host could not be captured in the estimator's
    # CUDA graph
    coef = const(tuple(float(c) for c in coefficients), features.device, torch.float32)
    return torch.sigmoid(features @ coef[:-1] + coef[-1])


def tall_shares(net_mm: Tensor, bed_mm: float | Tensor) -> Tensor:
    """[B, 3]: shares of the network grid (mm, SLP convention, unclipped; 0 = no reading)
    seen more than each of :data:`SITTING_HEIGHTS_M` above the mattress."""
    # a number stays a number: a tensor made from it would be a copy to the device (not
    # capturable in a CUDA graph, frame_outputs)
    bed = bed_mm.to(net_mm.device).reshape(-1, 1, 1) if isinstance(bed_mm, Tensor) \
        else float(bed_mm)
    x = net_mm.reshape(net_mm.shape[0], *NET_SHAPE).float()
    height = torch.where(x > 0, (bed - x) / 1000.0, torch.full_like(x, -1.0))
    return torch.stack([(height > h).flatten(1).float().mean(1) for h in SITTING_HEIGHTS_M],
                       -1)


def sitting_from(shares: Tensor, present_prob: Tensor, trunk: Tensor | None = None,
                 coefficients=SITTING_COEFFICIENTS,
                 raw_coefficients=SITTING_RAW_COEFFICIENTS) -> Tensor:
    """Probability [B] that someone sits on the edge from the tall shares [B,3]
    (:func:`tall_shares`), the presence probability [B] and, when there is a raw frame, its
    trunk evidence [B,4] (:func:`disrt_core.occupancy_raw.trunk_features`; rows of NaN for
    frames without one); see the module docstring."""
    x = torch.cat([shares.float(), present_prob.float()[:, None].to(shares.device)], -1)
    coef = const(coefficients, x.device, x.dtype)
    p = torch.sigmoid(x @ coef[:-1] + coef[-1])
    if trunk is None:
        return p
    trunk = trunk.to(x)
    areas_dm2 = 100.0 * torch.nan_to_num(trunk[:, :3], nan=0.0)
    raw = const(raw_coefficients, x.device, x.dtype)
    p_raw = torch.sigmoid(torch.cat([x, areas_dm2], -1) @ raw[:-1] + raw[-1])
    seen = trunk[:, 3] >= MIN_COVERAGE  # NaN (no raw frame) is not seen
    return torch.where(seen, p_raw, torch.maximum(p, p_raw))


def sitting_probability(present_prob: Tensor, net_mm: Tensor, bed_mm: float | Tensor,
                        trunk: Tensor | None = None) -> Tensor:
    """Probability [B] that someone sits on the bed's edge (see the module docstring)."""
    return sitting_from(tall_shares(net_mm, bed_mm), present_prob, trunk)


def occupancy_state(present_prob: Tensor, net_mm: Tensor, bed_mm: float | Tensor,
                    trunk: Tensor | None = None) -> Tensor:
    """The bed's state [B] (index into :data:`STATES`, see the module docstring); ``trunk``:
    the raw frame's evidence (:func:`disrt_core.occupancy_raw.trunk_features`), if any."""
    sitting = sitting_probability(present_prob, net_mm, bed_mm, trunk) >= 0.5
    return torch.where(sitting, SITTING, torch.where(present_prob >= 0.5, IN_BED, EMPTY))
