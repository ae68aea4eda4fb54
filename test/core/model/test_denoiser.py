import math

import pytest
import torch
import torch.nn.functional as F

from disrt_core.model import Denoiser, DenoiserConfig, count_parameters, paper, preset, small
from disrt_core.model.blocks import AttentionBlock, ResBlock
from disrt_core.model.embed import timestep_features

REFERENCE_PARAMS = 64_288_880  # their model with the unused (B,2,88) variance row, SPEC §3


def test_paper_config_reproduces_the_reference_parameter_count():
    # SPEC §3/§11: 64,288,880 − 45,144 (the variance row: 512·88 weights + 88 biases).
    net = Denoiser(paper(), param_dim=88)
    assert count_parameters(net) == REFERENCE_PARAMS - (512 * 88 + 88) == 64_243_736
    trunk_out = net.trunk_out[-1]
    assert tuple(trunk_out.weight.shape) == (1024, 512 * 8 * 8)  # the 33.6 M layer
    assert count_parameters(Denoiser(paper(), param_dim=84)) == 64_243_736 - 4 * (256 + 513)


def test_paper_config_costs_the_reference_flops():
    # SPEC §3: 56.1 GFLOP per forward at 256² measured on the reference model.
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    net = Denoiser(paper(), param_dim=88).eval()
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as fc:
        net(torch.zeros(1, 88), torch.zeros(1, dtype=torch.long), torch.rand(1, 1, 128, 54))
    assert fc.get_total_flops() / 1e9 == pytest.approx(56.1, abs=0.05)


@pytest.mark.parametrize("name", ["paper", "small"])
def test_shapes_and_gradients(name):
    torch.manual_seed(0)
    net = Denoiser(preset(name), param_dim=88)
    n = 1 if name == "paper" else 2  # the paper net's backward at 256² is slow on a CPU
    x_t, t = torch.randn(n, 88), torch.tensor([0, 99])[:n]
    depth = torch.rand(n, 1, 128, 54)
    out = net(x_t, t, depth)
    assert out.shape == (n, 88) and out.dtype == torch.float32
    out.square().sum().backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    # zero-initialised layers learn first: the trunk's output layer has a gradient
    assert net.trunk_out[-1].weight.grad.abs().sum() > 0


def test_every_parameter_is_reached_once_zero_layers_moved():
    torch.manual_seed(0)
    net = Denoiser(small().replace(dropout=0.0), param_dim=84)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    x_t, t, depth = torch.randn(3, 84), torch.tensor([3, 50, 99]), torch.rand(3, 1, 128, 54)
    # step 1 moves the trunk's zero output layer, step 2 the blocks' zero layers, step 3
    # reaches everything behind them
    for _ in range(3):
        opt.zero_grad()
        net(x_t, t, depth).square().sum().backward()
        opt.step()
    dead = [n for n, p in net.named_parameters() if p.grad.abs().sum() == 0]
    assert dead == []


def test_zero_init_makes_every_conditioned_block_the_identity():
    torch.manual_seed(0)
    net = Denoiser(small(), param_dim=88).eval()
    emb = torch.randn(2, 256)
    for block in net.blocks:
        if isinstance(block, AttentionBlock):
            assert block.ada[-1].weight.abs().sum() == 0  # modulation starts at scale 0, shift 0
            x = torch.randn(2, block.proj_out.in_features, 4, 3)
            torch.testing.assert_close(block(x, emb), x)
        if isinstance(block, ResBlock) and isinstance(block.skip, torch.nn.Identity):
            x = torch.randn(2, block.out_norm.num_channels, 4, 3)
            torch.testing.assert_close(block(x, emb), x)
    # the trunk's output layer is zero too: at initialisation x̂0 ignores depth and x_t
    a = net(torch.randn(2, 88), torch.tensor([5, 60]), torch.rand(2, 1, 128, 54))
    b = net(torch.randn(2, 88), torch.tensor([90, 1]), torch.rand(2, 1, 128, 54))
    torch.testing.assert_close(a, b)


