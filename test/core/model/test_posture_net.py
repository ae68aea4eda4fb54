"""The posture classifier: shapes, its weights file, and the shipped weights on frames of
the generator (the labels from the bodies' root orientation)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from disrt_core.geometry.bedframe import normalize_depth
from disrt_core.head_end import turned_image
from disrt_core.model import weights_file
from disrt_core.model.posture_net import (
    META_KEY,
    PostureNet,
    PostureNetConfig,
    has_head_end,
    head_logit,
    load_posture_net,
    posture_logits,
    read_posture_header,
    save_posture_net,
)
from disrt_core.posture import LEFT, RIGHT


def test_logits_per_frame_and_a_clear_error_for_other_shapes():
    net = PostureNet(PostureNetConfig(widths=(4, 8, 8)))
    assert net(torch.rand(2, 1, 128, 54)).shape == (2, 4)
    with pytest.raises(ValueError, match=r"\[B,1,128,54\]"):
        net(torch.rand(2, 128, 54))


def test_the_head_end_output_is_a_fifth_column_and_files_without_it_still_load(tmp_path):
    net = PostureNet(PostureNetConfig(widths=(4, 8), head_end=True)).eval()
    out = net(torch.rand(3, 1, 128, 54))
    assert out.shape == (3, 5) and has_head_end(net)
    torch.testing.assert_close(head_logit(out), out[:, 4])
    torch.testing.assert_close(posture_logits(out), out[:, :4])
    save_posture_net(net, tmp_path / "h.safetensors")
    assert has_head_end(load_posture_net(tmp_path / "h.safetensors"))
    # a file written before the head end's output: its header has no such key
    old = PostureNet(PostureNetConfig(widths=(4, 8))).eval()
    weights_file.save_weights(tmp_path / "old.safetensors", old, META_KEY, {
        "format": "disrt-posture-1", "config": {"widths": [4, 8], "dropout": 0.2},
        "training": {}})
    back = load_posture_net(tmp_path / "old.safetensors")
    assert not has_head_end(back) and head_logit(back(torch.rand(1, 1, 128, 54))) is None
    assert not has_head_end(None)


def test_weights_round_trip_and_refusals(tmp_path):
    net = PostureNet(PostureNetConfig(widths=(4, 8, 8), dropout=0.1)).eval()
    with torch.no_grad():
        net.features[1].running_mean.uniform_()  # batch-norm statistics travel too
    save_posture_net(net, tmp_path / "p.safetensors", training={"steps": 3})
    back = load_posture_net(tmp_path / "p.safetensors")
    x = torch.rand(3, 1, 128, 54)
    with torch.no_grad():
        torch.testing.assert_close(back(x), net(x))
    assert back.config == net.config and not back.training
    assert read_posture_header(tmp_path / "p.safetensors")["training"] == {"steps": 3}
    save_file({"w": torch.zeros(1)}, tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match=r"no valid 'disrt_posture' header.*train_posture"):
        load_posture_net(tmp_path / "other.safetensors")
    (tmp_path / "broken.safetensors").write_bytes(b"nonsense")
    with pytest.raises(ValueError, match=r"broken\.safetensors.*train_posture"):
        load_posture_net(tmp_path / "broken.safetensors")
    with pytest.raises(FileNotFoundError, match=r"missing\.safetensors.*train_posture"):
        load_posture_net(tmp_path / "missing.safetensors")


@pytest.fixture(scope="module")
def generated(anny_body):
    from disrt_core.sim import SceneGenerator, SimConfig
    from disrt_core.threads import cpu_threads

    # one thread, as the generator tests' fixtures: the session's Anny model keeps what it
    # first computed, and test_cli compares it bit for bit with single-threaded workers
    with cpu_threads(), torch.no_grad():
        s = SceneGenerator(SimConfig(sensor="kinect2", covers=(0, 1, 2)), anny_body,
                           "cpu").sample(32, 424242)
    net = normalize_depth(s["depth"].float(), s["bed_mm"].float()[:, None, None])
    return net[:, None], s["posture"].long()


def test_the_shipped_classifier_tells_the_postures_of_generated_frames(generated):
    x, truth = generated
    net = load_posture_net()
    with torch.no_grad():
        pred = posture_logits(net(x)).argmax(-1)
        mirrored = posture_logits(net(x.flip(-1))).argmax(-1)
    assert (pred == truth).float().mean() >= 0.8  # chance: 0.25
    # mirrored across the bed's long axis, a body on its left side lies on its right
    swapped = torch.where(truth == LEFT, RIGHT, torch.where(truth == RIGHT, LEFT, truth))
    assert (mirrored == swapped).float().mean() >= 0.8



def test_the_shipped_classifier_tells_the_head_end_and_turns_with_the_image(generated):
    x, _ = generated  # the true bed pose: every head toward row 0
    net = load_posture_net()
    assert has_head_end(net)
    with torch.no_grad():
        up, down = head_logit(net(x)), head_logit(net(turned_image(x)))
    assert (up > 0).float().mean() >= 0.9 and (down < 0).float().mean() >= 0.9  # chance 0.5
    assert (up - down).median() > 3.0  # firm, not a coin toss
