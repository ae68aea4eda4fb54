"""The learned pressure map: a small CNN from the network's depth image to SLP's mat grid.

:class:`PressureNet` takes the normalised depth image the denoiser gets, [B,1,128,54] in
[0, 1] (bed = 1, ``disrt_core.geometry.bedframe.normalize_depth``; bed frame, row 0 at the
head end) and returns the pressure a mat under the sheet would read, [B,192,84] kPa on
SLP's pressure-mat grid (bed frame, 1 cm cells, ``bedframe.pm_to_label``): the generator's
``pressure`` key (:mod:`disrt_core.sim.mattress`), on which it is trained
(``training/train_pressure.py``).

**Geometry** (explicit, not learned): the two grids cover almost the same part of the bed
plane. A small U-Net works on the 128×54 network grid (pitch 15.1 × 15.0 mm) and ends in
a 3×3 convolution giving the two output channels there; they are resampled (bilinear)
onto the 192×84 mat grid (1 cm) at each mat cell centre's place on the network grid,
``bedframe.label_to_net(pm_to_label(row, col))`` = (row·127/191, col·55/83 − 1); the two
mat columns each side outside the network image take the edge value.

**Output**: two channels per mat cell, ``value`` and ``contact`` (logit of "above
:data:`disrt_core.pressure.CONTACT_KPA`"). The map is ``softplus(value)`` kPa (never
negative), set to 0 where ``contact < 0`` when ``gate`` is on (exact zeros off the body,
but it cuts load where the contact logit hesitates; the shipped file has it off, see the
training script). Frames and units: everything in
the bed frame, kPa, no metric input other than the grids' fixed transform.

Weights: one safetensors file with a JSON header under the metadata key ``disrt_pressure``
(format, :class:`PressureNetConfig`, the preprocessing geometry, a training summary);
:func:`save_pressure_net` / :func:`load_pressure_net`. Nothing is pickled. The shipped file
is ``disrt_core/weights/pressure.safetensors`` (:data:`DEFAULT_PRESSURE_WEIGHTS`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from itertools import pairwise
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from disrt_core.geometry import bedframe
from disrt_core.model import weights_file

FORMAT = "disrt-pressure-1"
META_KEY = "disrt_pressure"
WHAT = "pressure-net weights"  # in messages
DEFAULT_PRESSURE_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / \
    "pressure.safetensors"
FIX = ("reinstall the package (the file ships in disrt_core/weights/) or train one with "
       "training/train_pressure.py")


@dataclass(frozen=True)
class PressureNetConfig:
    """Shape of :class:`PressureNet`.

    widths: channels of the U-Net levels on the network grid, level 0 at 128×54, each next
        one at half the size (stride-2 convolution); the decoder mirrors them.
    gate: zero the map where the contact logit is negative (module docstring).
    """

    widths: tuple[int, ...] = (16, 32, 48, 64)
    gate: bool = True

    @classmethod
    def from_dict(cls, data: dict) -> PressureNetConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown pressure-net settings {unknown}; known {sorted(known)}")
        data = dict(data)
        if "widths" in data:
            data["widths"] = tuple(int(w) for w in data["widths"])
        return cls(**data)


def mat_sampling_grid() -> Tensor:
    """Where each mat cell centre lies on the network image, as ``grid_sample`` coordinates
    (align_corners=True) [1,192,84,2] (x = column, y = row, in [-1, 1]; a little outside at
    the side columns)."""
    rows = torch.arange(bedframe.PM_SHAPE[0], dtype=torch.float64)
    cols = torch.arange(bedframe.PM_SHAPE[1], dtype=torch.float64)
    x, y = bedframe.pm_to_label(rows[:, None], cols[None, :])
    r, c = bedframe.label_to_net(*torch.broadcast_tensors(x, y))
    h, w = bedframe.NET_SHAPE
    gx, gy = 2 * c / (w - 1) - 1, 2 * r / (h - 1) - 1
    return torch.stack([gx, gy], -1).float()[None]


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """3×3 convolution, batch norm, SiLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.SiLU())


class PressureNet(nn.Module):
    """Depth image [B,1,128,54] (normalised, bed frame) -> pressure (module docstring)."""

    def __init__(self, config: PressureNetConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or PressureNetConfig()
        w = config.widths
        self.stem = _conv(1, w[0])
        self.down = nn.ModuleList(nn.Sequential(_conv(a, b, 2), _conv(b, b))
                                  for a, b in pairwise(w))
        self.context = nn.Linear(w[-1], w[-1])  # the whole image's mean, added at the bottom
        self.up = nn.ModuleList(_conv(b + a, a) for a, b in pairwise(w))
        self.head = nn.Conv2d(w[0] + 1, 2, 3, padding=1)
        self.register_buffer("grid", mat_sampling_grid(), persistent=False)

    def forward(self, depth: Tensor) -> tuple[Tensor, Tensor]:
        """``(kpa, contact)``: ungated softplus map [B,192,84] kPa and contact logits
        [B,192,84]; :meth:`pressure` is the map the node publishes."""
        x = 1.0 - depth  # height above the bed in 715 mm units: 0 on the bare bed
        h = self.stem(x)
        skips = [h]
        for block in self.down:
            h = block(h)
            skips.append(h)
        h = h + self.context(h.mean((2, 3)))[..., None, None]
        for block, skip in zip(reversed(self.up), reversed(skips[:-1])):
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = block(torch.cat([h, skip], 1))
        out = self.head(torch.cat([h, x], 1))  # [B,2,128,54] on the network grid
        grid = self.grid.expand(len(depth), -1, -1, -1)
        value, contact = F.grid_sample(out, grid, mode="bilinear", padding_mode="border",
                                       align_corners=True).unbind(1)
        return F.softplus(value), contact

    def pressure(self, depth: Tensor) -> Tensor:
        """The pressure map [B,192,84] kPa (gated when ``config.gate``)."""
        kpa, contact = self(depth)
        return torch.where(contact > 0, kpa, torch.zeros_like(kpa)) if self.config.gate else kpa


def save_pressure_net(path: str | Path, net: PressureNet, training: dict | None = None,
                      dtype: torch.dtype = torch.float32) -> Path:
    """Write ``net`` as safetensors with its JSON header (module docstring), atomically."""
    from disrt_core.checkpoint import preprocessing_geometry

    header = {"format": FORMAT, "network": asdict(net.config),
              "preprocessing": preprocessing_geometry(), "training": training or {}}
    return weights_file.save_weights(path, net, META_KEY, header, dtype)


def read_pressure_header(path: str | Path) -> dict:
    """The JSON header of a pressure-net file; clear errors naming the file and the fix."""
    return weights_file.read_header(path, META_KEY, FORMAT, WHAT, FIX)


def load_pressure_net(path: str | Path | None = None, device: str | torch.device = "cpu"
                      ) -> tuple[PressureNet, dict]:
    """The network of a pressure-net file (default: the shipped weights), float32, eval
    mode, and its header."""
    path = Path(path) if path is not None else DEFAULT_PRESSURE_WEIGHTS
    header = read_pressure_header(path)
    try:
        net = PressureNet(PressureNetConfig.from_dict(header.get("network", {})))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{WHAT} {path}: cannot be read ({err}); {FIX}") from err
    weights_file.load_weights(net, path, WHAT, FIX)
    return net.to(device).eval(), header
