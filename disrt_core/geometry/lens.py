"""Lens distortion of a depth camera: the frame moved onto the pinhole camera of its ``K``.

Everything downstream (the bed fit, the resampling to the network grid, the overlay) takes
the depth camera for a pinhole with intrinsics ``K``. RealSense depth and the ``*_rect``
streams of other drivers are rectified already (their CameraInfo carries zero distortion);
an Azure Kinect / Orbbec Femto ``depth/image_raw`` or a Kinect v2's raw depth is not: its
CameraInfo carries the lens's coefficients, and at the image's edges (where a mattress's
corners often lie) a pixel is then several pixels, i.e. centimetres at bed distance, away
from where the pinhole puts it. A flat mattress would look bowed to the fit.

:func:`undistortion` builds, once per CameraInfo, the map from each pixel of the pinhole
camera (same ``K``, same size) to the raw frame's pixel that sees the same ray, for the
distortion models of ROS's CameraInfo (REP 104, ``sensor_msgs/distortion_models.hpp``):

* ``plumb_bob``: k1, k2, p1, p2, k3 (radial + tangential, OpenCV's model);
* ``rational_polynomial``: k1, k2, p1, p2, k3, k4, k5, k6 (the Azure Kinect driver's);
* ``equidistant``: k1..k4 (fisheye; realsense-ros maps Kannala-Brandt to it).

As ROS's image_geometry does, the first two are handed to OpenCV as the vector they are,
which OpenCV reads by its length (5, 8, 12 or 14; a shorter one is padded with zeros): some
drivers publish eight coefficients under ``plumb_bob``.

The depth values are not changed, only moved: z along the optical axis belongs to the 3D
point, not to the pixel, and the rectified pixel looks along the same ray. Nearest-neighbour
sampling [choice]: an interpolated value at a body's outline would be a point between the
body and the floor behind it, which exists nowhere; 0 (no reading) where the ray falls
outside the raw frame. No rotation (``R``) and no new camera matrix: the output keeps the
message's ``K``, so the node's intrinsics stay those of the CameraInfo.

Raw or rectified [choice]: one CameraInfo serves a camera's raw and rectified images
(image_pipeline's convention: D and K describe the raw image, P the rectified one), so the
image's own topic tells which it is. A depth topic whose last name holds ``rect``
(realsense-ros ``depth/image_rect_raw``, iai_kinect2 ``sd/image_depth_rect``, image_proc's
``image_rect``) is taken as rectified: no map, and the pinhole is P's (:func:`is_rectified`);
any other (``depth/image_raw`` of the Azure Kinect and Orbbec drivers) as raw: K and D.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MODELS = ("plumb_bob", "rational_polynomial", "equidistant")
OPENCV_LENGTHS = (5, 8, 12, 14)  # the distortion vectors cv2.initUndistortRectifyMap reads
#: below this largest shift (pixels) over the frame the lens counts as rectified already
NEGLIGIBLE_PX = 0.05
FIX = ("publish rectified depth (e.g. image_proc's rectify node or the driver's *_rect "
       "stream) and give its CameraInfo")


@dataclass(frozen=True)
class Undistortion:
    """The map of one camera: ``__call__(depth [H,W])`` -> the pinhole camera's depth
    [H,W] (same dtype, 0 = no reading). ``max_shift_px``: how far the lens moves a pixel at
    most (the largest |map - pixel| over the frame)."""

    model: str
    coefficients: tuple[float, ...]
    size: tuple[int, int]  # (width, height)
    max_shift_px: float
    map1: np.ndarray  # cv2.convertMaps' fixed-point map (nearest: no fraction map)
    map2: np.ndarray | None

    def __call__(self, depth: np.ndarray) -> np.ndarray:
        if (depth.shape[1], depth.shape[0]) != self.size:
            raise ValueError(f"depth image is {depth.shape[1]}x{depth.shape[0]}, the lens "
                             f"map was made for {self.size[0]}x{self.size[1]}")
        return cv2.remap(depth, self.map1, self.map2, cv2.INTER_NEAREST,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def undistortion(K: np.ndarray, model: str, coefficients, size: tuple[int, int]
                 ) -> Undistortion | None:
    """The map of a camera with intrinsics ``K`` [3,3], distortion ``model`` and
    ``coefficients`` (CameraInfo's ``distortion_model`` and ``d``) and image ``size``
    (width, height); None when there is nothing to undo (no or all-zero coefficients, or a
    lens that moves no pixel by ``NEGLIGIBLE_PX``). Raises ``ValueError`` naming the fix for
    a model it does not know or coefficients it would have to drop."""
    d = np.asarray(list(coefficients), dtype=np.float64).reshape(-1)
    if d.size == 0 or not np.any(d):
        return None
    if not np.all(np.isfinite(d)):
        raise ValueError(f"CameraInfo distortion coefficients are not finite ({d.tolist()}); "
                         f"fix the camera's calibration or {FIX}")
    if model not in MODELS:
        raise ValueError(f"CameraInfo distortion_model {model!r} with non-zero coefficients is "
                         f"not supported (known: {', '.join(MODELS)}); {FIX}")
    n = 4 if model == "equidistant" else next((k for k in OPENCV_LENGTHS if k >= d.size), 0)
    if n == 0 or np.any(d[n:]):
        raise ValueError(f"{model} with {d.size} distortion coefficients ({d.tolist()}) is not "
                         f"a lens OpenCV knows; check distortion_model, or {FIX}")
    d = np.pad(d[:n], (0, n - min(n, d.size)))
    width, height = (int(s) for s in size)
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    if model == "equidistant":
        mx, my = cv2.fisheye.initUndistortRectifyMap(K, d, np.eye(3), K, (width, height),
                                                     cv2.CV_32FC1)
    else:
        mx, my = cv2.initUndistortRectifyMap(K, d, np.eye(3), K, (width, height),
                                             cv2.CV_32FC1)
    u, v = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    shift = float(np.nanmax(np.hypot(mx - u, my - v)))
    if shift < NEGLIGIBLE_PX:
        return None
    map1, map2 = cv2.convertMaps(mx, my, cv2.CV_16SC2, nninterpolation=True)
    return Undistortion(model, tuple(float(c) for c in d), (width, height), shift, map1, map2)


def is_rectified(depth_topic: str) -> bool:
    """Whether the images of ``depth_topic`` are rectified, by image_pipeline's naming
    (the module docstring)."""
    return "rect" in depth_topic.rstrip("/").rsplit("/", 1)[-1]


def pinhole_K(k, p, rectified: bool) -> np.ndarray:
    """The pinhole intrinsics [3,3] (float64) a CameraInfo gives its image: ``k`` (9
    values) for a raw image, ``p``'s left 3×3 (12 values) for a ``rectified`` one where P
    is set, else ``k`` (the module docstring). A copy: a message's arrays may be read-only
    views of its buffer (rosbags), which torch.from_numpy warns about."""
    P = np.array(p, dtype=np.float64).reshape(3, 4)[:, :3]
    if rectified and P[0, 0] > 0 and P[1, 1] > 0:
        return P
    return np.array(k, dtype=np.float64).reshape(3, 3)


class LensMaps:
    """The map of one camera's latest calibration, made again only when the calibration
    changes (a CameraInfo comes with every frame): ``current`` (None while rectified)."""

    def __init__(self) -> None:
        self.current: Undistortion | None = None
        self._key: tuple | None = None

    def update(self, K: np.ndarray, model: str, coefficients, size: tuple[int, int],
               rectified: bool = False) -> bool:
        """Take a CameraInfo's calibration (of a raw image, or of a ``rectified`` one: no
        map); True when it is a new one. Raises what :func:`undistortion` raises
        (``current`` is then kept)."""
        key = (model, tuple(float(c) for c in coefficients), tuple(int(s) for s in size),
               np.asarray(K, dtype=np.float64).tobytes(), bool(rectified))
        if key == self._key:
            return False
        self.current = None if rectified else undistortion(K, model, coefficients, size)
        self._key = key
        return True
