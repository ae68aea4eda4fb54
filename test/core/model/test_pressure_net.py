"""The learned pressure map: geometry, shapes and units, the weights file, the shipped map."""

from __future__ import annotations

import pytest
import torch

from disrt_core.geometry import bedframe
from disrt_core.model.pressure_net import (
    DEFAULT_PRESSURE_WEIGHTS,
    PressureNet,
    PressureNetConfig,
    load_pressure_net,
    mat_sampling_grid,
    save_pressure_net,
)
from disrt_core.pressure import CONTACT_KPA
from disrt_core.sim.mattress import GRAVITY
from disrt_core.threads import cpu_threads


def _depth(n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 128, 54, generator=torch.Generator().manual_seed(seed))


def test_mat_cells_sample_the_network_image_where_they_lie_in_the_bed_frame():
    grid = mat_sampling_grid()[0]  # [192,84,2] (column, row) in [-1, 1], align_corners
    assert grid.shape == (192, 84, 2)
    h, w = bedframe.NET_SHAPE
    for row, col in ((0, 0), (100, 40), (191, 83)):
        x, y = bedframe.pm_to_label(row, col)
        r, c = bedframe.label_to_net(x, y)
        gx, gy = grid[row, col].tolist()
        assert (gx + 1) * (w - 1) / 2 == pytest.approx(c, abs=1e-4)
        assert (gy + 1) * (h - 1) / 2 == pytest.approx(r, abs=1e-4)
    # first and last mat rows are the image's; the grids are mirror-symmetric across the bed
    assert grid[0, :, 1].eq(-1).all() and grid[-1, :, 1].eq(1).all()
    torch.testing.assert_close(grid[:, :, 0], -grid.flip(1)[:, :, 0], atol=1e-5, rtol=0)


def test_shapes_units_and_a_map_that_is_never_negative():
    torch.manual_seed(0)
    net = PressureNet(PressureNetConfig(widths=(4, 8, 8))).eval()
    with torch.no_grad():
        kpa, contact = net(_depth())
        gated = net.pressure(_depth())
    assert kpa.shape == contact.shape == gated.shape == (2, 192, 84)
    assert (kpa >= 0).all() and (gated >= 0).all()
    assert (gated[contact <= 0] == 0).all()
    torch.testing.assert_close(gated[contact > 0], kpa[contact > 0])


def test_weights_round_trip_and_bad_files_name_the_file_and_the_fix(tmp_path):
    torch.manual_seed(1)
    net = PressureNet(PressureNetConfig(widths=(4, 8), gate=False)).eval()
    path = save_pressure_net(tmp_path / "p.safetensors", net, {"note": "test"})
    loaded, header = load_pressure_net(path)
    assert loaded.config == net.config and header["training"] == {"note": "test"}
    with torch.no_grad():
        torch.testing.assert_close(loaded.pressure(_depth()), net.pressure(_depth()))
    with pytest.raises(FileNotFoundError, match=r"train_pressure\.py"):
        load_pressure_net(tmp_path / "missing.safetensors")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"broken\.safetensors.*reinstall"):
        load_pressure_net(broken)


@pytest.fixture(scope="module")
def frames(anny_body):
    """Generated bodies in bed with their pressure maps (bed scene, Kinect v2)."""
    from disrt_core.sim import SceneGenerator, SimConfig

    with cpu_threads():
        gen = SceneGenerator(SimConfig(sensor="kinect2"), anny_body, "cpu")
        return gen.sample(3, 3, posture=torch.tensor([0, 1, 3]), with_mesh=True)


def test_the_shipped_map_carries_the_body_where_it_lies(frames):
    net, header = load_pressure_net()
    assert header["format"] == "disrt-pressure-1"
    assert DEFAULT_PRESSURE_WEIGHTS.stat().st_size < 16e6
    depth = bedframe.normalize_depth(frames["depth"], frames["bed_mm"][:, None, None])
    with torch.no_grad():
        kpa = net.pressure(depth[:, None].float())
    truth = frames["pressure"].float()
    # load: kPa over 1 cm² cells -> N, against the body's weight (a pillow or the mattress
    # edge may carry part of it)
    load = kpa.flatten(1).sum(1) * 1e3 * bedframe.PM_CELL_M**2
    weight = frames["mass"] * GRAVITY
    assert ((load / weight) > 0.5).all() and ((load / weight) < 1.5).all()
    # contact where the body lies
    a, b = kpa > CONTACT_KPA, truth > CONTACT_KPA
    iou = (a & b).flatten(1).sum(1) / (a | b).flatten(1).sum(1)
    assert (iou > 0.4).all(), iou
    # and nothing on a bare bed
    with torch.no_grad():
        assert net.pressure(torch.ones(1, 1, 128, 54)).max() < CONTACT_KPA
