"""The node with the real Estimator, loaded from a checkpoint file through its parameters:
a small randomly initialised network and the fixture SMPL body. The published joints and
mesh equal the Estimator's own output on the same frame, mapped into the camera by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("rclpy")

import torch
from rclpy.parameter import Parameter

from disrt_core.body import load_body_model
from disrt_core.geometry.bedframe import BED_CENTRE_LABEL, normalize_depth
from disrt_core.geometry.camera import raw_to_network
from disrt_core.model.posture_net import combined_posture, load_posture_net
from disrt_core.posture import POSTURES, posture_from_axis_angle
from disrt_ros.conversions import cloud_to_points
from disrt_ros.markers import marker_points
from disrt_ros.node import BedMonitorNode

from .fakes import K, depth_frame
from .rosutil import Player, Ros, wait_until

try:
    from disrt_core.checkpoint import save_checkpoint
    from disrt_core.decoder import MeshDecoder
    from disrt_core.infer import Estimator
    from disrt_core.model import Denoiser, small
except ImportError as error:  # the Estimator lands with its own issue
    pytest.skip(f"the real Estimator is not available: {error}", allow_module_level=True)

pytestmark = pytest.mark.ros
FRAME = "camera_depth_optical_frame"
HEIGHT_M = 2.0
SEED = 3
INTERVAL = [round(0.1 + 0.01 * j, 3) for j in range(24)]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, smpl_fixture_dir):
    body = load_body_model("smpl", smpl_fixture_dir)
    torch.manual_seed(0)
    net = Denoiser(small().replace(dropout=0.0), body.param_dim)
    # a calibration of the joint intervals for the node's K = 1 and 3 steps
    interval = {"1": {"level": 0.9, "steps": 3, "offset_m": INTERVAL, "scale": [0.0] * 24}}
    path = save_checkpoint(tmp_path_factory.mktemp("ckpt") / "small.safetensors", net,
                           body.model_id, body.param_layout, MeshDecoder(body).config,
                           diffusion={"interval": interval})
    return path


def to_camera(points: np.ndarray) -> np.ndarray:
    """Label frame -> camera 2 m over the bed centre looking down (hand-derived)."""
    cx, cy = BED_CENTRE_LABEL
    return np.stack([points[:, 0] - cx, cy - points[:, 1], HEIGHT_M - points[:, 2]], 1)


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("device,options", [
    ("cpu", {}),
    pytest.param("cuda", {"cuda_graphs": True}, marks=[pytest.mark.cuda, CUDA]),
])
def test_node_serves_the_checkpoint_estimate(checkpoint, smpl_fixture_dir, device, options,
                                             monkeypatch):
    # A random network's body lies nowhere near the box it is shown: counted as present
    # here, since this test is about serving the estimate, not about occupancy.
    import disrt_core.infer
    import disrt_core.prediction

    # K = 1 decides inside the estimator's sampling (its CUDA graph), K > 1 on the average
    for module in (disrt_core.infer, disrt_core.prediction):
        monkeypatch.setattr(module, "presence_probability",
                            lambda depth, vertices: torch.ones(len(depth), device=depth.device))
    ros = Ros()
    params = {"checkpoint": str(checkpoint), "device": device,
              "body_model_dir": str(smpl_fixture_dir), "seed": SEED, "ddim_steps": 3,
              "camera.camera_height_m": HEIGHT_M, "camera.bed_region": "pose", **options}
    monitor = BedMonitorNode(node_name="monitor_real", context=ros.context, parameter_overrides=[
        Parameter(k, value=v) for k, v in params.items()])
    player = Player(ros.context, {"camera": "camera"}, {"camera": "/monitor_real/"})
    ros.add(monitor)
    ros.add(player)
    try:
        assert monitor.estimator.model_id == "smpl-neutral"
        assert monitor.estimator.device.type == device
        assert wait_until(lambda: monitor.cameras["camera"].pubs["mesh_cloud"]
                          .get_subscription_count() and player.depth_pubs["camera"]
                          .get_subscription_count())
        depth = depth_frame(HEIGHT_M, body_mm=250.0)
        assert wait_until(lambda: (player.publish("camera", depth, 1, FRAME, K),
                                   player.stamped("camera", "mesh_cloud", 1))[1])
        assert wait_until(lambda: player.stamped("camera", "pose_json", 1))

        reference = Estimator.from_checkpoint(checkpoint, device=device, steps=3, seed=SEED,
                                              model_dir=smpl_fixture_dir, **options)
        T = torch.eye(4)
        T[:3, :3] = torch.diag(torch.tensor([1.0, -1.0, -1.0]))
        T[:3, 3] = torch.tensor([-BED_CENTRE_LABEL[0], BED_CENTRE_LABEL[1], HEIGHT_M])
        net = normalize_depth(raw_to_network(torch.from_numpy(depth[None].astype(np.float32)),
                                             torch.from_numpy(K[None]).float(), T[None]), 2101.0)
        with torch.no_grad():
            pred = reference.predict(net[:, None].to(device))
        joints = to_camera(pred.joints[0].double().cpu().numpy())
        vertices = to_camera(pred.vertices[0].double().cpu().numpy())

        # On the GPU two estimator instances may pick different bf16 kernels: 5 mm.
        atol = 1e-4 if device == "cpu" else 5e-3
        spheres = player.stamped("camera", "joints", 1).markers[0]
        np.testing.assert_allclose(marker_points(spheres), joints, atol=atol)
        cloud = cloud_to_points(player.stamped("camera", "mesh_cloud", 1))
        assert cloud.shape == (6890, 3)
        np.testing.assert_allclose(cloud, vertices, atol=atol)
        payload = json.loads(player.stamped("camera", "pose_json", 1).data)
        # the posture: the shipped classifier's on the same network image with the
        # estimate's vote (posture_source: classifier)
        layout = reference.body_model.param_layout
        root = layout.unpack(pred.params.float().cpu()).root_orient
        with torch.no_grad():
            logits = load_posture_net()(net[:, None])
        assert payload["posture"] == POSTURES[int(combined_posture(
            logits, posture_from_axis_angle(root))[0])]
        assert payload["model_id"] == "smpl-neutral" and len(payload["params"]) == 88
        np.testing.assert_allclose(payload["joint_interval"], INTERVAL, atol=1e-6)
        assert payload["joint_interval_level"] == 0.9
    finally:
        ros.remove(player)
        ros.remove(monitor)
        ros.close()


def test_compiled_estimator_for_single_images_keeps_the_plain_group_norm(monkeypatch):
    """A compiled network answering one image a batch (one camera, one hypothesis) keeps
    the plain GroupNorm (faster at batch 1); more images a batch get the Estimator's own
    default (per-channel sums on CUDA); an uncompiled one is not told either way."""
    import types

    import disrt_core.infer
    from disrt_ros.node import load_estimator

    calls = []
    monkeypatch.setattr(disrt_core.infer.Estimator, "from_checkpoint",
                        classmethod(lambda cls, path, **kw: calls.append(kw) or kw))
    base = dict(checkpoint="w.safetensors", device="cuda", precision="auto", compile="default",
                cuda_graphs=True, ddim_steps=5, hypotheses=1, eta=0.0, seed=0,
                body_model_dir="", cameras=("one",))
    load_estimator(types.SimpleNamespace(**base))
    load_estimator(types.SimpleNamespace(**{**base, "cameras": ("a", "b")}))
    load_estimator(types.SimpleNamespace(**{**base, "hypotheses": 4}))
    load_estimator(types.SimpleNamespace(**{**base, "compile": ""}))
    assert calls[0]["stats_group_norm"] is False and calls[0]["compile"] == "default"
    assert all("stats_group_norm" not in kw for kw in calls[1:])
