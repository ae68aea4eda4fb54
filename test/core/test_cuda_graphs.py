"""disrt_core.cuda_graphs: tree helpers, the cache's policy (CPU, capture replaced by a
recorder) and a real capture against eager results (CUDA only)."""

import pytest
import torch

from disrt_core.cuda_graphs import GraphCache, tree_copy_, tree_map


def test_tree_map_keeps_structure_and_none():
    tree = (torch.ones(2), [torch.zeros(3), None], None)
    out = tree_map(lambda t: t + 1, tree)
    assert isinstance(out, tuple) and isinstance(out[1], list)
    assert out[1][1] is None and out[2] is None
    assert torch.equal(out[0], torch.full((2,), 2.0))
    assert torch.equal(out[1][0], torch.ones(3))
    assert torch.equal(tree[0], torch.ones(2))  # the input is not touched


def test_tree_copy_writes_in_place():
    dst = [torch.zeros(2), (torch.zeros(1), None)]
    ids = [dst[0].data_ptr(), dst[1][0].data_ptr()]
    tree_copy_(dst, [torch.tensor([1.0, 2.0]), (torch.tensor([3.0]), None)])
    assert [dst[0].data_ptr(), dst[1][0].data_ptr()] == ids
    assert dst[0].tolist() == [1.0, 2.0] and dst[1][0].tolist() == [3.0]
    with pytest.raises(ValueError):  # a structure that does not match
        tree_copy_([torch.zeros(1)], [torch.zeros(1), torch.zeros(1)])


class _FakeGraph:
    """Stands in for a captured graph: replay recomputes fn on the static inputs into the
    static outputs, as a real replay does."""

    def __init__(self, fn, static, out):
        self.fn, self.static, self.out = fn, static, out

    def replay(self):
        tree_copy_(self.out, self.fn(*self.static))


def _recording_cache(max_graphs):
    cache = GraphCache(max_graphs)
    captured = []

    def capture(fn, args):
        if getattr(fn, "fails", False):
            raise RuntimeError("operation not permitted when stream is capturing")
        static = tree_map(lambda t: t.clone(), args)
        captured.append(fn)
        out = fn(*static)
        return _FakeGraph(fn, static, out), static, out

    cache._capture = capture
    return cache, captured


def test_cache_replays_with_new_values_and_evicts_least_recent():
    cache, captured = _recording_cache(max_graphs=2)

    def double(x):
        return [x * 2]

    x = torch.tensor([1.0, 2.0])
    first = cache("a", double, (x,))
    again = cache("a", double, (torch.tensor([5.0, 7.0]),))
    assert len(captured) == 1  # captured once, replayed with the new values
    assert first[0].tolist() == [2.0, 4.0] and again[0].tolist() == [10.0, 14.0]
    again[0].fill_(0)  # results are copies: the next replay is not affected
    assert cache("a", double, (x,))[0].tolist() == [2.0, 4.0]
    cache("b", double, (x,))
    cache("a", double, (x,))  # "a" used last: "b" is the least recent
    cache("c", double, (x,))
    assert len(cache) == 2
    cache("a", double, (x,))
    assert len(captured) == 3  # a, b, c; "a" was kept
    cache("b", double, (x,))
    assert len(captured) == 4  # "b" had been dropped and is captured again


def test_failed_capture_raises_and_keeps_nothing():
    cache, _ = _recording_cache(max_graphs=None)

    def bad(x):
        return [x]
    bad.fails = True
    with pytest.raises(RuntimeError):
        cache("k", bad, (torch.zeros(1),))
    assert len(cache) == 0


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_capture_matches_eager_and_leaves_inputs():
    def loop(a, rows):
        for _ in range(10):
            a = a * 0.5 + rows[0].sin()
            rows = [rows[0] + a.mean(), rows[1]]
        return a, rows[0]

    cache = GraphCache(warmup=2)
    for seed in range(3):
        g = torch.Generator(device="cuda").manual_seed(seed)
        a = torch.randn(4, 3, device="cuda", generator=g)
        rows = [torch.randn(4, 3, device="cuda", generator=g), None]
        keep = a.clone()
        got = cache("loop", loop, (a, rows))
        want = loop(a.clone(), [rows[0].clone(), None])
        assert torch.equal(a, keep)
        for x, y in zip(got, want, strict=True):
            assert torch.allclose(x, y, atol=1e-6)
    assert len(cache) == 1
