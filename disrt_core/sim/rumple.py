"""Covers that do not cling to the body: a cloth's stiffness and a gathered cloth's waves.

The drape (:mod:`disrt_core.sim.drape`) is a membrane: it has no bending stiffness, so it
sags c·L²/8 into every gap of width L between body parts (a sheet at c = 8/m: 1 cm into a
10 cm gap between the legs, 3 cm into 17 cm), and its folds are small ridges. A real cover
does less of that: a tucked sheet is pulled taut across the body, a quilt or a sheet of
stiffer weave bridges the gaps between the legs and between an arm and the trunk, and a
cover pulled up and pushed about lies in broad gathered waves. Those hide the body's
outline, which a network trained only on clinging covers may expect to see (SIM2REAL.md,
"Where the gap comes from": the cloth-simulated sheet was the largest piece of the target
domain's error left after generator 1.3).

Per sample, with probability ``prob`` (``SimConfig.rumple_prob``, ``disrt-generate
--rumple-prob``; 0 by default [choice], see below), the main cover (sheet or blanket) is
rumpled, three ways at once:

* **bridging**: the surface the cloth rests on is closed (a maximum, then a minimum filter)
  over a square of U{5, 9, 13, 17} cm before the membrane is solved: a gap narrower than
  that is spanned at the height of its lower side, as a cloth with bending stiffness spans
  it;
* **taut**: the membrane's sag ``c`` is multiplied by U[0.2, 0.6] (a tucked or pulled
  cover);
* **gathered waves**: two sinusoidal undulations over the cloth, ``A·(1 + sin(2π s/λ + φ))/2``
  along a random direction ``s``: A U[0.5, 2.5] cm, λ U[0.15, 0.45] m, and A U[0, 1.5] cm,
  λ U[0.10, 0.30] m; they only raise the cloth (it never passes below the body).

The default of 2026-12-06 (trained without rumples) on 128 Kinect v2 bed scenes (seeds
50-53, 5 steps, CPU): sheet 67.4 mm, rumpled 76.3; blanket 70.6, rumpled 81.6.

The shipped default continued on generator 1.4 with ``prob`` 0.4 (one H100, 2026-12-07:
24 epochs of a 30,000-sample pool, lr 8e-5, 719 k samples; timesteps chosen on
``val_rooms``) did no better on rumpled scenes (256 Kinect v2 bed scenes, all rumpled: 75.8
→ 75.4 mm), was the same on the source's held-out bed scenes (66.1 → 66.5, without the 1.3
clutter 61.5 → 61.9) and worse on the SIM2REAL target test set (176.7 → 182.0 mm). What a
stiff cover hides is not in the image to be learned, and the target's sheet is not this.
So the option is off by default and the default weights were not replaced (SIM2REAL.md).

None of this is the target domain's cloth simulation; the numbers are chosen around what
sheets and quilts on a bed look like (waves of a few centimetres a hand apart, gaps of a
hand's width bridged). All random numbers are drawn for every sample, and only when ``prob``
> 0, so generators without rumples keep their streams.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from disrt_core.sim.scene import GRID, SceneGrid, dilate

CLOSING_CELLS = (5, 9, 13, 17)  # widths (1 cm cells) of the gaps a stiff cover bridges
TAUT = (0.2, 0.6)  # factor on the membrane's sag
WAVES = (((0.005, 0.025), (0.15, 0.45)), ((0.0, 0.015), (0.10, 0.30)))  # (A, λ) ranges, m


@dataclass
class Rumples:
    """Per-sample rumpling of the main cover (all [B]; see the module docstring)."""

    on: Tensor  # bool
    closing: Tensor  # index into CLOSING_CELLS
    taut: Tensor  # factor on the sag
    waves: Tensor  # [B,2,4]: amplitude (m), wavelength (m), direction (rad), phase (rad)


def sample_rumples(n: int, gen: torch.Generator, device: torch.device | str,
                   prob: float) -> Rumples:
    """Random rumples for a batch of ``n`` (module docstring)."""
    u = torch.rand(n, 11, generator=gen, device=device)
    waves = []
    for k, ((a_lo, a_hi), (l_lo, l_hi)) in enumerate(WAVES):
        v = u[:, 3 + 4 * k:7 + 4 * k]
        waves.append(torch.stack([a_lo + (a_hi - a_lo) * v[:, 0], l_lo + (l_hi - l_lo) * v[:, 1],
                                  math.pi * v[:, 2], 2 * math.pi * v[:, 3]], -1))
    return Rumples(on=u[:, 0] < prob,
                   closing=(u[:, 1] * len(CLOSING_CELLS)).long().clamp(max=len(CLOSING_CELLS) - 1),
                   taut=TAUT[0] + (TAUT[1] - TAUT[0]) * u[:, 2],
                   waves=torch.stack(waves, 1))


def close(height: Tensor, width: int) -> Tensor:
    """Grey-scale closing of height fields [B,H,W] over a ``width``² square (odd): valleys
    narrower than that are filled to the lower of their sides; −inf stays where nothing is
    near."""
    up = dilate(height, width // 2)
    # the minimum filter as a maximum of the negated; the pooling pads with −inf, so the
    # border counts as high and the edges are not pulled down
    return -dilate(-up, width // 2)


def bridge(top: Tensor, rumples: Rumples) -> Tensor:
    """The surface [B,H,W] a rumpled cover rests on: ``top`` closed over each sample's width
    (unchanged where the cover is not rumpled)."""
    out = top
    for k, width in enumerate(CLOSING_CELLS):
        # every width for every sample: no host sync in the generator's GPU path
        pick = (rumples.on & (rumples.closing == k))[:, None, None]
        out = torch.where(pick, close(top, width), out)
    return out


def sag_factor(rumples: Rumples) -> Tensor:
    """Factor [B] on the membrane's sag: ``taut`` where rumpled, else 1."""
    return torch.where(rumples.on, rumples.taut, torch.ones_like(rumples.taut))


def wave_relief(rumples: Rumples, grid: SceneGrid = GRID) -> Tensor:
    """The gathered waves' extra height [B,R,C] ≥ 0 (0 where the cover is not rumpled)."""
    x, y = grid.xy(rumples.waves.device)
    w = rumples.waves[..., None, None]  # [B,2,4,1,1]
    s = torch.cos(w[:, :, 2]) * x + torch.sin(w[:, :, 2]) * y  # [B,2,R,C]
    relief = (w[:, :, 0] * 0.5 * (1 + torch.sin(2 * math.pi * s / w[:, :, 1] + w[:, :, 3])))
    return relief.sum(1) * rumples.on[:, None, None]
