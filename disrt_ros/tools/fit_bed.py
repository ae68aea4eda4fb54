"""``disrt-fit-bed``: find the mattress in one depth view and show it: how a user checks a new
camera mount before running the bed monitor with ``bed_region: auto``.

Sources (one of):

* ``--bag BAG [--topic DEPTH] [--info-topic INFO]``: a rosbag2 bag (default topics: this
  project's / realsense-ros's ``/camera/camera/depth/image_rect_raw`` and the
  ``camera_info`` beside the depth topic); ``--frame N`` picks the N-th depth frame
  (default 0) and ``--median K`` fits the per-pixel median of K frames from there (default
  5, as the node's ``bed_fit_frames``: a stereo camera's noise averages out; a pixel read
  in fewer than half of them has no reading, ``geometry.camera.median_depth``); a raw
  depth topic whose CameraInfo has a lens is undistorted first, as the node does it
  (``disrt_core.geometry.lens``); a ``.../compressedDepth`` topic (image_transport's
  ``CompressedImage``, PNG or RVL) is read too, its CameraInfo beside the image's topic;
* ``--realsense [SERIAL]``: a live RealSense through pyrealsense2 (the median of
  ``--median`` frames, default 15, after 30 frames of warm-up for the auto-exposure);
* ``--depth FILE --intrinsics FX FY CX CY`` or ``--camera-info YAML``: a depth image, a
  16-bit PNG in millimetres or a ``.npy`` in millimetres or metres (floats with a median
  under 20 are taken as metres, and the tool says so), taken as a pinhole (rectified)
  image.

It prints the fit (mattress size, camera distance and tilt, the corners in pixels and in
metres, a warning where the farthest corner is over :data:`FAR_MOUNT_M` from the camera,
the head end and how sure it is: with ``--head auto`` also from someone lying in the bed,
through the posture classifier's head-end output as the node's vote takes it,
``disrt_core.head_end.decided_on_one_view``) and the lines to paste into
``config/bed_monitor.yaml`` (``corners_px`` for ``bed_region: corners``, ``T_cam_bed`` for
``bed_region: pose``), and writes a PNG (``--out``, default ``fit_bed.png``): the depth
colour-mapped with the mattress outline (its head end marked) beside the 128×54 image the
network would see (``geometry.camera.raw_to_network`` and ``normalize_depth`` as in the
node). When no mattress is found it prints why (``BedNotFoundError``), still writes the
PNG, with the horizontal surfaces it measured outlined and labelled, and exits with code 2
(1 for unusable input).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from disrt_ros.bags import DEPTH_TOPIC
from disrt_ros.tools.fit_bed_inputs import (
    InputError,
    View,
    read_bag,
    read_camera_info,
    read_depth_file,
    read_realsense,
)

EXIT_INPUT, EXIT_NO_BED = 1, 2
# [choice] m: a fit whose farthest corner is further from the camera is said to be a far
# mount. In generated rooms the fit is right 92 % within 3 m, 81 % at 3-4 m and 67 % beyond
# (BENCHMARKS.md, bedfit_s52_range): a stereo camera's depth noise grows with z².
FAR_MOUNT_M = 3.5


# -- the picture ---------------------------------------------------------------------------

def colour_depth(depth_mm: np.ndarray) -> np.ndarray:
    import cv2

    valid = depth_mm > 0
    if not valid.any():
        return np.zeros((*depth_mm.shape, 3), np.uint8)
    lo, hi = np.percentile(depth_mm[valid], [1, 99])
    scaled = np.clip((depth_mm - lo) / max(hi - lo, 1.0) * 255, 0, 255).astype(np.uint8)
    image = cv2.applyColorMap(255 - scaled, cv2.COLORMAP_TURBO)  # near: warm
    image[~valid] = 0
    return image


def project(K: np.ndarray, points: np.ndarray) -> np.ndarray:
    uvw = points @ K.T
    return uvw[..., :2] / uvw[..., 2:3]


def network_image(depth_mm: np.ndarray, K: np.ndarray, T_cam_bed: np.ndarray) -> np.ndarray:
    """The 128×54 network input in [0, 1] (the node's preprocessing)."""
    import torch

    from disrt_core.geometry.bedframe import SLP_DANALAB_BED_MM, normalize_depth
    from disrt_core.geometry.camera import raw_to_network

    net = raw_to_network(torch.from_numpy(depth_mm)[None], torch.from_numpy(K).float()[None],
                         torch.from_numpy(T_cam_bed).float()[None], SLP_DANALAB_BED_MM)
    return normalize_depth(net, SLP_DANALAB_BED_MM)[0].numpy()


def person_head_end(view: View, fit):
    """The fit with its head end decided or checked by the posture classifier's head-end
    output on the network image, as the node's vote does (``disrt_core.head_end``); says
    what it did. Unchanged without someone lying in bed (the log-odds stay near 0)."""
    import torch

    from disrt_core.head_end import decided_on_one_view
    from disrt_core.model.posture_net import head_logit, load_posture_net

    net = torch.from_numpy(network_image(view.depth_mm, view.K, fit.T_cam_bed))[None, None]
    with torch.no_grad():
        logit = head_logit(load_posture_net()(net.float()))
    if logit is None:
        return fit
    fit, what = decided_on_one_view(fit, float(logit[0]))
    why = " (nobody lying in the bed, or unsure)" if what == "undecided" else ""
    print(f"[disrt-fit-bed] the head end from someone lying there (posture classifier, "
          f"head-end log-odds {float(logit[0]):+.1f}): {what}{why}")
    return fit


def label_origin(at: np.ndarray, away: np.ndarray, size: tuple[int, int],
                 image_shape: tuple[int, ...], gap: int) -> tuple[int, int]:
    """Bottom-left pixel (OpenCV's text origin) of a label ``size`` = (width, height) px
    placed beside the point ``at`` (px), moved ``gap`` px past its half size along ``away``
    (from the outline's middle: outside the outline, off the line and the corners' labels)
    and kept wholly inside the image."""
    w, h = size
    d = np.asarray(away, float) / max(float(np.linalg.norm(away)), 1e-6)
    middle = np.asarray(at, float) + d * (np.hypot(w, h) / 2 + gap)
    x = int(np.clip(middle[0] - w / 2, 0, max(0, image_shape[1] - w)))
    y = int(np.clip(middle[1] + h / 2, h, max(h, image_shape[0] - 2)))
    return x, y


def _put_label(image: np.ndarray, text: str, at: np.ndarray, away: np.ndarray, font: float,
               colour: tuple[int, int, int], thick: int) -> None:
    import cv2

    size, _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
    cv2.putText(image, text, label_origin(at, away, size, image.shape, 2 * thick),
                cv2.FONT_HERSHEY_SIMPLEX, font, colour, thick)


def draw(view: View, fit, candidates: list[tuple[np.ndarray, str]], out: Path,
         title: str) -> None:
    """Depth with outlines (and the network image when ``fit``) side by side, to ``out``."""
    import cv2

    image = colour_depth(view.depth_mm)
    thick = max(1, round(image.shape[1] / 320))
    font = 0.4 * thick
    for corners, label in candidates:
        uv = project(view.K, corners)
        cv2.polylines(image, [np.round(uv).astype(np.int32)], True, (200, 200, 200), thick)
        cv2.putText(image, label, tuple(np.round(uv.mean(0)).astype(int) - np.array([40, 0])),
                    cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255), thick)
    panels = [image]
    if fit is not None:
        uv = project(view.K, fit.corners)
        cv2.polylines(image, [np.round(uv).astype(np.int32)], True, (0, 255, 0), 2 * thick)
        head = np.round(uv[:2]).astype(np.int32)
        colour = (0, 0, 255) if fit.head_known else (0, 200, 255)
        cv2.line(image, tuple(head[0]), tuple(head[1]), colour, 4 * thick)
        mid = np.round(uv[:2].mean(0)).astype(int)
        cv2.circle(image, tuple(mid), 4 * thick, colour, -1)
        # Labels outside the outline, away from its middle, and inside the image (a head
        # end at the image's border, a small bed's corners).
        middle = uv.mean(0)
        _put_label(image, "HEAD" if fit.head_known else "head?", mid, mid - middle,
                   1.5 * font, colour, thick)
        for i, name in enumerate(("HL", "HR", "FR", "FL")):
            _put_label(image, name, uv[i], uv[i] - middle, font, (255, 255, 255), thick)
        net = network_image(view.depth_mm, view.K, fit.T_cam_bed)
        scale = max(1, image.shape[0] // 128)
        net = cv2.resize((net * 255).astype(np.uint8), (54 * scale, 128 * scale),
                         interpolation=cv2.INTER_NEAREST)
        net = cv2.applyColorMap(net, cv2.COLORMAP_BONE)
        cv2.putText(net, "network", (2, 12 * thick), cv2.FONT_HERSHEY_SIMPLEX, font,
                    (0, 255, 255), thick)
        pad = np.zeros((image.shape[0], net.shape[1] + 8, 3), np.uint8)
        pad[:net.shape[0], 4:4 + net.shape[1]] = net[:image.shape[0]]
        panels.append(pad)
    canvas = np.hstack(panels)
    bar = np.zeros((18 * thick, canvas.shape[1], 3), np.uint8)
    cv2.putText(bar, title[:120], (4, 13 * thick), cv2.FONT_HERSHEY_SIMPLEX, font,
                (255, 255, 255), thick)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), np.vstack([bar, canvas])):
        raise InputError(f"cannot write {out}")


