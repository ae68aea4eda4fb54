"""Miniature SLP, BodyMAP-fit and BodyPressureSD datasets in the originals' exact formats.

For tests and demos without the licensed downloads: the files have the real names, folder
layout, dtypes, shapes and pickle flavour (SPEC §7.1-7.5), with a few subjects / poses /
samples of made-up bodies. Each writer returns the ground truth it encoded (label vectors
in the label frame, depth frames, camera poses), so a test can check a reader against it.

* SLP: ``depthRaw`` frames rendered (exact ray casting of boxes around the bones, a sheet
  or blanket box for cover1/cover2) by a Kinect at 2.101 m (2.264 m in simLab), the
  matching ``align_PTr_{depth,IR,RGB}`` of **all** subjects (DiSRT loads every one at
  start-up), ``physiqueData.npy``, and BodyPressure's ``slp_real_cleaned`` arrays at full
  size (102, 45, ...) written as sparse memory maps, so they take only the written pages
  on disk, holding the cleaned frames :func:`geometry.slp.slp_raw_to_network` makes.
* BodyMAP fits: ``proc_{p:02d}.pkl`` with all 16 keys, pickled by Python 3 (protocol 3)
  with numpy-1.x module names; ``slp_T_cam`` in the pickle differs from the ``.npy`` row, as
  the reader must use the latter.
* BodyPressureSD: Python-2-style protocol-2 pickles (``str`` as 8-bit strings, numpy under
  ``numpy.core``), dicts of per-sample lists, loaded with ``encoding="latin1"``.

Without a ``body_model`` the joints come from a rigid template skeleton (the SMPL fixture's
rest joints posed by the root rotation only); with one (SMPL family) they and the GT
vertex files come from the model, so labels and meshes agree exactly.
"""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from disrt_core.body.fixtures import FIXTURE_REST_JOINTS
from disrt_core.body.skeleton import SMPL_PARENTS
from disrt_core.data import bodymap, labels
from disrt_core.data import slp as slp_data
from disrt_core.data.source import COVERS
from disrt_core.geometry import bedframe as bf
from disrt_core.geometry.slp import KINECT_DEPTH_K, SLP_RAW_DEPTH_SHAPE, slp_homography

COVER_TOP_MAX_M = 0.4  # highest a fixture's sheet or blanket lies over the mattress
_NUMPY_1_MODULES = {"numpy._core.multiarray": "numpy.core.multiarray",
                    "numpy._core.numeric": "numpy.core.numeric"}


class LegacyPickler(pickle._Pickler):
    """Pickles as old writers did: numpy globals under ``numpy.core.*`` (numpy 1.x) and, with
    ``py2_strings``, ``str``/``bytes`` as Python 2's 8-bit strings (SHORT_BINSTRING /
    BINSTRING), as cPickle protocol 2 wrote them."""

    dispatch = pickle._Pickler.dispatch.copy()

    def __init__(self, file, protocol: int, py2_strings: bool = False) -> None:
        super().__init__(file, protocol=protocol)
        self.py2_strings = py2_strings

    def save_global(self, obj, name=None):
        name = name or obj.__qualname__
        module = pickle.whichmodule(obj, name)
        module = _NUMPY_1_MODULES.get(module, module)
        self.write(pickle.GLOBAL + module.encode() + b"\n" + name.encode() + b"\n")
        self.memoize(obj)

    def _save_py2_string(self, obj):
        if not self.py2_strings:
            return (pickle._Pickler.save_str if isinstance(obj, str)
                    else pickle._Pickler.save_bytes)(self, obj)
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = _save_py2_string
    dispatch[bytes] = _save_py2_string


def write_pickle(path: str | Path, obj, *, protocol: int, py2_strings: bool = False) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        LegacyPickler(f, protocol, py2_strings).dump(obj)
    return path


