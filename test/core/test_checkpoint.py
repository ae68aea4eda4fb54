import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from disrt_core.body import ParamLayout
from disrt_core.checkpoint import (
    FORMAT,
    CheckpointError,
    CheckpointMismatchError,
    load_checkpoint,
    read_header,
    save_checkpoint,
)
from disrt_core.decoder import DecoderConfig
from disrt_core.model import Denoiser, small

SMPL = ParamLayout(shape_dim=10)
ANNY = ParamLayout(shape_dim=6)


def _net(param_dim=88, seed=0):
    torch.manual_seed(seed)
    net = Denoiser(small(), param_dim).eval()
    for p in net.parameters():  # non-zero everywhere so the round trip is meaningful
        torch.nn.init.normal_(p, std=0.02)
    return net


def test_round_trip(tmp_path):
    net = _net()
    decoder = DecoderConfig(translation_offset=(0.3, 0.9, 0.12))
    path = save_checkpoint(tmp_path / "sub" / "model.safetensors", net, "smpl-neutral", SMPL,
                           decoder, training={"steps": 12, "mpjpe_mm": 51.2})
    loaded, header = load_checkpoint(path, model_id="smpl-neutral", param_layout=SMPL)
    for (k, a), (k2, b) in zip(net.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    assert not loaded.training
    x, t, d = torch.randn(2, 88), torch.tensor([3, 70]), torch.rand(2, 1, 128, 54)
    assert torch.equal(net(x, t, d), loaded(x, t, d))
    assert header.network == small() and header.param_dim == 88
    assert header.model_id == "smpl-neutral" and header.param_layout == SMPL.to_dict()
    assert header.decoder == decoder and header.training == {"steps": 12, "mpjpe_mm": 51.2}
    assert header.diffusion == {"num_timesteps": 100, "schedule": "linear"}
    assert header.preprocessing["net_shape"] == [128, 54]
    assert header.preprocessing["min_depth_mm"] == 1500.0
    with safe_open(str(path), framework="pt") as f:  # a plain safetensors file
        assert json.loads(f.metadata()["disrt"])["format"] == FORMAT
    assert [p.name for p in path.parent.iterdir()] == ["model.safetensors"]  # no temp left


def test_half_precision_storage_loads_as_float32(tmp_path):
    net = _net()
    path = save_checkpoint(tmp_path / "m.safetensors", net, "smpl-neutral", SMPL,
                           DecoderConfig(), dtype=torch.float16)
    assert path.stat().st_size < 0.6 * 4 * sum(p.numel() for p in net.parameters())
    loaded, _ = load_checkpoint(path)
    w = loaded.head[-1].weight
    assert w.dtype == torch.float32
    torch.testing.assert_close(w, net.head[-1].weight, atol=1e-4, rtol=1e-3)


def test_refuses_another_body_model_or_layout(tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", _net(84), "anny-0.6", ANNY,
                           DecoderConfig())
    with pytest.raises(CheckpointMismatchError, match=r"'anny-0.6'.*'smpl-neutral'"):
        load_checkpoint(path, model_id="smpl-neutral", param_layout=SMPL)
    with pytest.raises(CheckpointMismatchError, match="layout"):
        load_checkpoint(path, model_id="anny-0.6", param_layout=ParamLayout(shape_dim=10))
    with pytest.raises(ValueError, match="network predicts 84"):
        save_checkpoint(tmp_path / "x.safetensors", _net(84), "smpl-neutral", SMPL,
                        DecoderConfig())


def test_failed_write_keeps_the_previous_file(tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", _net(), "smpl-neutral", SMPL,
                           DecoderConfig(), training={"run": 1})
    with pytest.raises(TypeError, match="JSON"):
        save_checkpoint(path, _net(seed=1), "smpl-neutral", SMPL, DecoderConfig(),
                        training={"bad": object()})
    assert read_header(path).training == {"run": 1}
    assert len(list(tmp_path.iterdir())) == 1


def test_foreign_files_get_clear_errors(tmp_path):
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other))
    with pytest.raises(ValueError, match="without a disrt header"):
        read_header(other)
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        read_header(tmp_path / "missing.safetensors")


