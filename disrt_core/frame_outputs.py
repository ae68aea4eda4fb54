"""An estimator's answers -> what a camera's frame reports, packed and copied to the host once.

For a batch of B frames (the node's ``Pipeline``) :func:`frame_outputs` maps the answer to
each camera's optical frame (``geometry.camera.label_to_camera``), takes the posture from
the posture classifier on the network image with the root orientation's vote where a
classifier is given (``disrt_core.model.posture_net``), else from the root orientation
(``posture``), the root as a quaternion in the camera frame, and the bed's state
(``occupancy.occupancy_state``), and packs them with the rest of what is
published into one float32 row per frame. :class:`OutputPacker` runs it, on a CUDA device
with ``cuda_graphs`` as one graph per batch shape (about 40 small kernels launched one by
one otherwise), and brings the rows to the host with a single copy into pinned memory (one
wait for the device, where 13 copies each waited before). The host arrays are views of that
copy, so they stay valid as long as any of them is held.

Frames: ``T_cam_bed`` [B,4,4] maps label-frame (bed) points to the camera optical frame
(REP-103 optical convention, metres). Integers (posture and state indices) travel as float32
and are exact.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import roma
import torch
from torch import Tensor

from disrt_core.body.layout import ParamLayout
from disrt_core.cuda_graphs import GraphCache
from disrt_core.geometry.camera import label_to_camera
from disrt_core.model.posture_net import combined_posture, head_logit
from disrt_core.occupancy import IN_BED, occupancy_state
from disrt_core.posture import posture_from_axis_angle


def frame_outputs(joints: Tensor, vertices: Tensor, params: Tensor, spread: Tensor,
                  present: Tensor, net_mm: Tensor, net: Tensor, region: Tensor,
                  T_cam_bed: Tensor, trunk: Tensor | None, layout: ParamLayout,
                  bed_mm: float, occupancy: bool, pressure: Tensor | None = None,
                  region_pressure: Tensor | None = None,
                  interval: Tensor | None = None,
                  posture_net: torch.nn.Module | None = None) -> dict[str, Tensor]:
    """Per-frame outputs, each [B, ...] (pure tensor work, capturable).

    joints [B,24,3], vertices [B,V,3], params [B,P]: the answer (label frame, m);
    spread [B,24]; present [B] presence probability; net_mm / net [B,128,54] the network
    grid in mm and normalised; region [B,4] the bed region's statistics; trunk [B,4] the
    raw frame's trunk evidence or None; ``occupancy`` False: every frame ``in_bed``.
    Returns joints in the bed and camera frames, vertices in the camera frame, spread,
    params, the root quaternion (x, y, z, w) in the camera frame, the network image,
    posture and state indices, presence, region statistics and, when given, pressure and
    the joint intervals [B,24] (``Prediction.joint_interval``). ``posture_net``: the posture
    classifier (eval mode, on the tensors' device): the posture is then its answer with the
    root's vote (``posture_net.combined_posture``), else the root's; a classifier with the
    head end's output adds ``head_logit`` [B] (``posture_net.head_logit``).
    """
    T = T_cam_bed.float()
    root = layout.unpack(params.float()).root_orient
    if occupancy:
        state = occupancy_state(present, net_mm, bed_mm, trunk)
    else:
        state = torch.full_like(present, IN_BED, dtype=torch.long)
    out = {
        "joints_bed": joints.float(),
        "joints_cam": label_to_camera(joints.float(), T),
        "vertices_cam": label_to_camera(vertices.float(), T),
        "joint_spread": spread.float(),
        "params": params.float(),
        "root_quat_cam": roma.rotmat_to_unitquat(T[:, :3, :3] @ roma.rotvec_to_rotmat(root)),
        "net_image": net.float(),
        "posture": posture_from_axis_angle(root),
        "state": state,
        "present_prob": present.float(),
        "region": region.float(),
    }
    if posture_net is not None:
        classified = posture_net(net.float()[:, None])
        out["posture"] = combined_posture(classified, out["posture"])
        head = head_logit(classified)
        if head is not None:
            out["head_logit"] = head.float()
    if pressure is not None:
        out["pressure"] = pressure.float()
    if region_pressure is not None:
        out["region_pressure"] = region_pressure.float()
    if interval is not None:
        out["joint_interval"] = interval.float()
    return out


def _pack(outputs: dict[str, Tensor]) -> Tensor:
    """One float32 row per frame [B, N] of every output, flattened in the dict's order."""
    b = next(iter(outputs.values())).shape[0]
    return torch.cat([v.reshape(b, -1).float() for v in outputs.values()], dim=1)


class OutputPacker:
    """:func:`frame_outputs` on ``device`` -> host arrays (module docstring); ``cuda_graphs``
    (CUDA only) replays it per batch shape. Thread-safe (one lock around the graphs)."""

    def __init__(self, layout: ParamLayout, device: str | torch.device = "cpu",
                 cuda_graphs: bool = False, max_graphs: int = 64,
                 posture_net: torch.nn.Module | None = None) -> None:
        self.layout, self.device = layout, torch.device(device)
        self.posture_net = posture_net  # frame_outputs' (fixed: a graph holds it)
        if cuda_graphs and self.device.type != "cuda":
            raise ValueError("cuda_graphs needs a CUDA device")
        self.cuda_graphs = cuda_graphs
        self._graphs = GraphCache(max_graphs=max_graphs, warmup=2)
        self._shapes: dict[tuple, list[tuple[str, tuple[int, ...]]]] = {}
        self._lock = threading.Lock()

    def __call__(self, tensors: dict[str, Tensor | None], bed_mm: float,
                 occupancy: bool) -> dict[str, np.ndarray]:
        """``tensors``: :func:`frame_outputs`' tensor arguments by name (``trunk``,
        ``pressure``, ``region_pressure`` and ``interval`` may be None); returns its outputs
        as numpy arrays [B, ...] (float32; ``posture`` and ``state`` as int64)."""
        names = ("joints", "vertices", "params", "spread", "present", "net_mm", "net",
                 "region", "T_cam_bed", "trunk", "pressure", "region_pressure", "interval")
        args = tuple(tensors.get(n) for n in names)
        key = (tuple(None if a is None else (*a.shape, a.dtype) for a in args),
               float(bed_mm), bool(occupancy))

        def run(*a):
            return frame_outputs(*a[:9], a[9], self.layout, float(bed_mm), bool(occupancy),
                                 a[10], a[11], a[12], self.posture_net)

        with self._lock, torch.inference_mode():
            layout = self._shapes.get(key)
            if layout is None:  # names and shapes, from one eager run (on any device)
                layout = [(n, tuple(v.shape[1:])) for n, v in run(*args).items()]
                self._shapes[key] = layout
            packed = None
            if self.cuda_graphs:
                try:
                    packed = self._graphs(key, lambda *a: _pack(run(*a)), args)
                except RuntimeError as err:  # a host synchronisation inside: run it eagerly
                    self.cuda_graphs = False
                    warnings.warn(f"the frame outputs cannot be captured in a CUDA graph "
                                  f"({type(err).__name__}: {err}); running them eagerly",
                                  RuntimeWarning, stacklevel=2)
            if packed is None:
                packed = _pack(run(*args))
            if packed.device.type == "cuda":
                host = torch.empty(packed.shape, dtype=packed.dtype, pin_memory=True)
                host.copy_(packed, non_blocking=True)
                torch.cuda.current_stream(packed.device).synchronize()
            else:
                host = packed
        flat, out, start = host.numpy(), {}, 0
        for name, shape in layout:
            size = int(np.prod(shape, dtype=np.int64))
            part = flat[:, start:start + size].reshape(flat.shape[0], *shape)
            out[name] = part.astype(np.int64) if name in ("posture", "state") else part
            start += size
        return out