def render_boxes(K: np.ndarray, T_cam_bed: np.ndarray, boxes, shape) -> np.ndarray:
    """Depth (mm along the optical axis, float64, 0 = no hit) of boxes
    ``((x0, x1), (y0, y1), (z0, z1))`` in the bed frame, by exact ray casting (slab method),
    each box only over the pixels its projected corners span."""
    K = np.asarray(K, np.float64)
    T = np.asarray(T_cam_bed, np.float64)
    rot, t = T[:3, :3], T[:3, 3]
    origin = -rot.T @ t
    best = np.full(shape, np.inf)
    for box in boxes:
        lo, hi = np.array([b[0] for b in box], float), np.array([b[1] for b in box], float)
        corners = np.stack(np.meshgrid(*zip(lo, hi), indexing="ij"), -1).reshape(-1, 3)
        cam = corners @ rot.T + t
        if (cam[:, 2] > 1e-6).all():
            uv = (cam @ K.T)[:, :2] / cam[:, 2:3]
            u0, v0 = np.maximum(np.floor(uv.min(0)).astype(int) - 1, 0)
            u1, v1 = np.minimum(np.ceil(uv.max(0)).astype(int) + 2, (shape[1], shape[0]))
        else:
            u0, v0, u1, v1 = 0, 0, shape[1], shape[0]
        if u1 <= u0 or v1 <= v0:
            continue
        v, u = np.mgrid[v0:v1, u0:u1].astype(np.float64)
        dirs = (np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(K).T) @ rot
        with np.errstate(divide="ignore", invalid="ignore"):
            t0, t1 = (lo - origin) / dirs, (hi - origin) / dirs
        near = np.nanmax(np.minimum(t0, t1), -1)
        far = np.nanmin(np.maximum(t0, t1), -1)
        block = best[v0:v1, u0:u1]
        best[v0:v1, u0:u1] = np.where((far >= near) & (near > 0) & (near < block), near, block)
    return np.where(np.isfinite(best), best * 1000.0, 0.0)


def body_boxes(joints: np.ndarray, cover: int) -> list:
    """Boxes around the bones of ``joints`` [24,3] (label frame) and, for cover 1/2, a
    sheet/blanket box over all but the head."""
    boxes = []
    for child, parent in enumerate(SMPL_PARENTS):
        if parent < 0:
            continue
        a, b = joints[child], joints[parent]
        r = 0.09 if child in (3, 6, 9) else 0.05
        lo, hi = np.minimum(a, b) - r, np.maximum(a, b) + r
        boxes.append(((lo[0], hi[0]), (lo[1], hi[1]), (0.0, max(hi[2], 0.02))))
    if cover:
        torso = np.delete(joints, [12, 15], axis=0)
        pad = 0.10 if cover == 1 else 0.16
        # A sheet lies on the body: an arm held straight up (the template's T-pose rolled on
        # its side) pokes through it instead of lifting it a metre over the bed.
        top = min(max(b[2][1] for b in boxes), COVER_TOP_MAX_M) + (0.01 if cover == 1 else 0.04)
        lo, hi = torso.min(0) - pad, torso.max(0) + pad
        boxes.append(((lo[0], hi[0]), (lo[1], hi[1]), (0.0, top)))
    return boxes


def _rot(axis: str, angle: float) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler(axis, angle).as_matrix()


