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

The default stiffness range U[6, 15]·10⁴ N/m³ gives peak pressures of 4–12 kPa (30–90
mmHg), the range pressure-mat studies of foam hospital mattresses report; with the limbs
resting on it by their own weight (:mod:`disrt_core.sim.rest`) the deepest point of a lying
adult sinks 75–90 mm on average (bench_rest; 30–60 mm before the limbs rested, when they
took weight off the trunk at its own depth). The mattress surface one sees beside the body
sags with it: the visible top is ``−blur(δ)`` (Gaussian, σ = 4 cm), the cover fabric
spreading the dent.

**Pillow** (:func:`rest_on_mattress`, :func:`pressure_map`) [choice]: where the body lies on
the head pillow (its underside above half the pillow's compressed height; a hand under the
pillow lies on the mattress), the springs' top is the compressed pillow's top instead of
the mattress top, so the head is carried like any other part and the total stays m·g. The
pressure mat lies on the mattress *under* the pillow, so the load the pillow carries reaches
it spread over the pillow's footprint (in proportion to the pillow's free height). Cells off
the mattress (a hand or the lower legs over the edge) carry nothing, nor do cells where the
body reaches more than ``MAX_DEPTH`` below the mattress top (a calf hanging down its side
within a cell of its edge): the weight the mattress carries is the caller's (sitting bodies
with their feet on the floor: less than m·g).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from disrt_core.sim.scene import blur

GRAVITY = 9.81  # m/s²
STIFFNESS_RANGE = (6.0e4, 1.5e5)  # N/m³
SAG_SIGMA_M = 0.04
MAX_DEPTH = 0.18  # m: a body's underside deeper below the mattress top hangs beside it


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


@dataclass
class Contact:
    """A body at rest on the mattress and pillow (:func:`rest_on_mattress`)."""

    shift: Tensor  # [B] m: add to the body's heights
    sink: Tensor  # [B] m: depth below first contact (water filling)
    delta: Tensor  # [B,R,C] m: how far each cell's springs are compressed
    on_pillow: Tensor  # [B,R,C] bool: the body lies on the pillow there


def rest_on_mattress(underside: Tensor, pillow_top: Tensor, on_mattress: Tensor,
                     weight: Tensor, stiffness: Tensor, cell_area: float) -> Contact:
    """Lower (or raise) a rigid body until the mattress and pillow carry ``weight`` [B] (N).

    underside [B,R,C]: the body's underside (m, +inf where no body); pillow_top [B,R,C]:
    the compressed pillow's top (0 where none); on_mattress [B,R,C] bool. See the module
    docstring for the pillow.
    """
    on_pillow = (pillow_top > 0) & (underside >= 0.5 * pillow_top) & torch.isfinite(underside)
    b = underside - torch.where(on_pillow, pillow_top, torch.zeros_like(pillow_top))
    beside = underside < -MAX_DEPTH  # hanging down the mattress's side, not on it
    b = torch.where(on_mattress & torch.isfinite(underside) & ~beside, b,
                    torch.full_like(b, torch.inf))
    low = b.flatten(1).amin(1)
    low = torch.where(torch.isfinite(low), low, torch.zeros_like(low))
    rel = b - low[:, None, None]
    sink = sink_depth(rel, weight, stiffness, cell_area)
    return Contact(-(low + sink), sink, penetration(rel, sink), on_pillow)


def pressure_map(contact: Contact, stiffness: Tensor, pillow_free: Tensor,
                 cell_area: float) -> tuple[Tensor, Tensor]:
    """The pressure on the mat under the mattress cover (kPa) and the mattress deflection
    (m), both [B,R,C]: the springs' pressure where the body lies on the mattress, and the
    pillow's load spread over its footprint (module docstring). pillow_free [B,R,C]: the
    pillow's free height (its footprint's weights)."""
    k = stiffness.reshape(-1, 1, 1)
    pa = contact.delta * k
    on = contact.on_pillow
    load = torch.where(on, pa, torch.zeros_like(pa)).flatten(1).sum(1) * cell_area  # N
    weights = pillow_free.clamp(min=0)
    total = weights.flatten(1).sum(1) * cell_area
    spread = weights * (load / total.clamp(min=1e-9))[:, None, None]
    pa = torch.where(on, torch.zeros_like(pa), pa) + spread
    deflection = torch.where(on, torch.zeros_like(pa), contact.delta) + spread / k
    return pa / 1000.0, deflection