def _rewrite(path, out, edit=None, tensors=None, meta=None):
    """Copy checkpoint ``path`` to ``out`` with its header dict passed through ``edit`` (or
    the raw metadata string ``meta``) and/or other ``tensors``."""
    with safe_open(str(path), framework="pt") as f:
        header = json.loads(f.metadata()["disrt"])
        state = {k: f.get_tensor(k) for k in f.keys()}
    if edit is not None:
        edit(header)
    save_file(tensors if tensors is not None else state, str(out),
              metadata={"disrt": meta if meta is not None else json.dumps(header)})
    return out


@pytest.fixture
def good(tmp_path):
    return save_checkpoint(tmp_path / "good.safetensors", _net(), "smpl-neutral", SMPL,
                           DecoderConfig())


@pytest.mark.parametrize("name, edit, meta, message", [
    ("notjson", None, "{'format': 1", r"header is not valid JSON"),
    ("list", None, "[1, 2]", r"must be a JSON object"),
    ("nobody", lambda h: h.pop("body"), None, r"lacks required keys \['body'\]"),
    ("nomodel", lambda h: h["body"].pop("model_id"), None,
     r"lacks required keys \['body.model_id'\]"),
    ("cosine", lambda h: h["diffusion"].update(schedule="cosine"), None,
     r"schedule 'cosine' is not supported.*\['linear'\]"),
    ("steps", lambda h: h["diffusion"].update(num_timesteps="many"), None,
     r"num_timesteps must be an integer"),
    ("extra", lambda h: h["diffusion"].update(v_prediction=True), None,
     r"unknown diffusion settings \['v_prediction'\]"),
    ("paramdim", lambda h: h.update(param_dim="88"), None, r"malformed header: param_dim"),
    ("network", lambda h: h["network"].update(model_channels="wide"), None,
     r"malformed header"),
])
def test_broken_headers_are_named(tmp_path, good, name, edit, meta, message):
    path = _rewrite(good, tmp_path / f"{name}.safetensors", edit=edit, meta=meta)
    for load in (read_header, load_checkpoint):
        with pytest.raises(CheckpointError, match=message) as info:
            load(path)
        assert str(path) in str(info.value) and info.value.path == str(path)
    assert issubclass(CheckpointError, ValueError)  # callers catching ValueError still do


@pytest.mark.parametrize("cut", ["half", "tail", "garbage", "empty"])
def test_truncated_or_garbage_files_are_named(tmp_path, good, cut):
    data = good.read_bytes()
    blob = {"half": data[:len(data) // 2], "tail": data[:-3],
            "garbage": bytes(range(256)) * 8, "empty": b""}[cut]
    path = tmp_path / f"{cut}.safetensors"
    path.write_bytes(blob)
    for load in (read_header, load_checkpoint):
        with pytest.raises(CheckpointError, match=r"not a readable safetensors file") as info:
            load(path)
        assert str(path) in str(info.value)


def test_non_finite_weights_are_refused(tmp_path, good):
    with safe_open(str(good), framework="pt") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
    name = "head.2.weight" if "head.2.weight" in state else sorted(state)[-1]
    state[name][0, 0] = float("nan")
    other = next(k for k in sorted(state) if k != name and state[k].is_floating_point())
    state[other].view(-1)[0] = float("inf")
    path = _rewrite(good, tmp_path / "nan.safetensors", tensors=state)
    read_header(path)  # the header is fine; the weights are not
    with pytest.raises(CheckpointError, match=r"2 weight tensor\(s\) hold NaN or infinite") \
            as info:
        load_checkpoint(path)
    assert name in str(info.value) and other in str(info.value) and str(path) in str(info.value)


def test_weights_that_do_not_fit_the_header_are_named(tmp_path, good):
    with safe_open(str(good), framework="pt") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
    state.pop(sorted(state)[0])
    path = _rewrite(good, tmp_path / "short.safetensors", tensors=state)
    with pytest.raises(CheckpointError, match=r"(?s)do not fit the network.*Missing key") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_unsupported_diffusion_is_refused_when_saving(tmp_path):
    with pytest.raises(CheckpointError, match="cosine"):
        save_checkpoint(tmp_path / "m.safetensors", _net(), "smpl-neutral", SMPL,
                        DecoderConfig(), diffusion={"schedule": "cosine"})
    path = save_checkpoint(tmp_path / "m.safetensors", _net(), "smpl-neutral", SMPL,
                           DecoderConfig(), diffusion={"num_timesteps": 50})
    assert read_header(path).diffusion == {"num_timesteps": 50, "schedule": "linear"}
