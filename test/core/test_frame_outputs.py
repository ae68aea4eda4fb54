"""frame_outputs / OutputPacker: the node's per-frame outputs, packed and copied once."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from disrt_core.body.layout import ParamLayout
from disrt_core.frame_outputs import OutputPacker
from disrt_core.occupancy import EMPTY, IN_BED
from disrt_core.posture import POSTURES

LAYOUT = ParamLayout(shape_dim=10)


def _inputs(b: int = 3, v: int = 50, seed: int = 0, device: str = "cpu") -> dict:
    g = torch.Generator().manual_seed(seed)
    root = torch.randn(b, 3, generator=g)
    # frame 0 lies on its back (a turn about the bed's normal), frame 1 on its front
    root[0], root[1] = torch.tensor([0.0, 0.0, 0.2]), torch.tensor([0.0, math.pi - 0.1, 0.0])
    params = LAYOUT.pack(torch.randn(b, 10, generator=g), torch.randn(b, 3, generator=g),
                         root, torch.randn(b, 69, generator=g) * 0.3)
    T = torch.eye(4).repeat(b, 1, 1)
    for i in range(b):
        T[i, :3, :3] = torch.from_numpy(Rotation.random(random_state=i).as_matrix()).float()
        T[i, :3, 3] = torch.randn(3, generator=g)
    net_mm = torch.full((b, 128, 54), 2100.0)
    x = {
        "joints": torch.randn(b, 24, 3, generator=g), "vertices": torch.randn(b, v, 3, generator=g),
        "params": params, "spread": torch.rand(b, 24, generator=g),
        "present": torch.tensor([0.9, 0.1, 0.7])[:b], "net_mm": net_mm,
        "net": torch.rand(b, 128, 54, generator=g), "region": torch.rand(b, 4, generator=g),
        "T_cam_bed": T, "trunk": None, "pressure": torch.rand(b, 192, 84, generator=g),
        "region_pressure": None,
    }
    return {k: (t.to(device) if t is not None else None) for k, t in x.items()}


def _check_against_numpy(x: dict, out: dict) -> None:
    T = x["T_cam_bed"].cpu().numpy().astype(np.float64)
    for key, pts in (("joints_cam", "joints"), ("vertices_cam", "vertices")):
        p = x[pts].cpu().numpy().astype(np.float64)
        want = np.einsum("bij,bnj->bni", T[:, :3, :3], p) + T[:, None, :3, 3]
        np.testing.assert_allclose(out[key], want, atol=1e-5)
    np.testing.assert_array_equal(out["joints_bed"], x["joints"].cpu().numpy())
    np.testing.assert_array_equal(out["net_image"], x["net"].cpu().numpy())
    np.testing.assert_array_equal(out["pressure"], x["pressure"].cpu().numpy())
    p = x["params"].cpu().numpy().astype(np.float64)
    root = np.arctan2(p[:, LAYOUT.root_sin], p[:, LAYOUT.root_cos])
    for i, quat in enumerate(out["root_quat_cam"]):  # (x, y, z, w), either sign
        want = Rotation.from_matrix(T[i, :3, :3] @ Rotation.from_rotvec(root[i]).as_matrix())
        assert abs(abs(np.dot(quat, want.as_quat())) - 1.0) < 1e-5
    assert POSTURES[out["posture"][0]] == "supine" and POSTURES[out["posture"][1]] == "prone"
    assert out["posture"].dtype == np.int64 and out["state"].dtype == np.int64
    # nobody sits on a flat bed: the state follows the presence probability
    assert list(out["state"]) == [IN_BED, EMPTY, IN_BED]
    assert "region_pressure" not in out


def test_packed_outputs_match_independent_values_on_the_cpu():
    x = _inputs()
    out = OutputPacker(LAYOUT)(x, 2100.0, occupancy=True)
    _check_against_numpy(x, out)
    # occupancy_check off: every frame in bed, whatever the presence says
    off = OutputPacker(LAYOUT)(x, 2100.0, occupancy=False)
    assert list(off["state"]) == [IN_BED] * 3


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_packs_new_frames_like_the_cpu():
    packer = OutputPacker(LAYOUT, "cuda", cuda_graphs=True)
    packer(_inputs(seed=1, device="cuda"), 2100.0, occupancy=True)  # captured here
    x = _inputs(seed=2, device="cuda")
    out = packer(x, 2100.0, occupancy=True)  # replayed with new values
    assert len(packer._graphs) == 1
    _check_against_numpy(x, out)
    cpu = OutputPacker(LAYOUT)({k: (t.cpu() if t is not None else None) for k, t in x.items()},
                               2100.0, occupancy=True)
    for key, value in cpu.items():
        np.testing.assert_allclose(out[key], value, atol=1e-5, err_msg=key)


class _BrightnessPosture(torch.nn.Module):
    """A stand-in classifier: the posture index is how bright the image is (0..3); logits
    ``sure`` on it, 0 elsewhere."""

    sure = 10.0

    def forward(self, depth):
        level = (depth.mean((1, 2, 3)) * 4).clamp(0, 3.99).floor().long()
        return torch.nn.functional.one_hot(level, 4).float() * self.sure


def test_a_posture_classifier_gives_the_posture_from_the_network_image():
    """A sure classifier decides; one that hesitates leaves it to the root's vote."""
    x = _inputs()
    x["net"] = torch.stack([torch.full((128, 54), v) for v in (0.9, 0.3, 0.6)])  # 3, 1, 2
    roots = list(OutputPacker(LAYOUT)(x, 2101.0, True)["posture"])
    assert roots[:2] == [0, 3]  # supine, prone (the _inputs' roots)
    sure = _BrightnessPosture()
    sure.sure = 10.0  # p ≈ 1 on its posture
    out = OutputPacker(LAYOUT, posture_net=sure)(x, 2101.0, True)
    assert list(out["posture"]) == [3, 1, 2]
    unsure = _BrightnessPosture()
    unsure.sure = 1.0  # p = 0.475 on its posture, 0.175 on each other: 0.4 more wins
    assert list(OutputPacker(LAYOUT, posture_net=unsure)(x, 2101.0, True)["posture"]) == roots


class _TopHeavyHead(_BrightnessPosture):
    """Also a head-end column: the image's top half brighter than its bottom half, as a
    log-odds (+: the head toward row 0)."""

    def forward(self, depth):
        top, bottom = depth[:, 0, :64].mean((1, 2)), depth[:, 0, 64:].mean((1, 2))
        return torch.cat([super().forward(depth), (10 * (top - bottom))[:, None]], 1)


def test_a_classifier_with_the_head_end_output_reports_it_per_frame():
    x = _inputs()
    net = torch.stack([torch.full((128, 54), 0.6) for _ in range(3)])
    net[0, :64] += 0.2  # head-like weight toward row 0
    net[1, 64:] += 0.3  # ... toward the last row: the bed taken end for end
    x["net"] = net
    out = OutputPacker(LAYOUT, posture_net=_TopHeavyHead())(x, 2101.0, True)
    np.testing.assert_allclose(out["head_logit"], [2.0, -3.0, 0.0], atol=1e-5)
    assert list(out["posture"])[2] == 2  # the posture columns still decide the posture
    assert "head_logit" not in OutputPacker(LAYOUT, posture_net=_BrightnessPosture())(
        x, 2101.0, True)
