"""disrt_core.geometry.resample: raw frames -> network input with the bed region's
statistics, eager on the CPU and one CUDA graph per shape on a GPU."""

import numpy as np
import pytest
import torch

from disrt_core.geometry.bedframe import NET_SHAPE, normalize_depth
from disrt_core.geometry.camera import overhead_camera_pose, raw_to_network
from disrt_core.geometry.plausibility import bed_region_stats, region_problems
from disrt_core.geometry.resample import FrameResampler

K = torch.tensor([[300.0, 0.0, 119.5], [0.0, 300.0, 159.5], [0.0, 0.0, 1.0]])


def frames(heights_m=(2.0, 3.3), body_mm=(250.0, 0.0)) -> tuple[torch.Tensor, ...]:
    """uint16 frames [B,320,240] of a camera straight over the bed centre, a box on the bed
    in each (its height ``body_mm``), some pixels without a reading."""
    depth = torch.zeros(len(heights_m), 320, 240)
    for b, (h, body) in enumerate(zip(heights_m, body_mm)):
        depth[b] = 1000.0 * h
        depth[b, 100:220, 90:150] -= body
        depth[b, ::7, ::5] = 0  # holes
    T = torch.stack([overhead_camera_pose(2.0, (0.42, 1.0)) for _ in heights_m])
    return depth.to(torch.uint16), K.expand(len(heights_m), 3, 3), T


def test_region_stats_against_numpy():
    """Coverage, shares below and above and the median height of the readings, against a
    per-frame numpy computation; the median leaves the cells without readings out."""
    bed = 2101.0
    rng = np.random.default_rng(0)
    net = rng.uniform(1000, 2600, size=(3, *NET_SHAPE)).astype(np.float32)
    net[0][rng.random(NET_SHAPE) < 0.3] = 0
    net[2] = 0
    stats = bed_region_stats(torch.from_numpy(net), bed).numpy()
    for b in range(2):
        valid = net[b] > 0
        height = (bed - net[b][valid]) / 1000
        expected = [valid.mean(), (height < -0.1).mean(), (height > 0.75).mean(),
                    np.sort(height)[(height.size - 1) // 2]]  # the lower middle value
        np.testing.assert_allclose(stats[b], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(stats[2], [0, 0, 0, 0])
    assert "readings" in region_problems(stats)[2]


def test_cpu_resampler_gives_the_network_input_and_names_a_wrong_pose():
    depth, Kb, T = frames()
    out = FrameResampler("cpu")(depth, Kb, T, 2101.0)
    net_mm = raw_to_network(depth, Kb, T, 2101.0)
    torch.testing.assert_close(out.net_mm, net_mm)
    torch.testing.assert_close(out.net, normalize_depth(net_mm, 2101.0))
    problems = region_problems(out.region)
    assert problems[0] is None
    assert "farther" in problems[1] and "1.30 m" in problems[1]  # the camera 3.3 m up


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_matches_eager_for_new_frames():
    """The graph is captured on the first batch and replayed on another: its answers are
    the second batch's, equal to the eager computation on the GPU."""
    resampler = FrameResampler("cuda", cuda_graphs=True)
    first = frames((2.0, 2.0), (250.0, 100.0))
    resampler(*first, 2101.0)
    second = frames((3.3, 2.0), (0.0, 300.0))
    out = resampler(*second, 2101.0)
    assert len(resampler._graphs) == 1
    eager = FrameResampler("cuda")(*second, 2101.0)
    for got, want in ((out.net_mm, eager.net_mm), (out.net, eager.net),
                      (out.region, eager.region)):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-3)
    assert "farther" in region_problems(out.region)[0]
