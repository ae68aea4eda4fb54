"""disrt_core: PyTorch-only core of disrt_ros (never imports ROS).

Body models (``disrt_core.body``), the diffusion denoiser, the DDIM sampler, losses and
metrics, SLP-geometry preprocessing, dataset readers, the synthetic in-bed generator, the
trainer and a batched ``Estimator``.

Units: metres and radians inside, millimetres in reports. Frames are documented at every
boundary (see ``disrt_core.body`` for the canonical body frame and SPEC §1.4 for the bed
("label") frame).
"""

__version__ = "0.1.0"
