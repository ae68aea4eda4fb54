"""image_transport's ``compressedDepth`` payloads (PNG and RVL) and depth pixels read as
millimetres (:func:`pixels_to_mm`), without rclpy: the node's :mod:`disrt_ros.conversions`
wraps them in ``sensor_msgs`` messages, and the bag tools read them from ``rosbags``
messages (same ``format`` and ``data`` fields), so both read depth alike.

Malformed input raises :class:`ImageFormatError`, whose message names the problem and what
to change; the node reports it and keeps running.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

from disrt_ros import rvl

DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")
#: image_transport compressedDepth's ``ConfigHeader`` before the PNG (compression_common.h):
#: int32 format (0 = INV_DEPTH, always written), float32 depthQuantA, float32 depthQuantB,
#: copied from memory, so in the publisher's byte order: little-endian on x86 and ARM. The
#: floats are only meaningful for 32FC1 (left uninitialised for 16-bit images).
HEADER = struct.Struct("<iff")


class ImageFormatError(ValueError):
    """A message that cannot be read: unsupported encoding, or sizes that do not add up."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind  # "encoding" or "size", for counting in diagnostics


def decode(fmt: str, data) -> np.ndarray:
    """An image_transport ``compressedDepth`` message's ``format`` and ``data`` -> uint16
    [H,W] (16UC1 / mono16, the publisher's units, mm for depth cameras) or float32 [H,W]
    metres (32FC1, NaN = no reading), as compressed_depth_image_transport's
    ``decodeCompressedDepthImage`` does.

    ``fmt`` is ``"<encoding>; compressedDepth png"`` or ``"...; compressedDepth
    rvl"`` (Jazzy; older publishers write ``"<encoding>; compressedDepth"``, PNG),
    ``data`` (bytes or uint8 array) a 12-byte :data:`HEADER` then a 16-bit grey PNG (decoded
    with OpenCV) or an RVL image (:mod:`disrt_ros.rvl`): the depth itself for 16-bit
    images; for 32FC1 the quantised inverse depth ``q`` with ``depth = A / (q − B)`` (A, B
    from the header) and ``q = 0`` for no reading.
    """
    fmt = str(fmt)
    encoding, _, codec = (part.strip() for part in fmt.partition(";"))
    if codec and "compressedDepth" not in codec:
        raise ImageFormatError("encoding", (
            f"CompressedImage with format {fmt!r} is not image_transport's compressedDepth "
            "(PNG or RVL depth); subscribe to the .../compressedDepth topic of a depth image"))
    if encoding not in DEPTH_ENCODINGS:
        raise ImageFormatError("encoding", (
            f"compressedDepth message of a {encoding!r} image; the node reads 16UC1 / mono16 "
            "(mm) or 32FC1 (m) depth: subscribe to the depth stream's compressedDepth topic"))
    data = np.frombuffer(data, dtype=np.uint8)
    size = HEADER.size
    if data.size <= size:
        raise ImageFormatError("size", (
            f"compressedDepth message holds {data.size} B, no more than its {size}-byte "
            "header: the publisher sent no image"))
    _, quant_a, quant_b = HEADER.unpack(data[:size].tobytes())
    if "compressedDepth rvl" in codec:
        try:
            pixels = rvl.decode(data[size:])
        except rvl.RvlError as exc:
            raise ImageFormatError("size", f"compressedDepth ({fmt!r}): {exc}") from None
    else:
        pixels = cv2.imdecode(data[size:], cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.dtype != np.uint16 or pixels.ndim != 2:
        what = "is not an image" if pixels is None else \
            f"is {pixels.dtype} with shape {pixels.shape}"
        raise ImageFormatError("encoding", (
            f"compressedDepth ({fmt!r}) data after the {size}-byte header {what}; expected a "
            "16-bit grey PNG: is the publisher image_transport's compressedDepth?"))
    if encoding != "32FC1":
        return pixels
    if not (np.isfinite(quant_a) and np.isfinite(quant_b) and quant_a > 0):
        raise ImageFormatError("encoding", (
            f"compressedDepth 32FC1 message with quantisation A={quant_a}, B={quant_b}: not "
            "image_transport's inverse-depth header"))
    q = pixels.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.float32(quant_a) / (q - np.float32(quant_b))
    return np.where(pixels > 0, depth, np.float32(np.nan)).astype(np.float32)


def pixels_to_mm(pixels: np.ndarray) -> np.ndarray:
    """Depth pixels -> float32 [H,W] millimetres, 0 = no reading: uint16 (16UC1 / mono16)
    hold mm; float32 (32FC1) metres, where NaN, ±inf or ≤ 0 mean no reading."""
    if pixels.dtype == np.uint16:
        return pixels.astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        mm = pixels * np.float32(1000.0)
        return np.where(np.isfinite(mm) & (mm > 0), mm, np.float32(0.0)).astype(np.float32)


def encode(depth: np.ndarray, encoding: str, *, depth_max: float = 10.0,
           depth_quantization: float = 100.0, png_level: int = 3, codec: str = "png"
           ) -> tuple[str, bytes]:
    """Depth [H,W] (uint16 for 16UC1 / mono16, float32 metres for 32FC1) -> the ``format``
    and ``data`` of the message compressed_depth_image_transport's publisher sends, with its
    parameters' defaults: 16-bit values above ``depth_max`` m become 0; 32FC1 becomes the
    inverse depth ``q = A / depth + B`` (float32, truncated to uint16; 0 for NaN, ≤ 0 or
    ≥ ``depth_max``) with ``A = z0 (z0 + 1)``, ``B = 1 − A / depth_max``, z0 =
    ``depth_quantization``; ``codec`` ``png`` or ``rvl``."""
    if encoding not in DEPTH_ENCODINGS:
        raise ValueError(f"compressedDepth needs a depth encoding {DEPTH_ENCODINGS}, "
                         f"got {encoding!r}")
    quant_a = quant_b = 0.0
    if encoding == "32FC1":
        d = np.asarray(depth, np.float32)
        quant_a = np.float32(depth_quantization * (depth_quantization + 1.0))
        quant_b = np.float32(1.0) - quant_a / np.float32(depth_max)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            q = np.where(np.isfinite(d) & (d > 0) & (d < depth_max), quant_a / d + quant_b, 0)
        pixels = np.clip(q, 0, 65535).astype(np.float32).astype(np.uint16)
    else:
        pixels = np.asarray(depth, np.uint16).copy()
        pixels[pixels > np.uint16(depth_max * 1000.0)] = 0
    if codec == "rvl":
        body = rvl.encode(pixels)
    elif codec == "png":
        ok, png = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, png_level])
        if not ok:
            raise ValueError(f"OpenCV could not encode a {pixels.shape} PNG")
        body = png.tobytes()
    else:
        raise ValueError(f"compressedDepth codec must be png or rvl, got {codec!r}")
    return (f"{encoding}; compressedDepth {codec}",
            HEADER.pack(0, float(quant_a), float(quant_b)) + body)