def test_timestep_features_match_the_formula():
    t = torch.tensor([0, 1, 37])
    f = timestep_features(t, 64)
    freqs = [math.exp(-math.log(1e4) * i / 32) for i in range(32)]
    assert f.shape == (3, 64)
    torch.testing.assert_close(f[0], torch.cat([torch.ones(32), torch.zeros(32)]))
    expected = [math.cos(37 * fr) for fr in freqs] + [math.sin(37 * fr) for fr in freqs]
    torch.testing.assert_close(f[2], torch.tensor(expected), atol=1e-5, rtol=0)


def _reference_attention(block: AttentionBlock, h, emb):
    """The reference's AdaLN + QKVAttentionLegacy written out (head-major q|k|v split)."""
    b, c, hh, ww = h.shape
    x = h.reshape(b, c, -1)
    scale, shift = block.ada(emb).chunk(2, dim=-1)
    xn = F.layer_norm(x.permute(0, 2, 1), (c,), eps=1e-6) * (1 + scale[:, None]) + shift[:, None]
    qkv = torch.einsum("blc,oc->bol", xn, block.qkv.weight) + block.qkv.bias[None, :, None]
    heads = block.heads
    ch = c // heads
    q, k, v = qkv.reshape(b * heads, 3 * ch, -1).split(ch, dim=1)
    s = 1 / math.sqrt(math.sqrt(ch))
    w = torch.softmax(torch.einsum("bct,bcs->bts", q * s, k * s), dim=-1)
    a = torch.einsum("bts,bcs->bct", w, v).reshape(b, c, -1)
    out = torch.einsum("bcl,oc->bol", a, block.proj_out.weight) + block.proj_out.bias[None, :, None]
    return (x + out).reshape(b, c, hh, ww)


def test_attention_block_matches_the_reference_formula():
    torch.manual_seed(1)
    block = AttentionBlock(64, emb_dim=32, head_channels=16)
    for p in block.parameters():  # leave zero init to test the full computation
        torch.nn.init.normal_(p, std=0.2)
    h, emb = torch.randn(2, 64, 5, 3), torch.randn(2, 32)
    torch.testing.assert_close(block(h, emb), _reference_attention(block, h, emb),
                               atol=1e-5, rtol=1e-4)


def test_resblock_scale_shift_matches_the_formula():
    torch.manual_seed(2)
    block = ResBlock(8, 16, emb_dim=12, dropout=0.0, groups=4).eval()
    torch.nn.init.normal_(block.out_layers[-1].weight, std=0.1)
    h, emb = torch.randn(2, 8, 6, 5), torch.randn(2, 12)
    inner = block.in_layers(h)
    scale, shift = block.emb_layers(emb).chunk(2, dim=1)
    mod = F.group_norm(inner, 4, block.out_norm.weight, block.out_norm.bias, 1e-5)
    mod = mod * (1 + scale[..., None, None]) + shift[..., None, None]
    expected = block.skip(h) + block.out_layers[-1](F.silu(mod))
    torch.testing.assert_close(block(h, emb), expected)


def test_paper_config_upsamples_small_does_not():
    seen, nets = {}, {}
    for name in ("paper", "small"):
        nets[name] = net = Denoiser(preset(name), param_dim=88)
        hook = net.blocks[0].register_forward_hook(
            lambda m, i, o, name=name: seen.__setitem__(name, tuple(i[0].shape[-2:])))
        with torch.no_grad():
            net(torch.zeros(1, 88), torch.zeros(1, dtype=torch.long), torch.rand(1, 1, 128, 54))
        hook.remove()
    assert seen == {"paper": (256, 256), "small": (128, 54)}
    # bilinear without antialias: a ramp along the rows stays a ramp (align_corners=False)
    ramp = torch.linspace(0, 1, 128)[:, None].expand(128, 54)[None, None]
    up = nets["paper"].prepare_input(ramp)
    expected = F.interpolate(ramp, size=(256, 256), mode="bilinear", align_corners=False)
    torch.testing.assert_close(up, expected)
    assert up[0, 0, 1, 0] == pytest.approx(0.25 / 127)  # (1 + 0.5)/2 − 0.5 = 0.25 rows in


