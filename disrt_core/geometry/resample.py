"""Raw depth frames -> the network's input on the estimator's device, as one CUDA graph.

:class:`FrameResampler` runs, for a batch of frames of one size,
:func:`~disrt_core.geometry.camera.raw_to_network` (the network grid in mm, SLP
convention), :func:`~disrt_core.geometry.bedframe.normalize_depth` (the network's [0, 1]
input) and :func:`~disrt_core.geometry.plausibility.bed_region_stats` (what the bed
region's depth says about the pose). On the CPU it calls them. On a CUDA device with
``cuda_graphs`` it replays them as one graph per (batch, height, width, dtype, bed_mm):
about 140 small operations and 60 kernels, launched one by one otherwise (the node's
``preprocess`` stage on an H200: 2.4 ms eager, 0.7 ms with the graph, benchmarks/NOTES.md),
and nothing in them waits for the device, so the frame goes from upload to answer without
a host synchronisation. A new size is captured on its first batch (three eager runs and the
capture: milliseconds, as no network is in it).

Frames: ``depth_mm`` [B,H,W] (mm along the optical axis, 0 = no reading; any real dtype,
uint16 uploads half the bytes of float32), ``K`` [B,3,3], ``T_cam_bed`` [B,4,4] (optical
frame, as in :mod:`disrt_core.geometry.camera`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import torch
from torch import Tensor

from disrt_core.cuda_graphs import GraphCache
from disrt_core.geometry.bedframe import normalize_depth
from disrt_core.geometry.camera import raw_to_network
from disrt_core.geometry.plausibility import bed_region_stats


@dataclass
class Resampled:
    """One batch on the network grid: ``net_mm`` [B,128,54] (mm, 0 = no reading), ``net``
    [B,128,54] (normalised, [0, 1]) and ``region`` [B,4] (:func:`bed_region_stats`)."""

    net_mm: Tensor
    net: Tensor
    region: Tensor


def resample_frames(depth_mm: Tensor, K: Tensor, T_cam_bed: Tensor,
                    bed_mm: float) -> tuple[Tensor, Tensor, Tensor]:
    """(net_mm, net, region stats) of raw frames (module docstring); pure tensor work."""
    net_mm = raw_to_network(depth_mm, K, T_cam_bed, bed_mm)
    return net_mm, normalize_depth(net_mm, bed_mm), bed_region_stats(net_mm, bed_mm)


class FrameResampler:
    """Raw frames -> :class:`Resampled` on ``device``; ``cuda_graphs`` (CUDA only) replays
    :func:`resample_frames` per batch shape. Thread-safe (one lock around the graphs)."""

    def __init__(self, device: str | torch.device = "cpu", cuda_graphs: bool = False,
                 max_graphs: int = 64) -> None:
        self.device = torch.device(device)
        if cuda_graphs and self.device.type != "cuda":
            raise ValueError("cuda_graphs needs a CUDA device")
        self.cuda_graphs = cuda_graphs
        self._graphs = GraphCache(max_graphs=max_graphs, warmup=3)
        self._lock = threading.Lock()

    def __call__(self, depth_mm: Tensor, K: Tensor, T_cam_bed: Tensor,
                 bed_mm: float) -> Resampled:
        """Frames of one size (module docstring), copied to the device if they are not on
        it (asynchronously from pinned memory)."""
        depth_mm = depth_mm.to(self.device, non_blocking=True)
        K = K.to(self.device, torch.float32, non_blocking=True)
        T_cam_bed = T_cam_bed.to(self.device, torch.float32, non_blocking=True)
        args = (depth_mm, K, T_cam_bed)
        if not self.cuda_graphs:
            return Resampled(*resample_frames(*args, bed_mm))
        key = (*depth_mm.shape, depth_mm.dtype, float(bed_mm))
        with self._lock, torch.inference_mode():
            out = self._graphs(key, lambda *a: resample_frames(*a, float(bed_mm)), args)
        return Resampled(*out)
