"""Fixtures of the generator tests: one Anny-based generator per session."""

import pytest

from disrt_core.threads import cpu_threads


@pytest.fixture(scope="session")
def sim_generator(anny_body):
    """A Kinect v2 scene generator on the CPU with the session's Anny model."""
    from disrt_core.sim import SceneGenerator, SimConfig

    with cpu_threads():
        return SceneGenerator(SimConfig(sensor="kinect2"), anny_body, "cpu")


@pytest.fixture(scope="session")
def sim_batch(sim_generator):
    """12 samples (seed 3) with meshes and raw frames, shared by the read-only tests."""
    with cpu_threads():
        return sim_generator.sample(12, 3, with_raw=True, with_mesh=True)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The generator runs one torch thread per process (as disrt-generate does on the CPU):
    many small ops, whose threads spin and wait when the machine is shared."""
    with cpu_threads():
        yield
