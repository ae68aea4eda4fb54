"""Body measurements from meshes: height, chest, waist and hips in cm (SPEC §6).

Method (the reference's, after SHAPY): pose the body with its shape only (zero pose, root
orientation 0, at the origin: the canonical frame, y up), then

* height = |y(head-top point) − y(heel point)|, points given as barycentric points on faces;
* a girth = cut the mesh with the horizontal plane y = y(landmark point), take every
  triangle–plane intersection segment, and measure the perimeter of the 2D convex hull of
  their end points in (x, z). The slicer here is exact and runs on the CPU (numpy), which is
  equivalent to SHAPY's CUDA mesh–plane intersection [SPEC §6 choice].

Landmarks (:class:`Landmarks`):

* **SMPL** (SPEC §6, 13,776-face list): height faces 435 (vertex 1) and 5975 (vertex 2);
  chest face 11885 (vertex 2), waist 6833 (vertex 2), hips 1341 (vertex 1); whole mesh cut.
* **Anny** [choice]: height and waist as ``anny.Anthropometry`` defines them (height = extent
  of the rest mesh along the vertical; waist = length of the closed loop through Anny's 46
  waist vertices). Chest and hips by plane sections at vertices chosen by rule on the
  average adult's rest mesh: chest = the most anterior torso vertex between the spine2
  joint and the shoulders (the bust point), hips = the most posterior torso vertex within
  15 cm below the hip joints and 10 cm above the pelvis (the buttock point), as ISO 8559
  places these girths (arm and hand vertices, those skinned mainly to an arm or hand bone,
  are not candidates). The zero-pose mesh is a T-pose for both backends, so the planes cut
  the torso only. On the average adult: chest 93.8, waist 79.0, hips 97.6 cm, height 174 cm.

Errors against ground truth are ``|pred − gt|`` (``disrt_core.metrics``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import ConvexHull
from torch import Tensor

from disrt_core.body.base import BodyModel
from disrt_core.body.skeleton import SMPL_JOINT_NAMES

MEASUREMENTS = ("height", "chest", "waist", "hips")


@dataclass(frozen=True)
class SurfacePoint:
    """A point on the mesh: barycentric coordinates ``bary`` on face ``face``."""

    face: int
    bary: tuple[float, float, float]


@dataclass(frozen=True)
class Landmarks:
    """Where each measurement is taken on one mesh topology.

    height: (top, bottom) points; None = extent of the mesh along y.
    chest, waist, hips: the point whose height places the cutting plane; a girth is None
        when ``waist_loop`` gives it instead.
    waist_loop: closed loop of vertex indices whose length is the waist (Anny's definition).
    """

    height: tuple[SurfacePoint, SurfacePoint] | None
    chest: SurfacePoint
    waist: SurfacePoint | None
    hips: SurfacePoint
    waist_loop: tuple[int, ...] | None = None


SMPL_LANDMARKS = Landmarks(
    height=(SurfacePoint(435, (0.0, 1.0, 0.0)), SurfacePoint(5975, (0.0, 0.0, 1.0))),
    chest=SurfacePoint(11885, (0.0, 0.0, 1.0)),
    waist=SurfacePoint(6833, (0.0, 0.0, 1.0)),
    hips=SurfacePoint(1341, (0.0, 1.0, 0.0)),
)


def surface_point(vertices: np.ndarray, faces: np.ndarray, point: SurfacePoint) -> np.ndarray:
    """Position [3] of a barycentric point on a mesh with vertices [V,3]."""
    return np.asarray(point.bary) @ vertices[faces[point.face]]


def slice_segments(vertices: np.ndarray, faces: np.ndarray, level: float,
                   axis: int = 1) -> np.ndarray:
    """Exact intersection of a triangle mesh with the plane ``x[axis] = level``: segments
    [M, 2, 3]. A vertex on the plane counts as above it, so every crossed triangle gives
    exactly one segment (two crossed edges) and touching triangles none."""
    tri = vertices[faces]  # [F,3,3]
    below = tri[..., axis] < level  # [F,3]
    crossed = below.any(axis=1) & ~below.all(axis=1)
    tri, below = tri[crossed], below[crossed]
    ends = []
    for a, b in ((0, 1), (1, 2), (2, 0)):
        cut = below[:, a] != below[:, b]
        pa, pb = tri[:, a], tri[:, b]
        denom = np.where(cut, pb[:, axis] - pa[:, axis], 1.0)
        t = (level - pa[:, axis]) / denom
        ends.append((pa + t[:, None] * (pb - pa), cut))
    points = np.stack([p for p, _ in ends], axis=1)  # [M,3 edges,3]
    cuts = np.stack([c for _, c in ends], axis=1)  # [M,3]
    # Each crossed triangle has exactly two cut edges: keep them in edge order.
    order = np.argsort(~cuts, axis=1, kind="stable")[:, :2]
    return np.take_along_axis(points, order[..., None], axis=1)


def hull_perimeter(points: np.ndarray) -> float:
    """Perimeter of the 2D convex hull of points [N, 2] (scipy's ``area`` of a 2D hull)."""
    if len(points) < 3:
        return 0.0
    return float(ConvexHull(points).area)


def girth(vertices: np.ndarray, faces: np.ndarray, level: float, axis: int = 1) -> float:
    """Convex-hull perimeter of the mesh's section by the plane ``x[axis] = level``, in the
    mesh's units (SPEC §6)."""
    segments = slice_segments(vertices, faces, level, axis)
    keep = [i for i in range(3) if i != axis]
    return hull_perimeter(segments.reshape(-1, 3)[:, keep])


def measure_mesh(vertices: np.ndarray, faces: np.ndarray, landmarks: Landmarks) -> dict:
    """Height, chest, waist, hips (cm) of one rest mesh [V,3] in metres, y up."""
    if landmarks.height is None:
        height = vertices[:, 1].max() - vertices[:, 1].min()
    else:
        top, bottom = (surface_point(vertices, faces, p) for p in landmarks.height)
        height = abs(top[1] - bottom[1])
    out = {"height": 100.0 * float(height)}
    for name in ("chest", "waist", "hips"):
        point = getattr(landmarks, name)
        if name == "waist" and landmarks.waist_loop is not None:
            loop = vertices[list(landmarks.waist_loop)]
            value = np.linalg.norm(loop - np.roll(loop, 1, axis=0), axis=1).sum()
        else:
            value = girth(vertices, faces, surface_point(vertices, faces, point)[1])
        out[name] = 100.0 * float(value)
    return out


def rest_vertices(body: BodyModel, shape: Tensor, gender: Tensor | None = None) -> Tensor:
    """Vertices [B,V,3] of bodies with ``shape`` [B,S] in the zero pose, root orientation 0,
    pelvis at the origin: the canonical frame (y up, z out of the chest)."""
    params = body.zero_params(shape.shape[0])  # on the body model's device
    params[:, body.param_layout.shape] = shape.to(params)
    with torch.no_grad():
        return body(params, gender).vertices


def landmarks_for(body: BodyModel) -> Landmarks:
    """SMPL's landmarks of SPEC §6 for SMPL models, :func:`anny_landmarks` for Anny."""
    if body.model_id.startswith("smpl"):
        return SMPL_LANDMARKS
    if body.model_id.startswith("anny"):
        return anny_landmarks(body)
    raise ValueError(f"no measurement landmarks for body model {body.model_id!r}")


def body_measurements(body: BodyModel, shape: Tensor, gender: Tensor | None = None,
                      landmarks: Landmarks | None = None) -> dict[str, Tensor]:
    """Height, chest, waist, hips in cm, each [B], of bodies with ``shape`` [B,S] (SPEC §6:
    measured on the zero-pose mesh; with SMPL pass the GT gender for both pred and GT)."""
    landmarks = landmarks or landmarks_for(body)
    verts = rest_vertices(body, shape, gender).double().cpu().numpy()
    faces = body.faces.cpu().numpy()
    rows = [measure_mesh(v, faces, landmarks) for v in verts]
    return {k: torch.tensor([r[k] for r in rows], dtype=torch.float64) for k in MEASUREMENTS}


_ARM_BONES = ("upperarm", "lowerarm", "wrist", "finger", "metacarpal")


def anny_landmarks(body: BodyModel) -> Landmarks:
    """Landmarks on Anny's mesh, chosen by the rules of the module docstring."""
    from anny.anthropometry import BASE_MESH_WAIST_VERTICES

    anny = body.anny
    labels = list(anny.bone_labels)
    weights = anny.vertex_bone_weights
    dominant = anny.vertex_bone_indices.gather(1, weights.argmax(1, keepdim=True))[:, 0]
    arm = torch.tensor([labels[int(b)].startswith(_ARM_BONES) for b in dominant])
    faces = body.faces.cpu()
    base = anny.base_mesh_vertex_indices.cpu().tolist()
    waist_loop = tuple(base.index(i) for i in BASE_MESH_WAIST_VERTICES)

    verts = rest_vertices(body, torch.zeros(1, body.param_layout.shape_dim))[0].cpu().numpy()
    params = body.zero_params(1)
    with torch.no_grad():
        joints = body(params).joints[0].cpu().numpy()
    jy = {n: joints[i, 1] for i, n in enumerate(SMPL_JOINT_NAMES)}
    torso = ~arm.numpy()
    y, z = verts[:, 1], verts[:, 2]
    chest_band = (torso & (y > jy["spine2"]) & (y < jy["left_shoulder"])
                  & (np.abs(verts[:, 0]) < 0.2))
    hips_band = torso & (y > jy["left_hip"] - 0.15) & (y < jy["pelvis"] + 0.1)
    chest_v = int(np.flatnonzero(chest_band)[np.argmax(z[chest_band])])
    hips_v = int(np.flatnonzero(hips_band)[np.argmin(z[hips_band])])
    return Landmarks(
        height=None,
        chest=_vertex_point(faces.numpy(), chest_v),
        waist=None,
        hips=_vertex_point(faces.numpy(), hips_v),
        waist_loop=waist_loop,
    )


def _vertex_point(faces: np.ndarray, vertex: int) -> SurfacePoint:
    """The vertex as a barycentric point of the first face that holds it."""
    face, corner = np.argwhere(faces == vertex)[0]
    bary = [0.0, 0.0, 0.0]
    bary[int(corner)] = 1.0
    return SurfacePoint(int(face), (bary[0], bary[1], bary[2]))
