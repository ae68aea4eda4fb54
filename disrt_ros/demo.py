"""``disrt-demo``: the README's first command.

Today it runs the most complete path that exists: the default body model (SMPL if its files
are found, else Anny) lying in bed in three postures, drawn as a top-down height map with
its skeleton, written to ``demo_out/``. Later stages stream a simulated night through the
bed monitor node (see README).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from disrt_core.body import SMPL_BONES, load_body_model

#: Root orientations (axis-angle, canonical -> bed frame) of the demo postures. The bed frame
#: is SPEC §1.4's: x across the bed, y toward the head end, z up. Canonical y (head) -> bed y;
#: canonical z (chest) -> bed z for supine.
POSTURES = {
    "supine": (0.0, 0.0, 0.0),
    "left lateral": (0.0, math.pi / 2, 0.0),  # the body's left side (+x) turned down (-z)
    "prone": (0.0, math.pi, 0.0),
}
PIXEL = 0.01  # m per pixel of the height map (the SLP pressure-mat pitch)


def height_map(vertices: np.ndarray, size=(200, 90)) -> np.ndarray:
    """Max height (z) per 1 cm cell of the bed, rows from the head end (y high) down."""
    rows = np.clip(((1.95 - vertices[:, 1]) / PIXEL).astype(int), 0, size[0] - 1)
    cols = np.clip(((vertices[:, 0] + 0.45) / PIXEL).astype(int), 0, size[1] - 1)
    image = np.zeros(size, np.float32)
    np.maximum.at(image, (rows, cols), vertices[:, 2])
    return image


def draw(vertices: np.ndarray, joints: np.ndarray, title: str) -> np.ndarray:
    hm = cv2.dilate(height_map(vertices), np.ones((3, 3), np.uint8))  # close splat gaps
    gray = np.clip(hm / max(float(hm.max()), 1e-3) * 255, 0, 255).astype(np.uint8)
    image = cv2.resize(cv2.applyColorMap(gray, cv2.COLORMAP_BONE), None, fx=3, fy=3,
                       interpolation=cv2.INTER_NEAREST)
    pix = np.stack([(joints[:, 0] + 0.45) / PIXEL * 3, (1.95 - joints[:, 1]) / PIXEL * 3], 1)
    for a, b in SMPL_BONES:
        start, end = tuple(int(v) for v in pix[a]), tuple(int(v) for v in pix[b])
        cv2.line(image, start, end, (0, 200, 255), 2)
    for p in pix:
        cv2.circle(image, (int(p[0]), int(p[1])), 4, (0, 0, 255), -1)
    cv2.putText(image, title, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
    return image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="disrt-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder")
    parser.add_argument("--body-model", default="auto", choices=("auto", "smpl", "anny"))
    parser.add_argument("--smpl-dir", default=None, help="folder of the SMPL .pkl files")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    model = load_body_model(args.body_model, args.smpl_dir)
    print(f"[demo] body model {model.model_id} ready in {time.perf_counter() - start:.1f} s")
    layout = model.param_layout
    params = model.zero_params(len(POSTURES))
    root = torch.tensor(list(POSTURES.values()))
    params[:, layout.root_cos], params[:, layout.root_sin] = torch.cos(root), torch.sin(root)
    # Pelvis 1.0 m from the foot end, mid-bed, 12 cm above the mattress; arms by the sides.
    params[:, layout.transl] = torch.tensor([0.0, 1.0, 0.12])
    with torch.no_grad():
        vertices, joints = model(params)
    vertices[..., 2] -= vertices[..., 2].amin(dim=1, keepdim=True)  # rest on the mattress
    args.out.mkdir(parents=True, exist_ok=True)
    panels = [draw(v.numpy(), j.numpy(), name)
              for v, j, name in zip(vertices, joints, POSTURES)]
    cv2.imwrite(str(args.out / "bodies.png"), np.concatenate(panels, axis=1))
    report = {name: {"joints_m": j.numpy().round(4).tolist()} for name, j in zip(POSTURES, joints)}
    (args.out / "bodies.json").write_text(json.dumps({"model_id": model.model_id, **report}))
    print(f"[demo] wrote {args.out / 'bodies.png'} and bodies.json "
          f"({time.perf_counter() - start:.1f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
