"""Evaluation metrics (SPEC §6), per sample so that callers can group by cover or gender.

* MPJPE (mm): mean over the 24 joints of the Euclidean distance between predicted and GT
  joints, **no alignment** (no root alignment, no Procrustes): both in the absolute label
  frame, the prediction with the decoder's translation offset.
* PVE (mm): mean over all vertices of the vertex distance, no alignment.
* Body-measurement errors (cm): ``|pred − gt|`` of height, chest, waist and hips computed by
  :mod:`disrt_core.measurements` (pred and GT shapes measured with the GT gender).

Inputs are in metres (the SLP label's joints ``label[0:72]`` are in mm: pass
``label[:, :72].view(-1, 24, 3) / 1000``); outputs are float64 per-sample tensors [B].
"""

from __future__ import annotations

import torch
from torch import Tensor


def _check(pred: Tensor, gt: Tensor, what: str) -> None:
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(f"{what}: predicted {tuple(pred.shape)} and ground truth "
                         f"{tuple(gt.shape)} must both be [B, N, 3] (metres)")


def mpjpe_mm(pred_joints: Tensor, gt_joints: Tensor) -> Tensor:
    """Per-sample MPJPE in mm [B] of joints [B, 24, 3] in metres, no alignment."""
    _check(pred_joints, gt_joints, "MPJPE")
    return 1000.0 * torch.linalg.vector_norm(
        pred_joints.double() - gt_joints.double(), dim=-1).mean(dim=-1)


def pve_mm(pred_vertices: Tensor, gt_vertices: Tensor) -> Tensor:
    """Per-sample PVE in mm [B] of vertices [B, V, 3] in metres, no alignment."""
    _check(pred_vertices, gt_vertices, "PVE")
    return 1000.0 * torch.linalg.vector_norm(
        pred_vertices.double() - gt_vertices.double(), dim=-1).mean(dim=-1)


def measurement_errors_cm(pred: dict[str, Tensor], gt: dict[str, Tensor]) -> dict[str, Tensor]:
    """|pred − gt| per measurement and sample (cm), for the measurements both dicts hold."""
    return {k: (pred[k].double() - gt[k].double()).abs() for k in pred if k in gt}


def group_means(values: Tensor, groups: Tensor, names: tuple[str, ...] | None = None
                ) -> dict[str, float]:
    """Mean of per-sample ``values`` [N] per group label ``groups`` [N] (e.g. cover 0/1/2),
    plus ``all``; ``names[i]`` names group i (default: the label as text)."""
    out = {}
    for g in torch.unique(groups).tolist():
        key = names[g] if names is not None else str(g)
        out[key] = float(values[groups == g].double().mean())
    out["all"] = float(values.double().mean())
    return out
