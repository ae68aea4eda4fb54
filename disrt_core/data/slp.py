"""SLP (Simultaneously-collected multimodal Lying Pose) as a dataset source (SPEC §7.1-7.4).

Expected layout under one data folder (``<data>``, BodyPressure's ``data_BP``)::

    <data>/SLP/danaLab/physiqueData.npy, 00001/ ... 00102/    (SLP download, home setting)
    <data>/SLP/simLab/physiqueData.npy, 00001/ ... 00007/     (SLP download, hospital setting)
        {s:05d}/depthRaw/{uncover,cover1,cover2}/{p:06d}.npy  uint16 (512, 424) mm
        {s:05d}/align_PTr_{depth,IR,RGB}.npy                  float64 (3, 3)
    <data>/slp_real_cleaned/depth_{cover}_cleaned_0to102.npy  float32 (102, 45, 128, 54)
    <data>/slp_real_cleaned/slp_T_cam_0to102.npy              float64 (102, 45, 3)
    <data>/SLP_SMPL_fits/fits/p{s:03d}/proc_{p:02d}.pkl       BodyMAP's SMPL fits
    <data>/GT_BP_data/slp2/{s:05d}/uncover/{p:06d}_gt_vertices.npy   (6890, 3), optional

``depth="cleaned"`` (DiSRT's input, danaLab only) reads BodyPressure's cleaned arrays
(memory-mapped); ``depth="raw"`` runs :mod:`disrt_core.geometry.slp` on ``depthRaw`` with
the subject's ``align_PTr_depth`` (simLab: with its 4 cm mat adjustment; ``clean=True``
adds BodyPressure's clean-up). Depth is normalised with the *real* branch of SPEC §7.6
(bed 2101 mm danaLab, 2264 mm simLab; row 127 kept). Labels (danaLab only): the BodyMAP
fit + ``slp_T_cam_0to102.npy`` + physique (SPEC §7.4), the same for every cover; posture
from the label's root orientation. ``vertices=True`` adds ``vertices_gt`` (label frame)
from the ``uncover`` GT file, which DiSRT uses for every cover.

One unit = one subject: ``len(poses) × len(covers)`` samples, pose-major (for each pose:
each cover). Keys: ``slp/danaLab/00081/cover1/000012``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from disrt_core.data import bodymap, labels
from disrt_core.data.source import (
    COVERS,
    UNKNOWN_POSTURE,
    DataError,
    Source,
    check_array,
    check_body_model,
    make_sample,
    npy_problem,
    read_npy,
)
from disrt_core.geometry.bedframe import SLP_DANALAB_BED_MM, SLP_SIMLAB_BED_MM, normalize_depth
from disrt_core.geometry.slp import SLP_RAW_DEPTH_SHAPE, slp_raw_to_network
from disrt_core.posture import posture_from_axis_angle

SETTINGS = {"danaLab": (102, SLP_DANALAB_BED_MM), "simLab": (7, SLP_SIMLAB_BED_MM)}
CLEANED_DIR = "slp_real_cleaned"
N_POSES = 45
SLP_HINT = ("download SLP (ostadabbas/SLP-Dataset-and-Code, request form) and unpack it as "
            "<data>/SLP/{danaLab,simLab}")
GT_HINT = "BodyMAP's GT_BP_data (github.com/RCHI-Lab/BodyMAP)"
CLEANED_HINT = ("download BodyPressure's cleaned SLP depth (Healthcare-Robotics/BodyPressure, "
                "data_BP/download_cleaned_SLP_data.sh) into <data>/slp_real_cleaned/")


def subject_dir(root: str | Path, setting: str, subject: int) -> Path:
    return Path(root) / "SLP" / setting / f"{subject:05d}"


def raw_depth_path(root, setting: str, subject: int, cover: str, pose: int) -> Path:
    return subject_dir(root, setting, subject) / "depthRaw" / cover / f"{pose:06d}.npy"


def align_path(root, setting: str, subject: int, modality: str = "depth") -> Path:
    return subject_dir(root, setting, subject) / f"align_PTr_{modality}.npy"


def physique_path(root, setting: str) -> Path:
    return Path(root) / "SLP" / setting / "physiqueData.npy"


def cleaned_depth_path(root, cover: str) -> Path:
    return Path(root) / CLEANED_DIR / f"depth_{cover}_cleaned_0to102.npy"


def slp_t_cam_path(root) -> Path:
    return Path(root) / CLEANED_DIR / "slp_T_cam_0to102.npy"


def gt_vertices_path(root, subject: int, cover: str, pose: int) -> Path:
    return Path(root) / "GT_BP_data" / "slp2" / f"{subject:05d}" / cover / \
        f"{pose:06d}_gt_vertices.npy"


def read_physique(path: Path, n_subjects: int) -> np.ndarray:
    """physiqueData.npy with columns 0 and 2 swapped, as every reader does (SPEC §7.2):
    [weight kg, height cm, gender (0 F, 1 M), bust, waist, hip, ...]."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: SLP physique file not found; {SLP_HINT}")
    phys = check_array(read_npy(path, "the SLP physique table", hint=SLP_HINT), "physiqueData",
                       (None, None), str(path), finite=False)
    if phys.shape[0] < n_subjects or phys.shape[1] < 3:
        raise DataError(f"{path}: shape {phys.shape}, expected ({n_subjects}, 10)")
    phys = np.array(phys, np.float64)
    phys[:, [0, 2]] = phys[:, [2, 0]]
    return phys


