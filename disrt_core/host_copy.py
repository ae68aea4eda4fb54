"""Host-to-GPU copies that do not stop the host.

``cpu_tensor.to("cuda")`` copies from pageable memory, and PyTorch then waits for the stream
(``cudaStreamSynchronize``) until everything queued before the copy has run. In a training
step that drains the GPU's queue: the host waits for the previous step's backward pass, and
the next step's many small launches (the augmentation, the seeded timesteps and noise) then
run while the GPU idles (about 10 ms of a 162 ms step in the H100 trace
``benchmarks/traces/train_paper_b128_default_full--nvidia-h100.json.gz``; see
benchmarks/NOTES.md). From page-locked memory the copy is queued like a kernel and the host
goes on; the caching host allocator keeps the page-locked block until the copy has run, so
the values are the same as a blocking copy's.
"""

from __future__ import annotations

import torch
from torch import Tensor


def to_device(x: Tensor, device: torch.device | str) -> Tensor:
    """``x.to(device)``, without a host synchronisation for a CPU tensor going to a GPU."""
    device = torch.device(device)
    if device.type != "cuda" or x.device.type != "cpu":
        return x.to(device)
    return x.pin_memory().to(device, non_blocking=True)
