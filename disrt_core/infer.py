"""Batched inference: ``Estimator`` (checkpoint -> joints, mesh and per-joint spread).

Contract (the node, the bag tools and evaluate.py are written against it):

* ``Estimator.from_checkpoint(path, device="cpu"|"cuda", steps=5, hypotheses=1, eta=0.0,
  seed=None)`` loads a safetensors checkpoint (with its JSON header: network config, body
  ``model_id`` and layout, preprocessing geometry, training summary) and the matching body
  model; a checkpoint for another body model or layout is refused with a clear message.
* ``predict(depth)`` takes network-ready images: normalised depth in [0, 1] on the 128×54
  network grid (``disrt_core.geometry.bedframe``), as a tensor or array [B,1,128,54] or
  [B,128,54], and returns a :class:`Prediction` (label frame, metres).
* ``set_sampling(steps=None, hypotheses=None, eta=None)`` changes the sampler between calls
  (dynamic reconfiguration in the node). ``predict`` is safe to call from one worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class Prediction:
    """Output of :meth:`Estimator.predict` for a batch of B images (label frame, metres)."""

    params: Tensor  # [B, P] what the body model takes (after the decoder's squashing/offset)
    joints: Tensor  # [B, 24, 3] mean over the K hypotheses
    vertices: Tensor  # [B, V, 3] mesh of the mean parameters
    joint_spread: Tensor  # [B, 24] RMS distance of hypotheses from their mean joint; 0 if K=1
    hypotheses_joints: Tensor | None = None  # [B, K, 24, 3] when K > 1
