"""The inference thread's default CPU thread count (disrt_core.threads)."""

from __future__ import annotations

import pytest
import torch

from disrt_core.threads import cpu_threads, inference_threads


@pytest.mark.parametrize("cores, expected", [(1, 1), (2, 1), (4, 3), (16, 15)])
def test_the_cpu_keeps_a_core_for_the_rest_of_the_process(cores, expected):
    with cpu_threads("cpu", cores):
        assert inference_threads("cpu") == expected
        assert torch.get_num_threads() == cores  # only read, not changed


def test_a_gpu_keeps_torchs_default():
    with cpu_threads("cpu", 4):
        assert inference_threads("cuda") == 4
        assert inference_threads("cuda:1") == 4
        assert inference_threads("auto") == (4 if torch.cuda.is_available() else 3)
