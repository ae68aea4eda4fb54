"""The "pseudo-real" target domain: a second data source that differs from the training
simulator (:mod:`disrt_core.sim`, the *source*) in ways the source does not model, as a real
camera in a real ward would. It stands in for SLP's real data in the sim-to-real benchmark
(``SIM2REAL.md``, ``config/sim2real.yaml``).

    disrt-generate --domain target --n 1000 --seed 1001 --out data/sim2real/target_test \\
        --device cuda

What differs from the source, each effect seeded from the sample's generator and described
in its module:

* **blankets** (:mod:`~disrt_core.sim.target.blankets`, :mod:`~disrt_core.sim.target.cloth`):
  a position-based cloth simulation, batched on the device, instead of the source's
  height-field drape: folds from a gathered start, tucking under the mattress, overhang
  over its edges; and a second blanket thrown over the bed;
* **sensors** (:mod:`~disrt_core.sim.target.sensors`): two time-of-flight camera types the
  source never uses (an Azure-Kinect-like 640×576 and a low-resolution 320×240 one), hung
  lower and tilted more; multipath near the mattress edge and in creases, wider flying
  pixels, noise growing toward the image corners;
* **clutter** (:mod:`~disrt_core.sim.target.clutter`): hospital bed rails, head pillows of
  other shapes, wedges, bolsters and hugged cushions beside the body, hair at the head
  (strands and a cap, with their own sensor noise and dropout);
* **bodies** (:mod:`~disrt_core.sim.target.bodies`): more lateral and prone postures, curled
  poses, heavier and taller people.

What is shared with the source: the body models, the mattress model and pressure maps, the
renderer, the label frame and the preprocessing to the 128×54 network input (the same path
as for any real camera), and the shard format (:mod:`disrt_core.data.shards`); the manifest
says ``"domain": "target"`` and the target's own version.
"""

from disrt_core.sim.target.generator import TARGET_VERSION, TargetConfig, TargetGenerator
from disrt_core.sim.target.sensors import TARGET_SENSORS

__all__ = ["TARGET_SENSORS", "TARGET_VERSION", "TargetConfig", "TargetGenerator"]
