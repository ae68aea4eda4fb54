"""Miniature datasets in the originals' formats, written once per test module."""

import warnings

import pytest


@pytest.fixture(scope="session")
def smpl_both(smpl_fixture_dir):
    """The fixture SMPL model with per-sample gender (female and male)."""
    from disrt_core.body import load_body_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_body_model(kind="smpl", model_dir=smpl_fixture_dir, gender="both")


@pytest.fixture(scope="session")
def slp_fixture(tmp_path_factory, smpl_both):
    from disrt_core.data.fixtures import write_slp_fixture

    return write_slp_fixture(tmp_path_factory.mktemp("data_BP"), subjects=(1, 81),
                             poses=(1, 16, 31), simlab_subjects=(2,), body_model=smpl_both)


@pytest.fixture(scope="session")
def bodypressure_fixture(tmp_path_factory, smpl_both):
    from disrt_core.data.fixtures import write_bodypressure_fixture

    return write_bodypressure_fixture(tmp_path_factory.mktemp("data_BP"), body_model=smpl_both)
