"""Anny backend: the open default body model (PyPI ``anny``, Apache-2.0 code, CC0 assets).

Used whenever the SMPL files are absent. Metrics computed with it are **not comparable**
with SMPL papers (different mesh, 13,718 vertices; different skeleton).

How Anny is made to look like SMPL here:

* **Skeleton.** Anny's 104-bone rig is mapped onto SMPL's 24 joints (``JOINT_BONES``): each
  SMPL joint is the head of one Anny bone. The rotation of SMPL joint *j* drives the bone(s)
  in ``DRIVEN_BONES[j]``; every other bone (twist bones, spine04/05, fingers, toes, face)
  stays at its reference. Anny's ``local-ref`` pose parameterisation expresses each bone's
  rotation in world-aligned axes about its head, composed down the chain, which is SMPL's
  convention (rest frames aligned with the world).
* **Frame.** Anny is z-up, facing -y, x to the body's left; SMPL's canonical frame is y-up,
  facing +z, x to the left: ``v_smpl = C v_anny`` with ``C = [[1,0,0],[0,0,1],[0,-1,0]]``,
  and a rotation ``R`` in SMPL axes is ``Cᵀ R C`` in Anny's.
* **Rest pose.** Zero pose is SMPL's T-pose, as for SMPL, so that a parameter vector means
  the same pose for both backends and SMPL's joint bounds (SPEC §1.3) apply as written.
  Anny's own reference pose is an A-pose (upper arms ~49° below the horizontal, forearms bent
  ~42° forward); ``rest_offsets`` holds, for each arm segment (shoulder, elbow, wrist; hands
  copy wrists), the smallest rotation ``G_j`` taking SMPL's T-pose direction (±x) onto
  Anny's rest direction of that segment, measured on the average adult. A pose rotation
  ``R_j`` (T-pose zero) is given to Anny as ``G_parent · R_j · G_jᵀ``, so each arm segment
  points where the T-pose convention says; its twist about its own axis follows Anny's
  rest. For other shapes the rest directions differ by a degree or two from the average's.
* **Shape.** The shape slice holds Anny's six default phenotypes (gender, age, muscle,
  weight, height, proportions), centred and scaled so that 0 is the average adult and ±3
  spans the adult range, like SMPL betas: ``phenotype = centre + shape · half_range / 3``,
  clipped to Anny's [0, 1]. (Anny's own 0.5 is not an adult for age or height: age 0.5 is
  a 1.63 m teenager and all-zero phenotypes make a 0.44 m infant.) Anny's gender runs from
  0 = male to 1 = female. ``param_dim`` = 6 + 78 = 84.

Anny's first build parses MakeHuman assets (about 40-50 s here); Anny caches the result
as safetensors, which we point at ``<disrt cache>/anny`` unless ``ANNY_CACHE_DIR`` is set.
"""

from __future__ import annotations

import contextlib
import os
import warnings

import roma
import torch
from torch import Tensor

from disrt_core.body.base import BodyModel
from disrt_core.body.layout import ParamLayout
from disrt_core.body.rotations import roma_constants_outside_inference, rotation_between
from disrt_core.body.skeleton import SMPL_JOINT_NAMES, SMPL_PARENTS
from disrt_core.cache import cache_dir
from disrt_core.threads import cpu_threads

PHENOTYPES = ("gender", "age", "muscle", "weight", "height", "proportions")
#: Phenotype of shape 0: androgynous, about 30 years, average muscle and weight, 1.73 m.
PHENOTYPE_CENTRE = (0.5, 0.8, 0.5, 0.5, 0.42, 0.5)
#: Phenotype change at shape ±3 (age stays adult: 0.6..1.0, i.e. about 18 to 90 years).
PHENOTYPE_HALF_RANGE = (0.5, 0.2, 0.5, 0.5, 0.42, 0.5)

#: SMPL joint -> the Anny bone whose head is that joint.
JOINT_BONES: dict[str, str] = {
    "pelvis": "root", "left_hip": "upperleg01.L", "right_hip": "upperleg01.R",
    "spine1": "spine03", "left_knee": "lowerleg01.L", "right_knee": "lowerleg01.R",
    "spine2": "spine02", "left_ankle": "foot.L", "right_ankle": "foot.R",
    "spine3": "spine01", "left_foot": "toe3-1.L", "right_foot": "toe3-1.R",
    "neck": "neck01", "left_collar": "clavicle.L", "right_collar": "clavicle.R",
    "head": "head", "left_shoulder": "upperarm01.L", "right_shoulder": "upperarm01.R",
    "left_elbow": "lowerarm01.L", "right_elbow": "lowerarm01.R",
    "left_wrist": "wrist.L", "right_wrist": "wrist.R",
    "left_hand": "finger3-1.L", "right_hand": "finger3-1.R",
}  # fmt: skip

