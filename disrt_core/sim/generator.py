"""The batched synthetic-scene pipeline: pose -> skinning -> sinkage -> drape -> render ->
noise -> preprocessing, all on one device, no per-sample Python loops in the hot path.

>>> gen = SceneGenerator(SimConfig(sensor="kinect2"), load_body_model("anny"), "cuda")
>>> batch = gen.sample(256, seed=0)          # dict of tensors, shard keys (data/shards.py)
>>> arrays = to_shard_arrays(batch)          # numpy, SAMPLE_SCHEMA dtypes

Stages (each also callable on its own for sequences and tools): :class:`PosePrior`,
:class:`ShapeSampler`, :func:`place_on_mattress` pick a body and where it lies;
``body(params)`` skins it; :mod:`mattress` sinks it and gives the pressure map;
:mod:`drape` lays the cover; :mod:`render` and :mod:`noise` make the raw frame;
:func:`disrt_core.geometry.camera.raw_to_network` makes the network input exactly as the
node does for a real camera.

Scenes (``SimConfig.scene``): ``"bed"``, the bed, its frame and the floor seen from above as
SLP's camera sees them; ``"room"``, a whole room around the bed (:mod:`room`, rendered by
:mod:`room_render`) seen by a ceiling camera anywhere above it
(:func:`sensors.sample_room_cameras`), with the materials the sensor noise depends on.

Bed pose (``SimConfig.bed_pose``): ``"true"``, the network image is made with the true
``T_cam_bed``; ``"fit"``, as the node makes it: the bed is found on the noisy raw frame
(:func:`disrt_core.geometry.bedfit_batch.fit_beds`, head end ``auto``) and the labels
(params, joints, vertices) are expressed in that fitted bed's frame, so the network learns
the node's fit errors; ``T_cam_bed`` is then the fitted pose (``T_cam_bed_true`` the true
one, ``fit_ok`` whether a bed was found; without one the true pose is kept), and the
pressure map and scene grids stay in the true bed frame.

Outputs (label = bed frame of SPEC §1.4, metres): ``depth`` [B,128,54] mm (SLP convention,
bed at ``bed_mm``; rounded, 0 = no reading), ``bed_mm`` [B], ``params`` [B,P] and
``params_cam`` [B,P] (camera optical frame), ``joints`` [B,24,3], ``cover`` [B],
``posture`` [B] (``disrt_core.posture`` of the root), ``pressure`` [B,192,84] kPa, ``K``
[B,3,3], ``T_cam_bed`` [B,4,4], ``mattress_corners`` [B,4,3] (camera frame: head-left,
head-right, foot-right, foot-left as ``geometry.bedfit`` orders them), ``mattress_size``
[B,2] (width, length) m, ``in_view`` [B] (the whole bed is in the frame), ``present`` [B]
(someone lies in the bed), ``occupancy`` [B] (0 lying in bed, 1 empty bed, 2 sitting on its
edge: ``SimConfig.occupancy``; an empty bed's body labels mean nothing and its ``vertices``
are NaN), ``depth_raw`` [B,H,W] mm when asked, and with ``with_mesh``:
``vertices`` [B,V,3], ``mass`` [B] kg, ``stature`` [B] m, ``sink`` [B] m,
and on the 1 cm scene grid [B,230,120] (m): ``scene_height`` (bed, pillow and blanket, no
body), ``support_height`` (the same without the blanket), ``cloth_height`` (−inf off the
cloth), ``body_top`` (−inf off the body), ``pressure_grid`` (kPa, the whole mattress:
sums to the load the mattress carries), and for resting bodies (:mod:`rest`; sitting ones
from :mod:`sitting`, whose ``posture`` means nothing) ``pillow_boxes`` [B,6],
``pillow_squash`` [B], ``floor_z`` [B], ``mattress_load`` [B] (share of m·g on the
mattress), as :meth:`support.Support.from_batch` reads them, and ``stiffness`` [B] (N/m³,
the mattress's springs).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from disrt_core.geometry.bedframe import BED_CENTRE_LABEL
from disrt_core.geometry.camera import invert_rigid, raw_to_network, transform_points
from disrt_core.posture import LEFT, RIGHT, posture_from_axis_angle
from disrt_core.sim import mattress
from disrt_core.sim.bed_objects import bed_objects
from disrt_core.sim.bodies import given_bodies, sample_bodies
from disrt_core.sim.bodyparts import CHAINS, model_of, pillow_support
from disrt_core.sim.config import (  # noqa: F401  (re-exported)
    GENERATOR_VERSION,
    SCENES,
    STAGES,
    SimConfig,
)
from disrt_core.sim.drape import drape, sample_blankets, sample_throws
from disrt_core.sim.noise import apply_sensor_noise
from disrt_core.sim.placement import part_labels
from disrt_core.sim.poses import PosePrior
from disrt_core.sim.props import body_props
from disrt_core.sim.render import grid_faces, rasterize, render_depth, render_plane
from disrt_core.sim.rest import settle as settle_bodies
from disrt_core.sim.room import (
    Room,
    clip_below_camera,
    mattress_corners,
    sample_rooms,
    view_points,
)
from disrt_core.sim.room_render import render_room
from disrt_core.sim.rumple import sample_rumples
from disrt_core.sim.scene import (
    GRID,
    bed_heightfield,
    mattress_mask,
    pillow_boxes,
    pillow_height_at,
    pillow_squash,
    render_grid,
    sample_beds,
    side_pillows,
)
from disrt_core.sim.sensors import get_sensor, sample_camera_poses, sample_room_cameras
from disrt_core.sim.shapes import body_mass, stature
from disrt_core.sim.shards import to_shard_arrays  # noqa: F401  (re-exported)
from disrt_core.sim.support import Support
from disrt_core.sim.timing import StageTimer
from disrt_core.threads import cpu_threads

#: Frames whose beds are fitted at once on a GPU (``bed_pose: fit``); its full-frame
#: temporaries are ~4 MB a frame, the fine grids ~2 MB (bedfit_rect.fine_maps).
GPU_FIT_CHUNK = 1024


class SceneGenerator:
    """Samples labelled synthetic in-bed depth frames (see the module docstring)."""

    def __init__(self, config: SimConfig, body_model, device: str | torch.device = "cpu") -> None:
        from disrt_core.sim.shapes import ShapeSampler

        self.config = config
        self.device = torch.device(device)
        self.body = body_model.to(self.device).eval()
        self.layout = body_model.param_layout
        self.sensor = get_sensor(config.sensor)
        self.prior = PosePrior(config.posture_weights)
        with torch.no_grad(), cpu_threads(self.device):  # process-independent (threads.py)
            self.shapes = ShapeSampler(self.body)
            vertices, joints = self.body(self.body.zero_params(1))
        self.rest_joints = joints[0]
        self.rest_stature = float(stature(vertices)[0])
        self.part_labels = part_labels(vertices[0], joints[0])
        self.faces = self.body.faces
        rows, cols = GRID.shape
        grid = grid_faces((rows + 1) // 2, (cols + 1) // 2, self.device)
        self.scene_faces = torch.cat([self.faces, grid + self.body.num_vertices])

    # -- stages ------------------------------------------------------------------------
    def sample_bodies(self, n: int, gen: torch.Generator, posture: Tensor | None = None,
                      beds=None, sitting: Tensor | None = None) -> dict[str, Tensor]:
        """Shape, pose and placement of ``n`` bodies (:func:`disrt_core.sim.bodies.
        sample_bodies`)."""
        return sample_bodies(n, gen, prior=self.prior, shapes=self.shapes, config=self.config,
                             layout=self.layout, rest_joints=self.rest_joints,
                             rest_stature=self.rest_stature, posture=posture, beds=beds,
                             sitting=sitting)

    def settle(self, params: Tensor, vertices: Tensor, joints: Tensor, beds=None,
               stiffness: Tensor | None = None, bodies: dict | None = None) -> Tensor:
        """Parameters with every limb and the head at rest on the mattress, the pillow or
        the body, and the pelvis height at the trunk's rest depth (:mod:`disrt_core.sim.
        rest`; mattress top z = 0), the pose within ``JOINT_LIMITS`` (semantic).

        vertices, joints: ``body(params)``. beds: the :class:`BedScene` (default: a plain
        0.9 × 2 m mattress, no pillow); stiffness [B] (default mid-range); bodies: the
        :meth:`sample_bodies` dict (arm classes: a *pillow* arm goes under the pillow;
        ``sitting``: arms only; ``pillow``: the pillow boxes, else from the head joint)."""
        model = model_of(self.body)
        n, dev = params.shape[0], params.device
        if beds is None:
            support = Support.plain(n, dev)
        else:
            boxes = bodies["pillow"] if bodies is not None and "pillow" in bodies else (
                pillow_boxes(beds, joints[:, 15, :2]))
            support = Support(beds.width, beds.length, beds.floor_z, boxes, pillow_squash(beds))
        if stiffness is None:
            stiffness = torch.full((n,), sum(mattress.STIFFNESS_RANGE) / 2, device=dev)
        active = torch.ones(n, len(CHAINS), dtype=torch.bool, device=dev)
        pillow_ok = torch.ones_like(active)
        sitting = None
        if bodies is not None:
            sitting = bodies.get("sitting")
            pillow_ok = pillow_support(bodies["arm_class"])
            part = torch.tensor([c.part for c in CHAINS], device=dev)  # arms: parts 2, 3
            if sitting is not None:  # arms only: the legs hang over the edge
                active = torch.where(sitting[:, None], (part >= 2) & (part <= 3), active)
        mass = body_mass(vertices, self.faces)
        iterations = getattr(self.config, "settle_iterations", 3)
        scale = None
        if bodies is not None and torch.isfinite(bodies["stature"]).all():
            scale = bodies["stature"] / 1.75
        return settle_bodies(self.body, model, params, vertices, joints, support, stiffness,
                             mass, active=active, pillow_ok=pillow_ok, sitting=sitting,
                             scale=scale, iterations=iterations,
                             load=None if bodies is None else bodies.get("mattress_load"))

    def heightmaps(self, vertices: Tensor) -> tuple[Tensor, Tensor]:
        """Top (max z) and underside (min z) of bodies [B,V,3] on the scene grid [B,R,C];
        -inf / +inf where the body is not above a cell (orthographic z-buffer)."""
        col, row = GRID.to_cells(vertices[..., 0], vertices[..., 1])
        uv = torch.stack([col, row], -1)
        z = vertices[..., 2:3].expand(-1, -1, 2)
        chunk = len(uv) if uv.is_cuda else self.config.cpu_chunk  # see sample()
        maps = torch.cat([rasterize(uv[s:s + chunk], z[s:s + chunk], self.faces, GRID.shape,
                                    ("amax", "amin")) for s in range(0, len(uv), chunk)])
        return maps[:, 0], maps[:, 1]

    def _render(self, points: Tensor, floor_z: Tensor, room: Room | None, s: int, e: int,
                K: Tensor, T: Tensor) -> tuple[Tensor, Tensor | None]:
        """Clean depth (m) of samples s..e and, for rooms, the material per pixel: the body
        and the bed's height-field mesh (label frame) with the floor (bed scenes) or the
        whole room (room scenes)."""
        size = self.sensor.size
        if room is None:
            depth = render_depth(transform_points(T, points), self.scene_faces, K, size)
            floor = render_plane(K, T, floor_z, size)
            depth = torch.where((depth > 0) & ((floor <= 0) | (depth < floor)), depth, floor)
            return depth, None
        part = Room(**{k: v[s:e] for k, v in room.__dict__.items()})
        return render_room(points, self.scene_faces, part, K, T, size)

    @staticmethod
    def _fit_beds(raw: Tensor, K: Tensor, T_true: Tensor) -> tuple[Tensor, Tensor]:
        """``T_cam_bed`` as the node finds it on the raw frames (``bedfit_batch.fit_beds``,
        head end decided as with ``head_side: auto``) and whether it found one; a frame
        without a fit keeps the true pose (the node would not answer it at all)."""
        from disrt_core.geometry.bedfit_batch import CHUNK, fit_beds

        # On a GPU the fit is bound by its ~10,000 small operations a chunk, not by the
        # frames: the whole batch at once (up to GPU_FIT_CHUNK) took D435 rooms at batch
        # 512 from 209 to 308 samples/s on an H100 (benchmarks/NOTES.md, 2026-12-07).
        # A frame's fit does not depend on its batch.
        fits = fit_beds(raw, K, head="auto", chunk=GPU_FIT_CHUNK if raw.is_cuda else CHUNK)
        ok = fits.ok.to(T_true.device)
        return torch.where(ok[:, None, None], fits.T_cam_bed.to(T_true), T_true), ok

    # -- the pipeline --------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, batch_size: int, seed: int | torch.Generator = 0, *,
               cover: int | Tensor | None = None, posture: Tensor | None = None,
               params: Tensor | None = None, with_raw: bool = False, with_mesh: bool = False,
               noise_seed: int | None = None,
               timings: dict[str, float] | None = None) -> dict[str, Tensor]:
        """One batch of labelled samples (module docstring for the keys).

        seed: an int (a fresh generator on the device) or a ``torch.Generator`` on it.
        cover / posture: force the cover level (int or [B]) / posture classes [B]; they are
        drawn anyway, so forcing them leaves the rest of the sample unchanged.
        params: [B,P] bodies to use instead of drawing them (label frame; shape, pose, x, y
            and root orientation are kept as given, the height is found again by contact,
            limbs are not settled). With the same
            ``seed`` every call gets the same bed, camera, blanket and noise draws, so a
            sequence of slowly changing ``params`` makes a sequence of frames of one scene.
        noise_seed: draw the sensor noise from this seed instead of ``seed``'s stream: the
            same scenes seen in another frame of the camera (every other draw unchanged).
        timings: if given, seconds per stage (``STAGES``) are added to it.
        """
        gen = seed if isinstance(seed, torch.Generator) else torch.Generator(
            self.device).manual_seed(int(seed))
        n, dev, cfg = batch_size, self.device, self.config
        stage = StageTimer(timings, dev)

        with stage("pose"):
            beds = sample_beds(n, gen, dev, cfg.pillow_prob, cfg.pillow_stack_prob)
            room = sample_rooms(beds, gen) if cfg.scene == "room" else None
            if params is None:
                bodies = self.sample_bodies(n, gen, posture, beds)
            else:
                bodies = given_bodies(params.to(dev), self.layout)
            # Side sleepers' pillows are thicker and bunched up (scene.side_pillows).
            side = (bodies["posture"] == LEFT) | (bodies["posture"] == RIGHT)
            beds = side_pillows(beds, side & ~bodies["sitting"])
            covers = torch.tensor(cfg.covers, device=dev)
            drawn = covers[torch.randint(len(covers), (n,), generator=gen, device=dev)]
            if cover is not None:
                drawn = torch.as_tensor(cover, device=dev).expand(n).clone()
            k_lo, k_hi = cfg.stiffness
            stiffness = k_lo + (k_hi - k_lo) * torch.rand(n, generator=gen, device=dev)
        with stage("skinning"):
            params = bodies["params"]
            vertices, joints = self.body(params)
            # The pillow lies where the head lies (at the head end for someone sitting).
            head_end = torch.stack([torch.full_like(beds.width, BED_CENTRE_LABEL[0]),
                                    BED_CENTRE_LABEL[1] + beds.length / 2], -1)
            bodies["pillow"] = pillow_boxes(beds, torch.where(
                bodies["sitting"][:, None], head_end, joints[:, 15, :2]))
            if bodies["arm_class"][0, 0] >= 0:  # drawn bodies; given ones are used as they are
                params = self.settle(params, vertices, joints, beds, stiffness, bodies)
                vertices, joints = self.body(params)
        with stage("sinkage"):  # mattress and pillow carry the body (disrt_core.sim.mattress)
            top, under = self.heightmaps(vertices)
            mass = body_mass(vertices, self.faces)
            cell = GRID.pitch**2
            on_mattress = mattress_mask(beds)
            grid_x, grid_y = GRID.xy(dev)
            pillow_free = pillow_height_at(bodies["pillow"], grid_x[None], grid_y[None])
            squashed = pillow_free * pillow_squash(beds)[:, None, None]
            contact = mattress.rest_on_mattress(
                under, squashed, on_mattress, mass * mattress.GRAVITY * bodies["mattress_load"],
                stiffness, cell)
            dz, sink = contact.shift, contact.sink
            vertices[..., 2] += dz[:, None]
            joints[..., 2] += dz[:, None]
            params[:, self.layout.transl.start + 2] += dz
            top, under = top + dz[:, None, None], under + dz[:, None, None]
            on_pm, deflection = mattress.pressure_map(contact, stiffness, pillow_free, cell)
            pm_rows, pm_cols = GRID.pm_window
            pressure = on_pm[:, pm_rows, pm_cols]
            bed = bed_heightfield(beds)
            bed = torch.where(on_mattress, bed + mattress.sagged_surface(deflection, GRID.pitch),
                              bed)
            # The pillow gives way to what lies on it and covers what lies under it.
            beneath = ~contact.on_pillow & (top < squashed)
            pillow = torch.where(beneath, squashed, torch.minimum(pillow_free, under))
            support = torch.maximum(bed, torch.where(on_mattress, pillow, bed))
        with stage("drape"):
            # Empty beds: the body is taken away (drawn anyway: the stream stays the same).
            share = cfg.occupancy[1] / sum(cfg.occupancy)
            empty = torch.rand(n, generator=gen, device=dev) < share
            if bool(empty.any()):
                flat = bed_heightfield(beds)
                gone = empty[:, None, None]
                top = torch.where(gone, -math.inf, top)
                bed = torch.where(gone, flat, bed)
                support = torch.where(gone, torch.maximum(
                    flat, torch.where(on_mattress, pillow_free, flat)), support)
                pressure = torch.where(gone, 0.0, pressure)
                vertices = torch.where(empty[:, None, None], math.nan, vertices)
            below, above = bed_objects(beds, top, gen, cfg.objects_on_bed)
            if cfg.prop_prob > 0:  # a wedge or bolster against the body, under the cover
                below = torch.maximum(below, body_props(top, under - bed, joints, gen,
                                                        cfg.prop_prob))
            support = torch.where(on_mattress & (below > 0),
                                  torch.maximum(support, bed + below), support)
            blankets = sample_blankets(drawn, joints, beds.width, beds.length,
                                       BED_CENTRE_LABEL, gen)
            # stiffer, tauter, gathered main covers (drawn only when asked for)
            rumples = sample_rumples(n, gen, dev, cfg.rumple_prob) if cfg.rumple_prob > 0 \
                else None
            cloth = drape(support, top, blankets, on_mattress, rumples=rumples)
            scene = torch.where(torch.isfinite(cloth), cloth, support)
            if cfg.throw_prob > 0:  # a second blanket, over the first (drawn for every sample)
                throws = sample_throws(beds.width, beds.length, BED_CENTRE_LABEL, gen,
                                       cfg.throw_prob)
                throw = drape(scene, top, throws, on_mattress)
                scene = torch.where(torch.isfinite(throw), torch.maximum(scene, throw), scene)
            scene = torch.where(on_mattress & (above > 0), torch.maximum(scene, bed + above),
                                scene)
        with stage("render"):
            K = self.sensor.K(n, dev)
            if room is None:
                T, _ = sample_camera_poses(self.sensor, n, gen, dev, cfg.camera_height)
                in_view = torch.ones(n, dtype=torch.bool, device=dev)
                mesh = render_grid(scene, beds.floor_z).reshape(n, -1, 3)
            else:
                T, in_view = sample_room_cameras(
                    self.sensor, view_points(beds, room), gen,
                    height_m=cfg.room_camera_height, max_pitch_deg=cfg.max_pitch_deg)
                room = clip_below_camera(room, T)
                # Cells at floor level are left to the room's exact floor plane.
                above = torch.where(scene > beds.floor_z[:, None, None] + 0.01, scene,
                                    torch.full_like(scene, -math.inf))
                mesh = render_grid(above, torch.full_like(beds.floor_z, -math.inf))
                mesh = mesh.reshape(n, -1, 3)
            points = torch.cat([vertices, mesh], 1)
            smooth = torch.rand(n, generator=gen, device=dev) < cfg.sdk_filter_prob
        # Camera-side stages run on chunks of samples on the CPU: full-frame temporaries of
        # a whole batch exceed what the C allocator keeps for reuse (each would be mapped
        # and page-faulted afresh), a chunk of 16 frames does not. The chunk size orders
        # the noise draws, so it is a setting like the others (in the manifest).
        chunk = n if dev.type == "cuda" else cfg.cpu_chunk
        noise_gen = gen if noise_seed is None else torch.Generator(dev).manual_seed(noise_seed)
        raws, nets, T_nets, fit_ok = [], [], [], []
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            with stage("render"):
                depth, material = self._render(points[s:e], beds.floor_z[s:e], room, s, e,
                                               K[s:e], T[s:e])
            with stage("noise"):
                raw = apply_sensor_noise(depth, K[s:e], self.sensor, noise_gen, cfg.noise,
                                         material=material, smooth=smooth[s:e])
            with stage("preprocessing"):
                T_net = T[s:e]
                if cfg.bed_pose == "fit":  # the node's own path: the bed found on the frame
                    T_net, ok = self._fit_beds(raw, K[s:e], T_net)
                    fit_ok.append(ok)
                nets.append(raw_to_network(raw, K[s:e], T_net, cfg.bed_mm).round().clamp(
                    0, 65535))
                T_nets.append(T_net)
            if with_raw:
                raws.append(raw)
        net = torch.cat(nets)
        raw = torch.cat(raws) if with_raw else None
        T_true, T = T, torch.cat(T_nets)
        if cfg.bed_pose == "fit":
            # Labels in the frame of the fitted bed, the one the network image is made in.
            move = invert_rigid(T) @ T_true  # true bed frame -> fitted bed frame
            params = self.layout.rigid_transform(params, move)
            joints = transform_points(move, joints)
            vertices = transform_points(move, vertices)

        out = {
            "depth": net, "bed_mm": torch.full((n,), cfg.bed_mm, device=dev),
            "params": params, "params_cam": self.layout.rigid_transform(params, T),
            "joints": joints, "cover": drawn.long(),
            "posture": posture_from_axis_angle(self.layout.unpack(params).root_orient),
            "pressure": pressure, "K": K, "T_cam_bed": T, "T_cam_bed_true": T_true,
            "fit_ok": torch.cat(fit_ok) if fit_ok else torch.ones_like(in_view),
            "in_view": in_view,
            "mattress_corners": transform_points(T_true, mattress_corners(beds)),
            "mattress_size": torch.stack([beds.width, beds.length], -1),
            "present": ~empty & ~bodies["sitting"],
            "occupancy": torch.where(empty, 1, torch.where(bodies["sitting"], 2, 0)),
            "sitting": bodies["sitting"],
        }
        if with_raw:
            out["depth_raw"] = raw
        if with_mesh:
            out.update(vertices=vertices, mass=mass, stature=bodies["stature"], sink=sink,
                       scene_height=scene, cloth_height=cloth, body_top=top,
                       support_height=support,
                       prior_posture=bodies["posture"],
                       arm_class=bodies["arm_class"], leg_class=bodies["leg_class"],
                       pressure_grid=on_pm, pillow_boxes=bodies["pillow"],
                       pillow_squash=pillow_squash(beds), floor_z=beds.floor_z,
                       mattress_load=bodies["mattress_load"], stiffness=stiffness)
        return out