def test_config_round_trip_and_errors():
    cfg = small()
    assert DenoiserConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown network config keys"):
        DenoiserConfig.from_dict({**cfg.to_dict(), "mystery": 1})
    with pytest.raises(ValueError, match="heads"):
        small().replace(head_channels=24)
    with pytest.raises(ValueError, match="unknown network preset"):
        preset("huge")
    net = Denoiser(small(), 84)
    with pytest.raises(ValueError, match=r"x_t must be \[N, 84\]"):
        net(torch.zeros(1, 88), torch.zeros(1, dtype=torch.long), torch.rand(1, 1, 128, 54))
    with pytest.raises(ValueError, match="depth must be"):
        net(torch.zeros(1, 84), torch.zeros(1, dtype=torch.long), torch.rand(1, 128, 54))


def _block_by_block(net: Denoiser, x_t, t, depth):
    """The trunk written out as SPEC §3 chains it: every block from the depth, each
    computing its own Linear(SiLU(emb))."""
    emb = net.time_embed(t) + net.param_embed(x_t)
    h = net.prepare_input(depth)
    for block in net.blocks:
        h = block(h, emb) if isinstance(block, (ResBlock, AttentionBlock)) else block(h)
    return net.head(net.trunk_out(h))


def test_encoded_forward_and_fused_modulations_give_the_block_by_block_result():
    torch.manual_seed(3)
    net = Denoiser(small().replace(dropout=0.0), param_dim=84).eval()
    for p in net.parameters():  # away from the zero init, so that every block acts
        torch.nn.init.normal_(p, mean=0.0, std=0.08)
    x_t, t, depth = torch.randn(3, 84), torch.tensor([0, 40, 99]), torch.rand(3, 1, 128, 54)
    with torch.no_grad():
        expected = _block_by_block(net, x_t, t, depth)
        code = net.encode_depth(depth)
        assert expected.abs().mean() > 0.1  # not the zero-init constant
        torch.testing.assert_close(net(x_t, t, depth), expected, atol=1e-5, rtol=1e-4)
        # the code is reused across steps: other x_t and t, same depth
        x2, t2 = torch.randn(3, 84), torch.tensor([7, 7, 7])
        torch.testing.assert_close(net.forward_encoded(x2, t2, code),
                                   _block_by_block(net, x2, t2, depth), atol=1e-5, rtol=1e-4)
    mods = net.block_modulations(net.embed(x_t, t))
    blocks = [b for b in net.blocks if isinstance(b, (ResBlock, AttentionBlock))]
    assert len(mods) == len(blocks) > 10
    emb = net.embed(x_t, t)
    for mod, block in zip(mods, blocks):
        own = block.emb_layers(emb) if isinstance(block, ResBlock) else block.ada(emb)
        torch.testing.assert_close(mod, own, atol=1e-5, rtol=1e-4)


def test_a_trunk_without_a_first_res_block_is_refused():
    with pytest.raises(ValueError, match="num_res_blocks"):
        Denoiser(small().replace(num_res_blocks=0), param_dim=84)


def test_stats_group_norm_is_group_norm():
    """The per-channel-sums GroupNorm gives GroupNorm's values (random affine, an offset
    mean, channels-last too), keeps the parameters when switched in, and a switched network
    answers as before."""
    from torch import nn

    from disrt_core.model.blocks import StatsGroupNorm, use_stats_group_norm

    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 64, 16, 7, generator=g) * 2 + 0.5
    ref = nn.GroupNorm(32, 64)
    with torch.no_grad():
        ref.weight.normal_(generator=g)
        ref.bias.normal_(generator=g)
    mine = StatsGroupNorm(32, 64)
    mine.load_state_dict(ref.state_dict())
    for inp in (x, x.to(memory_format=torch.channels_last)):
        torch.testing.assert_close(mine(inp), ref(inp), rtol=1e-4, atol=1e-4)
    torch.manual_seed(0)
    net = Denoiser(small().replace(dropout=0.0), 84).eval()
    depth, x_t, t = torch.rand(2, 1, 128, 54), torch.randn(2, 84), torch.tensor([3, 60])
    before = net(x_t, t, depth)
    weights = [p for p in net.parameters()]
    assert use_stats_group_norm(net) > 0
    assert [p for p in net.parameters()] == weights
    assert not any(type(m) is nn.GroupNorm for m in net.modules())
    torch.testing.assert_close(net(x_t, t, depth), before, rtol=1e-4, atol=1e-4)
