"""The bodies of a batch before they are skinned: shape, pose and where they lie.

:func:`sample_bodies` draws them (the pose prior's redraws for bodies that do not fit, lie
sunk into the mattress or intersect themselves; sitters on the bed's edge);
:func:`given_bodies` wraps parameters a caller brings. Both return the dict that
:meth:`disrt_core.sim.generator.SceneGenerator.settle` and the rest of the pipeline read.
"""

from __future__ import annotations

import inspect

import roma
import torch
from torch import Tensor

from disrt_core.posture import posture_from_axis_angle
from disrt_core.sim.bodyparts import sunk_limbs
from disrt_core.sim.placement import place_on_mattress
from disrt_core.sim.poses import forward_joints, self_intersecting
from disrt_core.sim.sitting import sample_sitting


def sample_bodies(n: int, gen: torch.Generator, *, prior, shapes, config, layout,
                  rest_joints: Tensor, rest_stature: float, posture: Tensor | None = None,
                  beds=None, sitting: Tensor | None = None) -> dict[str, Tensor]:
    """Shape, pose and placement of ``n`` bodies (parameters with pelvis height 0), on
    ``rest_joints``' device; ``prior``, ``shapes``: the generator's pose prior and
    :class:`~disrt_core.sim.shapes.ShapeSampler`.

    Lying bodies: poses that self-intersect grossly, do not fit on the mattress or
    reach into it (:func:`~disrt_core.sim.bodyparts.sunk_limbs`) are replaced by the
    first of ``max_pose_tries`` more draws (same posture, drawn for every body at once)
    that passes; those left after that
    (``pose_ok`` False: about a quarter of lying bodies, nearly all for a sunk limb,
    which the settling lifts) keep their last draw that does not self-intersect (the
    settling cannot pull interpenetrating limbs apart; the same random numbers). Sitting
    bodies (on the bed's edge, :mod:`disrt_core.sim.sitting`): ``sitting`` [n] bool
    forces them; otherwise each body sits with probability occupancy[2] / (occupancy[0]
    + occupancy[2]) of the config (drawn anyway, as are the sitting poses, so forcing
    leaves the other draws unchanged)."""
    dev = rest_joints.device
    shape, target = shapes.sample(n, gen, dev)
    scale = target / rest_stature
    pillow = beds.pillow[:, 0] > 0 if beds is not None else None
    # Priors that do not know about pillows (the target domain's) are called without.
    takes_pillow = "pillow" in inspect.signature(prior.sample).parameters
    pose = prior.sample(n, gen, dev, posture, **({"pillow": pillow} if takes_pillow else {}))
    width = beds.width if beds is not None else torch.full((n,), 0.9, device=dev)
    length = beds.length if beds is not None else torch.full((n,), 2.0, device=dev)
    floor = beds.floor_z if beds is not None else torch.full((n,), -0.5, device=dev)
    occupancy = getattr(config, "occupancy", (1.0, 0.0, 0.0))
    share = occupancy[2] / max(occupancy[0] + occupancy[2], 1e-12)
    drawn_sit = torch.rand(n, generator=gen, device=dev) < share
    sitting = drawn_sit if sitting is None else sitting.to(dev).bool().expand(n)
    sit = sample_sitting(n, gen, rest_joints, scale, width, length, floor)
    # Every redraw at once, ``max_pose_tries`` per body (same posture): a few large
    # launches instead of as many rounds of small ones (the GPU generator is bound by
    # launches, benchmarks/NOTES.md). Candidate r of body i is row r·n + i.
    tries = config.max_pose_tries
    if tries > 0:
        redo = prior.sample(tries * n, gen, dev, pose.posture.repeat(tries), **(
            {"pillow": pillow.repeat(tries) if pillow is not None else None}
            if takes_pillow else {}))
        cand = [torch.cat([a, b]) for a, b in zip(
            (pose.root_orient, pose.body_pose, pose.arm_class, pose.leg_class),
            (redo.root_orient, redo.body_pose, redo.arm_class, redo.leg_class),
            strict=True)]
    else:
        cand = [pose.root_orient, pose.body_pose, pose.arm_class, pose.leg_class]
    k = tries + 1
    sc = scale.repeat(k)
    rest = rest_joints[None] * sc[:, None, None]
    joints = forward_joints(rest, cand[1], roma.rotvec_to_rotmat(cand[0]),
                            torch.zeros(k * n, 3, device=dev))
    xy, fits = place_on_mattress(joints, width.repeat(k), length.repeat(k), gen, sc)
    clean = (~self_intersecting(joints, sc)).view(k, n)
    ok = (fits.view(k, n) & clean & ~sunk_limbs(joints, sc).view(k, n)) | sitting
    # What redrawing in turn would keep: the first good draw, else the last draw that
    # does not self-intersect, else the last draw (docstring).
    r = torch.arange(k, device=dev)[:, None]
    last_clean = torch.where(clean, r, -1).amax(0)
    pick = torch.where(ok.any(0), torch.where(ok, r, k).amin(0),
                       torch.where(last_clean >= 0, last_clean, k - 1))
    rows = pick * n + torch.arange(n, device=dev)
    root, body_pose, arm, leg = (c[rows] for c in cand)
    xy, ok = xy[rows], ok.view(-1)[rows]
    s = sitting[:, None]
    root = torch.where(s, sit.root_orient, root)
    body_pose = torch.where(s, sit.body_pose, body_pose)
    xy = torch.where(s, sit.xy, xy)
    arm, leg = torch.where(s, sit.arm_class, arm), torch.where(s, sit.leg_class, leg)
    load = torch.where(sitting, sit.mattress_load, torch.ones_like(sit.mattress_load))
    transl = torch.cat([xy, torch.zeros(n, 1, device=dev)], -1)
    params = layout.pack(shape, transl, root, body_pose)
    return {"params": params, "posture": pose.posture, "arm_class": arm,
            "leg_class": leg, "stature": target, "pose_ok": ok, "sitting": sitting,
            "mattress_load": load}


def given_bodies(params: Tensor, layout) -> dict[str, Tensor]:
    """The bodies dict for parameters a caller brings (pelvis height set to 0)."""
    if params.shape[-1] != layout.param_dim:
        raise ValueError(f"params have {params.shape[-1]} values, this generator's body "
                         f"model takes {layout.param_dim}")
    p = layout.unpack(params)
    transl = torch.cat([p.transl[:, :2], torch.zeros_like(p.transl[:, :1])], -1)
    n, dev = params.shape[0], params.device
    none = torch.full((n, 2), -1, dtype=torch.long, device=dev)
    return {"params": layout.pack(p.shape, transl, p.root_orient, p.body_pose),
            "posture": posture_from_axis_angle(p.root_orient), "arm_class": none,
            "leg_class": none, "stature": torch.full((n,), float("nan"), device=dev),
            "pose_ok": torch.ones(n, dtype=torch.bool, device=dev),
            "sitting": torch.zeros(n, dtype=torch.bool, device=dev),
            "mattress_load": torch.ones(n, device=dev)}
