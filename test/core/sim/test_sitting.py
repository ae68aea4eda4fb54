"""Bodies sitting on the bed's edge (disrt_core.sim.sitting): lap hands apart, no
self-intersection before or after the settling."""

import roma
import torch

from disrt_core.sim import SceneGenerator, SimConfig
from disrt_core.sim.capsules import self_intersecting
from disrt_core.sim.poses import ARM_CLASSES, forward_joints
from disrt_core.sim.sitting import sample_sitting


def test_lap_hands_lie_apart_on_their_own_thighs(sim_generator):
    # Lap arms turned the humerus in, so the two hands met at or crossed the midline and
    # passed through each other (a quarter of the lap-lap draws self-intersected; the
    # settling keeps such pairs no closer, so they stayed). Each hand now lies on its own
    # thigh, ahead of the hips.
    gen, n = sim_generator, 512
    rng = torch.Generator().manual_seed(0)
    scale = 0.85 + 0.3 * torch.rand(n, generator=rng)
    floor = -0.35 - 0.3 * torch.rand(n, generator=rng)
    sit = sample_sitting(n, rng, gen.rest_joints, scale, torch.full((n,), 0.9),
                         torch.full((n,), 2.0), floor)
    rest = gen.rest_joints[None] * scale[:, None, None]
    joints = forward_joints(rest, sit.body_pose, roma.rotvec_to_rotmat(sit.root_orient),
                            torch.zeros(n, 3))
    assert not self_intersecting(joints, scale * gen.rest_stature / 1.75).any()
    # In the body's own frame (x to its left, z out of the chest), per 1.75 m body.
    own = forward_joints(rest, sit.body_pose, torch.eye(3).expand(n, 3, 3), torch.zeros(n, 3))
    palm = 0.5 * (own[:, [20, 21]] + own[:, [22, 23]]) / scale[:, None, None]  # [n,2,3]
    lap = sit.arm_class == ARM_CLASSES.index("lap")
    both = lap.all(1)
    assert int(both.sum()) > 60 and int((lap & ~both[:, None]).sum()) > 150
    outward = palm[..., 0] * torch.tensor([1.0, -1.0])  # toward the arm's own side
    assert float(outward[lap].min()) > 0.02, outward[lap].min()
    assert float(palm[..., 2][lap].min()) > 0.3  # ahead of the hips, over the thigh
    apart = (palm[:, 0] - palm[:, 1]).norm(dim=-1)
    assert float(apart[both].min()) > 0.12, apart[both].min()


def test_settled_sitters_do_not_self_intersect(anny_body):
    # These eight sitters (two with lap hands meeting at the midline) self-intersected
    # after the settling before lap hands were drawn apart.
    gen = SceneGenerator(SimConfig(covers=(0,), noise=False, occupancy=(0.0, 0.0, 1.0)),
                         anny_body, "cpu")
    b = gen.sample(8, 48, with_mesh=True)
    assert b["sitting"].all()
    assert not self_intersecting(b["joints"], b["stature"] / 1.75).any()
