"""Contact sheet of generated samples: one row per cover level (same bodies in every row),
the network-grid depth with the 24-joint skeleton drawn on it, a row of pressure maps and a
row of side views: the body seen from the side along the bed (head at the top, as in the
depth panels; height grows to the right), each part in its colour, the mattress top (grey)
and the compressed pillow (yellow), titled with the posture (and its roll off the class's
own, for ¾ turns), the arm and leg classes (left/right) and the limbs that do not rest
(:func:`disrt_core.sim.support.resting`) in red.

``disrt-generate --preview out.png`` writes it; :func:`contact_sheet` is the library entry.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from disrt_core.body.skeleton import SMPL_BONES
from disrt_core.geometry.bedframe import label_to_net, normalize_depth
from disrt_core.posture import POSTURES
from disrt_core.sim.bodyparts import REST_CHAINS, model_of, pillow_support
from disrt_core.sim.poses import ARM_CLASSES, LEG_CLASSES
from disrt_core.sim.scene import pillow_height_at
from disrt_core.sim.support import Support, clearance, rest_gaps, resting, underside

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


SIDE_Z = (-0.15, 0.45)  # m of height across a side panel
CONTACT_COLOURS = ((0.01, (90, 200, 90)), (0.03, (40, 210, 230)), (0.08, (40, 120, 255)),
                   (np.inf, (60, 40, 230)))  # clearance up to (m) -> BGR


def side_panel(vertices: Tensor, clearance: Tensor, support: Support, index: int,
               lines: list[tuple[str, tuple[int, int, int]]] = ()) -> np.ndarray:
    """The body ``vertices`` [B,V,3] (label frame) of sample ``index`` seen from its side
    along the bed (module docstring): grey, and on the underside of every part
    (``clearance`` [B,V] above the support, NaN elsewhere; :func:`disrt_core.sim.support.
    clearance`) green ≤ 1 cm (resting), yellow ≤ 3 cm, orange ≤ 8 cm, red above; nearer
    vertices brighter. Text ``lines``."""
    h, w = 128 * SCALE, 54 * SCALE
    image = np.zeros((h, w, 3), np.uint8)
    z0, z1 = SIDE_Z

    def col(z):
        return ((np.asarray(z) - z0) / (z1 - z0) * (w - 1)).astype(int)

    v = vertices[index].float().cpu().numpy()
    gap = clearance[index].float().cpu().numpy()
    rows, _ = label_to_net(torch.from_numpy(v[:, 0]), torch.from_numpy(v[:, 1]))
    r = ((rows.numpy() + 0.5) * SCALE).astype(int)
    c = col(v[:, 2])
    shade = 0.45 + 0.55 * (v[:, 0] - v[:, 0].min()) / max(float(np.ptp(v[:, 0])), 1e-6)
    colours = np.full((len(v), 3), 110.0)
    for limit, colour in reversed(CONTACT_COLOURS):
        colours[gap <= limit] = colour
    colours = (colours * shade[:, None]).astype(np.uint8)
    order = np.argsort(v[:, 0])  # seen from +x: the far side (small x) first
    for dr in (0, 1):
        for dc in (0, 1):
            rr, cc = r[order] + dr, c[order] + dc
            ok = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
            image[rr[ok], cc[ok]] = colours[order][ok]
    # The mattress top and the compressed pillow through the head.
    y = torch.linspace(float(v[:, 1].max()) + 0.3, float(v[:, 1].min()) - 0.3, h)
    one = support.pillow[index:index + 1].float().cpu()
    head_x = torch.full((1, h), float(v[:, 0].mean()))
    pillow = pillow_height_at(one, head_x, y[None])[0] * float(support.squash[index])
    prow, _ = label_to_net(torch.zeros(h), y)
    prow = ((prow.numpy() + 0.5) * SCALE).astype(int)
    image[:, col(0.0)] = np.maximum(image[:, col(0.0)], 110)
    keep = (prow >= 0) & (prow < h) & (pillow.numpy() > 0)
    image[prow[keep], col(pillow.numpy()[keep])] = (0, 220, 255)
    for k, (text, colour) in enumerate(lines):
        cv2.putText(image, text, (3, 12 + 12 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.33, colour, 1)
    return image


def _describe(batch: dict, i: int, root: Tensor, gaps: Tensor
              ) -> list[tuple[str, tuple[int, int, int]]]:
    """Title lines of a side panel: posture and roll, arms, legs, what does not rest."""
    import roma

    white, red = (255, 255, 255), (60, 60, 255)
    chest = roma.rotvec_to_rotmat(root[i].float().cpu())[:, 2]
    roll = float(torch.rad2deg(torch.atan2(chest[0], chest[2])))  # 0 supine, ±90 lateral
    posture = POSTURES[int(batch["posture"][i])]
    if bool(batch["sitting"][i]):
        head = "sitting on the edge"
    else:
        own = {"supine": 0, "prone": 180, "left": 90, "right": -90}[posture]
        off = (roll - own + 180) % 360 - 180
        head = f"{posture} {off:+.0f} deg" + (" (3/4)" if abs(off) >= 29 else "")
    arms = "/".join(ARM_CLASSES[a] if a >= 0 else "-" for a in batch["arm_class"][i].tolist())
    legs = "/".join(LEG_CLASSES[a] if a >= 0 else "-" for a in batch["leg_class"][i].tolist())
    out = [(head, white), ("arms " + arms, white), ("legs " + legs, white)]
    ok = resting(gaps, batch["joints"], batch["stature"] / 1.75)[i].tolist()
    bad = [name for name, good in zip(REST_CHAINS, ok, strict=True) if not good]
    if bool(batch["sitting"][i]):
        bad = [b for b in bad if "forearm" in b]
    out.append(("floats: " + ", ".join(bad), red) if bad else ("rests", (120, 220, 120)))
    return out


def contact_sheet(generator, n: int = 6, seed: int = 0, covers=(0, 1, 2)) -> np.ndarray:
    """Render ``n`` bodies under each cover level of ``covers`` (one row each, same
    bodies and cameras in every row), then a row of their pressure maps and one of their
    side views (module docstring)."""
    rows, batch = [], None
    for cover in covers:
        batch = generator.sample(n, seed, cover=cover, with_mesh=True)
        panels = []
        for i in range(n):
            posture = ("supine", "left", "right", "prone")[int(batch["posture"][i])]
            if bool(batch.get("sitting", np.zeros(n, bool))[i]):
                posture = "sitting"
            title = f"{COVER_NAMES[cover].split()[0]} {posture}"
            panels.append(depth_panel(batch["depth"][i], float(batch["bed_mm"][i]),
                                      batch["joints"][i], title))
        rows.append(np.concatenate(panels, 1))
    rows.append(np.concatenate([pressure_panel(batch["pressure"][i]) for i in range(n)], 1))
    model = model_of(generator.body)
    support = Support.from_batch(batch)
    pillow_ok = pillow_support(batch["arm_class"])
    gaps = rest_gaps(model, batch["vertices"], support, pillow_ok)
    clear = clearance(model, batch["vertices"], support, pillow_ok)
    clear = torch.where(underside(model, batch["vertices"]), clear, torch.nan)
    root = generator.layout.unpack(batch["params"]).root_orient
    rows.append(np.concatenate([side_panel(batch["vertices"], clear, support, i,
                                           _describe(batch, i, root, gaps)) for i in range(n)],
                               1))
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
