"""Fixtures of the training tests: the SMPL fixture model with both genders, miniature
BodyPressureSD and SLP datasets written by code, and a tiny training config."""

from __future__ import annotations

import copy
import warnings

import pytest

#: SLP subjects of the fixture: Table 1's 11 % split (1-10 without 7) and one test subject.
SLP_SUBJECTS = (1, 2, 3, 4, 5, 6, 8, 9, 10, 81)
BP_FILES = (("lay", "f", "1to40", 8), ("lside", "m", "41to70", 8))
BP_STEMS = tuple(f"train_slp_{p}_{g}_{r}_{n}" for p, g, r, n in BP_FILES)


@pytest.fixture(scope="session")
def smpl_both(smpl_fixture_dir):
    from disrt_core.body import load_body_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_body_model(kind="smpl", model_dir=smpl_fixture_dir, gender="both")


@pytest.fixture(scope="session")
def data_root(tmp_path_factory, smpl_both):
    """One <data> folder with BodyPressureSD (2 files × 8 samples, no NaN) and SLP (the
    subjects above, pose 1, three covers, GT vertex files)."""
    from disrt_core.data.fixtures import write_bodypressure_fixture, write_slp_fixture

    root = tmp_path_factory.mktemp("data_BP")
    bp = write_bodypressure_fixture(root, files=BP_FILES, nan_samples=(),
                                    body_model=smpl_both, seed=1)
    slp = write_slp_fixture(root, subjects=SLP_SUBJECTS, poses=(1,), body_model=smpl_both,
                            seed=2)
    return {"root": root, "bodypressure": bp, "slp": slp}


def tiny_config(smpl_dir, root, out_dir, **run) -> dict:
    """A raw config dict: tiny network, SMPL fixture, BodyPressureSD (16 samples, batch 4)
    then SLP subjects 1-2 (6 samples, batch 2, linear decay, embedders frozen)."""
    from disrt_core.train.config import TINY_NETWORK

    return copy.deepcopy({
        "name": "test", "seed": 0,
        "body": {"kind": "smpl", "smpl_dir": str(smpl_dir), "gender": "both"},
        "model": {"preset": "small", "overrides": TINY_NETWORK},
        "loss": {"normalisers": "reference"},
        "stages": [
            {"name": "synth", "data": [{"type": "bodypressure", "path": str(root),
                                        "stems": list(BP_STEMS)}],
             "epochs": 2, "batch_size": 4, "schedule": {"kind": "constant"}},
            {"name": "finetune", "data": [{"type": "slp", "path": str(root), "subjects": [1, 2],
                                           "poses": [1]}],
             "epochs": 2, "batch_size": 2, "schedule": {"kind": "linear"},
             "freeze": ["param_embed", "time_embed"]},
        ],
        "run": {"out_dir": str(out_dir), "device": "cpu", "num_workers": 0, "streams": 1,
                "checkpoint_every": 3, "log_every": 1, "progress": False, "threads": 1,
                **run},
    })


@pytest.fixture
def make_config(smpl_fixture_dir, data_root, tmp_path):
    """``make_config(**run)`` -> raw config dict writing to a fresh folder."""
    def make(out_dir=None, **run):
        return tiny_config(smpl_fixture_dir, data_root["root"], out_dir or tmp_path / "run",
                           **run)
    return make


@pytest.fixture
def keep_threads():
    """Restore torch's thread count after a test that trains in-process (run.threads)."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_checkpoint(tmp_path, smpl_both, data_root):
    """(checkpoint path, data spec): a tiny randomly initialised network saved for the SMPL
    fixture body, and the BodyPressureSD fixture to run it on."""
    import torch

    from disrt_core.checkpoint import save_checkpoint
    from disrt_core.decoder import MeshDecoder
    from disrt_core.model import Denoiser, DenoiserConfig
    from disrt_core.train.config import TINY_NETWORK, DataSpec

    torch.manual_seed(0)
    net = Denoiser(DenoiserConfig.from_dict(TINY_NETWORK), smpl_both.param_dim).eval()
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.05)
    path = save_checkpoint(tmp_path / "m.safetensors", net, smpl_both.model_id,
                           smpl_both.param_layout, MeshDecoder(smpl_both).config)
    return path, DataSpec(type="bodypressure", path=str(data_root["root"]),
                          stems=list(BP_STEMS))
