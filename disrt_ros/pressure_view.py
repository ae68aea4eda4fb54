"""Pictures of pressure maps (numpy and OpenCV, no ROS): the node's ``~/pressure_overlay``,
the demo's contact sheet and ``disrt-report``.

A map is SLP's 192×84 pressure-mat grid in kPa (bed frame; row 0 at the head end, column 0
at the bed's smallest x, as ``~/pressure`` is published), drawn with OpenCV's *turbo*
colour map from 0 to ``SCALE_KPA`` [choice: a fixed scale, so that colours mean the same
pressure in every frame; 12 kPa ≈ 90 mmHg is about the highest peak the generator's
mattresses give]; cells below ``FLOOR_KPA`` are black (no contact to speak of).
"""

from __future__ import annotations

import cv2
import numpy as np

SCALE_KPA = 12.0
FLOOR_KPA = 0.2
LEGEND_H = 22


def pressure_colours(kpa: np.ndarray, scale_kpa: float = SCALE_KPA) -> np.ndarray:
    """bgr8 [H,W,3] of a pressure map [H,W] (kPa) on the fixed scale (module docstring)."""
    kpa = np.nan_to_num(np.asarray(kpa, np.float32))
    level = np.clip(kpa / scale_kpa * 255.0, 0, 255).astype(np.uint8)
    image = cv2.applyColorMap(level, cv2.COLORMAP_TURBO)
    image[kpa < FLOOR_KPA] = 0
    return image


def legend(width: int, scale_kpa: float = SCALE_KPA) -> np.ndarray:
    """bgr8 [LEGEND_H, width, 3]: the colour bar with 0 and the scale's end in kPa."""
    bar = np.linspace(0, 255, max(width, 2)).astype(np.uint8)[None].repeat(8, 0)
    out = np.zeros((LEGEND_H, width, 3), np.uint8)
    out[:8] = cv2.applyColorMap(bar, cv2.COLORMAP_TURBO)
    for text, x in (("0", 2), (f"{scale_kpa:g} kPa", None)):
        size = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)[0][0]
        x = width - size - 2 if x is None else x
        cv2.putText(out, text, (x, LEGEND_H - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (230, 230, 230), 1, cv2.LINE_AA)
    return out


def pressure_overlay(kpa: np.ndarray, scale: int = 3, caption: str = "",
                     scale_kpa: float = SCALE_KPA) -> np.ndarray:
    """bgr8 [192·scale + LEGEND_H, 84·scale, 3]: the coloured map enlarged (nearest), a
    caption on it (e.g. the highest region) and the colour legend below."""
    image = cv2.resize(pressure_colours(kpa, scale_kpa), None, fx=scale, fy=scale,
                       interpolation=cv2.INTER_NEAREST)
    if caption:
        for colour, thickness in (((0, 0, 0), 3), ((255, 255, 255), 1)):
            cv2.putText(image, caption, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, colour,
                        thickness, cv2.LINE_AA)
    return np.concatenate([image, legend(image.shape[1], scale_kpa)], 0)


def highest_region(regions: dict[str, tuple[float, float]] | None) -> str:
    """'peak 7.2 kPa sacrum' for the region with the highest peak; '' without regions."""
    if not regions:
        return ""
    name, (peak, _) = max(regions.items(), key=lambda item: item[1][0])
    return f"peak {peak:.1f} kPa {name.replace('_', ' ')}"
