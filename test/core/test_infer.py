import threading

import pytest
import roma
import torch

from disrt_core.body import ParamLayout, load_body_model
from disrt_core.checkpoint import CheckpointMismatchError, save_checkpoint
from disrt_core.decoder import MeshDecoder
from disrt_core.infer import Estimator, Prediction, average_bodies
from disrt_core.model import Denoiser, small


@pytest.fixture(scope="module")
def smpl_body(smpl_fixture_dir):
    return load_body_model("smpl", smpl_fixture_dir)


def _net(param_dim=88, seed=0):
    torch.manual_seed(seed)
    net = Denoiser(small().replace(dropout=0.0), param_dim)
    for p in net.parameters():  # random everywhere: the output depends on x_t, t and depth
        torch.nn.init.normal_(p, std=0.05)
    return net.eval()


def _constant_net(x0):
    net = _net(x0.shape[-1])
    torch.nn.init.zeros_(net.head[-1].weight)
    with torch.no_grad():
        net.head[-1].bias.copy_(x0)
    return net


def _depth(b=2, seed=0):
    return torch.rand(b, 1, 128, 54, generator=torch.Generator().manual_seed(seed))


def test_constant_network_gives_the_decoded_vector(smpl_body):
    x0 = smpl_body.zero_params(1)[0]
    x0[10:13] = torch.tensor([0.05, -0.1, 0.02])
    x0[19:88] = 0.1
    est = Estimator(_constant_net(x0), smpl_body, hypotheses=3, seed=0)
    pred = est.predict(_depth())
    assert isinstance(pred, Prediction)
    expected = MeshDecoder(smpl_body)(x0.repeat(2, 1))
    torch.testing.assert_close(pred.params, expected.params)
    torch.testing.assert_close(pred.joints, expected.joints)
    torch.testing.assert_close(pred.vertices, expected.vertices)
    torch.testing.assert_close(pred.joint_spread, torch.zeros(2, 24), atol=1e-6, rtol=0)
    assert pred.hypotheses_joints.shape == (2, 3, 24, 3)


def test_hypotheses_answer_one_body_and_their_spread(smpl_body):
    est = Estimator(_net(), smpl_body, hypotheses=4, seed=1)
    net = est._step_net  # x̂0 echoes part of x_t: hypotheses that differ by decimetres
    est._step_net = lambda x, t, code: net(x, t, code) + 0.2 * x
    pred = est.predict(_depth(3))
    hyp = pred.hypotheses_joints
    assert pred.params.shape == (3, 88) and pred.vertices.shape == (3, 6890, 3)
    assert hyp.shape == (3, 4, 24, 3)
    assert pred.joint_spread.mean() > 0.05
    # joints, mesh and params of one body: what the node publishes for a frame must agree
    body = smpl_body(pred.params)
    torch.testing.assert_close(pred.joints, body.joints)
    torch.testing.assert_close(pred.vertices, body.vertices)
    dist2 = ((hyp - hyp.mean(dim=1, keepdim=True)) ** 2).sum(-1)  # [B,K,24]
    torch.testing.assert_close(pred.joint_spread, dist2.mean(dim=1).sqrt())
    assert (pred.joint_spread > 0).all()
    est.set_sampling(hypotheses=1)
    single = est.predict(_depth(3))
    assert single.hypotheses_joints is None and torch.equal(single.joint_spread,
                                                            torch.zeros(3, 24))


def test_average_bodies_is_the_rotation_mean():
    """Two hypotheses R·exp(±δ) per joint average to R exactly (polar decomposition of
    R·(A + Aᵀ)/2); shape and translation to their arithmetic mean."""
    gen = torch.Generator().manual_seed(0)
    layout = ParamLayout(shape_dim=10)
    base = roma.rotvec_to_rotmat(0.8 * torch.rand(2, 24, 3, generator=gen) - 0.4)  # [B,24]
    delta = roma.rotvec_to_rotmat(0.6 * torch.rand(2, 24, 3, generator=gen) - 0.3)
    rot = torch.stack([base @ delta, base @ delta.transpose(-1, -2)], dim=1)  # [B,2,24,3,3]
    theta = roma.rotmat_to_rotvec(rot).flatten(2)  # [B,2,72]
    shape, transl = torch.randn(2, 2, 10, generator=gen), torch.randn(2, 2, 3, generator=gen)
    params = layout.pack(shape, transl, theta[..., :3], theta[..., 3:])
    avg = layout.unpack(average_bodies(params, layout))
    torch.testing.assert_close(avg.shape, shape.mean(dim=1))
    torch.testing.assert_close(avg.transl, transl.mean(dim=1))
    got = roma.rotvec_to_rotmat(torch.cat([avg.root_orient, avg.body_pose], -1).view(2, 24, 3))
    torch.testing.assert_close(got, base, atol=1e-5, rtol=0)
    # a plain mean of the axis-angle vectors is not the rotation mean (the test can tell)
    naive = roma.rotvec_to_rotmat(theta.mean(dim=1).view(2, 24, 3))
    assert (naive - base).abs().max() > 1e-3


