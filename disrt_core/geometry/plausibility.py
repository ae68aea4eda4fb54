"""Does this depth make sense for a camera over a bed? Checks that stop a confident answer
to nonsense: depth in the wrong units, a bed much nearer or farther than its pose says, a
bed region without readings.

Each check returns ``None`` when the frame is fine, else a message that names the likely
cause and the fix (the node reports it as an ERROR in /diagnostics and publishes no pose).

* :func:`units_problem` on the decoded frame (mm, float): a float (32FC1) image is metres by
  REP 118; one whose readings have a median above 20 is most likely millimetres. A 16UC1
  image is millimetres; a median below 100 (10 cm) is most likely metres or decimetres.
* :func:`bed_region_problem` on the network grid in mm (SLP convention, before
  ``normalize_depth``: the bed at ``bed_mm``, a surface h m above it at ``bed_mm − 1000·h``,
  0 = no reading), i.e. what the bed pose (given, from corners or fitted) makes of the frame:
  under half of the grid with readings; over half of the readings more than 10 cm below the
  mattress plane (the camera is farther from the bed than its pose says, or the pose is on
  the wrong surface); over half more than 0.75 m above it (nearer than its pose says). A
  person lying in bed leaves most of the region within 0.4 m of the mattress.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

FLOAT_METRES_MAX = 20.0  # a 32FC1 median above this is not metres over a bed
INT_MM_MIN = 100.0  # a 16UC1 median below this (10 cm) is not millimetres over a bed
SAMPLE = 16384  # pixels the units check looks at
MIN_COVERAGE = 0.5
BELOW_M, ABOVE_M = -0.10, 0.75


def units_problem(values: np.ndarray, encoding: str) -> str | None:
    """The raw values of a depth image as sent (metres for float encodings, millimetres for
    16-bit ones); a message when their size says the units are others."""
    # a strided sample of ~16k pixels: the thresholds lie orders of magnitude apart, and a
    # median over a whole 640×480 frame costs ~2 ms on the node's frame path
    sample = values.ravel()[::max(1, values.size // SAMPLE)]
    finite = sample[np.isfinite(sample) & (sample > 0)]
    if finite.size == 0:
        return None  # an empty frame is another check's business
    median = float(np.median(finite))
    if encoding in ("32FC1", "64FC1") and median > FLOAT_METRES_MAX:
        return (f"the {encoding} depth image holds values around {median:.0f}: that is "
                "millimetres, but float depth images are metres (REP 118); make the driver "
                "publish metres (or 16UC1 millimetres)")
    if encoding in ("16UC1", "mono16") and median < INT_MM_MIN:
        return (f"the {encoding} depth image holds values around {median:.1f}: 16-bit depth "
                "images are millimetres, these look like metres or another unit; fix the "
                "driver's depth units")
    return None


def bed_region_stats(net_mm: Tensor, bed_mm: float) -> Tensor:
    """[B,4] float: per frame of the network grid [B,128,54] (mm, SLP convention,
    unclipped) the share of the grid with readings, the shares of the readings more than
    10 cm below and more than 0.75 m above the mattress plane, and their median height (m;
    0 without readings). Tensor work without a host synchronisation (it runs inside the
    node's preprocessing graph, :class:`disrt_core.geometry.resample.FrameResampler`)."""
    x = net_mm.reshape(net_mm.shape[0], -1).float()
    valid = x > 0
    height = (bed_mm - x) / 1000.0
    n = valid.sum(1).clamp(min=1)
    below = ((height < BELOW_M) & valid).sum(1) / n
    above = ((height > ABOVE_M) & valid).sum(1) / n
    med = torch.nanmedian(torch.where(valid, height, torch.full_like(height, float("nan"))),
                          dim=1).values.nan_to_num(0.0)
    return torch.stack([valid.float().mean(1), below, above, med], -1)


def region_problems(stats) -> list[str | None]:
    """None or what is wrong with each frame's bed region (see the module docstring), from
    :func:`bed_region_stats` (a tensor or its ``tolist()``)."""
    rows = stats.tolist() if isinstance(stats, Tensor) else stats
    problems: list[str | None] = []
    for c, b, a, m in rows:
        if c < MIN_COVERAGE:
            problems.append(
                f"only {c:.0%} of the bed region has depth readings: the bed is not where its "
                "pose puts it, or it is out of the camera's range; check the bed region "
                "(disrt-fit-bed shows it)")
        elif b > 0.5:
            problems.append(
                f"the bed region's depth lies {-m:.2f} m beyond the mattress plane "
                f"({b:.0%} of it more than 10 cm below): the camera is farther from the bed "
                "than its pose says (camera_height_m / T_cam_bed), or the pose is not on the "
                "mattress; measure the mount or use bed_region auto")
        elif a > 0.5:
            problems.append(
                f"the bed region's depth lies {m:.2f} m in front of the mattress plane "
                f"({a:.0%} of it more than 0.75 m above): the camera is nearer to the bed "
                "than its pose says, or something covers the view; measure the mount or use "
                "bed_region auto")
        else:
            problems.append(None)
    return problems


def bed_region_problem(net_mm: Tensor, bed_mm: float) -> list[str | None]:
    """Per frame of the network grid [B,128,54] (mm, SLP convention, unclipped), None or
    what is wrong with the bed region (see the module docstring)."""
    return region_problems(bed_region_stats(net_mm, bed_mm))
