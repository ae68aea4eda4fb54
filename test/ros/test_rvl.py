"""disrt_ros.rvl: image_transport's RVL depth codec."""

import numpy as np
import pytest

from disrt_ros import rvl


def test_a_stream_laid_out_by_hand():
    # [0 0 5 7 0]: 2 zeros, 2 non-zeros (differences 5 and 2, zigzag 10 and 4), 1 zero, 0
    # non-zeros. Nibbles, 3 value bits and a "more" bit each, lowest first: 2 | 2 | 10 ->
    # 0xA 0x1 | 4 | 1 | 0, padded with one 0 to the word 0x22A14100, stored little-endian.
    # Before it the size: uint32 columns 5, rows 1.
    data = bytes.fromhex("05000000" "01000000" "0041a122")
    img = np.array([[0, 0, 5, 7, 0]], np.uint16)
    np.testing.assert_array_equal(rvl.decode(data), img)
    assert rvl.encode(img) == data


@pytest.mark.parametrize("shape,holes", [((1, 1), 0.0), ((3, 7), 0.5), ((240, 424), 0.05),
                                         ((480, 640), 0.3)])
def test_round_trip(shape, holes):
    rng = np.random.default_rng(shape[0])
    img = rng.integers(1, 65536, shape).astype(np.uint16)  # differences of any size
    img[rng.random(shape) < holes] = 0
    out = rvl.decode(rvl.encode(img))
    assert out.dtype == np.uint16 and out.shape == shape
    np.testing.assert_array_equal(out, img)


@pytest.mark.parametrize("fill", [0, 1, 65535])
def test_flat_images(fill):
    img = np.full((5, 9), fill, np.uint16)
    np.testing.assert_array_equal(rvl.decode(rvl.encode(img)), img)


@pytest.mark.parametrize("data,words", [
    (b"\x05\x00", "no 8-byte size"),
    (bytes.fromhex("00000000" "01000000"), "size 0x1"),
    (bytes.fromhex("00000100" "00000100" "0041a122"), "over 14745600 pixels"),  # 65536²
    (bytes.fromhex("0a000000" "0a000000" "0041a122"), "ends after"),  # 100 pixels stated
    (bytes.fromhex("02000000" "01000000" "0041a122"), "reach past"),  # 2 pixels stated
])
def test_malformed_streams_are_refused(data, words):
    with pytest.raises(rvl.RvlError, match=words):
        rvl.decode(data)
