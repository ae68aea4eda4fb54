"""The target-domain pipeline: the source generator's bodies, mattress and preprocessing,
with the target's bodies, clutter, simulated blankets, cameras and ToF noise.

>>> gen = TargetGenerator(TargetConfig(), load_body_model("anny"), "cuda")
>>> batch = gen.sample(256, seed=0)     # the same keys as SceneGenerator.sample

Stages (``STAGES``; each the source's where not said otherwise): pose (beds without the
source's pillow and half rails; target clutter; :class:`~disrt_core.sim.target.bodies.
TargetPosePrior` and :class:`~disrt_core.sim.target.bodies.TargetShapeSampler`), skinning
and limb settling, sinkage and pressure, the support (mattress sag, target rails, head
pillow and props), drape (a simulated cloth per cover, a second blanket, hair), render (per
camera type), noise (:func:`~disrt_core.sim.target.sensors.apply_tof_noise`),
preprocessing (:func:`disrt_core.geometry.camera.raw_to_network`, as for any camera).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from disrt_core.geometry.bedframe import SLP_DANALAB_BED_MM
from disrt_core.geometry.camera import raw_to_network, transform_points
from disrt_core.posture import posture_from_axis_angle
from disrt_core.sim import mattress
from disrt_core.sim.generator import SceneGenerator, SimConfig
from disrt_core.sim.placement import lowest_point_offset
from disrt_core.sim.render import render_depth, render_plane
from disrt_core.sim.scene import (
    GRID,
    bed_heightfield,
    mattress_mask,
    render_grid,
    sample_beds,
)
from disrt_core.sim.shapes import body_mass
from disrt_core.sim.target.blankets import drape_cloths, sample_blankets, sample_throws
from disrt_core.sim.target.bodies import (
    TARGET_POSTURE_WEIGHTS,
    TargetPosePrior,
    TargetShapeSampler,
)
from disrt_core.sim.target.clutter import (
    hair_heightfield,
    head_pillow_heightfield,
    prop_heightfield,
    rail_heightfield,
    sample_clutter,
)
from disrt_core.sim.target.sensors import (
    TARGET_NOISE,
    TARGET_SENSORS,
    apply_tof_noise,
    sample_target_camera_poses,
)
from disrt_core.sim.timing import StageTimer

TARGET_VERSION = "target-1.0"


@dataclass
class TargetConfig:
    """Every option of the target domain (stored in the dataset manifest). The cloth
    settings are the simulation's resolution: particles per cloth (rows, cols), steps of
    ``cloth_dt`` seconds and constraint sweeps per step."""

    sensors: tuple[str, ...] = tuple(TARGET_SENSORS)
    sensor_weights: tuple[float, ...] = (0.5, 0.5)
    covers: tuple[int, ...] = (0, 1, 2)
    posture_weights: tuple[float, ...] = TARGET_POSTURE_WEIGHTS
    camera_height: tuple[float, float] = (1.75, 2.2)
    tilt_deg: float = 4.0
    tilt_max_deg: float = 9.0
    rail_prob: float = 0.55
    head_pillow_prob: float = 0.6
    prop_prob: float = 0.5
    throw_prob: float = 0.35
    hair_prob: float = 0.75
    cloth_grid: tuple[int, int] = (48, 40)
    throw_grid: tuple[int, int] = (20, 20)
    cloth_steps: int = 200
    cloth_iterations: int = 6
    cloth_dt: float = 1 / 200
    stiffness: tuple[float, float] = mattress.STIFFNESS_RANGE
    noise: bool = True
    bed_mm: float = SLP_DANALAB_BED_MM
    max_pose_tries: int = 10
    cpu_chunk: int = 16

    def __post_init__(self) -> None:
        self.sensors = tuple(self.sensors)
        unknown = [s for s in self.sensors if s not in TARGET_SENSORS]
        if unknown or not self.sensors:
            raise ValueError(f"target sensors must be among {sorted(TARGET_SENSORS)}, got "
                             f"{list(self.sensors)}")
        if len(self.sensor_weights) != len(self.sensors) or min(self.sensor_weights) < 0:
            raise ValueError(f"sensor_weights needs one non-negative weight per sensor "
                             f"{list(self.sensors)}, got {self.sensor_weights}")
        self.covers = tuple(int(c) for c in self.covers)
        if not self.covers or any(c not in (0, 1, 2) for c in self.covers):
            raise ValueError(f"covers must be a non-empty subset of 0, 1, 2 (uncover, sheet, "
                             f"blanket), got {self.covers}")
        if min(self.cloth_grid) < 3 or min(self.throw_grid) < 3:
            raise ValueError("cloth_grid and throw_grid need at least 3 particles a side")

    def to_dict(self) -> dict:
        return asdict(self)


class TargetGenerator(SceneGenerator):
    """Samples labelled target-domain frames (module docstring of
    :mod:`disrt_core.sim.target`); outputs as :meth:`SceneGenerator.sample`, plus with
    ``with_mesh``: ``sensor_index`` [B], ``throw_height`` and ``hair_height`` [B,230,120],
    ``rail_height`` [B,230,120] (−inf off the rails) and ``tuck`` [B,3]."""

    domain = "target"
    version = TARGET_VERSION

    def __init__(self, config: TargetConfig, body_model, device: str | torch.device = "cpu"
                 ) -> None:
        base = SimConfig(sensor="kinect2", covers=config.covers,
                         posture_weights=config.posture_weights, bed_mm=config.bed_mm,
                         max_pose_tries=config.max_pose_tries, cpu_chunk=config.cpu_chunk)
        super().__init__(base, body_model, device)
        self.config = config
        self.prior = TargetPosePrior(config.posture_weights)
        self.shapes = TargetShapeSampler(self.shapes, self.body)
        self.sensors = [TARGET_SENSORS[s] for s in config.sensors]
        self.sensor = None  # one per sample: self.sensors

    @torch.no_grad()
    def sample(self, batch_size: int, seed: int | torch.Generator = 0, *,
               cover: int | Tensor | None = None, posture: Tensor | None = None,
               with_raw: bool = False, with_mesh: bool = False,
               timings: dict[str, float] | None = None) -> dict[str, Tensor]:
        """One batch (as :meth:`SceneGenerator.sample`, without its sequence option
        ``params``). ``depth_raw`` frames of the smaller camera are padded with zeros (no
        reading) to the larger one's size."""
        gen = seed if isinstance(seed, torch.Generator) else torch.Generator(
            self.device).manual_seed(int(seed))
        n, dev, cfg = batch_size, self.device, self.config
        stage = StageTimer(timings, dev)

        with stage("pose"):
            beds = sample_beds(n, gen, dev, pillow_prob=0.0)
            beds.rails = torch.full_like(beds.rails, float("nan"))  # target rails instead
            clutter = sample_clutter(n, gen, dev, cfg.rail_prob, cfg.head_pillow_prob,
                                     cfg.prop_prob, cfg.hair_prob)
            bodies = self.sample_bodies(n, gen, posture, beds)
            covers = torch.tensor(cfg.covers, device=dev)
            drawn = covers[torch.randint(len(covers), (n,), generator=gen, device=dev)]
            if cover is not None:
                drawn = torch.as_tensor(cover, device=dev).expand(n).clone()
            k_lo, k_hi = cfg.stiffness
            stiffness = k_lo + (k_hi - k_lo) * torch.rand(n, generator=gen, device=dev)
            weights = torch.tensor(cfg.sensor_weights, device=dev, dtype=torch.float32)
            sensor_index = torch.multinomial(weights, n, replacement=True, generator=gen)
        with stage("skinning"):
            params = bodies["params"]
            vertices, joints = self.body(params)
            params = self.settle(params, vertices, joints)
            vertices, joints = self.body(params)
        with stage("sinkage"):
            lift = lowest_point_offset(vertices)
            vertices[..., 2] += lift[:, None]
            top, under = self.heightmaps(vertices)
            mass = body_mass(vertices, self.faces)
            sink = mattress.sink_depth(under, mass * mattress.GRAVITY, stiffness, GRID.pitch**2)
            delta = mattress.penetration(under, sink)
            dz = lift - sink
            vertices[..., 2] -= sink[:, None]
            joints[..., 2] += dz[:, None]
            params[:, self.layout.transl.start + 2] += dz
            top, under = top - sink[:, None, None], under - sink[:, None, None]
            pm_rows, pm_cols = GRID.pm_window
            pressure = mattress.pressure_kpa(delta[:, pm_rows, pm_cols], stiffness)
            on_mattress = mattress_mask(beds)
            bed = bed_heightfield(beds)
            bed = torch.where(on_mattress, bed + mattress.sagged_surface(delta, GRID.pitch), bed)
            rails = rail_heightfield(clutter, beds)
            root = self.layout.unpack(params).root_orient
            props = head_pillow_heightfield(clutter, beds, joints[:, 15, 1]) + prop_heightfield(
                clutter, joints, root, bodies["posture"])
            props = torch.minimum(props, under)  # they give way under the body
            support = torch.maximum(bed, torch.where(on_mattress, props, bed))
            support = torch.maximum(support, rails)
        with stage("drape"):
            rows, cols = cfg.cloth_grid
            sim = {"steps": cfg.cloth_steps, "iterations": cfg.cloth_iterations,
                   "dt": cfg.cloth_dt}
            blankets = sample_blankets(drawn, joints, beds, gen)
            cloth = drape_cloths(support, top, blankets, beds, rows, cols, **sim)
            scene = torch.where(torch.isfinite(cloth), cloth, support)
            throws = sample_throws(beds, gen, cfg.throw_prob)
            throw = drape_cloths(scene, top, throws, beds, *cfg.throw_grid, **sim)
            scene = torch.where(torch.isfinite(throw), torch.maximum(scene, throw), scene)
            hair = hair_heightfield(clutter, joints, top)
            hair = torch.where(torch.isfinite(cloth) | torch.isfinite(throw), 0.0, hair)
            hair_mask = hair > 0
            scene = torch.where(hair_mask, torch.maximum(scene, top) + hair, scene)
        with stage("render"):
            mount = torch.tensor([s.mount_yaw for s in self.sensors], device=dev)[sensor_index]
            T, _ = sample_target_camera_poses(n, gen, mount, dev, cfg.camera_height,
                                              cfg.tilt_deg, cfg.tilt_max_deg)
            K = torch.stack([self.sensors[int(i)].K(1, dev)[0] for i in sensor_index]) if n \
                else torch.zeros(0, 3, 3, device=dev)
            mesh = render_grid(scene, beds.floor_z).reshape(n, -1, 3)
            points = transform_points(T, torch.cat([vertices, mesh], 1))
        mattress_size = torch.stack([beds.width, beds.length], -1)
        net = torch.zeros(n, 128, 54, device=dev)
        raws: list[tuple[Tensor, Tensor]] = []
        chunk = n if dev.type == "cuda" else cfg.cpu_chunk
        for s, spec in enumerate(self.sensors):
            idx = (sensor_index == s).nonzero()[:, 0]
            for start in range(0, len(idx), chunk):
                part = idx[start:start + chunk]
                with stage("render"):
                    depth = render_depth(points[part], self.scene_faces, K[part], spec.size)
                    floor = render_plane(K[part], T[part], beds.floor_z[part], spec.size)
                    depth = torch.where((depth > 0) & ((floor <= 0) | (depth < floor)), depth,
                                        floor)
                with stage("noise"):
                    raw = apply_tof_noise(depth, K[part], T[part], spec, TARGET_NOISE[spec.name],
                                          mattress_size[part], hair_mask[part], gen, cfg.noise)
                with stage("preprocessing"):
                    net[part] = raw_to_network(raw, K[part], T[part], cfg.bed_mm).round().clamp(
                        0, 65535)
                if with_raw:
                    raws.append((part, raw))

        out = {
            "depth": net, "bed_mm": torch.full((n,), cfg.bed_mm, device=dev),
            "params": params, "params_cam": self.layout.rigid_transform(params, T),
            "joints": joints, "cover": drawn.long(),
            "posture": posture_from_axis_angle(root),
            "pressure": pressure, "K": K, "T_cam_bed": T,
        }
        if with_raw:
            rows_max = max(s.size[0] for s in self.sensors)
            cols_max = max(s.size[1] for s in self.sensors)
            raw_all = torch.zeros(n, rows_max, cols_max, device=dev)
            for part, raw in raws:
                raw_all[part, :raw.shape[1], :raw.shape[2]] = raw
            out["depth_raw"] = raw_all
        if with_mesh:
            out.update(vertices=vertices, mass=mass, stature=bodies["stature"], sink=sink,
                       scene_height=scene, cloth_height=cloth, body_top=top,
                       support_height=support, mattress_size=mattress_size,
                       prior_posture=bodies["posture"], arm_class=bodies["arm_class"],
                       leg_class=bodies["leg_class"], sensor_index=sensor_index,
                       throw_height=throw, hair_height=hair, rail_height=rails,
                       tuck=blankets.tuck & blankets.present[:, None])
        return out
