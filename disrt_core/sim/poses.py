"""In-bed pose prior: postures, ¾ turns, limb configurations, joint limits.

**Semantic pose.** The prior writes joint rotations the way SMPL defines them: axis-angles
in SMPL's canonical axes (x to the body's left, y up the spine, z out of the chest), each
joint's rotation expressed in world-aligned axes about its head and composed down the chain,
with the **T-pose** as zero. Every sampled rotation is clipped to ``JOINT_LIMITS``, the
per-joint bounds of SPEC §1.3 (the decoder squashes predictions into twice these). Both body
backends take this semantic pose as their parameter vector (Anny's backend turns its A-pose
rest into the T-pose internally, see ``disrt_core.body.anny``).

**Postures** (``disrt_core.posture.POSTURES`` order, equally likely by default) and their
root orientation (canonical -> bed frame): supine = identity (head to +y, chest up), left
lateral = +90° about the head axis (the body's left side down), right lateral = −90°,
prone = 180°; then a roll about the head axis: ±25° for lateral, ±12° for supine and prone,
or, for ``turn_share`` (30 %) of the bodies, a **¾ turn** of U[30°, 42°] toward either
neighbouring posture (rolls of 30–60° between lateral and supine or prone are covered; the
band 42–48° around the 45° class boundary of ``posture_from_axis_angle`` is left out so
that labels are never ambiguous); a pitch of ±4° and a yaw about the bed's vertical of ±8°.
Where the body props itself is left to the settling (:mod:`disrt_core.sim.rest`).

**Limb configurations** (per arm / per leg, chosen per posture with the probabilities in
``POSTURE_TABLE``; angles in degrees, uniform in the ranges of ``ARMS`` / ``LEGS``):

* arms (shoulder + collar as one rotation, split ⅓ collar / ⅔ shoulder like the limits):
  *side* (along the body), *belly* / *chest* (hand on the abdomen / chest: arm forward,
  humerus turned in, elbow bent), *crossed* (both forearms across the trunk, one arm higher),
  *overhead* (arm above the head, forearm toward the midline), *out* (abducted 20–45°,
  forearm down), *forward* (lateral lying: arm in front of the chest), *pillow* (arm raised
  and bent, the hand under the head pillow, or under the head where there is none), *lap*
  (sitting on the bed's edge: hand on the thigh), *prop* (sitting: hand on the mattress
  beside the hip; both used by :mod:`disrt_core.sim.sitting`, as are *hanging* legs),
  *cradle* (lateral lying: the lower arm forward, the elbow bent back, the hand under the
  cheek and pillow).
  The top arm of a lateral body in the *side* class lies a little in front of the flank,
  the hand toward the hip or thigh (``TOP_SIDE``, [choice]; same random numbers).
  Wider arm poses (a "goalpost", arms spread) do not fit on a 0.9 m mattress and are left
  out. An arm is parameterised by abduction ``alpha`` in the coronal plane (0 = down along
  the body, 90 = T-pose, 180 = overhead), forward flexion ``phi`` toward the chest side,
  humeral twist ``tau`` (positive turns the elbow's flexion plane toward the body's
  midline) and elbow flexion ``elbow``. The drawn pose is only where the limb starts: the
  settling lowers (or raises) every limb until it rests on the mattress, pillow or body.
* legs: *straight*, *knee_up* (hip flexed, knee bent about twice as much plus up to 20°, so
  the foot reaches the mattress), *frog* (knee bent and fallen outward), *crossed* (one leg
  adducted over the other at the ankles), *bent* (lateral lying: hip and knee flexed),
  *recovery* (prone: one knee drawn up and out to the side); the top leg of a lateral
  posture is adducted 5–15° so that it rests on the lower one. Parameters: hip flexion
  ``flex``, abduction ``abd``, external rotation ``rot`` and knee flexion ``knee``.
* spine, neck and head get small random flexion (more curl in lateral postures), wrists and
  ankles small random rotations, feet and hands stay at their (±0.01 rad) rest. Prone heads
  are turned to one side: the twist about the long axis of spine3, neck and head at 3–5°
  each and of spine1-2 at 0–5° (up to 25° in all: SPEC §1.3 allows only ±5° per joint about
  that axis, a real prone head turns further; the ¾ prone turns make up part of it).
* lateral bodies without a pillow lay the lower arm under the head (*cradle* class), as
  people do (``sample(..., pillow=)``).

Self-intersection: :func:`disrt_core.sim.capsules.self_intersecting` (re-exported here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import roma
import torch
from torch import Tensor

from disrt_core.body.rotations import align_x
from disrt_core.body.skeleton import SMPL_JOINT_NAMES
from disrt_core.constants import const, on_device
from disrt_core.posture import LEFT, POSTURES, PRONE, RIGHT, SUPINE
from disrt_core.sim.capsules import (  # noqa: F401  (re-exported)
    CAPSULE_PAIRS,
    CAPSULES,
    segment_distance,
    self_intersecting,
)
from disrt_core.sim.kinematics import forward_joints, global_rotations  # noqa: F401  (re-exported)

_T = math.pi / 3
_C = (-1.5516, 2.2061), (-2.4557, 0.7627), (-1.5708, 2.1886)  # left collar+shoulder total
_CR = (-1.5516, 2.2061), (-0.7627, 2.4557), (-2.1886, 1.5708)  # right
_SPINE = ((-_T, _T), (-math.pi / 36, math.pi / 36), (-math.pi / 36, math.pi / 36))
_SMALL = ((-0.01, 0.01),) * 3
_WRIST = ((-math.pi / 6, math.pi / 6),) * 3


def _scaled(bounds, factor):
    return tuple((lo * factor, hi * factor) for lo, hi in bounds)


#: Bounds (lo, hi) in radians per body joint 1..23 and axis, SPEC §1.3 (before its ×2).
JOINT_LIMITS = torch.tensor([
    ((-1.5794, 0.3098), (-0.5882, 0.5690), (-0.5323, 0.6737)),  # 1 left hip
    ((-1.5794, 0.3098), (-0.5690, 0.5882), (-0.6737, 0.5323)),  # 2 right hip
    _SPINE,  # 3 spine1
    ((-0.02269, 2.4417), (-0.01, 0.01), (-0.01, 0.01)),  # 4 left knee
    ((-0.02269, 2.4417), (-0.01, 0.01), (-0.01, 0.01)),  # 5 right knee
    _SPINE, _WRIST, _WRIST, _SPINE, _SMALL, _SMALL, _SPINE,  # 6 spine2 .. 12 neck
    _scaled(_C, 1 / 3), _scaled(_CR, 1 / 3), _SPINE,  # 13, 14 collars, 15 head
    _scaled(_C, 2 / 3), _scaled(_CR, 2 / 3),  # 16, 17 shoulders
    ((-0.01, 0.01), (-2.5709, 0.0480), (-0.01, 0.01)),  # 18 left elbow
    ((-0.01, 0.01), (-0.0480, 2.5709), (-0.01, 0.01)),  # 19 right elbow
    _WRIST, _WRIST, _SMALL, _SMALL,  # 20, 21 wrists, 22, 23 hands
])  # fmt: skip

J = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}

#: Arm configurations: degree ranges of abduction, forward flexion, humeral twist, elbow.
ARMS: dict[str, dict[str, tuple[float, float]]] = {
    "side": {"alpha": (2, 15), "phi": (-15, -2), "tau": (-90, 60), "elbow": (0, 25)},
    "belly": {"alpha": (8, 25), "phi": (10, 35), "tau": (40, 75), "elbow": (75, 105)},
    "chest": {"alpha": (15, 40), "phi": (20, 45), "tau": (50, 80), "elbow": (110, 140)},
    "crossed": {"alpha": (15, 35), "phi": (25, 45), "tau": (75, 95), "elbow": (95, 125)},
    "overhead": {"alpha": (120, 170), "phi": (-15, 0), "tau": (-100, -70), "elbow": (20, 130)},
    "out": {"alpha": (20, 45), "phi": (-15, -2), "tau": (80, 100), "elbow": (0, 80)},
    "forward": {"alpha": (20, 70), "phi": (45, 90), "tau": (-30, 30), "elbow": (0, 110)},
    "pillow": {"alpha": (115, 150), "phi": (-8, 0), "tau": (-95, -70), "elbow": (110, 140)},
    # The humerus turned out (τ < 0): each hand on its own thigh (sitting.py says why).
    "lap": {"alpha": (5, 20), "phi": (35, 50), "tau": (-45, -20), "elbow": (65, 85)},
    "prop": {"alpha": (15, 30), "phi": (-30, -10), "tau": (-30, 30), "elbow": (0, 15)},
    "cradle": {"alpha": (140, 180), "phi": (70, 85), "tau": (-90, -70), "elbow": (128, 145)},
}
#: Leg configurations: degree ranges of hip flexion, abduction, external rotation, knee.
#: ``knee_up`` draws its knee as 2·flex + U(knee range).
LEGS: dict[str, dict[str, tuple[float, float]]] = {
    "straight": {"flex": (-10, 0), "abd": (-3, 12), "rot": (-15, 25), "knee": (0, 12)},
    "knee_up": {"flex": (30, 65), "abd": (-5, 10), "rot": (-10, 10), "knee": (0, 20)},
    "frog": {"flex": (10, 30), "abd": (20, 36), "rot": (20, 32), "knee": (40, 90)},
    "crossed": {"flex": (-6, 4), "abd": (-22, -10), "rot": (-10, 10), "knee": (0, 12)},
    "bent": {"flex": (25, 85), "abd": (-5, 10), "rot": (-10, 10), "knee": (40, 115)},
    "recovery": {"flex": (40, 75), "abd": (20, 34), "rot": (10, 30), "knee": (60, 110)},
    "hanging": {"flex": (80, 90), "abd": (0, 12), "rot": (0, 0), "knee": (80, 105)},
}
ARM_CLASSES = tuple(ARMS)
#: [choice] The top arm of a lateral body in the *side* class: along the flank a little in
#: front of it, the elbow a little bent, so that the hand lies on the hip or thigh (or in
#: front of them on the mattress) as a side sleeper's does; drawn from the same random
#: numbers as *side* (only the ranges differ). Hanging straight or behind the flank, the
#: hand reached past the hip into the air behind the buttocks where no turn within the
#: joint limits lays it on anything (the settling swung it back against its limits).
TOP_SIDE = {"alpha": (2, 15), "phi": (8, 25), "tau": (-30, 30), "elbow": (15, 45)}
LEG_CLASSES = tuple(LEGS)

#: Per posture: probabilities of (left arm, right arm) pairs and (left leg, right leg) pairs.
#: Lateral tables are written for the body's lower ("bottom") side first; ``crossed`` arms
#: always come as a pair.
POSTURE_TABLE: dict[str, dict[str, list[tuple[tuple[str, str], float]]]] = {
    "supine": {
        "arms": [(("side", "side"), 0.22), (("side", "belly"), 0.08), (("belly", "side"), 0.08),
                 (("belly", "belly"), 0.06), (("chest", "side"), 0.05), (("side", "chest"), 0.05),
                 (("chest", "belly"), 0.03), (("crossed", "crossed"), 0.07),
                 (("overhead", "side"), 0.05), (("side", "overhead"), 0.05),
                 (("overhead", "overhead"), 0.04), (("out", "out"), 0.05),
                 (("out", "side"), 0.03), (("side", "out"), 0.03), (("out", "belly"), 0.03),
                 (("belly", "out"), 0.03), (("pillow", "side"), 0.04),
                 (("side", "pillow"), 0.04), (("pillow", "pillow"), 0.03),
                 (("pillow", "belly"), 0.02), (("belly", "pillow"), 0.02)],
        "legs": [(("straight", "straight"), 0.42), (("knee_up", "straight"), 0.1),
                 (("straight", "knee_up"), 0.1), (("knee_up", "knee_up"), 0.08),
                 (("frog", "straight"), 0.06), (("straight", "frog"), 0.06),
                 (("crossed", "straight"), 0.09), (("straight", "crossed"), 0.09)],
    },
    "lateral": {  # (bottom, top)
        "arms": [(("forward", "side"), 0.28), (("forward", "forward"), 0.22),
                 (("overhead", "side"), 0.1), (("overhead", "forward"), 0.08),
                 (("forward", "overhead"), 0.07), (("cradle", "side"), 0.13),
                 (("cradle", "forward"), 0.12)],
        "legs": [(("bent", "bent"), 0.45), (("straight", "bent"), 0.3),
                 (("straight", "straight"), 0.25)],
    },
    "prone": {
        "arms": [(("side", "side"), 0.25), (("out", "out"), 0.07), (("out", "side"), 0.07),
                 (("overhead", "side"), 0.1), (("side", "overhead"), 0.1),
                 (("overhead", "overhead"), 0.1), (("pillow", "pillow"), 0.15),
                 (("pillow", "side"), 0.08), (("side", "pillow"), 0.08)],
        "legs": [(("straight", "straight"), 0.5), (("frog", "straight"), 0.12),
                 (("straight", "frog"), 0.12), (("recovery", "straight"), 0.13),
                 (("straight", "recovery"), 0.13)],
    },
}

#: Root orientation about the canonical head axis (y) per posture, radians.
POSTURE_ROLL = {SUPINE: 0.0, LEFT: math.pi / 2, RIGHT: -math.pi / 2, PRONE: math.pi}
DEFAULT_POSTURE_WEIGHTS = (0.25, 0.25, 0.25, 0.25)  # supine, left, right, prone
TURN_SHARE = 0.3  # bodies in a ¾ turn
#: [choice] Spine flexion per joint (±, degrees) of a body lying on its back or front, whose
#: spine lies along the mattress: ±8° at each of the three spine joints (as for a side
#: sleeper, whose sagittal curl the mattress does not meet) bent the upper trunk up to 24°
#: into or off the mattress, and the settling then curled the neck 50-70° to bring the head
#: to rest (supine without a pillow: the neck-to-head line 52° above level, median).
SPINE_FLAT_DEG = 3.0
TURN_DEG = (30.0, 42.0)  # roll of a ¾ turn away from the posture's own


@dataclass
class SemanticPose:
    """A batch of sampled poses (semantic, SMPL T-pose convention; radians)."""

    posture: Tensor  # [B] long, POSTURES index
    root_orient: Tensor  # [B,3] axis-angle, canonical -> bed frame
    body_pose: Tensor  # [B,69] joints 1..23, clipped to JOINT_LIMITS
    arm_class: Tensor  # [B,2] long, ARM_CLASSES index (left, right)
    leg_class: Tensor  # [B,2] long, LEG_CLASSES index (left, right)


def _uniform(lo_hi: Tensor, gen: torch.Generator) -> Tensor:
    """U(lo, hi) per row of lo_hi [..., 2] (degrees in, radians out)."""
    u = torch.rand(lo_hi.shape[:-1], generator=gen, device=lo_hi.device)
    return torch.deg2rad(lo_hi[..., 0] + u * (lo_hi[..., 1] - lo_hi[..., 0]))


def _axis_rot(axis: int, angle: Tensor) -> Tensor:
    """Rotation matrices [...,3,3] by ``angle`` [...] about coordinate axis ``axis`` (right
    hand): written out, a handful of operations where Rodrigues' formula takes dozens."""
    c, s = angle.cos(), angle.sin()
    i, j = ((1, 2), (2, 0), (0, 1))[axis]  # the plane it turns: e_i -> cos e_i + sin e_j
    entries = {(axis, axis): torch.ones_like(angle), (i, i): c, (j, j): c, (i, j): -s, (j, i): s}
    zero = torch.zeros_like(angle)
    return torch.stack([entries.get((r, k), zero) for r in range(3) for k in range(3)],
                       -1).view(*angle.shape, 3, 3)


