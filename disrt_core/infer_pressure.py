"""The pressure plumbing of :class:`disrt_core.infer.Estimator`: the methods it offers, the
learned network it loads for :meth:`~disrt_core.infer.Estimator.set_pressure`, the learned
map's reading under a body, and a :class:`~disrt_core.prediction.Prediction` given its
pressure.

Pure functions: the estimator keeps which pressure model and network are on (under its
lock) and passes them in. :mod:`disrt_core.pressure` and the pressure network are imported
only when pressure is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from disrt_core.prediction import Prediction

if TYPE_CHECKING:  # imported when pressure is asked for, not with the estimator
    from disrt_core.model.pressure_net import PressureNet
    from disrt_core.pressure import PressureModel

__all__ = ["PRESSURE_METHODS", "attach_pressure", "learned_pressure", "load_pressure_net_for"]


PRESSURE_METHODS = ("learned", "physical")  # Estimator.set_pressure


def load_pressure_net_for(enabled: bool, method: str, weights: str | Path | None,
                          device: torch.device) -> PressureNet | None:
    """The pressure network that ``set_pressure(enabled, method, weights)`` needs on
    ``device`` (None unless ``enabled`` with ``"learned"``); refuses an unknown method."""
    if method not in PRESSURE_METHODS:
        raise ValueError(f"pressure method must be one of {PRESSURE_METHODS}, got "
                         f"{method!r}")
    if not (enabled and method == "learned"):
        return None
    from disrt_core.model.pressure_net import load_pressure_net

    return load_pressure_net(weights, device)[0]


def learned_pressure(net: PressureNet, pressure_model: PressureModel, depth: Tensor,
                     vertices: Tensor, capturable: bool) -> tuple[Tensor, ...]:
    """The learned map [B,192,84] of ``net`` and its reading per vertex and per region
    (:meth:`disrt_core.pressure.PressureModel.read`); ``capturable``: in the form a CUDA
    graph can hold (fixed shapes, no host synchronisation)."""
    mat = net.pressure(depth)
    return (mat, *pressure_model.read(vertices, mat, capturable=capturable))


def attach_pressure(pred: Prediction, pressure: tuple[Tensor, ...] | None,
                    pressure_model: PressureModel | None) -> Prediction:
    """``pred`` with the learned ``pressure`` (map, per vertex, per region) or, without it,
    the physical one of ``pressure_model``; unchanged when both are None."""
    if pressure is not None:
        pred.pressure, pred.vertex_pressure, pred.region_pressure = pressure
    elif pressure_model is not None:
        out = pressure_model(pred.vertices, pred.joints)
        pred.pressure, pred.vertex_pressure = out.grid, out.vertex
        pred.region_pressure = out.regions
    return pred
