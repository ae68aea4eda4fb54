"""Synthetic in-bed depth data: the "Sim" of sim-to-real (batched PyTorch, CPU or GPU).

>>> from disrt_core.sim import SceneGenerator, SimConfig
>>> gen = SceneGenerator(SimConfig(sensor="kinect2"), body_model, device="cuda")
>>> batch = gen.sample(256, seed=0)   # dict of tensors with the shard keys

Modules, in pipeline order: ``poses`` (in-bed pose prior, joint limits; ``capsules`` the
self-intersection test), ``sitting`` (sitting on the bed's edge), ``shapes`` (adult shapes,
mass), ``placement`` (on the mattress), ``scene`` (bed, frame, pillow, floor; the 1 cm scene
grid), ``rest`` (every limb and the head settled onto what is below it; ``bodyparts`` and
``support`` its parts and supports), ``mattress`` (spring-bed and pillow sinkage and the
pressure map), ``drape`` (sheet / blanket height field), ``sensors`` and ``render`` (z-buffer
rasteriser), ``noise`` (Kinect v2 / D435 noise), ``generator`` (the pipeline; ``config`` its
options, ``shards`` its batches as shard arrays, ``timing`` its stage timer), ``cli``
(``disrt-generate``), ``preview`` (contact sheet), ``cloth`` (a cloth simulation the drape
is checked against). For the GPU: ``kinematics`` (the joint chain by tree level) and
``graphs`` (the settling as CUDA graphs) and ``fused`` (the sensor model's and the
membrane's elementwise chains compiled), with tables made once per device by
:mod:`disrt_core.constants`.
"""

from disrt_core.sim.generator import (
    GENERATOR_VERSION,
    STAGES,
    SceneGenerator,
    SimConfig,
    to_shard_arrays,
)
from disrt_core.sim.sensors import SENSORS, SensorSpec

__all__ = ["GENERATOR_VERSION", "SENSORS", "STAGES", "SceneGenerator", "SensorSpec",
           "SimConfig", "to_shard_arrays"]