def random_bodies(n: int, rng: np.random.Generator, postures, body_model=None, female=None):
    """``n`` made-up SMPL bodies in the label frame: dict of root [n,3], betas [n,10],
    body_pose [n,69], transl [n,3], joints [n,24,3] m, vertices [n,V,3] (with a model)."""
    from scipy.spatial.transform import Rotation

    root, transl = np.zeros((n, 3)), np.zeros((n, 3))
    for i, posture in enumerate(postures):
        turn = {"supine": np.eye(3), "left": _rot("y", np.pi / 2),
                "right": _rot("y", -np.pi / 2)}[posture]
        rot = _rot("z", rng.normal(scale=0.1)) @ turn
        root[i] = Rotation.from_matrix(rot).as_rotvec()
        transl[i] = [bf.BED_CENTRE_LABEL[0] + rng.normal(scale=0.04),
                     bf.BED_CENTRE_LABEL[1] + 0.05 + rng.normal(scale=0.04),
                     0.10 if posture == "supine" else 0.16]
    betas = rng.normal(scale=0.5, size=(n, 10))
    body_pose = rng.normal(scale=0.08, size=(n, 69))
    out = {"root": root, "betas": betas, "body_pose": body_pose, "transl": transl}
    if body_model is None:
        rest = FIXTURE_REST_JOINTS - FIXTURE_REST_JOINTS[0]
        rots = Rotation.from_rotvec(root).as_matrix()
        out["joints"] = np.einsum("nij,kj->nki", rots, rest) + transl[:, None]
        return out
    import torch

    params = labels.label_to_params(labels.build_label(
        joints_mm=np.zeros((n, 72)), betas=betas, root=root, body_pose=body_pose,
        transl=transl, female=np.asarray(female, bool), mass=0.0, height_m=0.0))
    gender = torch.from_numpy(labels.gender_onehot(np.asarray(female, bool))).float()
    with torch.no_grad():
        verts, joints = body_model(torch.from_numpy(params).float(),
                                   gender if body_model.takes_gender else None)
    out["joints"], out["vertices"] = joints.double().numpy(), verts.double().numpy()
    return out


@dataclass
class SLPFixture:
    """What :func:`write_slp_fixture` wrote (the truth a reader must give back)."""

    root: Path
    subjects: list[int]
    poses: list[int]
    covers: tuple[str, ...]
    labels: dict = field(default_factory=dict)  # (s, p) -> label [162]
    raw: dict = field(default_factory=dict)  # (setting, s, cover, p) -> uint16 (512, 424)
    cleaned: dict = field(default_factory=dict)  # (s, cover, p) -> float32 (128, 54)
    homography: dict = field(default_factory=dict)  # (setting, s) -> align_PTr_depth
    T_cam_bed: dict = field(default_factory=dict)  # (setting, s) -> [4,4]
    vertices: dict = field(default_factory=dict)  # (s, p) -> label-frame [V,3] (with a model)