@pytest.mark.parametrize("k, eta", [(1, 0.0), (1, 0.5), (3, 0.5)])
def test_seeded_image_gives_one_answer_in_any_batch(smpl_body, k, eta):
    est = Estimator(_net(), smpl_body, steps=3, hypotheses=k, eta=eta, seed=11)
    image, others = _depth(1, seed=3), _depth(2, seed=4)
    alone = est.predict(image)
    for batch, at in ((torch.cat([image, others[:1]]), 0), (torch.cat([others[:1], image]), 1),
                      (torch.cat([others[:1], image, others[1:]]), 1),
                      (torch.cat([others, image]), 2)):
        got = est.predict(batch)
        torch.testing.assert_close(got.joints[at], alone.joints[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(got.params[at], alone.params[0], atol=1e-5, rtol=0)
        if k > 1:
            torch.testing.assert_close(got.hypotheses_joints[at], alone.hypotheses_joints[0],
                                       atol=1e-5, rtol=0)


def test_seed_makes_calls_repeatable_and_inputs_are_flexible(smpl_body):
    net = _net()
    a = Estimator(net, smpl_body, seed=7).predict(_depth())
    est = Estimator(net, smpl_body, seed=7)
    est.predict(_depth(seed=5))
    b = est.predict(_depth().numpy()[:, 0])  # numpy [B,128,54]
    assert torch.equal(a.joints, b.joints)
    free = Estimator(net, smpl_body)
    assert not torch.equal(free.predict(_depth()).params, free.predict(_depth()).params)


def test_sampling_settings(smpl_body):
    calls = []
    est = Estimator(_net(), smpl_body, seed=0)
    original = est._step_net
    est._step_net = lambda x, t, code: calls.append(int(t[0])) or original(x, t, code)
    est.predict(_depth(1))
    assert calls == [99, 74, 50, 25, 0]
    calls.clear()
    est.set_sampling(steps=2, eta=0.5)
    est.predict(_depth(1))
    assert calls == [99, 0] and (est.steps, est.eta, est.hypotheses) == (2, 0.5, 1)
    for bad in ({"steps": 0}, {"steps": 101}, {"hypotheses": 0}, {"eta": -0.1}):
        with pytest.raises(ValueError):
            est.set_sampling(**bad)


@pytest.mark.parametrize("depth, message", [
    (torch.full((1, 1, 128, 54), 2101.0), "normalised to \\[0, 1\\].*millimetres"),
    (torch.full((1, 1, 128, 54), float("nan")), "NaN"),
    (torch.zeros(1, 1, 64, 27), "128,54"),
    ([[0.0]], "tensor or numpy"),
])
def test_bad_input_is_named(smpl_body, depth, message):
    with pytest.raises((ValueError, TypeError), match=message):
        Estimator(_net(), smpl_body).predict(depth)


def test_from_checkpoint_and_refusal(tmp_path, smpl_body, anny_body):
    net = _net()
    path = save_checkpoint(tmp_path / "m.safetensors", net, smpl_body.model_id,
                           smpl_body.param_layout, MeshDecoder(smpl_body).config)
    est = Estimator.from_checkpoint(path, device="cpu", steps=3, hypotheses=2, seed=4,
                                    body_model=smpl_body)
    assert (est.model_id, est.device.type, est.steps, est.hypotheses) == (
        "smpl-neutral", "cpu", 3, 2)
    ref = Estimator(net, smpl_body, steps=3, hypotheses=2, seed=4)
    torch.testing.assert_close(est.predict(_depth()).joints, ref.predict(_depth()).joints)
    with pytest.raises(CheckpointMismatchError, match=r"smpl-neutral.*anny"):
        Estimator.from_checkpoint(path, body_model=anny_body)


def test_thread_safe_from_a_worker(smpl_body):
    est = Estimator(_net(), smpl_body, seed=3, hypotheses=2)
    expected = est.predict(_depth()).joints
    results, errors = [], []

    def work():
        try:
            for _ in range(3):
                results.append(est.predict(_depth()).joints)
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for th in threads:
        th.start()
    est.set_sampling(hypotheses=2)
    for th in threads:
        th.join()
    assert not errors and len(results) == 6
    assert all(torch.equal(r, expected) for r in results)


def test_training_mode_is_restored(smpl_body):
    net = _net().train()
    Estimator.from_model(net, smpl_body).predict(_depth(1))
    assert net.training


def test_a_network_in_training_mode_predicts_without_dropout(smpl_body):
    torch.manual_seed(0)
    net = Denoiser(small().replace(dropout=0.5), 88)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.05)
    est = Estimator.from_model(net.train(), smpl_body, seed=0)
    a, b = est.predict(_depth(1)), est.predict(_depth(1))
    assert torch.equal(a.params, b.params)  # dropout would draw new masks
    assert net.training and all(m.training for m in net.modules())


def test_weights_cast_once_give_what_autocast_gives(smpl_body):
    # bf16 autocast casts every convolution and Linear weight at every forward; storing
    # them in bf16 once must give the very same numbers (norms stay float32)
    depth = _depth(2, seed=4)
    cast = Estimator(_net(), smpl_body, seed=2, precision="bf16", cast_weights=True)
    assert cast.model.blocks[0].weight.dtype == torch.bfloat16
    assert cast.model.head[0].weight.dtype == torch.float32  # the head's LayerNorm
    autocast = Estimator(_net(), smpl_body, seed=2, precision="bf16")
    assert autocast.model.blocks[0].weight.dtype == torch.float32
    a, b = cast.predict(depth), autocast.predict(depth)
    torch.testing.assert_close(a.params, b.params, atol=1e-6, rtol=0)
    fp32 = Estimator(_net(), smpl_body, seed=2).predict(depth)
    assert (fp32.params - a.params).abs().max() > 1e-4  # bf16 really ran


def test_stats_group_norm_is_opt_in_on_the_cpu_and_gives_the_same_bodies(smpl_body):
    from disrt_core.model.blocks import StatsGroupNorm

    depth = _depth(2, seed=5)
    plain = Estimator(_net(), smpl_body, seed=1)  # default: off on the CPU (eager, not CUDA)
    assert not any(isinstance(m, StatsGroupNorm) for m in plain.model.modules())
    stats = Estimator(_net(), smpl_body, seed=1, stats_group_norm=True)
    assert sum(isinstance(m, StatsGroupNorm) for m in stats.model.modules()) > 4
    a, b = plain.predict(depth), stats.predict(depth)
    torch.testing.assert_close(b.params, a.params, atol=2e-4, rtol=0)
    torch.testing.assert_close(b.joints, a.joints, atol=2e-4, rtol=0)


def test_one_depth_encoding_per_call_and_image_whatever_the_steps_and_hypotheses(smpl_body):
    est = Estimator(_net(), smpl_body, steps=5, hypotheses=3, seed=0)
    encodings, encode = [], est._encode_net
    est._encode_net = lambda depth: encodings.append(len(depth)) or encode(depth)
    pred = est.predict(_depth(2))
    assert encodings == [2]
    # each image's 3 hypotheses: what the images' repeated rows give
    est._encode_net = encode
    rows = Estimator(_net(), smpl_body, steps=5, hypotheses=1, seed=0)
    noise, _ = est._noise(2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        x0 = rows._sample(_depth(2).repeat_interleave(3, dim=0), noise, [])
    torch.testing.assert_close(pred.hypotheses_joints,
                               est._decode(x0, None)[1].view(2, 3, 24, 3))


def test_one_hypothesis_rows_are_decoded_through_the_compiled_tail(smpl_body):
    """With K = 1 the decoding, presence and pressure go through ``_tail_compiled`` (set
    on CUDA with ``compile``); a failing one is dropped once, with a warning, for the eager
    path, which gives the same bodies."""
    plain = Estimator(_net(), smpl_body, seed=0).predict(_depth())
    est = Estimator(_net(), smpl_body, seed=0)
    assert est._tail_compiled is None  # the CPU keeps it eager
    calls = []
    est._tail_compiled = lambda *args: calls.append(len(args[0])) or est._tail_eager(*args)
    torch.testing.assert_close(est.predict(_depth()).joints, plain.joints)
    assert calls == [2]
    est.set_sampling(hypotheses=3)
    est.predict(_depth())
    assert calls == [2]  # K > 1: the averaged body is decoded after sampling

    def broken(*args):
        raise RuntimeError("dynamo cannot trace this body model")

    est.set_sampling(hypotheses=1)
    est._tail_compiled = broken
    with pytest.warns(RuntimeWarning, match="could not be compiled.*dynamo cannot trace"):
        pred = est.predict(_depth())
    torch.testing.assert_close(pred.joints, plain.joints)
    torch.testing.assert_close(pred.present_prob, plain.present_prob)
    assert est._tail_compiled is None


def test_a_compiled_tail_that_cannot_be_captured_runs_eagerly_in_the_graph(smpl_body):
    """The graph path (faked on the CPU: a cache whose capture the compiled tail cannot
    enter) keeps the whole predict in one graph with the eager tail, not the sampling
    alone: the failed capture is not swallowed inside it but retried once without it."""
    plain = Estimator(_net(), smpl_body, seed=0).predict(_depth())
    est = Estimator(_net(), smpl_body, seed=0)
    capturing = [False]

    def compiled(*args):
        if capturing[0]:
            raise RuntimeError("operation not permitted when stream is capturing")
        return est._tail_eager(*args)

    captured = []

    def graphs(key, fn, args):
        captured.append((key[0], est._tail_compiled is not None))
        fn(*args)  # the warm-up, outside the capture
        capturing[0] = True
        try:
            return fn(*args)
        finally:
            capturing[0] = False

    est._tail_compiled, est._capturing = compiled, lambda: capturing[0]
    est.cuda_graphs, est.graph_scope, est._graphs = True, "predict", graphs
    with pytest.warns(RuntimeWarning, match="compiled decoding cannot be captured"):
        pred = est.predict(_depth())
    assert captured == [("predict", True), ("predict", False)]
    assert est.graph_scope == "predict"
    torch.testing.assert_close(pred.joints, plain.joints)
    torch.testing.assert_close(pred.present_prob, plain.present_prob)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_compiled_estimator_with_graphs_follows_eager(smpl_fixture_dir):
    body = load_body_model("smpl", smpl_fixture_dir, device="cuda")
    eager = Estimator(_net(), body, device="cuda", seed=0, cuda_graphs=True)
    eager.set_pressure(True)
    compiled = Estimator(_net(), body, device="cuda", seed=0, cuda_graphs=True,
                         compile="default")
    compiled.set_pressure(True)
    a, b = eager.predict(_depth().cuda()), compiled.predict(_depth().cuda())
    assert compiled._tail_compiled is not None and compiled.graph_scope == "predict"
    assert (a.joints - b.joints).norm(dim=-1).max() < 0.01
    torch.testing.assert_close(a.present_prob, b.present_prob, atol=1e-3, rtol=0)
    torch.testing.assert_close(a.pressure, b.pressure, atol=0.05, rtol=0.02)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fp32_bf16_and_graphs(smpl_fixture_dir):
    cpu = Estimator(_net(), load_body_model("smpl", smpl_fixture_dir), seed=0).predict(_depth())
    body = load_body_model("smpl", smpl_fixture_dir, device="cuda")
    # Compare true fp32: CUDA convolutions default to TF32, ~1e-3 relative per layer.
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        fp32 = Estimator(_net(), body, device="cuda", seed=0, precision="fp32").predict(
            _depth().cuda())
    assert (fp32.joints.cpu() - cpu.joints).norm(dim=-1).max() < 1e-3
    graphed = Estimator(_net(), body, device="cuda", seed=0, precision="bf16", cuda_graphs=True)
    first = graphed.predict(_depth().cuda())  # captures
    again = graphed.predict(_depth().cuda())  # replays
    assert torch.equal(first.joints, again.joints)
    assert torch.equal(first.vertices, again.vertices)
    assert graphed.graph_scope == "predict"  # SMPL's decoding is inside the graph
    assert (again.joints - fp32.joints).norm(dim=-1).max() < 0.05
    other = graphed.predict(_depth().cuda().flip(-1))  # the replay takes the new input
    assert (other.joints - again.joints).abs().max() > 0
    # weights stored in bf16 once (as from_checkpoint does) give what autocast gives
    cast = Estimator(_net(), body, device="cuda", seed=0, precision="bf16", cuda_graphs=True,
                     cast_weights=True).predict(_depth().cuda())
    assert (cast.joints - again.joints).abs().max() < 1e-4


def test_training_after_predict_in_one_process(anny_body):
    """A predict (inference mode; K hypotheses averaged with roma's procrustes) before any
    forward with autograd must not leave roma a cached inference tensor that breaks the
    training step after it (the trainer evaluates between epochs)."""
    from disrt_core.body.rotations import roma_constants_outside_inference

    roma.mappings._cached_horn_map.cache_clear()
    roma_constants_outside_inference.cache_clear()
    Estimator(_net(anny_body.param_dim), anny_body, hypotheses=2, seed=0).predict(_depth(1))
    params = anny_body.zero_params(1)
    params[:, anny_body.param_layout.shape] = -0.2  # a rest model Anny has not cached
    params.requires_grad_()
    vertices, _ = anny_body(params)
    vertices.sum().backward()
    assert params.grad.abs().sum() > 0
