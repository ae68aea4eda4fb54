"""Stand-ins for the node's tests and benchmark: a deterministic fake ``Estimator`` and
synthetic depth frames of a camera over a bed.

``FakeEstimator`` follows the contract of ``disrt_core.infer.Estimator`` (``predict``,
``set_sampling``, ``body_model`` with ``param_layout``, ``faces``, ``joint_names``;
``model_id``; ``device``). Its output depends on the input image (the skeleton is lifted by
``LIFT_M`` times the mean of the network input), so a test can tell which frame a result
came from, and it can take a fixed time per call to stand for a real network.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import torch

from disrt_core.body.layout import ParamLayout
from disrt_core.body.skeleton import SMPL_JOINT_NAMES
from disrt_core.geometry.bedframe import BED_CENTRE_LABEL
from disrt_core.infer import Prediction
from disrt_core.pressure import REGIONS

CAM_HEIGHT = 2.0  # m: the fake camera over the bed centre (bed_region pose)

LIFT_M = 0.1
#: Root axis-angle of the fake body: lying on its left side (posture "left").
ROOT = (0.0, math.pi / 2, 0.0)


def base_joints() -> torch.Tensor:
    """[24,3] distinct joint positions on the bed (label frame, m), pelvis 1 m from the foot."""
    i = torch.arange(24, dtype=torch.float32)
    x = BED_CENTRE_LABEL[0] + 0.03 * (i % 5 - 2)
    y = 1.0 + 0.025 * i
    z = 0.10 + 0.002 * i
    return torch.stack([x, y, z], dim=1)


class FakeBody:
    param_layout = ParamLayout(shape_dim=6)
    joint_names = SMPL_JOINT_NAMES
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    model_id = "fake-body"


class FakeEstimator:
    """Deterministic Estimator stand-in (see module docstring)."""

    model_id = "fake-model"

    def __init__(self, delay_s: float = 0.0, device: str = "cpu", hypotheses: int = 1):
        self.body_model = FakeBody()
        self.device = device
        self.delay_s = delay_s
        self.sampling = {"steps": 5, "hypotheses": hypotheses, "eta": 0.0}
        self.batch_sizes: list[int] = []
        self.fail_next = False
        self.present = 1.0  # the present_prob it answers (an empty bed: below 0.5)
        self.present_fn = None  # or a function of the images [B,1,128,54] -> present_prob [B]
        self.pressure = False  # set_pressure: answer pressure too
        self.sacrum_kpa = 5.0  # the sacrum's peak it answers then (the others: 2 kPa)
        self.entered = threading.Event()  # set when a predict call starts
        self._gate = threading.Event()
        self._gate.set()
        self._lock = threading.Lock()

    def hold(self) -> None:
        """Make the next predict calls wait (after setting ``entered``) until release()."""
        self.entered.clear()
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def set_pressure(self, enabled: bool, method: str = "learned") -> None:
        self.pressure, self.pressure_method = bool(enabled), method

    def set_sampling(self, steps=None, hypotheses=None, eta=None) -> None:
        for key, value in (("steps", steps), ("hypotheses", hypotheses), ("eta", eta)):
            if value is not None:
                self.sampling[key] = value

    def predict(self, depth, check: bool = True) -> Prediction:
        depth = torch.as_tensor(depth, dtype=torch.float32)
        if depth.ndim == 3:
            depth = depth[:, None]
        if tuple(depth.shape[1:]) != (1, 128, 54):
            raise ValueError(f"expected [B,1,128,54], got {tuple(depth.shape)}")
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("fake inference failure")
        start = time.perf_counter()
        self.entered.set()
        if not self._gate.wait(120.0):
            raise RuntimeError("FakeEstimator held for 120 s: the test never released it")
        batch = depth.shape[0]
        lift = LIFT_M * depth.mean(dim=(1, 2, 3))
        joints = base_joints()[None].repeat(batch, 1, 1)
        joints[..., 2] += lift[:, None]
        corners = torch.tensor([[-0.2, -0.5, 0.0], [0.2, -0.5, 0.0], [0.2, 0.5, 0.0],
                                [-0.2, 0.5, 0.0]])
        vertices = joints[:, :1] + corners[None]
        layout = self.body_model.param_layout
        root = torch.tensor(ROOT).expand(batch, 3)
        params = layout.pack(torch.zeros(batch, 6), joints[:, 0], root, torch.zeros(batch, 69))
        k = int(self.sampling["hypotheses"])
        spread = (0.005 * torch.arange(24.0)).expand(batch, 24) if k > 1 else \
            torch.zeros(batch, 24)
        with self._lock:
            self.batch_sizes.append(batch)
        remaining = self.delay_s - (time.perf_counter() - start)
        if remaining > 0:
            time.sleep(remaining)
        present = torch.full((batch,), float(self.present)) if self.present_fn is None \
            else self.present_fn(depth).float()
        pred = Prediction(params=params, joints=joints, vertices=vertices,
                          joint_spread=spread.clone(), present_prob=present,
                          present=present >= 0.5)
        if self.pressure:  # a block under the middle of the mat, as high as the sacrum's peak
            pred.pressure = torch.zeros(batch, 192, 84)
            pred.pressure[:, 90:120, 30:54] = float(self.sacrum_kpa)
            pred.vertex_pressure = torch.zeros(batch, vertices.shape[1])
            regions = torch.full((batch, len(REGIONS), 2), 2.0)
            regions[:, REGIONS.index("sacrum")] = float(self.sacrum_kpa)
            pred.region_pressure = regions
        return pred


# A small overhead depth camera: 240 columns x 320 rows, rows along the bed.
WIDTH, HEIGHT = 240, 320
K = np.array([[250.0, 0.0, WIDTH / 2 - 0.5], [0.0, 250.0, HEIGHT / 2 - 0.5], [0.0, 0.0, 1.0]])


def depth_frame(camera_height_m: float = 2.0, body_mm: float = 250.0) -> np.ndarray:
    """uint16 [320,240] mm: the bed plane seen straight down from ``camera_height_m`` over
    its centre (depth along the optical axis is the same everywhere), with a box
    ``body_mm`` high over the middle of the image."""
    depth = np.full((HEIGHT, WIDTH), round(camera_height_m * 1000), np.uint16)
    depth[100:220, 90:150] -= np.uint16(body_mm)
    return depth