_TOES = ("toe1-1", "toe2-1", "toe3-1", "toe4-1", "toe5-1")
_HAND_ROOTS = ("finger1-1", "metacarpal1", "metacarpal2", "metacarpal3", "metacarpal4")

#: SMPL body joint -> the Anny bones its rotation drives (the pelvis' is the root orientation,
#: applied after Anny). Foot and hand rotations drive all toe / hand root bones.
DRIVEN_BONES: dict[str, tuple[str, ...]] = {
    name: (bone,) for name, bone in JOINT_BONES.items() if name != "pelvis"
}
for _side in ("L", "R"):
    _prefix = "left" if _side == "L" else "right"
    DRIVEN_BONES[f"{_prefix}_foot"] = tuple(f"{t}.{_side}" for t in _TOES)
    DRIVEN_BONES[f"{_prefix}_hand"] = tuple(f"{h}.{_side}" for h in _HAND_ROOTS)

#: Arm segments (joint -> child) whose rest direction is turned onto the T-pose's; the hands
#: (22, 23) copy their wrist's rotation.
ARM_SEGMENTS = {16: 18, 17: 19, 18: 20, 19: 21, 20: 22, 21: 23}

#: Anny axes -> SMPL canonical axes.
ANNY_TO_SMPL = ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, -1.0, 0.0))


def shape_to_phenotype(shape: Tensor, centre: Tensor | None = None,
                       half: Tensor | None = None) -> Tensor:
    """Anny phenotypes in [0, 1] (order ``PHENOTYPES``) from the centred shape vector [..., 6].

    ``centre`` / ``half``: ``PHENOTYPE_CENTRE`` / ``PHENOTYPE_HALF_RANGE`` as tensors on the
    shape's device (the body model keeps them as buffers: making them from Python floats on
    every call would copy host memory to the GPU, which a CUDA graph cannot capture)."""
    centre = shape.new_tensor(PHENOTYPE_CENTRE) if centre is None else centre
    half = shape.new_tensor(PHENOTYPE_HALF_RANGE) if half is None else half
    return (centre + shape * half / 3.0).clamp(0.0, 1.0)


def phenotype_to_shape(phenotype: Tensor) -> Tensor:
    """Inverse of :func:`shape_to_phenotype` (inside the clip range)."""
    centre = phenotype.new_tensor(PHENOTYPE_CENTRE)
    half = phenotype.new_tensor(PHENOTYPE_HALF_RANGE)
    return (phenotype - centre) * 3.0 / half


def rest_offsets(rest_joints: Tensor) -> Tensor:
    """Rotations G [24,3,3] taking SMPL's T-pose arm segments (+x for left, −x for right)
    onto the segments of ``rest_joints`` [24,3] (canonical frame); identity elsewhere."""
    g = torch.eye(3, dtype=rest_joints.dtype).repeat(24, 1, 1)
    for joint, child in ARM_SEGMENTS.items():
        d = rest_joints[child] - rest_joints[joint]
        side = 1.0 if joint % 2 == 0 else -1.0  # even arm joints are the left ones, +x
        g[joint] = rotation_between(d.new_tensor([side, 0.0, 0.0]), d / d.norm())
    g[22], g[23] = g[20], g[21]
    return g


def _factories_on(device: torch.device):
    """Anny's phenotype interpolation indexes GPU tensors with ``torch.arange`` made on the
    CPU: a copy to the GPU that waits for it each time (in a training step on an H100, sync
    debug mode counted 32 in the forward pass and 19 in the backward pass), and one that a
    CUDA graph capture cannot make at all. On a GPU, factory calls without a device make their
    tensors there (a default device mode: ~3 µs more host time for each of the forward
    pass's ~740 operations, while the GPU runs on). On the CPU, and while torch.compile
    traces the forward pass (the mode was measured eager only), nothing changes."""
    if device.type == "cuda" and not torch.compiler.is_compiling():
        return torch.device(device)
    return contextlib.nullcontext()


