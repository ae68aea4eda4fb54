"""Pressure under a predicted body: the generator's spring-bed contact model on a mesh.

:class:`PressureModel` takes body meshes in the bed (label) frame (metres, z up, mattress
top at z = 0, e.g. ``Prediction.vertices``) and sinks each, as a rigid body, into the
mattress with the generator's own contact model (:mod:`disrt_core.sim.mattress`: a Winkler
spring bed, :func:`~disrt_core.sim.mattress.rest_on_mattress`, then
:func:`~disrt_core.sim.mattress.pressure_map`), on the generator's 1 cm scene grid
(:data:`disrt_core.sim.scene.GRID`). Its load is the body's weight m·g, the mass from the
mesh volume as the generator computes it (:func:`disrt_core.sim.shapes.body_mass`). What
the depth cannot tell is assumed [choice, measured in ``benchmarks/bench_pressure.py``]:

* the mattress stiffness: the middle of the generator's range
  (:data:`~disrt_core.sim.mattress.STIFFNESS_RANGE`, 1.05·10⁵ N/m³);
* the mattress: 0.94 × 2.0 m (the middle of the generator's sizes), centred on the mat;
* the head pillow (``pillow``): ``"auto"`` [default] puts a pillow of the generator's mean
  size and compression (60 × 41 cm, 11 cm high, pressed to 55 %) where the generator would
  (its near edge 6 cm below the head joint, :func:`disrt_core.sim.scene.pillow_boxes`) when
  the predicted head lies above the mattress (the lowest back-of-head vertex at least
  ``PILLOW_HEAD_M`` above its top, as a head on a pillow does), none otherwise;
  ``"always"`` / ``"never"`` for the measurement.

Given the generator's own stiffness and pillow (``stiffness=``, ``pillow_boxes=``,
``pillow_squash=``), the true mesh gives back the generator's pressure map exactly.

Outputs (:class:`PressureResult`):

* ``grid`` [B,192,84] kPa: the pressure a mat under the sheet would read, on SLP's
  pressure-mat grid in the bed frame (row 0 at the head end, column 0 at the smallest x,
  1 cm cells, ``disrt_core.geometry.bedframe.pm_to_label``): the springs' pressure where
  the body lies on the mattress, the pillow's load spread over its footprint under the head;
* ``vertex`` [B,V] kPa: the contact pressure on the skin, k·δ of the vertex's cell for the
  vertices on the body's underside (within ``UNDERSIDE_TOL_M`` of the lowest point of the
  cell), 0 elsewhere; on the pillow it is the pillow's springs' pressure on the head (the
  mat there reads the spread load instead);
* ``regions`` [B,R,2] kPa: peak and mean of the skin pressure (as ``vertex``: on the
  pillow, the pillow's springs on the head, not the spread load the mat reads there) over
  each of :data:`REGIONS`, read on the grid cells under the region's underside vertices
  (and their 8 neighbours: the mesh's vertices are 1–2 cm apart, the cells 1 cm); the mean
  is over the region's contact cells (above :data:`CONTACT_KPA`), 0 where it has none.

**Regions** [choice] (:func:`region_vertices`): vertex sets of the body model, chosen once
on its zero-parameter body in the canonical frame (x to the body's left, y up the spine, z
out of the chest; T-pose) around the SMPL joints (:mod:`disrt_core.body.skeleton`), so they
follow the skin in every pose:

* occiput: the back of the head (5 cm or more behind the head joint 15, within 6 cm of
  the midline and 13 cm of the joint, above the neck joint);
* scapula_left / _right: the upper back on each side between the spine3 (9) and shoulder
  (16 / 17) joints' heights and the midline and the shoulder joint (z behind spine3);
* sacrum: the back within 7 cm of the midline, 12 cm below to 6 cm above the pelvis joint 0;
* trochanter_left / _right: the outer hip, 4.5 cm or more lateral of the hip joint (1 / 2),
  15 cm below to 5 cm above it, within 5 cm of it front to back;
* heel_left / _right: below and behind the ankle joint (7 / 8), within 10 cm of it;
* elbow_left / _right: within 6 cm of the elbow joint (18 / 19), behind it.

**Reading a given map** (:meth:`PressureModel.read`, e.g. the learned map of
:mod:`disrt_core.model.pressure_net`): the same reading as the model's own, by the same
functions (:func:`underside_cells`, :func:`per_vertex`, :func:`region_pressure`), of the
mat map placed on the scene grid. A mat map has no separate skin pressure: under a pillow
it holds the pillow's spread load, so its occiput reads lower than the physical model's.

Cost: one orthographic rasterisation of the mesh on the 230×120 grid and a sort of its
cells per body (about 8 ms a body on one CPU thread; ``bench_pressure``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from disrt_core.sim import mattress
from disrt_core.sim.render import rasterize, rasterize_fixed
from disrt_core.sim.scene import (
    GRID,
    RIM,
    SQUASH_RANGE,
    BedScene,
    mattress_mask,
    pillow_boxes,
    pillow_height_at,
)
from disrt_core.sim.shapes import body_mass

REGIONS: tuple[str, ...] = (
    "occiput", "scapula_left", "scapula_right", "sacrum", "trochanter_left",
    "trochanter_right", "heel_left", "heel_right", "elbow_left", "elbow_right",
)  # fmt: skip
CONTACT_KPA = 1.0  # a cell or vertex is in contact above this
UNDERSIDE_TOL_M = 0.015
MAX_BOX = 16  # cells: the largest fixed box of the capturable underside (B·F·box² tests)
PILLOW_HEAD_M = 0.02
PILLOW_MODES = ("auto", "always", "never")
STIFFNESS = sum(mattress.STIFFNESS_RANGE) / 2  # N/m³
MATTRESS_SIZE = (0.94, 2.005)  # m: the middle of scene.sample_beds' widths and lengths
#: The generator's mean pillow (scene.sample_beds): present, x offset, near edge below the
#: head, half width, half length, height, squash.
MEAN_PILLOW = (1.0, 0.0, 0.06, 0.29, 0.205, 0.11, sum(SQUASH_RANGE) / 2)


@dataclass
class PressureResult:
    """Pressure under B bodies (module docstring); kPa."""

    grid: Tensor  # [B,192,84] mat pressure on SLP's pressure-mat grid (bed frame)
    vertex: Tensor  # [B,V] skin contact pressure per vertex
    regions: Tensor  # [B,len(REGIONS),2] peak and mean skin pressure per region
    pillow: Tensor  # [B] bool: a pillow was assumed (or given)


def region_vertices(rest_vertices: Tensor, rest_joints: Tensor) -> dict[str, Tensor]:
    """Vertex indices of each of :data:`REGIONS` (module docstring) from a body model's
    zero-parameter body, vertices [V,3] and joints [24,3] in its canonical frame."""
    v, j = rest_vertices, rest_joints
    x, y, z = v.unbind(-1)

    def near(joint: int, radius: float) -> Tensor:
        return (v - j[joint]).norm(dim=-1) < radius

    out = {"occiput": near(15, 0.13) & (z < j[15, 2] - 0.05) & ((x - j[15, 0]).abs() < 0.06)
           & (y > j[12, 1])}
    back = z < j[9, 2] - 0.02
    for side, sign, shoulder, hip, ankle, elbow in (("left", 1.0, 16, 1, 7, 18),
                                                    ("right", -1.0, 17, 2, 8, 19)):
        lateral = sign * x
        out[f"scapula_{side}"] = back & (lateral > 0.03) & (lateral < sign * j[shoulder, 0]) \
            & (y > j[9, 1] - 0.07) & (y < j[shoulder, 1] + 0.02)
        out[f"trochanter_{side}"] = (lateral > sign * j[hip, 0] + 0.045) \
            & (y > j[hip, 1] - 0.15) & (y < j[hip, 1] + 0.05) & ((z - j[hip, 2]).abs() < 0.05)
        out[f"heel_{side}"] = near(ankle, 0.10) & (y < j[ankle, 1] - 0.02) & (z < j[ankle, 2])
        out[f"elbow_{side}"] = near(elbow, 0.06) & (z < j[elbow, 2])
    out["sacrum"] = (z < j[0, 2] - 0.03) & (x.abs() < 0.07) & (y > j[0, 1] - 0.12) \
        & (y < j[0, 1] + 0.06)
    return {name: out[name].nonzero()[:, 0] for name in REGIONS}


def mean_beds(n: int, device, size: Tensor | None = None) -> BedScene:
    """``n`` assumed beds (module docstring) as a :class:`BedScene`; ``size`` [n,2]
    (width, length, m) replaces the assumed mattress size."""
    full = lambda value: torch.full((n,), float(value), device=device)  # noqa: E731
    nan = full(math.nan)
    if size is None:
        size = torch.tensor(MATTRESS_SIZE, device=device).expand(n, 2)
    size = size.to(device).float()
    return BedScene(width=size[:, 0], length=size[:, 1], frame_z=full(-0.1),
                    floor_z=full(-0.6), headboard=nan, footboard=nan, rails=nan,
                    pillow=torch.tensor(MEAN_PILLOW, device=device).expand(n, 7).clone(),
                    rim=full(RIM))


class PressureModel:
    """Pressure maps of body meshes (module docstring) for one body model.

    body_model: the :class:`disrt_core.body.base.BodyModel` the meshes come from (its faces
    and its zero-parameter body for the regions). pillow: ``"auto"`` | ``"always"`` |
    ``"never"``. stiffness: N/m³ assumed when none is given per call. settle: first lay the
    limbs and the head at rest on the mattress and pillow as the generator does
    (:func:`disrt_core.sim.rest.settle`, from the bodies' parameters): more accurate, about
    ten times the cost (``bench_pressure``), off by default.
    """

    def __init__(self, body_model, pillow: str = "auto", stiffness: float = STIFFNESS,
                 settle: bool = False) -> None:
        if pillow not in PILLOW_MODES:
            raise ValueError(f"pillow must be one of {PILLOW_MODES}, got {pillow!r}")
        self.pillow, self.stiffness, self.settle = pillow, float(stiffness), bool(settle)
        self.body = body_model
        if settle:
            from disrt_core.sim.bodyparts import model_of

            self.rest_model = model_of(body_model)
        device = body_model.faces.device
        self.faces = body_model.faces
        with torch.no_grad():
            vertices, joints = body_model(body_model.zero_params(1).to(device))
        regions = region_vertices(vertices[0], joints[0])
        # The fixed box of the capturable underside (:meth:`underside`): the zero body's
        # longest edge in grid cells, half again for the stretch of posed skin, plus one;
        # None (no capturable form) for a mesh of triangles too large for it to pay.
        edges = vertices[0, self.faces.long()] - vertices[0, self.faces.long().roll(1, 1)]
        box = math.ceil(1.5 * float(edges.norm(dim=-1).max()) / GRID.pitch) + 1
        self.box = box if box <= MAX_BOX else None
        self.region_index = torch.cat(list(regions.values()))
        self.region_id = torch.cat([torch.full_like(idx, r) for r, idx in
                                    enumerate(regions.values())])
        self.occiput = regions["occiput"]

    def to(self, device) -> PressureModel:
        for name in ("faces", "region_index", "region_id", "occiput"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def underside(self, vertices: Tensor, capturable: bool = False) -> Tensor:
        """The lowest point (m) of bodies [B,V,3] over each scene-grid cell, [B,230,120];
        +inf where the body is not above a cell (as the generator's ``heightmaps``).
        ``capturable``: fixed shapes, no host synchronisation (:func:`rasterize_fixed` with
        the body's box, ``self.box`` cells: the same map unless the skin stretches a
        triangle past it), for a CUDA graph; a mesh without a box (``self.box`` None)
        takes the general rasteriser, which a graph cannot hold."""
        col, row = GRID.to_cells(vertices[..., 0], vertices[..., 1])
        uv = torch.stack([col, row], -1)
        if capturable and self.box is not None:
            return rasterize_fixed(uv, vertices[..., 2:3], self.faces, GRID.shape, ("amin",),
                                   self.box)[:, 0]
        return rasterize(uv, vertices[..., 2:3], self.faces, GRID.shape, ("amin",))[:, 0]

    def assumed_pillow(self, vertices: Tensor, head_xy: Tensor) -> tuple[Tensor, Tensor]:
        """Where a pillow is assumed, [B] bool, and the assumed pillows' boxes [B,6]
        (:func:`disrt_core.sim.scene.pillow_boxes`) from the head joint's (x, y) [B,2]."""
        n = vertices.shape[0]
        if self.pillow == "always":
            present = torch.ones(n, dtype=torch.bool, device=vertices.device)
        elif self.pillow == "never":
            present = torch.zeros(n, dtype=torch.bool, device=vertices.device)
        else:
            present = vertices[:, self.occiput, 2].amin(1) >= PILLOW_HEAD_M
        boxes = pillow_boxes(mean_beds(n, vertices.device), head_xy)
        boxes[:, 0] = present.float()
        return present, boxes

    @torch.no_grad()
    def __call__(self, vertices: Tensor, joints: Tensor | None = None, *,
                 params: Tensor | None = None, stiffness: Tensor | None = None,
                 pillow_boxes: Tensor | None = None, pillow_squash: Tensor | None = None,
                 mattress_size: Tensor | None = None) -> PressureResult:
        """Pressure under bodies ``vertices`` [B,V,3] (bed frame, m) with their joints
        [B,24,3] (the head joint places an assumed pillow; without them the back of the
        head's centre does) and, for a model made with ``settle``, their parameters [B,P].
        The keywords replace the assumptions (the generator's keys of the same names):
        stiffness [B] N/m³, pillow_boxes [B,6] with pillow_squash [B], mattress_size [B,2]
        (width, length) m."""
        vertices = vertices.float()
        n, dev = vertices.shape[0], vertices.device
        finite = torch.isfinite(vertices).all(-1).all(-1)  # an empty bed's body is NaN
        vertices = torch.where(finite[:, None, None], vertices, torch.zeros_like(vertices))
        k = torch.full((n,), self.stiffness, device=dev) if stiffness is None else \
            stiffness.to(dev).float().reshape(n)
        squash = torch.full((n,), MEAN_PILLOW[6], device=dev) if pillow_squash is None else \
            pillow_squash.to(dev).float().reshape(n)
        if pillow_boxes is None:
            head = joints[:, 15, :2].float() if joints is not None else \
                vertices[:, self.occiput, :2].mean(1)
            head = torch.where(finite[:, None], torch.nan_to_num(head), torch.zeros_like(head))
            present, boxes = self.assumed_pillow(vertices, head)
        else:
            boxes = pillow_boxes.to(dev).float()
            present = boxes[:, 0] > 0
        if self.settle:
            if params is None or joints is None:
                raise ValueError("a PressureModel made with settle=True needs the bodies' "
                                 "joints and params")
            vertices = self._settled(params, vertices, joints, boxes, squash, k,
                                     mattress_size, finite)
        grid_x, grid_y = GRID.xy(dev)
        pillow_free = pillow_height_at(boxes, grid_x[None], grid_y[None])
        on_mattress = mattress_mask(mean_beds(n, dev, mattress_size))
        cell = GRID.pitch**2
        weight = body_mass(vertices, self.faces) * mattress.GRAVITY
        under = self.underside(vertices)
        contact = mattress.rest_on_mattress(under, pillow_free * squash[:, None, None],
                                            on_mattress, weight, k, cell)
        mat, _ = mattress.pressure_map(contact, k, pillow_free, cell)
        mat = torch.where(finite[:, None, None], mat, torch.zeros_like(mat))
        skin = contact.delta * k[:, None, None] / 1000.0
        cells, lowest = underside_cells(vertices, under)
        vertex = per_vertex(skin, cells, lowest)
        vertex = torch.where(finite[:, None], vertex, torch.zeros_like(vertex))
        regions = region_pressure(skin, cells, lowest, self.region_index, self.region_id)
        rows, cols = GRID.pm_window
        return PressureResult(mat[:, rows, cols].contiguous(), vertex, regions, present)

    def _settled(self, params: Tensor, vertices: Tensor, joints: Tensor, boxes: Tensor,
                 squash: Tensor, stiffness: Tensor, mattress_size: Tensor | None,
                 finite: Tensor) -> Tensor:
        """The bodies' vertices with their limbs and head at rest on the assumed mattress and
        pillow (the generator's :func:`disrt_core.sim.rest.settle`)."""
        from disrt_core.sim.rest import settle
        from disrt_core.sim.support import Support

        beds = mean_beds(len(params), vertices.device, mattress_size)
        support = Support(beds.width, beds.length, beds.floor_z, boxes, squash)
        params = torch.where(finite[:, None], params.float(), torch.zeros_like(params.float()))
        joints = torch.where(finite[:, None, None], joints.float(), torch.zeros_like(joints))
        settled = settle(self.body, self.rest_model, params, vertices, joints, support,
                         stiffness, body_mass(vertices, self.faces))
        return torch.where(finite[:, None, None], self.body(settled)[0], vertices)

    @torch.no_grad()
    def read(self, vertices: Tensor, mat: Tensor, capturable: bool = False
             ) -> tuple[Tensor, Tensor]:
        """Per-vertex pressure [B,V] and peak / mean per region [B,R,2] (kPa) of a given mat
        map ``mat`` [B,192,84] (kPa, SLP's grid, e.g. the learned one,
        :mod:`disrt_core.model.pressure_net`) under bodies ``vertices`` [B,V,3] (bed frame,
        m): the map read as :meth:`__call__` reads its skin pressure, at the cells under
        the bodies' underside vertices (0 off the mat and for a body that is not finite);
        ``capturable`` as in :meth:`underside`."""
        vertices = vertices.float()
        finite = torch.isfinite(vertices).all(-1).all(-1)
        vertices = torch.where(finite[:, None, None], vertices, torch.zeros_like(vertices))
        skin = mat_on_scene_grid(mat.float())
        cells, lowest = underside_cells(vertices, self.underside(vertices, capturable))
        lowest = lowest & finite[:, None]
        vertex = per_vertex(skin, cells, lowest)
        return vertex, region_pressure(skin, cells, lowest, self.region_index, self.region_id)


def mat_on_scene_grid(mat: Tensor) -> Tensor:
    """A mat map [B,192,84] placed in its window of the scene grid, [B,230,120] (0 around)."""
    rows, cols = GRID.pm_window
    out = mat.new_zeros(mat.shape[0], *GRID.shape)
    out[:, rows, cols] = mat
    return out


def underside_cells(vertices: Tensor, under: Tensor) -> tuple[Tensor, Tensor]:
    """Each vertex's flat scene-grid cell [B,V] (-1 off the grid) and whether it lies on the
    body's underside there [B,V] (within ``UNDERSIDE_TOL_M`` of ``under`` [B,230,120], the
    lowest point over each cell, :meth:`PressureModel.underside`)."""
    rows, cols = GRID.shape
    col, row = GRID.to_cells(vertices[..., 0], vertices[..., 1])
    c, r = col.round().long(), row.round().long()
    inside = (c >= 0) & (c < cols) & (r >= 0) & (r < rows)
    flat = torch.where(inside, r * cols + c, torch.zeros_like(r))
    low = under.flatten(1).gather(1, flat)
    lowest = inside & (vertices[..., 2] <= low + UNDERSIDE_TOL_M)
    return torch.where(inside, flat, torch.full_like(flat, -1)), lowest


def per_vertex(skin: Tensor, cells: Tensor, lowest: Tensor) -> Tensor:
    """Pressure per vertex [B,V]: ``skin`` [B,230,120] kPa at the vertex's cell for the
    underside vertices (:func:`underside_cells`), 0 elsewhere."""
    value = skin.flatten(1).gather(1, cells.clamp(min=0))
    return torch.where(lowest, value, torch.zeros_like(value))


def region_pressure(skin: Tensor, cells: Tensor, lowest: Tensor, region_index: Tensor,
                    region_id: Tensor) -> Tensor:
    """Peak and mean pressure per region [B,R,2] (module docstring) of ``skin``
    [B,230,120] kPa, over the cells under the region's underside vertices and their 8
    neighbours; ``region_index`` / ``region_id`` [N]: the regions' vertices and which region
    each is (:class:`PressureModel`)."""
    n, (rows, cols) = skin.shape[0], GRID.shape
    count, size = len(REGIONS), rows * cols
    cell = cells[:, region_index]
    use = lowest[:, region_index] & (cell >= 0)
    r, c = cell.clamp(min=0) // cols, cell.clamp(min=0) % cols
    # each underside vertex's cell and its 8 neighbours, as (region, cell) flags
    mask = torch.zeros(n, count * size, device=skin.device)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            rr, cc = r + dr, c + dc
            ok = use & (rr >= 0) & (rr < rows) & (cc >= 0) & (cc < cols)
            flat = region_id[None] * size + (rr * cols + cc).clamp(0, size - 1)
            mask.scatter_reduce_(1, flat, ok.float(), reduce="amax")
    mask = mask.view(n, count, size) > 0
    p = skin.reshape(n, 1, size).expand(-1, count, -1)
    peak = torch.where(mask, p, torch.zeros_like(p)).amax(2)
    touching = mask & (p > CONTACT_KPA)
    total = torch.where(touching, p, torch.zeros_like(p)).sum(2)
    mean = total / touching.sum(2).clamp(min=1)
    return torch.stack([peak, mean], -1)