# -- the report ----------------------------------------------------------------------------

def head_image_side(fit, K: np.ndarray) -> str:
    """The image side (top, bottom, left, right) the head end lies toward."""
    centre = fit.corners.mean(0)
    head = fit.corners[:2].mean(0)
    du, dv = project(K, head) - project(K, centre)
    if abs(du) > abs(dv):
        return "right" if du > 0 else "left"
    return "bottom" if dv > 0 else "top"


def report(view: View, fit) -> str:
    uv = project(view.K, fit.corners)
    tilt = math.degrees(math.acos(min(1.0, abs(float(fit.normal[2])))))
    distance = float(np.linalg.norm(fit.corners.mean(0)))
    side = head_image_side(fit, view.K)
    cues = (f"cues person {fit.head_cues[0]:+.2f}, pillow {fit.head_cues[1]:+.2f}, boards "
            f"{fit.head_cues[2]:+.2f}")
    head = (f"head end toward the image {side} (confidence {fit.head_confidence:.2f}; {cues})"
            if fit.head_known else
            f"head end unknown (what is seen does not decide it: {cues}; or furniture stands "
            f"against the end it pointed to): taken toward the image "
            f"{side}; the node decides again once someone lies in the bed, also from the "
            f"person through its posture classifier (it logs 'head end decided from the "
            f"person lying there')")
    names = ("head-left", "head-right", "foot-right", "foot-left")
    lines = [f"mattress {fit.size_m[0]:.2f} x {fit.size_m[1]:.2f} m (width x length)",
             f"camera {fit.offset:.2f} m above the mattress, {distance:.2f} m from its centre, "
             f"tilted {tilt:.1f}° from looking straight down",
             head]
    if fit.weak:
        lines.append(f"WEAK FIT: {fit.weak_text()}: compare the outline with the bed, or give "
                     f"the corners")
    far = float(np.linalg.norm(fit.corners, axis=1).max())
    if far > FAR_MOUNT_M:
        lines.append(f"FAR MOUNT: the farthest corner is {far:.1f} m from the camera; fits "
                     f"this far are less often right (depth noise grows with the square of "
                     f"the distance): check the outline closely, or mount the camera nearer")
    lines.append("corners (pixels u, v | camera frame x, y, z m):")
    lines += [f"  {n:10s} {p[0]:7.1f} {p[1]:7.1f} | {c[0]:+.3f} {c[1]:+.3f} {c[2]:+.3f}"
              for n, p, c in zip(names, uv, fit.corners)]
    lines += ["", "for config/bed_monitor.yaml:",
              f"      corners_px: [{', '.join(f'{v:.1f}' for v in uv.reshape(-1))}]"
              "   # bed_region: corners",
              f"      T_cam_bed: [{', '.join(f'{v:.4f}' for v in fit.T_cam_bed.reshape(-1))}]"
              "   # bed_region: pose",
              f"      head_side: {side}   # bed_region: auto with a fixed head end"]
    return "\n".join(lines)