def mirror(rotvec: Tensor) -> Tensor:
    """Left-side rotation -> the mirrored right-side one (reflection x -> −x): (x, −y, −z)."""
    return rotvec * const((1.0, -1.0, -1.0), rotvec.device, rotvec.dtype)


def arm_rotations(alpha, phi, tau, elbow) -> tuple[Tensor, Tensor, Tensor]:
    """Left-arm (collar, shoulder, elbow) axis-angles [B,3] from the class parameters
    (radians): upper arm along ``(sin α cos φ, −cos α cos φ, sin φ)``, twisted by τ about
    its own axis, elbow flexed by ``elbow`` (forward in the twisted frame)."""
    d = torch.stack([alpha.sin() * phi.cos(), -alpha.cos() * phi.cos(), phi.sin()], -1)
    total = roma.rotmat_to_rotvec(align_x(d) @ _axis_rot(0, tau))
    zeros = torch.zeros_like(elbow)
    return total / 3.0, total * (2.0 / 3.0), torch.stack([zeros, -elbow, zeros], -1)


def leg_rotations(flex, abd, rot, knee) -> tuple[Tensor, Tensor]:
    """Left-leg (hip, knee) axis-angles [B,3]: thigh flexed forward by ``flex``, abducted by
    ``abd``, turned out by ``rot`` about its own axis; knee flexed by ``knee``."""
    hip = _axis_rot(2, abd) @ _axis_rot(0, -flex) @ _axis_rot(1, rot)
    zeros = torch.zeros_like(knee)
    return roma.rotmat_to_rotvec(hip), torch.stack([knee, zeros, zeros], -1)