def model_id_for(version: str) -> str:
    """``anny-<major>.<minor>``: the mesh and rig change between minor releases."""
    major, minor = version.split(".")[:2]
    return f"anny-{major}.{minor}"


def _build_anny():
    if "ANNY_CACHE_DIR" not in os.environ:
        import anny.paths

        anny.paths.set_anny_cache_path(cache_dir("anny"))
    try:  # Anny's skinning uses NVIDIA Warp, which prints a banner at INFO level.
        import warp

        warp.config.log_level = max(warp.config.log_level, warp.LOG_WARNING)
    except (ImportError, AttributeError):
        pass
    import anny

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = anny.Anny(
            rig="anny",
            topology="anny",
            phenotypes="default",
            pose_parameterization="local-ref",
        )
    if tuple(model.phenotype_labels) != PHENOTYPES:
        raise RuntimeError(
            f"anny {anny.__version__} exposes phenotypes {model.phenotype_labels}, expected "
            f"{PHENOTYPES}; install the pinned version (see constraints.txt)"
        )
    return model.to(dtype=torch.float32), anny.__version__


class AnnyBody(BodyModel):
    """Anny posed through SMPL's 24-joint parameterisation (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.anny, version = _build_anny()
        self.model_id = model_id_for(version)
        self.param_layout = ParamLayout(shape_dim=len(PHENOTYPES))
        labels = list(self.anny.bone_labels)
        self.register_buffer("faces", self.anny.faces.to(torch.long).clone(), persistent=False)
        self.register_buffer(
            "joint_bone_index",
            torch.tensor([labels.index(JOINT_BONES[n]) for n in SMPL_JOINT_NAMES]),
            persistent=False,
        )
        driven, driver = [], []
        for joint, name in enumerate(SMPL_JOINT_NAMES[1:]):
            for bone in DRIVEN_BONES[name]:
                driven.append(labels.index(bone))
                driver.append(joint)
        self.register_buffer("driven_bone_index", torch.tensor(driven), persistent=False)
        self.register_buffer("driver_joint_index", torch.tensor(driver), persistent=False)
        self.register_buffer("anny_to_smpl", torch.tensor(ANNY_TO_SMPL), persistent=False)
        self.register_buffer("parent_index", torch.tensor(SMPL_PARENTS[1:]), persistent=False)
        self.register_buffer("phenotype_centre", torch.tensor(PHENOTYPE_CENTRE),
                             persistent=False)
        self.register_buffer("phenotype_half", torch.tensor(PHENOTYPE_HALF_RANGE),
                             persistent=False)
        self.bone_count = len(labels)
        # Measure Anny's rest arm on the average adult with identity offsets, then keep them.
        # On one thread, so that the model is bit-identical in every process (generator
        # workers run single-threaded; their shards must not depend on the worker count).
        self.register_buffer("rest_offsets", torch.eye(3).repeat(24, 1, 1), persistent=False)
        with torch.no_grad(), cpu_threads():
            _, joints = self(self.zero_params(1))
        self.rest_offsets = rest_offsets(joints[0])

    @property
    def num_vertices(self) -> int:
        return int(self.anny.template_vertices.shape[0])

    def pose_canonical(
        self, shape: Tensor, body_pose: Tensor, gender: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        batch = shape.shape[0]
        c = self.anny_to_smpl
        rot = roma.rotvec_to_rotmat(body_pose.reshape(batch, -1, 3))  # SMPL axes, T-pose zero
        g = self.rest_offsets
        rot = g[self.parent_index] @ rot @ g[1:].transpose(-1, -2)  # relative to Anny's rest
        rot = c.T @ rot @ c  # the same rotations in Anny's axes
        eye = torch.eye(4, dtype=rot.dtype, device=rot.device)
        deltas = eye.repeat(batch, self.bone_count, 1, 1)
        deltas[:, self.driven_bone_index, :3, :3] = rot[:, self.driver_joint_index]
        phenotype = shape_to_phenotype(shape, self.phenotype_centre, self.phenotype_half)
        roma_constants_outside_inference(rot.device)
        with _factories_on(rot.device):
            out = self.anny(pose_parameters=deltas, phenotype_kwargs=phenotype)
        vertices = out["vertices"] @ c.T
        joints = out["bone_poses"][:, self.joint_bone_index, :3, 3] @ c.T
        return vertices, joints