def candidate_outlines(error) -> list[tuple[np.ndarray, str]]:
    """Outlines and labels of the surfaces measured (from a BedNotFoundError's fits)."""
    fits = getattr(error, "fits", None)
    if fits is None:
        return []
    out = []
    for k in range(fits.cand_corners.shape[1]):
        size = fits.cand_size[0, k].cpu().numpy()
        if size.min() <= 0:
            continue
        corners = fits.cand_corners[0, k].cpu().double().numpy()
        out.append((corners, f"{size[0]:.2f}x{size[1]:.2f} m @ "
                             f"{float(fits.cand_distance[0, k]):.2f} m"))
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="disrt-fit-bed", description="Find the mattress in a depth view and show it "
        "(check a camera mount for bed_region: auto).")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--bag", type=Path, help="rosbag2 bag (directory, .mcap or .db3)")
    src.add_argument("--realsense", nargs="?", const="", metavar="SERIAL",
                     help="a live RealSense (the first found, or SERIAL)")
    src.add_argument("--depth", type=Path, help="depth image: 16-bit PNG (mm) or .npy")
    parser.add_argument("--topic", default=DEPTH_TOPIC, help=f"depth topic ({DEPTH_TOPIC})")
    parser.add_argument("--info-topic", help="CameraInfo topic (default: camera_info beside "
                                             "the depth topic)")
    parser.add_argument("--frame", type=int, default=0, help="bag: first depth frame used")
    parser.add_argument("--median", type=int, default=None, metavar="K",
                        help="fit the per-pixel median of K frames (bag: 5, as the node's "
                        "bed_fit_frames; live: 15)")
    parser.add_argument("--intrinsics", type=float, nargs=4, metavar=("FX", "FY", "CX", "CY"))
    parser.add_argument("--camera-info", type=Path, help="camera info YAML for --depth")
    parser.add_argument("--head", default="auto",
                        choices=("auto", "top", "bottom", "left", "right"),
                        help="head end: auto, or the image side it is on")
    parser.add_argument("--out", type=Path, default=Path("fit_bed.png"), help="picture")
    return parser


