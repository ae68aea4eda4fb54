"""``disrt_core.sim.fused``: eager where it should be, a failed compilation falls back, and
the sensor model compiled gives the eager model's frames."""

import logging
import shutil

import pytest
import torch

from disrt_core.sim import fused, noise
from disrt_core.sim.sensors import SENSORS


def test_runs_eagerly_on_the_cpu(monkeypatch):
    def no_compile(*args, **kwargs):
        raise AssertionError("torch.compile called for a CPU tensor")

    monkeypatch.setattr(torch, "compile", no_compile)
    twice = fused.fused(lambda x: 2 * x)
    torch.testing.assert_close(twice(torch.ones(3)), torch.full((3,), 2.0))


def test_a_failed_compilation_runs_eagerly_and_is_not_tried_again(monkeypatch, caplog):
    tries = []

    def broken(fn, **kwargs):
        tries.append(fn)

        def call(*args, **kw):
            raise RuntimeError("inductor is missing")
        return call

    monkeypatch.setattr(fused, "enabled", lambda device: True)
    monkeypatch.setattr(torch, "compile", broken)
    plus = fused.fused(lambda x, y: x + y)
    with caplog.at_level(logging.WARNING, logger="disrt_core.sim.fused"):
        first = plus(torch.ones(2), torch.ones(2))
        second = plus(torch.ones(2), 2 * torch.ones(2))
    torch.testing.assert_close(first, torch.full((2,), 2.0))
    torch.testing.assert_close(second, torch.full((2,), 3.0))
    assert len(tries) == 1
    assert sum("inductor is missing" in r.getMessage() for r in caplog.records) == 1


def _scene(spec, batch=2):
    """A tilted plane with a box on it and a strip without readings, materials at random."""
    rows, cols = spec.size
    v, u = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    depth = (2.0 + 0.001 * u + 0.0005 * v).float().expand(batch, -1, -1).clone()
    depth[:, rows // 3: rows // 2, cols // 3: cols // 2] -= 0.3
    depth[:, :5] = 0
    material = torch.randint(0, 3, (batch, rows, cols), generator=torch.Generator().manual_seed(1))
    return depth, spec.K(batch), material


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available() and shutil.which("g++") is None,
                    reason="torch.compile needs a GPU or a C++ compiler")
@pytest.mark.parametrize("sensor", ["kinect2", "d435_640x480", "l515"])
def test_the_compiled_sensor_model_gives_the_eager_frames(sensor, monkeypatch, caplog):
    """Compiled (with inductor, on the GPU if there is one, else its C++ backend), the whole
    noise model gives the same millimetres as eagerly from the same draws: every fused
    function compiles as one graph, and the draws keep their order."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    spec = SENSORS[sensor]
    depth, K, material = (t.to(device) for t in _scene(spec))
    frames = []
    for compiled in (False, True):
        monkeypatch.setattr(fused, "enabled", lambda dev, on=compiled: on)
        gen = torch.Generator(device).manual_seed(3)
        with caplog.at_level(logging.WARNING, logger="disrt_core.sim.fused"):
            frames.append(noise.apply_sensor_noise(depth, K, spec, gen, material=material))
    assert not [r for r in caplog.records if "failed" in r.getMessage()]
    eager, compiled = frames
    # Rounding may move a reading across a millimetre (or a dropout threshold) here and there.
    assert (eager != compiled).float().mean() < 1e-3
    assert ((eager - compiled).abs() > 1).float().mean() < 1e-4


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available() and shutil.which("g++") is None,
                    reason="torch.compile needs a GPU or a C++ compiler")
def test_the_compiled_membrane_sweep_matches_the_eager_one(monkeypatch, caplog):
    """The blanket's membrane (``drape.solve_membrane``, its half-sweeps fused in place)
    over a box on a plane: compiled and eager within rounding."""
    from disrt_core.sim.drape import solve_membrane

    device = "cuda" if torch.cuda.is_available() else "cpu"
    support = torch.zeros(2, 40, 30, device=device)
    support[:, 12:25, 10:20] = 0.2
    mask = torch.zeros_like(support, dtype=torch.bool)
    mask[:, 2:-2, 2:-2] = True
    sag = torch.tensor([20.0, 60.0], device=device)
    heights = []
    for compiled in (False, True):
        monkeypatch.setattr(fused, "enabled", lambda dev, on=compiled: on)
        with caplog.at_level(logging.WARNING, logger="disrt_core.sim.fused"):
            heights.append(solve_membrane(support, mask, sag, 0.01, levels=2, iterations=(6, 6)))
    assert not [r for r in caplog.records if "failed" in r.getMessage()]
    eager, compiled = heights
    inside = mask & (eager > support)
    assert inside.any()  # the cloth spans the box's sides
    torch.testing.assert_close(compiled[mask], eager[mask], atol=1e-5, rtol=0)
