"""``disrt-bed-monitor``'s ``main()`` with a stand-in estimator that keeps torch busy, for the
shutdown tests (test_shutdown.py), run as its own process:
``python test/ros/busy_monitor.py WARMUP_S PREDICT_S [--ros-args ...]``.

The first ``predict`` (the node's warm-up) computes for ``WARMUP_S`` seconds, every later
one for ``PREDICT_S``, in torch matrix products: like a real network, the thread spends that
time inside C++ calls that release the GIL, which is what a signal must cope with (a
``time.sleep`` would not). Each call prints ``busy predict started`` first, so that the test
can signal the process in the middle of one.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes import FakeEstimator

from disrt_ros import node


class BusyEstimator(FakeEstimator):
    def __init__(self, warmup_s: float, predict_s: float):
        super().__init__()
        self.busy_s = [warmup_s, predict_s]

    def predict(self, depth, check: bool = True):
        seconds = self.busy_s[0]
        self.busy_s[0] = self.busy_s[1]
        print("busy predict started", flush=True)
        end = time.monotonic() + seconds
        a = torch.rand(400, 400)
        while time.monotonic() < end:
            a = torch.tanh(a @ a)
        return super().predict(depth, check)


if __name__ == "__main__":
    warmup, per_frame = float(sys.argv[1]), float(sys.argv[2])
    node.load_estimator = lambda config: BusyEstimator(warmup, per_frame)
    raise SystemExit(node.main(["disrt-bed-monitor", *sys.argv[3:]]))