def _load_npy(path: Path, shape: tuple, hint: str, what: str, mmap: bool = True) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; {hint}")
    array = read_npy(path, what, mmap=mmap, hint=hint)
    if array.shape != shape:
        raise DataError(f"{path}: shape {array.shape}, expected {shape}")
    return check_array(array, what, shape, str(path), finite=False)


class SLPDataset(Source):
    """SLP danaLab (labelled) or simLab (unlabelled) frames; see the module docstring.

    root: the ``<data>`` folder. subjects: 1-based ids (e.g. ``splits.split_subjects(...)``).
    covers: subset of ``("uncover", "cover1", "cover2")``. poses: 1-based pose ids.
    depth: ``"cleaned"`` or ``"raw"``. labels: read the SMPL labels (danaLab only).
    vertices: add ``vertices_gt``. body_model: refused unless SMPL (the labels are SMPL's).
    """

    name = "slp"
    model_id = "smpl"
    param_dim = 88
    random_access = True  # memory maps and per-frame files: any sample is cheap to reach

    def __init__(self, root: str | Path, subjects: Sequence[int], *, setting: str = "danaLab",
                 covers: Sequence[str] = COVERS, poses: Sequence[int] = range(1, N_POSES + 1),
                 depth: str = "cleaned", labels: bool = True, vertices: bool = False,
                 clean: bool = False, integer: bool = False, body_model=None) -> None:
        self.root = Path(root)
        if setting not in SETTINGS:
            raise ValueError(f"setting must be one of {list(SETTINGS)}, got {setting!r}")
        n_subjects, self.bed_mm = SETTINGS[setting]
        self.setting, self.depth_mode = setting, depth
        self.subjects, self.covers, self.poses = list(subjects), tuple(covers), list(poses)
        bad = [c for c in self.covers if c not in COVERS]
        if bad or not self.covers:
            raise ValueError(f"covers must be a non-empty subset of {COVERS}, got {covers}")
        if not self.subjects or any(not 1 <= s <= n_subjects for s in self.subjects):
            raise ValueError(f"{setting} subjects are 1..{n_subjects}, got {self.subjects}")
        if not self.poses or any(not 1 <= p <= N_POSES for p in self.poses):
            raise ValueError(f"poses are 1..{N_POSES}, got {self.poses}")
        if depth not in ("cleaned", "raw"):
            raise ValueError(f"depth must be 'cleaned' or 'raw', got {depth!r}")
        if setting == "simLab" and (depth == "cleaned" or labels or vertices):
            raise ValueError("simLab has only raw depth and no SMPL labels: use depth='raw', "
                             "labels=False, vertices=False")
        if vertices and not labels:
            raise ValueError("vertices=True needs labels=True")
        self.labels, self.vertices, self.clean, self.integer = labels, vertices, clean, integer
        if not (self.root / "SLP" / setting).is_dir():
            raise FileNotFoundError(f"{self.root / 'SLP' / setting}: SLP folder not found; "
                                    f"{SLP_HINT}")
        self.physique = read_physique(physique_path(self.root, setting), n_subjects)
        if depth == "cleaned":
            for cover in self.covers:  # fail now, not in a worker
                _load_npy(cleaned_depth_path(self.root, cover), (102, N_POSES, 128, 54),
                          CLEANED_HINT, "cleaned depth")
        else:
            missing = [s for s in self.subjects if not subject_dir(root, setting, s).is_dir()]
            if missing:
                raise FileNotFoundError(f"{self.root / 'SLP' / setting}: subject folders "
                                        f"{missing} not found; {SLP_HINT}")
        if labels:
            _load_npy(slp_t_cam_path(self.root), (102, N_POSES, 3), CLEANED_HINT,
                      "slp_T_cam translations")
            if not (self.root / bodymap.FITS_DIR).is_dir():
                raise FileNotFoundError(f"{self.root / bodymap.FITS_DIR}: not found; "
                                        f"{bodymap.DOWNLOAD_HINT}")
            check_body_model(body_model, model_id="smpl", param_dim=88, what="SLP")

    def unit_sizes(self) -> list[int]:
        return [len(self.poses) * len(self.covers)] * len(self.subjects)

    def check_unit(self, index: int) -> list[str]:
        """Missing or unreadable per-subject files: raw frames and the homography (raw
        depth), fits (labels), GT vertices; the shared arrays the constructor checked."""
        subject, problems = self.subjects[index], []
        if self.depth_mode == "raw":
            problems.append(npy_problem(align_path(self.root, self.setting, subject),
                                        "homography (align_PTr_depth)", SLP_HINT))
            problems += [npy_problem(raw_depth_path(self.root, self.setting, subject, cover,
                                                    pose), "raw depth frame", SLP_HINT)
                         for pose in self.poses for cover in self.covers]
        if self.labels:
            problems += [bodymap.fit_problem(bodymap.fit_path(self.root, subject, pose))
                         for pose in self.poses]
        if self.vertices:
            problems += [npy_problem(gt_vertices_path(self.root, subject, "uncover", pose),
                                     "GT vertices", GT_HINT) for pose in self.poses]
        return [p for p in problems if p]

    def load_unit(self, index: int) -> dict[str, Any]:
        """What one subject's samples share (arrays are memory-mapped, read per sample)."""
        subject = self.subjects[index]
        unit: dict[str, Any] = {"subject": subject, "physique": self.physique[subject - 1]}
        if self.depth_mode == "cleaned":
            unit["cleaned"] = self._maps()["cleaned"]
        else:
            path = align_path(self.root, self.setting, subject)
            unit["homography"] = check_array(
                read_npy(path, "homography (align_PTr_depth)", hint=SLP_HINT),
                "align_PTr_depth", (3, 3), str(path))
        if self.labels:
            unit["slp_T_cam"] = self._maps()["slp_T_cam"]
        return unit

    def _maps(self) -> dict[str, Any]:
        """The shared arrays, memory-mapped once per process."""
        maps = getattr(self, "_cache_maps", None)
        if maps is None:
            maps = {}
            if self.depth_mode == "cleaned":
                maps["cleaned"] = {c: read_npy(cleaned_depth_path(self.root, c),
                                               "cleaned depth", mmap=True, hint=CLEANED_HINT)
                                   for c in self.covers}
            if self.labels:
                maps["slp_T_cam"] = read_npy(slp_t_cam_path(self.root), "slp_T_cam "
                                             "translations", mmap=True, hint=CLEANED_HINT)
            self._cache_maps = maps
        return maps

    def _depth_mm(self, unit: dict, cover: str, pose: int) -> np.ndarray:
        subject = unit["subject"]
        if self.depth_mode == "cleaned":
            depth = np.asarray(unit["cleaned"][cover][subject - 1, pose - 1], np.float32)
            where = f"{cleaned_depth_path(self.root, cover)}[{subject - 1}, {pose - 1}]"
            return check_array(depth, "depth", (128, 54), where)
        path = raw_depth_path(self.root, self.setting, subject, cover, pose)
        raw = check_array(read_npy(path, "raw depth frame", hint=SLP_HINT), "depthRaw",
                          SLP_RAW_DEPTH_SHAPE, str(path), dtype=np.uint16)
        return slp_raw_to_network(raw, unit["homography"], simlab=self.setting == "simLab",
                                  clean=self.clean, integer=self.integer)

    def label(self, unit: dict, pose: int) -> np.ndarray:
        """Label [162] of (subject, pose) (SPEC §7.4); kept in the unit for the other covers."""
        cached = unit.setdefault("labels", {})
        if pose not in cached:
            cached[pose] = self._label(unit, pose)
        return cached[pose]

    def _label(self, unit: dict, pose: int) -> np.ndarray:
        subject = unit["subject"]
        fit = bodymap.load_fit(bodymap.fit_path(self.root, subject, pose))
        weight, height, gender = unit["physique"][:3]
        if gender not in (0.0, 1.0):
            raise DataError(f"{physique_path(self.root, self.setting)}: subject {subject} has "
                            f"gender {gender}, expected 0 (female) or 1 (male)")
        t_cam = np.asarray(unit["slp_T_cam"][subject - 1, pose - 1], np.float64)
        return labels.slp_label(fit, t_cam, female=gender == 0.0, mass_kg=weight,
                                height_cm=height)

    def sample_from(self, unit: dict, index: int) -> dict[str, Any]:
        pose = self.poses[index // len(self.covers)]
        cover = self.covers[index % len(self.covers)]
        subject = unit["subject"]
        key = f"slp/{self.setting}/{subject:05d}/{cover}/{pose:06d}"
        depth = normalize_depth(self._depth_mm(unit, cover, pose), np.float32(self.bed_mm))
        extra = {}
        if self.labels:
            label = self.label(unit, pose)
            params = labels.label_to_params(label)
            joints = labels.label_joints_m(label)
            gender = label[labels.GENDER]
            posture = int(posture_from_axis_angle(torch.from_numpy(label[labels.ROOT])[None])[0])
            extra["label"] = label.astype(np.float32)
            if self.vertices:
                path = gt_vertices_path(self.root, subject, "uncover", pose)
                verts = check_array(read_npy(path, "GT vertices", hint=GT_HINT), "gt_vertices",
                                    (None, 3), str(path))
                extra["vertices_gt"] = labels.vertex_frame_to_label(verts)
        else:
            gender_value = unit["physique"][2]
            gender = labels.gender_onehot(gender_value == 0.0)
            params, joints, posture = None, None, UNKNOWN_POSTURE
        return make_sample(depth=depth[None], params=params, joints=joints,
                           cover=COVERS.index(cover), gender=gender, posture=posture,
                           source=self.name, key=key, **extra)
