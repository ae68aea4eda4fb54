import numpy as np
import pytest
import torch

from disrt_core.geometry import bedframe as bf


def test_pm_label_round_trip_and_spec_constants():
    # SPEC §1.4: x_L = 0.01·col − 0.0678, y_L = 1.8304 − 0.01·row.
    x, y = bf.pm_to_label(0.0, 0.0)
    assert (x, y) == pytest.approx((-0.0678, 1.8304))
    x, y = bf.pm_to_label(191.0, 83.0)
    assert (x, y) == pytest.approx((0.83 - 0.0678, 1.8304 - 1.91))
    rows, cols = np.array([3.5, 100.0]), np.array([10.0, 42.25])
    back = bf.label_to_pm(*bf.pm_to_label(rows, cols))
    np.testing.assert_allclose(back, (rows, cols))


def test_network_grid_matches_scipy_zoom_and_crop():
    # The 128×54 image is zoom(PM, 0.665, order=1)[:, 1:-1]: check the mapping on a ramp.
    from scipy.ndimage import zoom

    rows, cols = np.meshgrid(np.arange(192.0), np.arange(84.0), indexing="ij")
    net_rows = zoom(rows, bf.PM_ZOOM, order=1)[:, 1:-1]
    net_cols = zoom(cols, bf.PM_ZOOM, order=1)[:, 1:-1]
    assert net_rows.shape == bf.NET_SHAPE
    r, c = np.meshgrid(np.arange(128.0), np.arange(54.0), indexing="ij")
    x, y = bf.net_to_label(r, c)
    x_pm, y_pm = bf.pm_to_label(net_rows, net_cols)
    np.testing.assert_allclose(x, x_pm, atol=1e-9)
    np.testing.assert_allclose(y, y_pm, atol=1e-9)
    rr, cc = bf.label_to_net(x, y)
    np.testing.assert_allclose(rr, r, atol=1e-9)
    np.testing.assert_allclose(cc, c, atol=1e-9)
    assert bf.NET_PITCH_X == pytest.approx(0.01 * 83 / 55)


def test_normalisation_spec_values():
    depth = np.array([2101.0, 2101.0 - 357.5, 1386.0, 0.0, 2300.0])
    out = bf.normalize_depth(depth, bf.SLP_DANALAB_BED_MM)
    np.testing.assert_allclose(out, [1.0, 0.5, 0.0, 0.0, 1.0])
    t = bf.normalize_depth(torch.tensor([[2264, 1906]], dtype=torch.int32), bf.SLP_SIMLAB_BED_MM)
    torch.testing.assert_close(t, torch.tensor([[1.0, 1 - 358 / 715]]))


def test_height_depth_round_trip():
    h = np.array([0.0, 0.12, 0.5])
    np.testing.assert_allclose(bf.depth_mm_to_height(bf.height_to_depth_mm(h)), h)
    assert bf.height_to_depth_mm(0.1) == pytest.approx(2001.0)