def _sparse_npy(path: Path, dtype, shape) -> np.ndarray:
    """A full-size .npy opened for writing; unwritten regions stay holes on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)


def write_slp_fixture(root: str | Path, subjects=(1, 2, 81), poses=(1, 16, 31), *,
                      covers=COVERS, simlab_subjects=(), body_model=None, seed: int = 0,
                      onlyhuman: bool = False) -> SLPFixture:
    """Write a miniature SLP + cleaned arrays + BodyMAP fits (+ GT vertices with a model)
    under ``root`` (the ``<data>`` folder). Poses 1-15 are supine, 16-30 left, 31-45 right."""
    from disrt_core.geometry.camera import overhead_camera_pose
    from disrt_core.geometry.slp import slp_raw_to_network

    rng = np.random.default_rng(seed)
    root = Path(root)
    fx = SLPFixture(root, list(subjects), list(poses), tuple(covers))
    for setting, ids in (("danaLab", subjects), ("simLab", simlab_subjects)):
        if setting == "simLab" and not ids:
            continue
        n_subj, bed_mm = slp_data.SETTINGS[setting]
        phys = np.column_stack([rng.integers(0, 2, n_subj), rng.uniform(150, 195, n_subj),
                                rng.uniform(45, 110, n_subj), rng.uniform(70, 120, (n_subj, 7))])
        path = slp_data.physique_path(root, setting)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, phys)  # file order: gender, height cm, weight kg, ...
        for s in range(1, n_subj + 1):  # every subject's alignment, as DiSRT loads them all
            T = overhead_camera_pose(bed_mm / 1000.0, bf.BED_CENTRE_LABEL,
                                     yaw_rad=float(rng.normal(scale=0.02))).double().numpy()
            H = slp_homography(T, KINECT_DEPTH_K)
            H = H / H[2, 2]
            sdir = slp_data.subject_dir(root, setting, s)
            sdir.mkdir(parents=True, exist_ok=True)
            for mod, (w, h) in {"depth": (424, 512), "IR": (120, 160), "RGB": (576, 1024)}.items():
                scale = np.diag([424 / w, 512 / h, 1.0])  # modality pixel -> depth pixel
                mat = H @ scale
                np.save(sdir / f"align_PTr_{mod}.npy", mat / mat[2, 2])
            fx.homography[(setting, s)], fx.T_cam_bed[(setting, s)] = H, T
        if setting == "simLab":
            for s in ids:
                female = phys[s - 1, 0] == 0
                bodies = random_bodies(len(poses), rng, [_posture(p) for p in poses],
                                       body_model, [female] * len(poses))
                for k, p in enumerate(poses):
                    for ci, cover in enumerate(covers):
                        raw = _render_raw(fx.T_cam_bed[(setting, s)], bodies["joints"][k], ci,
                                          bed_mm, rng)
                        _save(slp_data.raw_depth_path(root, setting, s, cover, p), raw)
                        fx.raw[(setting, s, cover, p)] = raw
            continue
        cleaned_dir = root / slp_data.CLEANED_DIR
        cleaned = {c: _sparse_npy(slp_data.cleaned_depth_path(root, c), np.float32,
                                  (102, 45, 128, 54)) for c in COVERS}
        t_cam = np.zeros((102, 45, 3))
        t_cam[:, :, 2] = 2.101 + rng.normal(scale=0.002, size=(102, 45))
        np.save(slp_data.slp_t_cam_path(root), t_cam)
        np.save(cleaned_dir / "O_T_slp_0to102.npy", np.tile(np.array(bf.O_T_SLP), (102, 45, 1)))
        if onlyhuman:
            _sparse_npy(cleaned_dir / "depth_onlyhuman_0to102.npy", np.uint16,
                        (102, 45, 128, 54)).flush()
        for s in subjects:
            female = phys[s - 1, 0] == 0
            bodies = random_bodies(len(poses), rng, [_posture(p) for p in poses], body_model,
                                   [female] * len(poses))
            for k, p in enumerate(poses):
                label = labels.build_label(
                    joints_mm=1000.0 * bodies["joints"][k].reshape(72), betas=bodies["betas"][k],
                    root=bodies["root"][k], body_pose=bodies["body_pose"][k],
                    transl=bodies["transl"][k], female=female, mass=phys[s - 1, 2],
                    height_m=phys[s - 1, 1] / 100.0)
                fx.labels[(s, p)] = label
                _write_fit(root, s, p, label, t_cam[s - 1, p - 1], rng)
                for ci, cover in enumerate(covers):
                    raw = _render_raw(fx.T_cam_bed[(setting, s)], bodies["joints"][k], ci,
                                      bed_mm, rng)
                    _save(slp_data.raw_depth_path(root, setting, s, cover, p), raw)
                    fx.raw[(setting, s, cover, p)] = raw
                    net = slp_raw_to_network(raw, fx.homography[(setting, s)], integer=True,
                                             clean=True)
                    cleaned[cover][s - 1, p - 1] = net
                    fx.cleaned[(s, cover, p)] = net
                if "vertices" in bodies:
                    fx.vertices[(s, p)] = bodies["vertices"][k]
                    _write_slp_gt(root, s, p, covers, bodies["vertices"][k], label)
        for array in cleaned.values():
            array.flush()
    return fx


def _posture(pose: int) -> str:
    return ("supine", "left", "right")[(pose - 1) // 15]


def _render_raw(T, joints, cover, bed_mm, rng) -> np.ndarray:
    bed = ((-1.0, 1.7), (-0.6, 2.5), (-0.5, 0.0))
    depth = render_boxes(KINECT_DEPTH_K, T, [bed, *body_boxes(joints, cover)],
                         SLP_RAW_DEPTH_SHAPE)
    depth = depth + rng.normal(scale=1.5, size=depth.shape) * (depth > 0)
    return np.round(depth).clip(0, 65535).astype(np.uint16)


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array)


def _write_fit(root: Path, s: int, p: int, label: np.ndarray, slp_t_cam: np.ndarray, rng):
    """A BodyMAP fit whose label (SPEC §7.4, with the .npy ``slp_T_cam``) is ``label``."""
    from scipy.spatial.transform import Rotation

    root_label = label[labels.ROOT]
    global_orient = (Rotation.from_rotvec([np.pi, 0, 0])
                     * Rotation.from_rotvec(root_label)).as_rotvec()  # Rx(π) is an involution
    o_t_slp = np.array(bf.O_T_SLP)
    bo_t_br = np.array([0.0012, -0.2231, 0.0284])  # SMPL's rest pelvis joint, about
    flipped = label[labels.TRANSL] * np.array([1.0, -1.0, -1.0])
    cam_t_bo = flipped - o_t_slp - slp_t_cam - bo_t_br
    f4 = np.float32
    fit = {
        "gender": "female" if label[157] == 1 else "male",
        "gt_joints": rng.uniform(0, 400, (25, 2)).astype(f4),
        "betas": label[labels.BETAS].astype(f4), "body_pose": label[labels.BODY_POSE].astype(f4),
        "transl": cam_t_bo.astype(f4), "global_orient": global_orient.astype(f4),
        "camera_rotation": np.eye(3, dtype=f4), "camera_translation": np.zeros(3, f4),
        "camera_focal_length_x": np.array(367.8, f4), "camera_focal_length_y": np.array(367.8, f4),
        "camera_center": np.array([38.207363, 179.873], f4),
        "O_T_slp": o_t_slp, "slp_T_cam": slp_t_cam + 0.5,  # stale: the .npy row wins
        "cam_T_Bo": cam_t_bo, "Bo_T_Br": bo_t_br,
        "markers_xyz_m": label[labels.JOINTS_MM].reshape(24, 3) / 1000.0,
    }
    assert tuple(fit) == bodymap.FIT_KEYS
    write_pickle(bodymap.fit_path(root, s, p), fit, protocol=3)


def _write_slp_gt(root: Path, s: int, p: int, covers, vertices: np.ndarray, label) -> None:
    for cover in covers:
        base = slp_data.gt_vertices_path(root, s, cover, p)
        _save(base, labels.label_to_vertex_frame(vertices).astype(np.float32))
        stem = base.name.replace("_gt_vertices.npy", "")
        np.save(base.with_name(f"{stem}_gt_pmap.npy"), np.zeros(len(vertices), np.float32))
        np.save(base.with_name(f"{stem}_gt_jtr.npy"), label[labels.JOINTS_MM].reshape(24, 3))


@dataclass
class BodyPressureFixture:
    """What :func:`write_bodypressure_fixture` wrote."""

    root: Path
    stems: list[str]
    labels: dict = field(default_factory=dict)  # stem -> [N, 162]
    depth: dict = field(default_factory=dict)  # stem -> {key: [N,128,54] uint16}
    nan: dict = field(default_factory=dict)  # stem -> bool [N]
    vertices: dict = field(default_factory=dict)  # stem -> label-frame [N, V, 3]


def write_bodypressure_fixture(root: str | Path,
                               files=(("lay", "f", "1to40", 4), ("lside", "m", "41to70", 3)),
                               *, nan_samples=((0, 2),), body_model=None,
                               seed: int = 0) -> BodyPressureFixture:
    """Write miniature BodyPressureSD files: one ``(posture, gender, range, N)`` per stem;
    ``nan_samples`` lists (file index, sample index) whose pressure image holds a NaN."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    fx = BodyPressureFixture(root, [])
    posture_of = {"lay": "supine", "lside": "left", "rside": "right"}
    for index, (posture, gender, span, n) in enumerate(files):
        stem = f"train_slp_{posture}_{gender}_{span}_{n}"
        fx.stems.append(stem)
        bodies = random_bodies(n, rng, [posture_of[posture]] * n, body_model, [gender == "f"] * n)
        a, b = labels.BPSD_MASS_NORMALIZER[gender]
        mass, height = rng.uniform(45, 110, n), rng.uniform(1.5, 1.95, n)
        label = labels.build_label(
            joints_mm=1000.0 * bodies["joints"].reshape(n, 72), betas=bodies["betas"],
            root=bodies["root"], body_pose=bodies["body_pose"], transl=bodies["transl"],
            female=np.full(n, gender == "f"), mass=mass, height_m=height)
        fx.labels[stem] = label
        markers = ((bodies["joints"] * 1000.0 - labels.BPSD_JOINT_ADJUST_MM) / 1000.0
                   + labels.BPSD_MARKER_SHIFT_M).reshape(n, 72)
        images = [rng.uniform(0, 50, 1728).astype(np.float32) for _ in range(n)]
        nan = np.zeros(n, bool)
        for file_index, sample in nan_samples:
            if file_index == index:
                images[sample][100] = np.nan
                nan[sample] = True
        fx.nan[stem] = nan
        synth = {
            "images": images,
            "markers_xyz_m": list(markers),
            "body_shape": list(bodies["betas"]),
            "joint_angles": list(np.concatenate([bodies["root"], bodies["body_pose"]], 1)),
            "root_xyz_shift": list(bodies["transl"] - labels.BPSD_TRANSL_ADJUST_M),
            "body_volume": [float(m * b / a) for m in mass],
            "body_height": [float(h) for h in height],
            "bed_angle_deg": [0.0] * n,  # other keys exist in the real files
        }
        write_pickle(root / "synth" / f"{stem}.p", synth, protocol=2, py2_strings=True)
        depth = {"overhead_depthcam": [], "overhead_depthcam_noblanket": [],
                 "overhead_depthcam_onlyhuman": []}
        for i in range(n):
            bed_mm = 2300.0 + rng.normal(scale=5.0)
            for key, cover in (("overhead_depthcam", 2), ("overhead_depthcam_noblanket", 0),
                               ("overhead_depthcam_onlyhuman", 0)):
                height_map = _net_heights(body_boxes(bodies["joints"][i], cover))
                d = bed_mm - 1000.0 * height_map + rng.normal(scale=1.0, size=height_map.shape)
                depth[key].append(np.round(d).astype(np.uint16))
        fx.depth[stem] = {k: np.stack(v) for k, v in depth.items()}
        write_pickle(root / "synth_depth" / f"{stem}_depthims.p", depth, protocol=2,
                     py2_strings=True)
        if "vertices" in bodies:
            fx.vertices[stem] = bodies["vertices"]
            _save(root / "GT_BP_data" / "bp2" / f"{stem}_gt_vertices.npy",
                  labels.label_to_vertex_frame(bodies["vertices"][~nan]).astype(np.float32))
            np.save(root / "GT_BP_data" / "bp2" / f"{stem}_gt_pmaps.npy",
                    np.zeros(((~nan).sum(), bodies["vertices"].shape[1]), np.float32))
    return fx


def _net_heights(boxes) -> np.ndarray:
    """Height above the bed (m) of the highest box over each network-grid pixel."""
    rows, cols = np.mgrid[0:bf.NET_SHAPE[0], 0:bf.NET_SHAPE[1]].astype(np.float64)
    x, y = bf.net_to_label(rows, cols)
    heights = np.zeros(bf.NET_SHAPE)
    for (x0, x1), (y0, y1), (_, z1) in boxes:
        inside = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
        heights = np.where(inside, np.maximum(heights, z1), heights)
    return heights
