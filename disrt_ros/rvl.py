"""The RVL codec of image_transport's ``compressedDepth`` (``format: rvl``), in numpy.

RVL (A. D. Wilson, "Fast Lossless Depth Image Compression", ISS 2017) as
compressed_depth_image_transport writes it after its 12-byte header: uint32 columns, uint32
rows (little-endian, the publisher's memory), then the stream. The stream repeats, until
every pixel is told: the count of zero pixels, the count of non-zero pixels, and for each
non-zero pixel the zigzag-coded difference to the previous non-zero pixel (``2d`` for
``d >= 0``, ``-2d - 1`` below; the first difference is to 0). Each count or difference is
a variable-length number of 4-bit nibbles, 3 bits of value each (lowest first) and the
fourth bit set while more follow; eight nibbles fill a 32-bit word from its most
significant end, and the last word is padded with zero nibbles.

Both directions are vectorised (numpy over the nibbles and pixels); only the walk over the
runs is a Python loop (a few thousand runs in a camera frame with holes): decoding a 640×480
frame takes ~10-20 ms on one core. The ``png`` format is faster to decode; RVL is smaller
and faster to encode on the camera's computer.
"""

from __future__ import annotations

import struct

import numpy as np

#: columns, rows: the size prefix before the RVL stream
SIZE = struct.Struct("<II")
#: the most pixels a stream may state (16 times a 1280×720 frame): a few bytes of zero run
#: could otherwise ask for gigabytes
MAX_PIXELS = 16 * 1280 * 720


class RvlError(ValueError):
    """An RVL stream that does not decode to the image size it states."""


def _vle(values: np.ndarray) -> np.ndarray:
    """Nibbles (uint8) of non-negative ``values`` int64 [N], each value's in order."""
    bits = np.zeros(values.shape, np.int64)
    v = values.copy()
    while (v > 0).any():  # bit length, ≤ 32 passes
        bits += v > 0
        v >>= 1
    count = np.maximum(1, -(-bits // 3))  # nibbles per value
    owner = np.repeat(np.arange(values.size), count)
    k = np.arange(owner.size) - np.repeat(np.cumsum(count) - count, count)  # 0 = lowest
    nib = (values[owner] >> (3 * k)) & 7
    more = k < count[owner] - 1
    return (nib | (more << 3)).astype(np.uint8)


def _unvle(nibbles: np.ndarray) -> np.ndarray:
    """Values int64 [M] of a nibble stream (a value not ended at the stream's end is
    dropped)."""
    ends = np.flatnonzero((nibbles & 8) == 0)
    if ends.size == 0:
        return np.zeros(0, np.int64)
    nibbles = nibbles[:ends[-1] + 1]
    starts = np.concatenate([[0], ends[:-1] + 1])
    k = np.arange(nibbles.size) - np.repeat(starts, ends - starts + 1)
    if k.max(initial=0) > 10:  # more than 32 bits: not a count or difference of RVL
        raise RvlError("an RVL value runs over 11 nibbles (32 bits): corrupted stream")
    return np.add.reduceat((nibbles & 7).astype(np.int64) << (3 * k), starts)


def encode(pixels: np.ndarray) -> bytes:
    """uint16 [H,W] -> the size prefix and RVL stream (as the publisher writes them)."""
    img = np.ascontiguousarray(pixels, np.uint16)
    if img.ndim != 2:
        raise ValueError(f"RVL encodes one 16-bit channel [H,W], got shape {img.shape}")
    flat = img.ravel()
    nz = flat != 0
    # Runs: (zeros, non-zeros) pairs from the start; the first zero run may be empty, the
    # last non-zero run too (an image ending in zeros).
    edges = np.flatnonzero(np.diff(nz.astype(np.int8))) + 1
    bounds = np.concatenate([[0], edges, [flat.size]])
    lengths = np.diff(bounds)
    if flat.size and nz[0]:
        lengths = np.concatenate([[0], lengths])  # an empty first zero run
    if lengths.size % 2:
        lengths = np.concatenate([lengths, [0]])
    zeros, nonzeros = lengths[0::2], lengths[1::2]
    current = flat[nz].astype(np.int64)
    delta = np.diff(current, prepend=0)
    zigzag = np.where(delta >= 0, 2 * delta, -2 * delta - 1)
    # The values in stream order: per pair its two counts, then its differences.
    per_pair = 2 + nonzeros
    values = np.empty(int(per_pair.sum()), np.int64)
    head = np.cumsum(per_pair) - per_pair
    values[head], values[head + 1] = zeros, nonzeros
    is_diff = np.ones(values.size, bool)
    is_diff[head], is_diff[head + 1] = False, False
    values[is_diff] = zigzag
    nib = _vle(values)
    nib = np.concatenate([nib, np.zeros(-nib.size % 8, np.uint8)]).reshape(-1, 8)
    words = np.zeros(nib.shape[0], np.uint32)
    for i in range(8):  # the first nibble in the most significant bits
        words |= nib[:, i].astype(np.uint32) << np.uint32(28 - 4 * i)
    return SIZE.pack(img.shape[1], img.shape[0]) + words.astype("<u4").tobytes()


def decode(data: bytes | np.ndarray) -> np.ndarray:
    """The size prefix and RVL stream -> uint16 [H,W]; :class:`RvlError` when they do not
    agree (a stream that ends early, runs past the image, a zero size)."""
    raw = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data
    if raw.size < SIZE.size:
        raise RvlError(f"RVL data of {raw.size} B holds no {SIZE.size}-byte size")
    cols, rows = SIZE.unpack(raw[:SIZE.size].tobytes())
    n = rows * cols
    if n == 0 or n > MAX_PIXELS:
        raise RvlError(f"RVL image of size {cols}x{rows}: "
                       + ("empty" if n == 0 else f"over {MAX_PIXELS} pixels"))
    body = raw[SIZE.size:]
    words = np.frombuffer(body[:body.size - body.size % 4].tobytes(), "<u4")
    shifts = np.arange(28, -1, -4, dtype=np.uint32)
    nibbles = ((words[:, None] >> shifts) & 0xF).astype(np.uint8).ravel()
    values = _unvle(nibbles)
    # Walk the runs: zeros, non-zeros, then that many differences.
    out_at, take_at, counts = [], [], []
    i = filled = 0
    nv = values.size
    while filled < n:
        if i + 1 >= nv:
            raise RvlError(f"RVL stream ends after {filled} of {cols}x{rows} pixels")
        zeros, nonzeros = int(values[i]), int(values[i + 1])
        filled += zeros
        if filled + nonzeros > n or i + 2 + nonzeros > nv:
            raise RvlError(f"RVL runs reach past the {cols}x{rows} image or the stream "
                           f"(pixel {filled + nonzeros}, value {i + 2 + nonzeros} of {nv})")
        out_at.append(filled)
        take_at.append(i + 2)
        counts.append(nonzeros)
        filled += nonzeros
        i += 2 + nonzeros
    counts_a = np.asarray(counts, np.int64)
    offset = np.arange(int(counts_a.sum())) - np.repeat(np.cumsum(counts_a) - counts_a, counts_a)
    positive = values[np.repeat(np.asarray(take_at, np.int64), counts_a) + offset]
    delta = (positive >> 1) ^ -(positive & 1)
    out = np.zeros(n, np.uint16)
    out[np.repeat(np.asarray(out_at, np.int64), counts_a) + offset] = (
        np.cumsum(delta) & 0xFFFF).astype(np.uint16)
    return out.reshape(rows, cols)
