import pickle

import numpy as np
import pytest

from disrt_core.safe_pickle import load_pickle


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/disrt_pwned_by_pickle",))


def test_refuses_code_and_names_it(tmp_path):
    path = tmp_path / "evil.p"
    path.write_bytes(pickle.dumps({"images": [_Evil()]}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=r"evil\.p.*refusing to load 'posix\.system'"):
        load_pickle(path)


def test_reads_protocol2_numpy_and_builtins(tmp_path):
    data = {"images": [np.arange(6, dtype=np.uint16).reshape(2, 3)], "ids": {1, 2},
            "name": "a", "height": 1.7}
    path = tmp_path / "ok.p"
    path.write_bytes(pickle.dumps(data, protocol=2))
    out = load_pickle(path)
    np.testing.assert_array_equal(out["images"][0], data["images"][0])
    assert out["images"][0].dtype == np.uint16
    assert out["ids"] == {1, 2} and out["name"] == "a" and out["height"] == 1.7


def test_reads_python2_style_string_payloads(tmp_path):
    # Python 2 wrote array buffers as 8-bit str (BINSTRING); latin1 maps them back to bytes.
    # The opcode stream Python 2 + numpy 1.x writes for a float64 array (protocol 2).
    arr = np.array([1.5, -2.0], dtype=np.float64)
    raw = arr.tobytes()
    stream = (
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nq\x00cnumpy\nndarray\nq\x01K\x00\x85"
        b"U\x01b\x87Rq\x02(K\x01K\x02\x85cnumpy\ndtype\nq\x03U\x02f8K\x00K\x01\x87Rq\x04(K\x03"
        b"U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89U" + bytes([len(raw)]) + raw
        + b"tb."
    )
    path = tmp_path / "py2.p"
    path.write_bytes(stream)
    np.testing.assert_array_equal(load_pickle(path, encoding="latin1"), arr)
