"""A SMPL-shaped fixture model in the official pickle format, for tests without SMPL files.

The arrays are random but valid and built so that results can be derived by hand: 6,890
vertices in 24 clusters around designed rest joints, each vertex skinned rigidly to its
cluster's joint, a sparse joint regressor averaging each cluster, small random shape and
pose blend shapes. The pickle is written with protocol 2 like the official files, with
``shapedirs`` as a (fake) ``chumpy.ch.Ch`` and ``J_regressor`` as a (fake)
``scipy.sparse.csc.csc_matrix``, so the chumpy-free loader is exercised exactly as by the
real files. Nothing of SMPL's licensed data is in here.
"""

from __future__ import annotations

import contextlib
import pickle
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from disrt_core.body.skeleton import SMPL_PARENTS

NUM_VERTICES = 6890
NUM_FACES = 13776

#: Designed rest joints of the fixture (canonical frame: x left, y up, z forward), metres.
FIXTURE_REST_JOINTS = np.array([
    [0.00, 0.00, 0.0], [0.09, -0.08, 0.0], [-0.09, -0.08, 0.0], [0.0, 0.11, 0.0],
    [0.10, -0.45, 0.0], [-0.10, -0.45, 0.0], [0.0, 0.24, 0.0], [0.10, -0.85, -0.02],
    [-0.10, -0.85, -0.02], [0.0, 0.30, 0.0], [0.11, -0.90, 0.12], [-0.11, -0.90, 0.12],
    [0.0, 0.50, 0.0], [0.08, 0.42, 0.0], [-0.08, 0.42, 0.0], [0.0, 0.62, 0.03],
    [0.18, 0.42, 0.0], [-0.18, 0.42, 0.0], [0.44, 0.42, 0.0], [-0.44, 0.42, 0.0],
    [0.68, 0.42, 0.0], [-0.68, 0.42, 0.0], [0.77, 0.42, 0.0], [-0.77, 0.42, 0.0],
])  # fmt: skip


def _fake_class(module: str, name: str) -> type:
    return type(name, (), {"__module__": module, "__qualname__": name})


@contextlib.contextmanager
def _fake_modules(classes: list[type]) -> Iterator[None]:
    """Make ``module.Class`` importable by name while pickling (restored afterwards)."""
    saved = {}
    try:
        for cls in classes:
            parts = cls.__module__.split(".")
            for i in range(1, len(parts) + 1):
                name = ".".join(parts[:i])
                if name not in sys.modules or i == len(parts):
                    saved.setdefault(name, sys.modules.get(name))
                    if i == len(parts) or name not in sys.modules:
                        sys.modules[name] = types.ModuleType(name)
            setattr(sys.modules[cls.__module__], cls.__qualname__, cls)
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def fixture_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """The fixture's arrays in their official dtypes and shapes (dense J_regressor)."""
    rng = np.random.default_rng(seed)
    cluster = np.arange(NUM_VERTICES) % 24  # vertex -> joint
    offsets = rng.normal(scale=0.03, size=(NUM_VERTICES, 3))
    # Centre each cluster exactly on its joint, so the regressed rest joint is the designed one.
    for j in range(24):
        offsets[cluster == j] -= offsets[cluster == j].mean(axis=0)
    v_template = FIXTURE_REST_JOINTS[cluster] + offsets
    weights = np.zeros((NUM_VERTICES, 24))
    weights[np.arange(NUM_VERTICES), cluster] = 1.0
    j_regressor = np.zeros((24, NUM_VERTICES))
    for j in range(24):
        members = cluster == j
        j_regressor[j, members] = 1.0 / members.sum()
    faces = np.stack([rng.choice(NUM_VERTICES, size=3, replace=False) for _ in range(NUM_FACES)])
    kintree = np.array([[4294967295, *SMPL_PARENTS[1:]], list(range(24))], dtype=np.int64)
    return {
        "v_template": v_template,
        "shapedirs": rng.normal(scale=0.002, size=(NUM_VERTICES, 3, 10)),
        "posedirs": rng.normal(scale=0.0005, size=(NUM_VERTICES, 3, 207)),
        "J_regressor": j_regressor,
        "weights": weights,
        "kintree_table": kintree,
        "f": faces.astype(np.uint32),
        "J": FIXTURE_REST_JOINTS.copy(),
    }


def write_fake_smpl_pickle(path: str | Path, seed: int = 0) -> Path:
    """Write the fixture as an official-format SMPL pickle (protocol 2) and return its path."""
    arrays = fixture_arrays(seed)
    ch_cls = _fake_class("chumpy.ch", "Ch")
    csc_cls = _fake_class("scipy.sparse.csc", "csc_matrix")
    shapedirs = ch_cls()
    shapedirs.__dict__.update({"x": arrays["shapedirs"], "_dirty_vars": set(), "_itr": None,
                               "_make_dense": False, "_make_sparse": False})
    dense = arrays["J_regressor"]
    rows, cols = np.nonzero(dense.T)  # column-major order: (col, row) pairs sorted by col
    regressor = csc_cls()
    regressor.__dict__.update({
        "_shape": dense.shape, "maxprint": 50, "format": "csc",
        "data": dense[cols, rows], "indices": cols.astype(np.int32),
        "indptr": np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=dense.shape[1]))])
        .astype(np.int32),
    })
    data = {
        "v_template": arrays["v_template"], "shapedirs": shapedirs,
        "posedirs": arrays["posedirs"], "J_regressor": regressor,
        "weights": arrays["weights"], "kintree_table": arrays["kintree_table"],
        "f": arrays["f"], "J": arrays["J"], "bs_style": "lbs", "bs_type": "lrotmin",
        "vert_sym_idxs": np.arange(NUM_VERTICES),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _fake_modules([ch_cls, csc_cls]), path.open("wb") as f:
        pickle.dump(data, f, protocol=2)
    return path


def local_faces(body) -> torch.Tensor:
    """[13,776, 3] faces between near vertices of a fixture body's zero pose, for what
    rasterises the mesh (the pressure reading's underside) in benchmarks and tests: the
    fixture's own faces join random vertices across the body, triangles a metre wide that
    no real mesh has. Each vertex with its 1st and 2nd, and with its 2nd and 3rd nearest
    neighbours (the clusters' scattered points make them larger than SMPL's: ~15 cells of
    the 1 cm bed grid against Anny's ≤ 12)."""
    with torch.no_grad():
        rest = body(body.zero_params(1).to(body.faces.device))[0][0].cpu()
    near = torch.cdist(rest, rest).topk(4, largest=False).indices[:, 1:]  # [V,3]
    i = torch.arange(len(rest))
    faces = torch.cat([torch.stack([i, near[:, 0], near[:, 1]], 1),
                       torch.stack([i, near[:, 1], near[:, 2]], 1)])
    return faces[:NUM_FACES]