def _table(posture_name: str, kind: str, names: tuple[str, ...], device):
    rows = POSTURE_TABLE[posture_name][kind]
    pairs = const(tuple((names.index(a), names.index(b)) for (a, b), _ in rows), device)
    probs = const(tuple(p for _, p in rows), device)
    return pairs, probs / probs.sum()


class PosePrior:
    """Samples :class:`SemanticPose` batches (see the module docstring for the model).

    posture_weights: probabilities of supine, left, right, prone.
    yaw_deg, roll_deg, pitch_deg: half-ranges of the uniform root perturbations (roll_deg
    for lateral postures, flat_roll_deg for supine and prone).
    turn_share, turn_deg: the share of ¾ turns and the (lo, hi) of their roll (degrees).
    """

    def __init__(self, posture_weights=DEFAULT_POSTURE_WEIGHTS, yaw_deg: float = 8.0,
                 roll_deg: float = 25.0, pitch_deg: float = 4.0,
                 flat_roll_deg: float = 12.0, turn_share: float = TURN_SHARE,
                 turn_deg: tuple[float, float] = TURN_DEG) -> None:
        if len(posture_weights) != len(POSTURES) or min(posture_weights) < 0:
            raise ValueError(f"posture_weights needs {len(POSTURES)} non-negative weights "
                             f"({', '.join(POSTURES)}), got {posture_weights}")
        if roll_deg >= 45 or max(turn_deg) >= 45:
            raise ValueError("roll_deg and turn_deg must stay below 45° or postures change "
                             "class")
        self.posture_weights = torch.tensor(posture_weights, dtype=torch.float32)
        self.yaw, self.roll, self.pitch, self.flat_roll = (
            math.radians(a) for a in (yaw_deg, roll_deg, pitch_deg, flat_roll_deg))
        self.turn_share = float(turn_share)
        self.turn = tuple(math.radians(a) for a in turn_deg)
        self.arm_ranges = torch.tensor([[ARMS[a][k] for k in ("alpha", "phi", "tau", "elbow")]
                                        for a in ARM_CLASSES], dtype=torch.float32)
        self.top_side_ranges = torch.tensor([TOP_SIDE[k] for k in ("alpha", "phi", "tau",
                                                                   "elbow")])
        self.leg_ranges = torch.tensor([[LEGS[a][k] for k in ("flex", "abd", "rot", "knee")]
                                        for a in LEG_CLASSES], dtype=torch.float32)

    def sample_posture(self, n: int, gen: torch.Generator, device="cpu") -> Tensor:
        """Posture indices [n]."""
        weights = const(self.posture_weights, device)
        return torch.multinomial(weights, n, replacement=True, generator=gen)

    def sample(self, n: int, gen: torch.Generator, device="cpu",
               posture: Tensor | None = None, pillow: Tensor | None = None) -> SemanticPose:
        """``n`` poses; ``posture`` [n] forces the classes (they are drawn anyway, so the
        random stream, and thus everything else, does not depend on forcing). ``pillow``
        [n] bool: whether a head pillow lies there (lateral bodies without one lay the lower
        arm under the head); None = a pillow everywhere."""
        drawn = self.sample_posture(n, gen, device)
        posture = drawn if posture is None else posture.to(device).long()
        root = self._root(posture, gen)
        arm_class, leg_class = self._classes(posture, gen, device)
        lateral = (posture == LEFT) | (posture == RIGHT)
        if pillow is not None:  # the lower arm (left for left lateral) under the head
            no_pillow = lateral & ~pillow.to(device).bool()
            bottom = torch.where(posture == LEFT, 0, 1)
            rows = torch.arange(n, device=device)
            arm_class[rows, bottom] = torch.where(no_pillow, ARM_CLASSES.index("cradle"),
                                                  arm_class[rows, bottom])
        pose = torch.zeros(n, 23, 3, device=device)

        def u(*shape):
            return torch.rand(*shape, generator=gen, device=device)

        # Arms: parameters per side, left-side formulas, right side mirrored.
        ranges = on_device(self.arm_ranges, pose)[arm_class]  # [n,2,4,2]
        top_arm = torch.stack([posture == RIGHT, posture == LEFT], 1)  # the upper side's
        top_side = lateral[:, None] & top_arm & (arm_class == ARM_CLASSES.index("side"))
        ranges = torch.where(top_side[..., None, None], on_device(self.top_side_ranges, pose),
                             ranges)
        arm_par = _uniform(ranges, gen)  # [n,2,4]
        # Crossed arms: the second arm lies higher (more flexion) so the forearms stack.
        crossed = arm_class[:, 0] == ARM_CLASSES.index("crossed")
        arm_par[:, 1, 1] += torch.where(crossed, math.radians(20.0), 0.0)
        for side, (collar, shoulder, elbow, wrist) in enumerate(((13, 16, 18, 20),
                                                                (14, 17, 19, 21))):
            c, s, e = arm_rotations(*arm_par[:, side].unbind(-1))
            if side == 1:
                c, s, e = mirror(c), mirror(s), mirror(e)
            pose[:, collar - 1], pose[:, shoulder - 1], pose[:, elbow - 1] = c, s, e
            pose[:, wrist - 1] = (u(n, 3) * 2 - 1) * math.radians(20)

        # Legs.
        leg_par = _uniform(on_device(self.leg_ranges, pose)[leg_class], gen)  # [n,2,4]
        knee_up = leg_class == LEG_CLASSES.index("knee_up")
        leg_par[..., 3] = torch.where(knee_up, 2 * leg_par[..., 0] + leg_par[..., 3],
                                      leg_par[..., 3])
        # The top leg of a lateral posture rests on the lower one: adduct it.
        top = torch.where(posture == LEFT, 1, 0)  # left lateral: the right leg is on top
        adduct = torch.deg2rad(5 + 10 * u(n)) * lateral
        leg_par[torch.arange(n, device=device), top, 1] -= adduct
        for side, (hip, knee, ankle) in enumerate(((1, 4, 7), (2, 5, 8))):
            h, k = leg_rotations(*leg_par[:, side].unbind(-1))
            if side == 1:
                h, k = mirror(h), mirror(k)
            pose[:, hip - 1], pose[:, knee - 1] = h, k
            pose[:, ankle - 1] = (u(n, 3) * 2 - 1) * math.radians(15)

        # Trunk and head: small flexion, more curl when lying on the side.
        curl = torch.where(lateral, math.radians(8.0), 0.0)
        bend = torch.deg2rad(torch.where(lateral, 8.0, SPINE_FLAT_DEG))
        for joint in (3, 6, 9):
            pose[:, joint - 1, 0] = curl + (u(n) * 2 - 1) * bend
            pose[:, joint - 1, 1:] = (u(n, 2) * 2 - 1) * math.radians(4)
        for joint in (12, 15):
            pose[:, joint - 1, 0] = (u(n) * 2 - 1) * math.radians(15)
            pose[:, joint - 1, 1:] = (u(n, 2) * 2 - 1) * math.radians(4)
        # Prone: the head turned to one side (twist about the long axis, module docstring).
        prone = posture == PRONE
        side = torch.where(u(n) < 0.5, -1.0, 1.0)
        twist = torch.stack([5 * u(n), 5 * u(n), 3 + 2 * u(n), 3 + 2 * u(n), 3 + 2 * u(n)], 1)
        for k, joint in enumerate((3, 6, 9, 12, 15)):
            pose[:, joint - 1, 1] = torch.where(prone, side * torch.deg2rad(twist[:, k]),
                                                pose[:, joint - 1, 1])

        limits = on_device(JOINT_LIMITS, pose)
        pose = torch.maximum(torch.minimum(pose, limits[..., 1]), limits[..., 0])
        return SemanticPose(posture, root, pose.reshape(n, 69), arm_class, leg_class)

    def _root(self, posture: Tensor, gen: torch.Generator) -> Tensor:
        n, device = posture.shape[0], posture.device
        u = torch.rand(n, 5, generator=gen, device=device)
        base = const(tuple(POSTURE_ROLL[i] for i in range(len(POSTURES))), device)
        lateral = (posture == LEFT) | (posture == RIGHT)
        roll = (u[:, 0] * 2 - 1) * torch.where(lateral, self.roll, self.flat_roll)
        lo, hi = self.turn
        turn = torch.where(u[:, 0] < 0.5, -1.0, 1.0) * (lo + (hi - lo) * u[:, 4])
        roll = base[posture] + torch.where(u[:, 3] < self.turn_share, turn, roll)
        rot = (_axis_rot(2, u[:, 1] * self.yaw) @ _axis_rot(1, roll)
               @ _axis_rot(0, u[:, 2] * self.pitch))
        return roma.rotmat_to_rotvec(rot)

    def _classes(self, posture: Tensor, gen: torch.Generator, device) -> tuple[Tensor, Tensor]:
        n = posture.shape[0]
        arm = torch.zeros(n, 2, dtype=torch.long, device=device)
        leg = torch.zeros(n, 2, dtype=torch.long, device=device)
        for kind, names, out in (("arms", ARM_CLASSES, arm), ("legs", LEG_CLASSES, leg)):
            for table, members in (("supine", (SUPINE,)), ("lateral", (LEFT, RIGHT)),
                                   ("prone", (PRONE,))):
                pairs, probs = _table(table, kind, names, device)
                pick = pairs[torch.multinomial(probs, n, replacement=True, generator=gen)]
                if table == "lateral":  # tables list (bottom, top); left lateral: left down
                    pick = torch.where((posture == RIGHT)[:, None], pick.flip(-1), pick)
                mask = torch.zeros_like(posture, dtype=torch.bool)
                for m in members:
                    mask |= posture == m
                out[:] = torch.where(mask[:, None], pick, out)
        return arm, leg
