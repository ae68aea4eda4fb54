"""Contact sheet of generated samples: one row per cover level (same bodies in every row),
the network-grid depth with the 24-joint skeleton drawn on it, plus a row of pressure maps.

``disrt-generate --preview out.png`` writes it; :func:`contact_sheet` is the library entry.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from torch import Tensor

from disrt_core.body.skeleton import SMPL_BONES
from disrt_core.geometry.bedframe import label_to_net, normalize_depth

COVER_NAMES = ("uncover", "cover1 (sheet)", "cover2 (blanket)")
SCALE = 4  # display pixels per network pixel


def depth_panel(depth_mm: Tensor, bed_mm: float, joints: Tensor | None = None,
                title: str = "") -> np.ndarray:
    """One [128,54] network-grid depth (mm) as a BGR image ×4 with the skeleton of
    ``joints`` [24,3] (label frame) drawn where the network grid puts them."""
    x = normalize_depth(depth_mm.float().cpu(), bed_mm).numpy()  # 1 = bed, 0 = high/none
    gray = np.clip((1.0 - x) / 0.5, 0, 1)  # 0..36 cm above the bed -> dark..bright
    gray = np.where(depth_mm.cpu().numpy() == 0, 0.0, gray)
    image = cv2.applyColorMap((gray * 255).astype(np.uint8), cv2.COLORMAP_BONE)
    image = cv2.resize(image, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_NEAREST)
    if joints is not None:
        j = joints.float().cpu()
        row, col = label_to_net(j[:, 0], j[:, 1])
        pix = np.stack([(col.numpy() + 0.5) * SCALE, (row.numpy() + 0.5) * SCALE], 1)
        for a, b in SMPL_BONES:
            cv2.line(image, tuple(int(v) for v in pix[a]), tuple(int(v) for v in pix[b]),
                     (0, 200, 255), 1, cv2.LINE_AA)
        for p in pix:
            cv2.circle(image, (int(p[0]), int(p[1])), 2, (0, 0, 255), -1, cv2.LINE_AA)
    if title:
        cv2.putText(image, title, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1)
    return image


def pressure_panel(pressure_kpa: Tensor, vmax: float = 10.0) -> np.ndarray:
    """A [192,84] pressure map (kPa) as a colour image of the network panels' size."""
    p = np.clip(pressure_kpa.float().cpu().numpy() / vmax, 0, 1)
    image = cv2.applyColorMap((p * 255).astype(np.uint8), cv2.COLORMAP_JET)
    image[p <= 0] = 0
    return cv2.resize(image, (54 * SCALE, 128 * SCALE), interpolation=cv2.INTER_AREA)


def contact_sheet(generator, n: int = 6, seed: int = 0, covers=(0, 1, 2)) -> np.ndarray:
    """Render ``n`` bodies under each cover level of ``covers`` (one row each, same
    bodies and cameras in every row) and a last row of their pressure maps."""
    rows, batch = [], None
    for cover in covers:
        batch = generator.sample(n, seed, cover=cover)
        panels = []
        for i in range(n):
            posture = ("supine", "left", "right", "prone")[int(batch["posture"][i])]
            title = f"{COVER_NAMES[cover].split()[0]} {posture}"
            panels.append(depth_panel(batch["depth"][i], float(batch["bed_mm"][i]),
                                      batch["joints"][i], title))
        rows.append(np.concatenate(panels, 1))
    rows.append(np.concatenate([pressure_panel(batch["pressure"][i]) for i in range(n)], 1))
    sep = np.full((4, rows[0].shape[1], 3), 64, np.uint8)
    out = []
    for r in rows:
        out += [r, sep]
    return np.concatenate(out[:-1], 0)


def write_contact_sheet(path: str | Path, generator, n: int = 6, seed: int = 0,
                        covers=(0, 1, 2)) -> Path:
    """:func:`contact_sheet` written as an image file (PNG by extension)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), contact_sheet(generator, n, seed, covers)):
        raise OSError(f"could not write {path}")
    return path
