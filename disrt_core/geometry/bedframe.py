"""The bed ("label") frame and the two image grids tied to it (SPEC §1.4, §7.3, §7.6).

**Label frame** (metres, right-handed): x across the bed (growing with image column), y
along the bed toward the head end (row 0 of the images), z up from the mattress surface.
It is SLP's pressure-mat (PM) frame shifted by ``O_T_slp``: with 1 cm PM cells,

    x_L = 0.01·col_pm − 0.0678,    y_L = 1.8304 − 0.01·row_pm.

**PM grid**: 192 rows × 84 columns of 1 cm. **Network grid**: the 128 × 54 image the network
sees, made from the PM-aligned depth by ``scipy.ndimage.zoom(·, 0.665, order=1)`` (corner-
aligned: output index o samples input o·(n_in−1)/(n_out−1)) and a one-column crop per side:

    row_pm = r·191/127,    col_pm = (c+1)·83/55.

**Depth normalisation** (the "real" branch of SPEC §7.6): a depth image in millimetres whose
bed surface lies at ``bed_mm`` from the camera is shifted so the bed sits at 2215 mm, then
``x = (clamp(d, 1500, 2215) − 1500) / 715``: 1 on the bed, falling with height above it, 0 at
715 mm above the bed or higher (and for missing readings, d = 0).

The mapping functions take floats, numpy arrays or torch tensors and return the same kind.
"""

from __future__ import annotations

PM_SHAPE = (192, 84)  # rows (head end first), cols
PM_CELL_M = 0.01
NET_SHAPE = (128, 54)
PM_ZOOM = 0.665  # PM grid -> 128 x 56, then crop one column per side (SPEC §7.3)

#: Label origin in the PM frame (SPEC §1.4): x_L = x_pm + O_T_SLP[0], y_L = -y_pm - O_T_SLP[1].
O_T_SLP = (-0.0678, -1.8304, 0.0)

SLP_DANALAB_BED_MM = 2101.0  # camera-to-bed distance, danaLab (home setting)
SLP_SIMLAB_BED_MM = 2264.0  # simLab (hospital setting)
MAX_DEPTH_MM = 2215.0  # MAX_DEPTH_SYNTH: where the bed is put before normalising
MIN_DEPTH_MM = 1500.0
DEPTH_RANGE_MM = MAX_DEPTH_MM - MIN_DEPTH_MM  # 715 mm of height above the bed is visible

#: Network-grid pitch in metres (columns, rows): 0.01·83/55 and 0.01·191/127.
NET_PITCH_X = PM_CELL_M * (PM_SHAPE[1] - 1) / (NET_SHAPE[1] + 1)
NET_PITCH_Y = PM_CELL_M * (PM_SHAPE[0] - 1) / (NET_SHAPE[0] - 1)

#: Centre of the PM grid in the label frame: where a bed's centre is put for other cameras.
BED_CENTRE_LABEL = (
    PM_CELL_M * (PM_SHAPE[1] - 1) / 2 + O_T_SLP[0],
    -O_T_SLP[1] - PM_CELL_M * (PM_SHAPE[0] - 1) / 2,
)


def pm_to_label(row_pm, col_pm):
    """PM pixel (row, col), any real values -> label (x, y) in metres."""
    return PM_CELL_M * col_pm + O_T_SLP[0], -O_T_SLP[1] - PM_CELL_M * row_pm


def label_to_pm(x, y):
    """Label (x, y) in metres -> PM pixel (row, col) as real values."""
    return (-O_T_SLP[1] - y) / PM_CELL_M, (x - O_T_SLP[0]) / PM_CELL_M


def net_to_label(row, col):
    """Network-grid pixel (row, col) of the 128×54 image -> label (x, y) in metres."""
    row_pm = row * (PM_SHAPE[0] - 1) / (NET_SHAPE[0] - 1)
    col_pm = (col + 1) * (PM_SHAPE[1] - 1) / (NET_SHAPE[1] + 1)
    return pm_to_label(row_pm, col_pm)


def label_to_net(x, y):
    """Label (x, y) in metres -> network-grid pixel (row, col) as real values."""
    row_pm, col_pm = label_to_pm(x, y)
    return (row_pm * (NET_SHAPE[0] - 1) / (PM_SHAPE[0] - 1),
            col_pm * (NET_SHAPE[1] + 1) / (PM_SHAPE[1] - 1) - 1)


def normalize_depth(depth_mm, bed_mm):
    """Network input in [0, 1] from depth in mm whose bed lies at ``bed_mm`` (SPEC §7.6).

    ``depth_mm``: numpy array or torch tensor (any integer or float dtype); ``bed_mm`` a
    float or broadcastable array (e.g. [B,1,1,1]): SLP danaLab 2101, simLab 2264; for
    BodyPressureSD pairs the max over both images of the pair. SPEC's ``max(d, 0)`` step is
    implied by the clamp to [1500, 2215].
    """
    shifted = depth_mm + (MAX_DEPTH_MM - bed_mm)
    return (shifted.clip(MIN_DEPTH_MM, MAX_DEPTH_MM) - MIN_DEPTH_MM) / DEPTH_RANGE_MM


def height_to_depth_mm(height_m, bed_mm=SLP_DANALAB_BED_MM):
    """Depth in mm, SLP convention, of a surface ``height_m`` above the bed: bed_mm − 1000·h.

    This is how heights above the bed from any camera are expressed for the network.
    """
    return bed_mm - 1000.0 * height_m


def depth_mm_to_height(depth_mm, bed_mm=SLP_DANALAB_BED_MM):
    """Height above the bed in metres of a depth (mm, SLP convention): (bed_mm − d) / 1000."""
    return (bed_mm - depth_mm) / 1000.0
