"""Fixtures of the generator tests: one Anny-based generator per session."""

import pytest


@pytest.fixture(scope="session")
def sim_generator(anny_body):
    """A Kinect v2 scene generator on the CPU with the session's Anny model."""
    from disrt_core.sim import SceneGenerator, SimConfig

    return SceneGenerator(SimConfig(sensor="kinect2"), anny_body, "cpu")


@pytest.fixture(scope="session")
def sim_batch(sim_generator):
    """12 samples (seed 3) with meshes and raw frames, shared by the read-only tests."""
    return sim_generator.sample(12, 3, with_raw=True, with_mesh=True)
