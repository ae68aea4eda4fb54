"""In-bed pose prior: postures, limb configurations, joint limits, self-intersection check.

**Semantic pose.** The prior writes joint rotations the way SMPL defines them: axis-angles
in SMPL's canonical axes (x to the body's left, y up the spine, z out of the chest), each
joint's rotation expressed in world-aligned axes about its head and composed down the chain,
with the **T-pose** as zero. Every sampled rotation is clipped to ``JOINT_LIMITS``, the
per-joint bounds of SPEC §1.3 (the decoder squashes predictions into twice these). Both body
backends take this semantic pose as their parameter vector (Anny's backend turns its A-pose
rest into the T-pose internally, see ``disrt_core.body.anny``).

**Postures** (``disrt_core.posture.POSTURES`` order) and their root orientation (canonical ->
bed frame): supine = identity (head to +y, chest up), left lateral = +90° about the head
axis (the body's left side down), right lateral = −90°, prone = 180°; then a roll about the
head axis (±30° lateral, ±12° supine and prone; below 45° so that
``posture_from_axis_angle`` returns the class), a pitch of ±4° and
a yaw about the bed's vertical of ±8°.

**Limb configurations** (per arm / per leg, chosen per posture with the probabilities in
``POSTURE_TABLE``; angles in degrees, uniform in the ranges of ``ARMS`` / ``LEGS``):

* arms (shoulder + collar as one rotation, split ⅓ collar / ⅔ shoulder like the limits):
  *side* (along the body), *belly* / *chest* (hand on the abdomen / chest: arm forward,
  humerus turned in, elbow bent), *crossed* (both forearms across the trunk, one arm higher),
  *overhead* (arm above the head, forearm toward the midline), *out* (abducted 20–45°,
  forearm down), *forward* (lateral lying: arm in front of the chest). Wider arm poses
  (a "goalpost", arms spread) do not fit on a 0.9 m mattress and are left out. An arm is
  parameterised by abduction ``alpha`` in the coronal plane (0 = down along the body,
  90 = T-pose, 180 = overhead), forward flexion ``phi`` toward the chest side, humeral
  twist ``tau`` (positive turns the elbow's flexion plane toward the body's midline) and
  elbow flexion ``elbow``. Resting arms (side, out, overhead) point slightly backward so
  that settling (:mod:`placement`) lays them on the mattress.
* legs: *straight* (slightly extended, settled onto the mattress), *knee_up* (hip flexed,
  knee bent about twice as much plus up to 20°, so the foot reaches the mattress), *frog*
  (knee bent and fallen outward), *crossed* (one leg adducted over the other at the
  ankles), *bent* (lateral lying: hip and knee flexed); the top leg of a lateral posture
  is adducted 5–15° so that it rests on the lower one. Parameters: hip flexion ``flex``,
  abduction ``abd``, external rotation ``rot`` and knee flexion ``knee``.
* spine, neck and head get small random flexion (more curl in lateral postures), wrists and
  ankles small random rotations, feet and hands stay at their (±0.01 rad) rest.

**Self-intersection**: :func:`self_intersecting` approximates limbs and trunk by capsules
between joints and flags poses where two non-adjacent capsules' axes come closer than half
the sum of their radii (gross interpenetration only; a hand resting on the chest passes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import roma
import torch
from torch import Tensor

from disrt_core.body.rotations import align_x
from disrt_core.body.skeleton import SMPL_JOINT_NAMES, SMPL_PARENTS
from disrt_core.posture import LEFT, POSTURES, PRONE, RIGHT, SUPINE

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
}
#: Leg configurations: degree ranges of hip flexion, abduction, external rotation, knee.
#: ``knee_up`` draws its knee as 2·flex + U(knee range).
LEGS: dict[str, dict[str, tuple[float, float]]] = {
    "straight": {"flex": (-10, 0), "abd": (-3, 12), "rot": (-15, 25), "knee": (0, 12)},
    "knee_up": {"flex": (30, 65), "abd": (-5, 10), "rot": (-10, 10), "knee": (0, 20)},
    "frog": {"flex": (10, 30), "abd": (20, 36), "rot": (20, 32), "knee": (40, 90)},
    "crossed": {"flex": (-6, 4), "abd": (-22, -10), "rot": (-10, 10), "knee": (0, 12)},
    "bent": {"flex": (25, 85), "abd": (-5, 10), "rot": (-10, 10), "knee": (40, 115)},
}
ARM_CLASSES = tuple(ARMS)
LEG_CLASSES = tuple(LEGS)

#: Per posture: probabilities of (left arm, right arm) pairs and (left leg, right leg) pairs.
#: Lateral tables are written for the body's lower ("bottom") side first; ``crossed`` arms
#: always come as a pair.
POSTURE_TABLE: dict[str, dict[str, list[tuple[tuple[str, str], float]]]] = {
    "supine": {
        "arms": [(("side", "side"), 0.25), (("side", "belly"), 0.08), (("belly", "side"), 0.08),
                 (("belly", "belly"), 0.06), (("chest", "side"), 0.05), (("side", "chest"), 0.05),
                 (("chest", "belly"), 0.03), (("crossed", "crossed"), 0.07),
                 (("overhead", "side"), 0.06), (("side", "overhead"), 0.06),
                 (("overhead", "overhead"), 0.05), (("out", "out"), 0.06),
                 (("out", "side"), 0.03), (("side", "out"), 0.03), (("out", "belly"), 0.03),
                 (("belly", "out"), 0.03)],
        "legs": [(("straight", "straight"), 0.45), (("knee_up", "straight"), 0.1),
                 (("straight", "knee_up"), 0.1), (("knee_up", "knee_up"), 0.08),
                 (("frog", "straight"), 0.06), (("straight", "frog"), 0.06),
                 (("crossed", "straight"), 0.075), (("straight", "crossed"), 0.075)],
    },
    "lateral": {  # (bottom, top)
        "arms": [(("forward", "side"), 0.35), (("forward", "forward"), 0.3),
                 (("overhead", "side"), 0.15), (("overhead", "forward"), 0.1),
                 (("forward", "overhead"), 0.1)],
        "legs": [(("bent", "bent"), 0.45), (("straight", "bent"), 0.3),
                 (("straight", "straight"), 0.25)],
    },
    "prone": {
        "arms": [(("side", "side"), 0.35), (("out", "out"), 0.1), (("out", "side"), 0.1),
                 (("overhead", "side"), 0.15), (("side", "overhead"), 0.15),
                 (("overhead", "overhead"), 0.15)],
        "legs": [(("straight", "straight"), 0.6), (("frog", "straight"), 0.2),
                 (("straight", "frog"), 0.2)],
    },
}

#: Root orientation about the canonical head axis (y) per posture, radians.
POSTURE_ROLL = {SUPINE: 0.0, LEFT: math.pi / 2, RIGHT: -math.pi / 2, PRONE: math.pi}
DEFAULT_POSTURE_WEIGHTS = (0.4, 0.25, 0.25, 0.1)  # supine, left, right, prone


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
    """Rotation matrices [B,3,3] about a coordinate axis."""
    rv = torch.zeros(*angle.shape, 3, device=angle.device, dtype=angle.dtype)
    rv[..., axis] = angle
    return roma.rotvec_to_rotmat(rv)


def mirror(rotvec: Tensor) -> Tensor:
    """Left-side rotation -> the mirrored right-side one (reflection x -> −x): (x, −y, −z)."""
    return rotvec * rotvec.new_tensor([1.0, -1.0, -1.0])


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
    pairs = torch.tensor([[names.index(a), names.index(b)] for (a, b), _ in rows], device=device)
    probs = torch.tensor([p for _, p in rows], device=device)
    return pairs, probs / probs.sum()


class PosePrior:
    """Samples :class:`SemanticPose` batches (see the module docstring for the model).

    posture_weights: probabilities of supine, left, right, prone.
    yaw_deg, roll_deg, pitch_deg: half-ranges of the uniform root perturbations (roll_deg
    for lateral postures, flat_roll_deg for supine and prone).
    """

    def __init__(self, posture_weights=DEFAULT_POSTURE_WEIGHTS, yaw_deg: float = 8.0,
                 roll_deg: float = 30.0, pitch_deg: float = 4.0,
                 flat_roll_deg: float = 12.0) -> None:
        if len(posture_weights) != len(POSTURES) or min(posture_weights) < 0:
            raise ValueError(f"posture_weights needs {len(POSTURES)} non-negative weights "
                             f"({', '.join(POSTURES)}), got {posture_weights}")
        if roll_deg >= 45:
            raise ValueError("roll_deg must stay below 45° or postures change class")
        self.posture_weights = torch.tensor(posture_weights, dtype=torch.float32)
        self.yaw, self.roll, self.pitch, self.flat_roll = (
            math.radians(a) for a in (yaw_deg, roll_deg, pitch_deg, flat_roll_deg))
        self.arm_ranges = torch.tensor([[ARMS[a][k] for k in ("alpha", "phi", "tau", "elbow")]
                                        for a in ARM_CLASSES], dtype=torch.float32)
        self.leg_ranges = torch.tensor([[LEGS[a][k] for k in ("flex", "abd", "rot", "knee")]
                                        for a in LEG_CLASSES], dtype=torch.float32)

    def sample_posture(self, n: int, gen: torch.Generator, device="cpu") -> Tensor:
        """Posture indices [n]."""
        weights = self.posture_weights.to(device)
        return torch.multinomial(weights, n, replacement=True, generator=gen)

    def sample(self, n: int, gen: torch.Generator, device="cpu",
               posture: Tensor | None = None) -> SemanticPose:
        """``n`` poses; ``posture`` [n] forces the classes (they are drawn anyway, so the
        random stream, and thus everything else, does not depend on forcing)."""
        drawn = self.sample_posture(n, gen, device)
        posture = drawn if posture is None else posture.to(device).long()
        root = self._root(posture, gen)
        arm_class, leg_class = self._classes(posture, gen, device)
        pose = torch.zeros(n, 23, 3, device=device)

        def u(*shape):
            return torch.rand(*shape, generator=gen, device=device)

        lateral = (posture == LEFT) | (posture == RIGHT)

        # Arms: parameters per side, left-side formulas, right side mirrored.
        arm_par = _uniform(self.arm_ranges.to(device)[arm_class], gen)  # [n,2,4]
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
        leg_par = _uniform(self.leg_ranges.to(device)[leg_class], gen)  # [n,2,4]
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
        for joint in (3, 6, 9):
            pose[:, joint - 1, 0] = curl + (u(n) * 2 - 1) * math.radians(8)
            pose[:, joint - 1, 1:] = (u(n, 2) * 2 - 1) * math.radians(4)
        for joint in (12, 15):
            pose[:, joint - 1, 0] = (u(n) * 2 - 1) * math.radians(15)
            pose[:, joint - 1, 1:] = (u(n, 2) * 2 - 1) * math.radians(4)

        limits = JOINT_LIMITS.to(device)
        pose = torch.maximum(torch.minimum(pose, limits[..., 1]), limits[..., 0])
        return SemanticPose(posture, root, pose.reshape(n, 69), arm_class, leg_class)

    def _root(self, posture: Tensor, gen: torch.Generator) -> Tensor:
        n, device = posture.shape[0], posture.device
        u = torch.rand(n, 3, generator=gen, device=device) * 2 - 1
        base = torch.tensor([POSTURE_ROLL[i] for i in range(len(POSTURES))], device=device)
        lateral = (posture == LEFT) | (posture == RIGHT)
        roll = base[posture] + u[:, 0] * torch.where(lateral, self.roll, self.flat_roll)
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


def global_rotations(root_rotmat: Tensor, body_pose: Tensor) -> Tensor:
    """World rotations [B,24,3,3] of every joint's frame: SMPL's kinematic chain with
    world-aligned joint rotations (as both backends use); body_pose [B,69]."""
    local = roma.rotvec_to_rotmat(body_pose.reshape(body_pose.shape[0], 23, 3))
    glob = [root_rotmat]
    for j in range(1, 24):
        glob.append(glob[SMPL_PARENTS[j]] @ local[:, j - 1])
    return torch.stack(glob, 1)


def forward_joints(rest: Tensor, body_pose: Tensor, root_rotmat: Tensor,
                   transl: Tensor) -> Tensor:
    """Posed joints [B,24,3] from rest joints [B,24,3] (canonical), body pose
    [B,69], root rotation [B,3,3] and pelvis position [B,3], no mesh."""
    glob = global_rotations(root_rotmat, body_pose)
    pos = [transl]
    for j in range(1, 24):
        p = SMPL_PARENTS[j]
        pos.append(pos[p] + (glob[:, p] @ (rest[:, j] - rest[:, p])[..., None])[..., 0])
    return torch.stack(pos, 1)


#: Capsules (joint a, joint b, radius in m for a 1.75 m adult).
CAPSULES = {
    "trunk_low": (0, 6, 0.10), "trunk_high": (6, 12, 0.10), "head": (12, 15, 0.085),
    "l_upper": (16, 18, 0.045), "r_upper": (17, 19, 0.045),
    "l_fore": (18, 20, 0.035), "r_fore": (19, 21, 0.035),
    "l_hand": (20, 22, 0.03), "r_hand": (21, 23, 0.03),
    "l_thigh": (1, 4, 0.07), "r_thigh": (2, 5, 0.07),
    "l_shin": (4, 7, 0.045), "r_shin": (5, 8, 0.045),
    "l_foot": (7, 10, 0.035), "r_foot": (8, 11, 0.035),
}  # fmt: skip
#: Capsule pairs that must not interpenetrate grossly.
CAPSULE_PAIRS = [
    ("l_fore", "r_fore"), ("l_hand", "r_hand"), ("l_hand", "r_fore"), ("r_hand", "l_fore"),
    ("l_upper", "trunk_high"), ("r_upper", "trunk_high"), ("l_fore", "head"),
    ("r_fore", "head"), ("l_hand", "head"), ("r_hand", "head"), ("l_upper", "head"),
    ("r_upper", "head"), ("l_thigh", "r_thigh"), ("l_shin", "r_shin"), ("l_foot", "r_foot"),
    ("l_shin", "r_thigh"), ("r_shin", "l_thigh"), ("l_fore", "l_thigh"),
    ("r_fore", "r_thigh"), ("l_hand", "trunk_low"), ("r_hand", "trunk_low"),
    ("l_fore", "trunk_low"), ("r_fore", "trunk_low"),
]


def segment_distance(p0: Tensor, p1: Tensor, q0: Tensor, q1: Tensor) -> Tensor:
    """Closest distance between segments p0-p1 and q0-q1 ([..., 3] each), batched."""
    d1, d2, r = p1 - p0, q1 - q0, p0 - q0
    a, e = (d1 * d1).sum(-1).clamp(min=1e-12), (d2 * d2).sum(-1).clamp(min=1e-12)
    b, c, f = (d1 * d2).sum(-1), (d1 * r).sum(-1), (d2 * r).sum(-1)
    denom = a * e - b * b
    s = torch.where(denom > 1e-12, ((b * f - c * e) / denom.clamp(min=1e-12)).clamp(0, 1),
                    torch.zeros_like(a))
    t = (b * s + f) / e
    s = torch.where(t < 0, (-c / a).clamp(0, 1), torch.where(t > 1, ((b - c) / a).clamp(0, 1), s))
    t = t.clamp(0, 1)
    return ((p0 + d1 * s[..., None]) - (q0 + d2 * t[..., None])).norm(dim=-1)


def self_intersecting(joints: Tensor, scale: Tensor | None = None,
                      tolerance: float = 0.5) -> Tensor:
    """Bool [B]: some capsule pair of ``CAPSULE_PAIRS`` is closer than ``tolerance`` × the
    sum of their radii (scaled by ``scale`` [B], body height / 1.75 m)."""
    a = torch.tensor([CAPSULES[p][0] for p, _ in CAPSULE_PAIRS], device=joints.device)
    b = torch.tensor([CAPSULES[p][1] for p, _ in CAPSULE_PAIRS], device=joints.device)
    c = torch.tensor([CAPSULES[q][0] for _, q in CAPSULE_PAIRS], device=joints.device)
    d = torch.tensor([CAPSULES[q][1] for _, q in CAPSULE_PAIRS], device=joints.device)
    radius = torch.tensor([CAPSULES[p][2] + CAPSULES[q][2] for p, q in CAPSULE_PAIRS],
                          device=joints.device)
    dist = segment_distance(joints[:, a], joints[:, b], joints[:, c], joints[:, d])
    if scale is not None:
        radius = radius * scale[:, None]
    return (dist < tolerance * radius).any(-1)
