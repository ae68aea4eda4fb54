"""Shared test set-up.

ROS: every process that starts rclpy must use localhost discovery and its own random domain
(multicast on the network interface is forbidden on the development machines), so this is
set before any test imports rclpy.
"""

from __future__ import annotations

import os
import random
import warnings

import pytest

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 101)))
os.environ.pop("ROS_LOCALHOST_ONLY", None)  # deprecated in Jazzy; the range above rules


@pytest.fixture(scope="session")
def anny_body():
    """The Anny body model, built once per test session (first build ~40-50 s on 2 cores)."""
    from disrt_core.body import load_body_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_body_model(kind="anny")


@pytest.fixture(scope="session")
def smpl_fixture_dir(tmp_path_factory):
    """A folder with fixture SMPL pickles for all three genders, in the official format."""
    from disrt_core.body.fixtures import write_fake_smpl_pickle

    folder = tmp_path_factory.mktemp("smpl")
    for seed, name in enumerate(("SMPL_NEUTRAL.pkl", "SMPL_FEMALE.pkl", "SMPL_MALE.pkl")):
        write_fake_smpl_pickle(folder / name, seed=seed)
    return folder
