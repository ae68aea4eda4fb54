"""Who lies in the target domain's beds: a shifted pose and body-shape distribution.

**Poses** (:class:`TargetPosePrior`, the source's :class:`~disrt_core.sim.poses.PosePrior`
with these changes): postures supine / left / right / prone with probabilities
0.2 / 0.3 / 0.3 / 0.2 (source 0.4 / 0.25 / 0.25 / 0.1), lateral bodies rolled by up to ±40°
(source ±30°); and *curled*: 70 % of the lateral bodies and 25 % of the others get extra
flexion on top of the source's limb configurations: U[4°, 12°] more at each of the three
spine joints and U[0°, 15°] at the neck, the hips flexed U[20°, 55°] further (a rotation about
the pelvis' x axis before the sampled hip rotation) and the knees U[20°, 60°] further, all
clipped to the joint limits as the source is.

**Shapes** (:class:`TargetShapeSampler`, wrapping the source's fitted
:class:`~disrt_core.sim.shapes.ShapeSampler`): heavier and taller. Anny: weight phenotype
U[0.3, 1.0] (source U[0.05, 0.95]), muscle U[0.2, 0.9] (source U[0.15, 0.85]); target
statures half U[1.60, 2.05] m, half from female N(1.69, 0.07) / male N(1.83, 0.075) m
(source U[1.5, 2.0], N(1.63, 0.07) / N(1.77, 0.075)), clipped to [1.55, 2.05] (the height
phenotype then saturates at Anny's tallest). Other backends (SMPL): shape coefficients
N(0, 1) clipped to ±2.5 and shifted by one unit along the direction that most increases the
body's volume (least squares of the volume of 128 zero-pose bodies on the coefficients).
"""

from __future__ import annotations

import roma
import torch
from torch import Tensor

from disrt_core.posture import LEFT, RIGHT
from disrt_core.sim.poses import JOINT_LIMITS, PosePrior, SemanticPose
from disrt_core.sim.shapes import ShapeSampler, mesh_volume

TARGET_POSTURE_WEIGHTS = (0.2, 0.3, 0.3, 0.2)
CURL_PROB = (0.25, 0.7)  # (supine and prone, lateral)
TARGET_STATURE_RANGE = (1.55, 2.05)
TARGET_UNIFORM_STATURE = (1.60, 2.05)
TARGET_FEMALE_STATURE = (1.69, 0.07)
TARGET_MALE_STATURE = (1.83, 0.075)


class TargetPosePrior(PosePrior):
    """The source prior with the target's posture weights, roll and curl (module docstring)."""

    def __init__(self, posture_weights=TARGET_POSTURE_WEIGHTS, roll_deg: float = 40.0,
                 **kwargs) -> None:
        super().__init__(posture_weights, roll_deg=roll_deg, **kwargs)

    def sample(self, n: int, gen: torch.Generator, device="cpu",
               posture: Tensor | None = None) -> SemanticPose:
        pose = super().sample(n, gen, device, posture)
        u = torch.rand(n, 9, generator=gen, device=device)
        lateral = (pose.posture == LEFT) | (pose.posture == RIGHT)
        curled = u[:, 0] < torch.where(lateral, CURL_PROB[1], CURL_PROB[0])
        body = pose.body_pose.reshape(n, 23, 3).clone()
        c = curled.to(body.dtype)
        for k, joint in enumerate((3, 6, 9)):
            body[:, joint - 1, 0] += c * torch.deg2rad(4 + 8 * u[:, 1 + k])
        body[:, 11, 0] += c * torch.deg2rad(15 * u[:, 4])  # neck (joint 12)
        for k, (hip, knee) in enumerate(((1, 4), (2, 5))):
            extra = torch.deg2rad(20 + 35 * u[:, 5 + k]) * c
            flex = torch.zeros(n, 3, device=device)
            flex[:, 0] = -extra  # flexion: the thigh turns forward about the pelvis' x axis
            rot = roma.rotvec_to_rotmat(flex) @ roma.rotvec_to_rotmat(body[:, hip - 1])
            body[:, hip - 1] = roma.rotmat_to_rotvec(rot)
            body[:, knee - 1, 0] += c * torch.deg2rad(20 + 40 * u[:, 7 + k])
        limits = JOINT_LIMITS.to(device)
        body = torch.maximum(torch.minimum(body, limits[..., 1]), limits[..., 0])
        return SemanticPose(pose.posture, pose.root_orient, body.reshape(n, 69),
                            pose.arm_class, pose.leg_class)


class TargetShapeSampler(ShapeSampler):
    """Heavier and taller bodies (module docstring). Built from a fitted source
    :class:`ShapeSampler` whose stature model it reuses (nothing is fitted again for Anny)."""

    def __init__(self, base: ShapeSampler, body=None, calibration_size: int = 128,
                 seed: int = 1) -> None:
        self.__dict__.update(base.__dict__)
        self.heavy: Tensor | None = None
        if not self.is_anny:
            if body is None:
                raise ValueError("a non-Anny body model needs `body` to fit its heavy direction")
            self.heavy = self._heavy_direction(body, calibration_size, seed)

    def _heavy_direction(self, body, n: int, seed: int) -> Tensor:
        """Unit direction of the shape coefficients along which the volume grows most."""
        gen = torch.Generator().manual_seed(seed)
        coords = torch.randn(n, self.shape_dim, generator=gen).clamp(-2.5, 2.5)
        params = body.zero_params(n)
        params[:, body.param_layout.shape] = coords.to(params.device)
        with torch.no_grad():
            vertices, _ = body(params)
        volume = mesh_volume(vertices, body.faces).abs().cpu().double()
        design = torch.cat([torch.ones(n, 1, dtype=torch.float64), coords.double()], 1)
        grad = torch.linalg.lstsq(design, volume[:, None]).solution[1:, 0].float()
        grad[self.height_index] = 0.0  # the stature solve sets that coefficient
        return grad / grad.norm().clamp(min=1e-12)

    def _base(self, n: int, gen: torch.Generator, device) -> tuple[Tensor, Tensor]:
        coords, female = super()._base(n, gen, device)
        u = torch.rand(n, 2, generator=gen, device=device)
        if self.heavy is None:  # Anny phenotypes (order disrt_core.body.anny.PHENOTYPES)
            coords[:, 3] = 0.3 + 0.7 * u[:, 0]  # weight
            coords[:, 2] = 0.2 + 0.7 * u[:, 1]  # muscle
        else:
            coords = (coords + self.heavy.to(device)).clamp(-3.5, 3.5)
        return coords, female

    def sample_stature(self, female: Tensor, gen: torch.Generator) -> Tensor:
        """Target statures [n] in metres (module docstring)."""
        n, device = female.shape[0], female.device
        pick = torch.rand(n, generator=gen, device=device)
        lo, hi = TARGET_UNIFORM_STATURE
        uniform = lo + (hi - lo) * torch.rand(n, generator=gen, device=device)
        mean = torch.where(female > 0.5, TARGET_FEMALE_STATURE[0], TARGET_MALE_STATURE[0])
        std = torch.where(female > 0.5, TARGET_FEMALE_STATURE[1], TARGET_MALE_STATURE[1])
        normal = mean + std * torch.randn(n, generator=gen, device=device)
        return torch.where(pick < 0.5, uniform, normal).clamp(*TARGET_STATURE_RANGE)
