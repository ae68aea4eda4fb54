"""Spring-bed contact: how deep a body sinks into the mattress, and the pressure map.

Model [choice]: a **Winkler foundation** (a bed of independent vertical springs): every
grid cell of the mattress pushes back with pressure ``p = k·δ`` where δ is how far the
body's underside lies below the undeformed mattress top and ``k`` (N/m³) the mattress
stiffness per unit area. The body is rigid: it is first put down with its lowest point on
the mattress top, then lowered by ``s`` until the springs carry its weight,

    Σ_cells k · max(0, s − b_i) · A = m·g,

with ``b_i`` the height of the body's underside above its lowest point in cell i and A the
cell area. The left side is piecewise linear and increasing in ``s``, so ``s`` is found
exactly by sorting the ``b_i`` (:func:`sink_depth`, "water filling"). A heavier body sinks
deeper; a stiffer mattress less. The integrated pressure equals the weight exactly, up to
the cells outside the grid (none for a body on the mattress).

The default stiffness range U[6, 15]·10⁴ N/m³ puts a 70 kg adult 3–6 cm deep with peak
pressures of 4–12 kPa (30–90 mmHg), the range pressure-mat studies of foam hospital
mattresses report. The mattress surface one sees beside the body sags with it: the visible
top is ``−blur(δ)`` (Gaussian, σ = 4 cm), the cover fabric spreading the dent.
"""

from __future__ import annotations

import torch
from torch import Tensor

from disrt_core.sim.scene import blur

GRAVITY = 9.81  # m/s²
STIFFNESS_RANGE = (6.0e4, 1.5e5)  # N/m³
SAG_SIGMA_M = 0.04


def sink_depth(underside: Tensor, weight: Tensor, stiffness: Tensor, cell_area: float) -> Tensor:
    """Depth ``s`` [B] (m) the body sinks below first contact.

    underside: [B, ...] height (m) of the body's underside above its lowest point per cell,
        +inf where the body is not above the cell.
    weight: [B] body weight m·g (N). stiffness: [B] (N/m³). cell_area: m².
    """
    batch = underside.shape[0]
    b, _ = underside.reshape(batch, -1).sort(dim=1)
    finite = torch.isfinite(b)
    b = torch.where(finite, b, torch.zeros_like(b))
    csum = b.cumsum(1)
    count = torch.arange(1, b.shape[1] + 1, device=b.device, dtype=b.dtype)
    # Spring force at s = b_n (in units of k·A): n·b_n − Σ_{i≤n} b_i, increasing in n.
    force_at = count * b - csum
    load = (weight / (stiffness * cell_area))[:, None]
    n = ((force_at <= load) & finite).sum(1).clamp(min=1)  # cells in contact
    idx = (n - 1)[:, None]
    return ((load + csum.gather(1, idx)) / n[:, None].to(b.dtype))[:, 0]


def penetration(underside: Tensor, depth: Tensor) -> Tensor:
    """δ = max(0, s − b) per cell (m), same shape as ``underside``; 0 where no body."""
    s = depth.reshape(-1, *([1] * (underside.dim() - 1)))
    return torch.where(torch.isfinite(underside), (s - underside).clamp(min=0),
                       torch.zeros_like(underside))


def pressure_kpa(delta: Tensor, stiffness: Tensor) -> Tensor:
    """Contact pressure k·δ in kPa, same shape as ``delta``."""
    return delta * stiffness.reshape(-1, *([1] * (delta.dim() - 1))) / 1000.0


def sagged_surface(delta: Tensor, pitch: float, sigma_m: float = SAG_SIGMA_M) -> Tensor:
    """Visible mattress top (m, ≤ 0) around the body: ``−blur(δ)`` on a [B,R,C] grid."""
    return -blur(delta, sigma_m / pitch)
