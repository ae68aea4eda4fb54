"""The body as the settling sees it (:mod:`disrt_core.sim.rest`): parts, the chains of
joints that turn together, their test vertices, and the poses to redraw.

**Parts** (``PARTS``): trunk, head, each arm, each leg; every vertex belongs to the part of
its nearest bone segment (``SEGMENTS``, on the body model's T-pose). A part's own top
surface is no support for itself.

**Chains** (``CHAINS``): the head (flexion, then side bend, split between the neck and head
joints) and, per limb, (1) the whole limb from its root (shoulder, hip) about the horizontal
axis across it (an arm also about the horizontal long axis of the body, which swings it off
the flank of a side-lying body), (2) the roll of the upper bone (humerus, thigh) about its
own axis, which swings a bent forearm or lower leg up or down, (3) the hinge (elbow, knee).
Each chain is tested on its **test vertices** (at most ``MAX_TEST``): the skin of its
segments beyond ``exclude`` along the bone from its joint (the skin at a joint moves little
when it turns); the last two chains of a limb test only the far end of its lower segment
(hand with wrist, foot with ankle: what must rest), and a limb's root chains lower it until
that far end rests (``end``), no further than its other test vertices allow. Vertices are
kept sorted by segment so that what turns with a chain is one contiguous range (no gathers
in the hot loop).

**Redrawn poses** (:func:`sunk_limbs`): a limb joint more than ``SUNK_MARGIN`` below the
lowest trunk joint (an arm raised on the lower side of a ¾-turned body) reaches further
into the mattress than turning it within the joint limits can lift it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from disrt_core.body.skeleton import SMPL_PARENTS
from disrt_core.constants import const
from disrt_core.sim.poses import ARM_CLASSES

#: Coarse parts (top surfaces, own-part exclusion) and the fine segments (name, part, bones).
PARTS = ("trunk", "head", "left_arm", "right_arm", "left_leg", "right_leg")
SEGMENTS = (
    ("trunk", 0, ((0, 3), (3, 6), (6, 9), (9, 12), (0, 1), (0, 2), (9, 13), (9, 14),
                  (13, 16), (14, 17))),
    ("head", 1, ((12, 15),)),
    ("left_upper_arm", 2, ((16, 18),)), ("left_forearm", 2, ((18, 20), (20, 22))),
    ("right_upper_arm", 3, ((17, 19),)), ("right_forearm", 3, ((19, 21), (21, 23))),
    ("left_thigh", 4, ((1, 4),)), ("left_shin", 4, ((4, 7), (7, 10))),
    ("right_thigh", 5, ((2, 5),)), ("right_shin", 5, ((5, 8), (8, 11))),
)  # fmt: skip
SEG = {name: k for k, (name, _, _) in enumerate(SEGMENTS)}


@dataclass(frozen=True)
class Chain:
    """Joints turned together about one axis: ``"across"`` the horizontal axis across the
    chain (from the pivot to its test vertices' centroid), ``"hinge"`` axis ``index`` (0 x,
    1 y, 2 z) of the first joint's parent frame (flexion of the neck, knee, elbow; the
    neck's side bend), ``"along"`` the bone from the first joint to joint ``index`` (the
    humerus' or thigh's own roll, which swings a bent forearm or lower leg up or down)."""

    name: str
    part: int
    joints: tuple[int, ...]  # pose joints taking the rotation (split equally), root first
    segments: tuple[str, ...]  # whose vertices are tested
    exclude: float  # m: test vertices this far beyond ``near`` along its bone (1.75 m body)
    axis: str = "across"
    index: int = 0
    near: int = -1  # the joint the exclusion is measured from (default: the first joint)
    end: str = ""  # the chain whose test vertices must come to rest (default: its own)


def _limb(side: str, part: int, root: int, mid: int, name: str, upper: str, lower: str,
          hinge: int, exclude: tuple[float, float], swing: bool) -> tuple[Chain, ...]:
    """The chains of a limb: from its root (across it, and for an arm ``swing`` about the
    body's long axis too: off the flank), the roll of its upper bone, its hinge; the last
    two test only the far end of the lower segment (hand, foot: what must rest)."""
    whole, end = (f"{side}_{upper}", f"{side}_{lower}"), f"{side}_{lower}"
    return (Chain(f"{side}_{name}", part, (root,), whole, exclude[0], end=end),
            *((Chain(f"{side}_{name}_swing", part, (root,), whole, exclude[0], "long",
                     end=end),) if swing else ()),
            Chain(f"{side}_{lower}_roll", part, (root,), (f"{side}_{lower}",), exclude[1],
                  "along", mid, mid),
            Chain(f"{side}_{lower}", part, (mid,), (f"{side}_{lower}",), exclude[1], "hinge",
                  hinge, mid))


CHAINS = (
    Chain("head", 1, (12, 15), ("head",), 0.06, "hinge", 0),
    Chain("head_side", 1, (12, 15), ("head",), 0.06, "hinge", 2),
    *_limb("left", 4, 1, 4, "leg", "thigh", "shin", 0, (0.12, 0.25), False),
    *_limb("right", 5, 2, 5, "leg", "thigh", "shin", 0, (0.12, 0.25), False),
    *_limb("left", 2, 16, 18, "arm", "upper_arm", "forearm", 1, (0.08, 0.15), True),
    *_limb("right", 3, 17, 19, "arm", "upper_arm", "forearm", 1, (0.08, 0.15), True),
)
CHAIN = {c.name: k for k, c in enumerate(CHAINS)}
#: Chains whose gap decides whether each limb rests (module docstring): head, distal ones.
REST_CHAINS = ("head", "left_forearm", "right_forearm", "left_shin", "right_shin")

#: Per part: the joint where it hangs on the trunk and the distance (m, 1.75 m body) over
#: which its sinking goes from the trunk's to its own.
LIMB_ROOT = {1: (12, 0.10), 2: (16, 0.30), 3: (17, 0.30), 4: (1, 0.45), 5: (2, 0.45)}
MAX_TEST = 100


class RestModel:
    """Per-vertex segments and parts, and the test vertices of every chain, from a rest
    mesh [V,3] with joints [24,3] (the body model's zero pose, T-pose, canonical frame).

    ``order`` sorts the vertices by segment; ``sorted_tests``, ``moves`` (a (start, end)
    range per chain), ``part_range`` and ``part_sorted`` index that order; ``tests`` and
    ``part`` the model's own."""

    def __init__(self, vertices: Tensor, joints: Tensor) -> None:
        segments, owner = [], []
        for k, (_, _, bones) in enumerate(SEGMENTS):
            segments += bones
            owner += [k] * len(bones)
        a, b = joints[[s for s, _ in segments]], joints[[e for _, e in segments]]
        ab = (b - a)[None]
        t = ((vertices[:, None] - a[None]) * ab).sum(-1) / (ab * ab).sum(-1).clamp(min=1e-12)
        dist = (vertices[:, None] - (a[None] + t.clamp(0, 1)[..., None] * ab)).norm(dim=-1)
        self.segment = torch.tensor(owner, device=vertices.device)[dist.argmin(1)]  # [V]
        self.part = torch.tensor([p for _, p, _ in SEGMENTS], device=vertices.device)[
            self.segment]
        stature = float(vertices[:, 1].amax() - vertices[:, 1].amin())
        self.tests, self.own, self.moves = [], [], []
        for chain in CHAINS:
            mask = torch.zeros_like(self.segment, dtype=torch.bool)
            for name in chain.segments:
                mask |= self.segment == SEG[name]
            near = chain.joints[0] if chain.near < 0 else chain.near
            bone = next(b for seg in chain.segments for b in SEGMENTS[SEG[seg]][2]
                        if b[0] == near)
            along = joints[bone[1]] - joints[near]
            along = ((vertices - joints[near]) * along).sum(-1) / along.norm()
            far = along > chain.exclude * (stature / 1.75)  # the skin at the joint moves little
            idx = (mask & far).nonzero()[:, 0]
            idx = idx[::max(1, math.ceil(len(idx) / MAX_TEST))]
            self.tests.append(idx)
            root, blend = LIMB_ROOT[chain.part]
            dist = (vertices[idx] - joints[root]).norm(dim=-1)
            self.own.append((dist / (blend * stature / 1.75)).clamp(0, 1))
            below = descendants(chain.joints[0])  # the vertices that turn with the chain
            segs = [k for k, (_, _, bones) in enumerate(SEGMENTS)
                    if all(a in below for a, _ in bones)]
            self.moves.append(segs)
        # Sorted by segment: every part, and what turns with every chain, is a range.
        self.order = torch.sort(self.segment, stable=True).indices
        rank = torch.empty_like(self.order)
        rank[self.order] = torch.arange(len(self.order), device=rank.device)
        seg_sorted = self.segment[self.order]
        bounds = torch.searchsorted(seg_sorted, torch.arange(len(SEGMENTS) + 1,
                                                             device=rank.device)).tolist()
        self.part_sorted = self.part[self.order]
        self.sorted_tests = [rank[idx] for idx in self.tests]
        self.moves = [(bounds[min(segs)], bounds[max(segs) + 1]) for segs in self.moves]
        self.part_range = [(bounds[min(k for k, s in enumerate(SEGMENTS) if s[1] == p)],
                            bounds[max(k for k, s in enumerate(SEGMENTS) if s[1] == p) + 1])
                           for p in range(len(PARTS))]

    def to(self, device) -> RestModel:
        for name in ("segment", "part", "order", "part_sorted"):
            setattr(self, name, getattr(self, name).to(device))
        for name in ("tests", "own", "sorted_tests"):
            setattr(self, name, [t.to(device) for t in getattr(self, name)])
        return self


def descendants(joint: int) -> set[int]:
    """The joint and every joint below it in SMPL's tree."""
    out = {joint}
    for j in range(24):
        p = j
        while p > 0:
            p = SMPL_PARENTS[p]
            if p == joint:
                out.add(j)
    return out


def model_of(body) -> RestModel:
    """The :class:`RestModel` of a body model (built from its zero pose once, kept on it)."""
    model = getattr(body, "_rest_model", None)
    if model is None or model.part.device != body.faces.device:
        with torch.no_grad():
            vertices, joints = body(body.zero_params(1))
        model = RestModel(vertices[0], joints[0]).to(vertices.device)
        body._rest_model = model
    return model


def pillow_support(arm_class: Tensor) -> Tensor:
    """Bool [B,len(CHAINS)]: whether the pillow supports each chain; a *pillow* or *cradle*
    arm (class index of :data:`disrt_core.sim.poses.ARM_CLASSES`, arm_class [B,2] left,
    right) goes under it."""
    under = (arm_class == ARM_CLASSES.index("pillow")) | (arm_class == ARM_CLASSES.index(
        "cradle"))
    part = const([c.part for c in CHAINS], arm_class.device)
    ok = torch.ones(arm_class.shape[0], len(CHAINS), dtype=torch.bool, device=arm_class.device)
    for side in (0, 1):  # parts 2, 3: the left and right arm
        ok &= ~(under[:, side, None] & (part == 2 + side)[None])
    return ok


TRUNK_JOINTS = (0, 1, 2, 3, 6, 9, 12, 13, 14, 16, 17)
LIMB_JOINTS = (4, 5, 7, 8, 10, 11, 15, 18, 19, 20, 21, 22, 23)
SUNK_MARGIN = 0.08  # m (1.75 m body)


def sunk_limbs(joints: Tensor, scale: Tensor | None = None) -> Tensor:
    """Bool [B]: a limb joint lies more than ``SUNK_MARGIN`` below the lowest trunk joint
    (joints [B,24,3], bed-frame orientation): the limb would reach deep into the mattress,
    further than turning it within the joint limits can lift it (e.g. an arm raised on the
    lower side of a ¾-turned body); such poses are redrawn."""
    margin = SUNK_MARGIN * (scale if scale is not None else joints.new_ones(joints.shape[0]))
    trunk = joints[:, const(TRUNK_JOINTS, joints.device), 2].amin(1)
    return (joints[:, const(LIMB_JOINTS, joints.device), 2].amin(1) < trunk - margin)
