"""The bed-fit benchmark and the head-end classifier's tuning data use Anny bodies by default
(the SMPL test fixture has no head shape, and the head end is what they measure)."""

import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def paths(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "training"))
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))


def test_bench_bedfit_defaults_to_anny_bodies(paths, capsys):
    import bench_bedfit

    with pytest.raises(SystemExit):
        bench_bedfit.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--body-model {anny,smpl-fixture}" in out
    source = inspect.getsource(bench_bedfit.main)
    assert 'parser.add_argument("--body-model", default="anny"' in source


def test_fit_head_end_generates_anny_bodies_by_default(paths):
    import fit_head_end

    assert inspect.signature(fit_head_end.generate).parameters["body_model"].default == "anny"
    with pytest.raises(SystemExit):
        fit_head_end.main(["--scenes", "x", "--body-model", "box"])  # no such body
