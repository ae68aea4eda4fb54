import json

import numpy as np
import pytest
import torch

from disrt_core.checkpoint import save_checkpoint
from disrt_core.decoder import MeshDecoder
from disrt_core.measurements import body_measurements
from disrt_core.model import Denoiser, DenoiserConfig, preset
from disrt_core.train.cli import evaluate_main
from disrt_core.train.config import TINY_NETWORK, DataSpec
from disrt_core.train.evaluation import (
    EvalSettings,
    evaluate_checkpoint,
    markdown_table,
    summarise,
)

SUBJECTS = (1, 2, 81)


def _x0(body):
    """A plausible supine body in the label frame (before the decoder's offset)."""
    x0 = body.zero_params(1)[0]
    x0[0:10] = torch.linspace(-0.5, 0.5, 10)
    x0[10:13] = torch.tensor([0.10, -0.05, 0.05])
    x0[19:88] = 0.05
    return x0


@pytest.fixture(scope="module")
def constant_checkpoint(tmp_path_factory, smpl_both):
    """A network whose output is the fixed vector x0 whatever its input."""
    config = DenoiserConfig.from_dict({**preset("small").to_dict(), **TINY_NETWORK})
    net = Denoiser(config, 88)
    x0 = _x0(smpl_both)
    with torch.no_grad():
        net.head[-1].weight.zero_()
        net.head[-1].bias.copy_(x0)
    path = tmp_path_factory.mktemp("ckpt") / "constant.safetensors"
    save_checkpoint(path, net, smpl_both.model_id, smpl_both.param_layout,
                    MeshDecoder(smpl_both).config)
    return path, x0


def test_metrics_match_a_hand_computation(constant_checkpoint, smpl_both, data_root):
    path, x0 = constant_checkpoint
    fx = data_root["slp"]
    spec = DataSpec(type="slp", path=str(data_root["root"]), subjects=list(SUBJECTS),
                    poses=[1], vertices=True, name="slp")
    settings = EvalSettings(grid=[(5, 1), (2, 1)], measurements=True, batch_size=4)
    result = evaluate_checkpoint(path, spec, settings, body=smpl_both, per_sample=True)
    assert [(r["steps"], r["hypotheses"]) for r in result["results"]] == [(5, 1), (2, 1)]

    decoder = MeshDecoder(smpl_both)
    mpjpe, pve, height = [], [], []
    for s in SUBJECTS:
        label = fx.labels[(s, 1)]
        gender = torch.tensor(label[157:159], dtype=torch.float32)[None]
        with torch.no_grad():
            pred = decoder(x0[None], gender)
        j_gt = label[:72].reshape(24, 3) / 1000.0
        j_pred = pred.joints[0].double().numpy()
        mpjpe.append(1000 * np.linalg.norm(j_gt - j_pred, axis=1).mean())
        pve.append(1000 * np.linalg.norm(fx.vertices[(s, 1)] - pred.vertices[0].double().numpy(),
                                         axis=1).mean())
        h_pred = body_measurements(smpl_both, pred.shape, gender)["height"]
        h_gt = body_measurements(smpl_both, torch.tensor(label[72:82])[None].float(),
                                 gender)["height"]
        height.append(float((h_pred - h_gt).abs()[0]))
    for entry in result["results"]:  # one constant output: every setting agrees
        summary = entry["summary"]
        assert summary["n"] == {"uncover": 3, "cover1": 3, "cover2": 3, "all": 9}
        for cover in ("uncover", "cover1", "cover2", "all"):  # same label for every cover
            assert summary["mpjpe_mm"][cover] == pytest.approx(np.mean(mpjpe), rel=1e-5)
            assert summary["pve_mm"][cover] == pytest.approx(np.mean(pve), rel=1e-5)
        assert summary["shape_cm"]["height"] == pytest.approx(np.mean(height), rel=1e-5)
        per = entry["per_sample"]
        assert per["keys"][:3] == [f"slp/danaLab/00001/{c}/000001"
                                   for c in ("uncover", "cover1", "cover2")]
        assert per["mpjpe_mm"][::3] == pytest.approx(mpjpe, rel=1e-5)
        females = [int(fx.labels[(s, 1)][157]) for s in SUBJECTS]
        assert per["female"][::3] == females


def test_summary_groups_by_cover_and_gender():
    per = {"cover": np.array([0, 0, 1, 2, 2]), "female": np.array([1, 0, 1, -1, 0]),
           "mpjpe_mm": np.array([10.0, 20.0, 30.0, 40.0, 60.0]),
           "pve_mm": np.array([1.0, 2.0, 3.0, 4.0, 5.0]),
           **{f"{m}_cm": np.array([1.0, 1.0, 2.0, 2.0, 4.0]) for m in
              ("height", "chest", "waist", "hips")}}
    s = summarise(per)
    assert s["mpjpe_mm"] == {"uncover": 15.0, "cover1": 30.0, "cover2": 50.0, "all": 32.0}
    assert s["pve_mm"]["all"] == 3.0 and s["shape_cm"]["hips"] == 2.0
    assert s["by_gender"]["female"] == {"n": 2, "mpjpe_mm": 20.0, "pve_mm": 2.0}
    assert s["by_gender"]["male"]["mpjpe_mm"] == 40.0
    table = markdown_table([{"label": "m", "steps": 5, "hypotheses": 1, "summary": s}], "T")
    assert "| m | 5 | 1 | 15.00 / 1.50 | 30.00 / 3.00 | 50.00 / 4.50 | 32.00 / 3.00 | 5 | " \
           "2.00 | 2.00 | 2.00 | 2.00 |" in table


def test_evaluate_cli_sweeps_steps_and_hypotheses(constant_checkpoint, data_root, tmp_path,
                                                  smpl_fixture_dir, capsys):
    path, _ = constant_checkpoint
    code = evaluate_main([str(path), "--data",
                          f"type=slp,path={data_root['root']},subjects=[81],poses=[1]",
                          "--steps", "1,5", "--hypotheses", "1,2", "--no-measurements",
                          "--smpl-dir", str(smpl_fixture_dir), "--device", "cpu",
                          "--out", str(tmp_path / "eval")])
    assert code == 0
    results = json.loads((tmp_path / "eval" / "eval.json").read_text())
    pairs = [(r["steps"], r["hypotheses"]) for r in results[0]["results"]]
    assert pairs == [(1, 1), (1, 2), (5, 1), (5, 2)]
    table = (tmp_path / "eval" / "eval.md").read_text()
    assert table.count("| constant.safetensors |") == 4 and "height" not in table
    assert "| constant.safetensors | 5 | 2 |" in capsys.readouterr().out
    assert evaluate_main([str(tmp_path / "missing.safetensors"), "--slp", "x"]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_summary_per_posture_with_its_accuracy():
    per = {"cover": np.zeros(6, int), "female": np.full(6, -1),
           "mpjpe_mm": np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0]),
           "pve_mm": np.ones(6), "posture": np.array([0, 0, 3, 3, 3, 1]),
           "posture_pred": np.array([0, 0, 0, 3, 3, 2])}
    s = summarise(per)["by_posture"]
    assert s["supine"] == {"n": 2, "mpjpe_mm": 15.0, "pve_mm": 1.0, "posture_accuracy": 1.0}
    assert s["prone"]["mpjpe_mm"] == 40.0 and s["prone"]["posture_accuracy"] == 2 / 3
    assert s["left"]["posture_accuracy"] == 0.0 and "right" not in s