def load_view(args) -> View:
    if args.bag is not None:
        return read_bag(args.bag, args.topic, args.info_topic, args.frame, args.median or 5)
    if args.realsense is not None:
        return read_realsense(args.realsense, args.median or 15)
    depth, notes = read_depth_file(args.depth)
    if args.camera_info is not None:
        K = read_camera_info(args.camera_info)
    elif args.intrinsics is not None:
        fx, fy, cx, cy = args.intrinsics
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    else:
        raise InputError("--depth needs the intrinsics: --intrinsics FX FY CX CY or "
                         "--camera-info camera_info.yaml")
    return View(depth, K, f"depth image {args.depth}", notes)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from disrt_core.geometry.bedfit import BedNotFoundError, fit_bed

    try:
        view = load_view(args)
    except InputError as err:
        print(f"disrt-fit-bed: error: {err}", file=sys.stderr)
        return EXIT_INPUT
    print(f"[disrt-fit-bed] {view.source}: {view.depth_mm.shape[1]}x{view.depth_mm.shape[0]}, "
          f"fx {view.K[0, 0]:.1f} fy {view.K[1, 1]:.1f}; " + "; ".join(view.notes))
    try:
        fit = fit_bed(view.depth_mm, view.K, head=args.head)
    except BedNotFoundError as err:
        print(f"disrt-fit-bed: no bed found: {err}", file=sys.stderr)
        try:
            draw(view, None, candidate_outlines(err), args.out, f"NO BED: {err}")
            print(f"[disrt-fit-bed] wrote {args.out} (the surfaces measured, outlined)",
                  file=sys.stderr)
        except InputError as werr:
            print(f"disrt-fit-bed: error: {werr}", file=sys.stderr)
        return EXIT_NO_BED
    except ValueError as err:  # a head side the bed does not run toward
        print(f"disrt-fit-bed: error: {err}", file=sys.stderr)
        return EXIT_INPUT
    if args.head == "auto":
        fit = person_head_end(view, fit)
    print(report(view, fit))
    try:
        draw(view, fit, [], args.out, f"{fit.size_m[0]:.2f} x {fit.size_m[1]:.2f} m, "
             f"{fit.offset:.2f} m below; head {'known' if fit.head_known else 'unknown'}"
             f"{'; WEAK fit' if fit.weak else ''}")
    except InputError as err:
        print(f"disrt-fit-bed: error: {err}", file=sys.stderr)
        return EXIT_INPUT
    print(f"[disrt-fit-bed] wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
