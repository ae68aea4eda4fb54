"""Label vector <-> x0 and the per-dataset label formulas (SPEC §1.1, §1.2, §7.4, §7.5)."""

import numpy as np
import pytest

from disrt_core.data import labels


def test_label_to_params_by_hand():
    label = np.arange(162, dtype=np.float64) / 100.0
    x0 = labels.label_to_params(label)
    assert x0.shape == (88,)
    np.testing.assert_array_equal(x0[:10], label[72:82])  # betas
    np.testing.assert_array_equal(x0[10:13], label[154:157])  # translation precedes rotation
    np.testing.assert_allclose(x0[13:16], np.cos(label[82:85]))
    np.testing.assert_allclose(x0[16:19], np.sin(label[82:85]))
    np.testing.assert_array_equal(x0[19:], label[85:154])
    assert labels.label_to_params(np.stack([label, label])).shape == (2, 88)
    np.testing.assert_allclose(labels.label_joints_m(label)[1], label[3:6] / 1000.0)


def test_flip_root_and_slp_translation_by_hand():
    # Rx(π)·Rx(π) = identity; Rx(π)·I = Rx(π); Rx(π)·Rz(a) = rotation by π about (c, s, 0)·…
    np.testing.assert_allclose(labels.flip_root_x(np.array([np.pi, 0, 0])), 0, atol=1e-12)
    np.testing.assert_allclose(np.abs(labels.flip_root_x(np.zeros(3))), [np.pi, 0, 0],
                               atol=1e-12)
    a = 0.3  # Rx(π)·Rz(a) is a half-turn about the axis (cos(a/2), -sin(a/2), 0)·… check R
    from scipy.spatial.transform import Rotation

    got = Rotation.from_rotvec(labels.flip_root_x(np.array([0, 0, a]))).as_matrix()
    expected = np.diag([1, -1, -1]) @ Rotation.from_rotvec([0, 0, a]).as_matrix()
    np.testing.assert_allclose(got, expected, atol=1e-12)
    t = labels.slp_translation([1, 2, 3], [0.1, 0.2, 0.3], [0.01, 0.02, 0.03], [1, 1, 1])
    np.testing.assert_allclose(t, [2.11, -3.22, -4.33])


def test_slp_label_from_a_fit():
    fit = {"markers_xyz_m": np.ones((24, 3)) * 0.5, "betas": np.arange(10.0),
           "global_orient": np.array([np.pi, 0, 0]), "body_pose": np.full(69, 0.1),
           "O_T_slp": np.array([-0.0678, -1.8304, 0]), "cam_T_Bo": np.array([0.4, -0.5, 1.9]),
           "Bo_T_Br": np.array([0.0, -0.2, 0.03])}
    label = labels.slp_label(fit, np.array([0.0, 0.0, 0.1]), female=False, mass_kg=70.0,
                             height_cm=180.0)
    assert label.shape == (162,)
    np.testing.assert_allclose(label[:72], 500.0)
    np.testing.assert_allclose(label[82:85], 0.0, atol=1e-12)  # supine, head up the bed
    np.testing.assert_allclose(label[154:157], [0.3322, 2.5304, -2.03])
    np.testing.assert_array_equal(label[157:], [0, 1, 1, 70.0, 1.8])


def test_bodypressure_label_by_hand():
    markers = np.zeros((1, 75))
    markers[0, :3] = [0.5, 1.0, 0.1]  # pelvis
    label = labels.bodypressure_label(
        markers_xyz_m=markers, body_shape=np.ones((1, 11)), joint_angles=np.full((1, 72), 0.2),
        root_xyz_shift=np.array([[0.6, 1.2, 0.1]]), body_volume=np.array([0.06878933937454557]),
        body_height=np.array([1.7]), gender="f")
    # joints: 1000·(m − (0.286, 0.286, 0)) + (−12, −35, −75) mm
    np.testing.assert_allclose(label[0, :3], [214 - 12, 714 - 35, 100 - 75])
    np.testing.assert_allclose(label[0, 3:6], [-286 - 12, -286 - 35, -75])
    np.testing.assert_allclose(label[0, 154:157], [0.302, 0.879, 0.025])
    assert label[0, 160] == pytest.approx(62.5) and label[0, 161] == 1.7
    np.testing.assert_array_equal(label[0, 157:160], [1, 0, 1])
    with pytest.raises(ValueError, match="'f' or 'm'"):
        labels.bodypressure_label(markers_xyz_m=markers, body_shape=np.ones((1, 10)),
                                  joint_angles=np.zeros((1, 72)), root_xyz_shift=np.zeros((1, 3)),
                                  body_volume=[1.0], body_height=[1.0], gender="x")


def test_vertex_frame_round_trip():
    v = np.random.default_rng(0).normal(size=(5, 3))
    label_frame = labels.vertex_frame_to_label(v)
    np.testing.assert_array_equal(label_frame[:, 0], v[:, 1])
    np.testing.assert_array_equal(label_frame[:, 2], -v[:, 2])
    np.testing.assert_array_equal(labels.label_to_vertex_frame(label_frame), v)
