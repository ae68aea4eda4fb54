"""The head end from the person (``disrt_core.head_end``): the turn of the bed frame against
the resampling, the votes, and a re-fit that keeps what the person told."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from disrt_core import head_end
from disrt_core.geometry.bedfit import BedFit
from disrt_core.geometry.camera import raw_to_network, transform_points

from .geometry.bedscenes import bedroom, mattress_corners, view


@pytest.fixture(scope="module")
def scene():
    return view(bedroom(), "tof_320x240", 2.4, tilt=(0.1, 0.05), yaw=0.3, noise=False)


def _fit(scene, head_known: bool = False) -> BedFit:
    T = scene.T_cam_bed[0].double().numpy()
    corners = scene.mattress_corners[0].double().numpy()
    return BedFit(T, np.array([0.0, 0.0, -1.0]), 2.4, corners, (0.9, 2.0), 0.8, 0.005,
                  head_known=head_known, head_confidence=0.5, head_cues=(0.1, -0.2, 0.3))


def test_turned_pose_resamples_the_turned_image(scene):
    """The network image made with the turned bed pose is the image turned 180°: the grid
    is centred on the mattress (checked through the whole resampling, not the formula)."""
    depth, K, T = scene.depth_raw, scene.K, scene.T_cam_bed
    net = raw_to_network(depth, K, T)
    turned = torch.from_numpy(head_end.turn_bed_pose(T[0].double().numpy()))[None].float()
    net_turned = raw_to_network(depth, K, turned)
    assert (net > 0).float().mean() > 0.9  # the bed is seen
    assert not torch.allclose(net, net.flip(-1, -2), atol=5.0)  # and not symmetric
    torch.testing.assert_close(net_turned, head_end.turned_image(net), atol=0.5, rtol=0)


def test_turned_fit_swaps_the_ends(scene):
    fit = _fit(scene)
    turned = head_end.turned_fit(fit, 0.97)
    assert turned.head_known and turned.head_confidence == 0.97
    assert turned.head_cues == (-0.1, 0.2, -0.3)
    # the turned pose puts the label frame's head corners on the old foot corners
    label = mattress_corners(scene.rooms[0])[None]
    cam = transform_points(torch.from_numpy(turned.T_cam_bed)[None], label)[0].numpy()
    np.testing.assert_allclose(cam, turned.corners, atol=1e-6)
    np.testing.assert_allclose(turned.corners, fit.corners[[2, 3, 0, 1]])
    back = head_end.turned_fit(turned, 0.97)
    np.testing.assert_allclose(back.T_cam_bed, fit.T_cam_bed, atol=1e-12)


def test_evidence_is_the_difference_of_log_odds():
    e = head_end.head_evidence(torch.tensor([0.9, 0.5, 0.2]), torch.tensor([0.1, 0.5, 0.8]))
    np.testing.assert_allclose(e.numpy(), [2 * math.log(9), 0.0, -2 * math.log(4)], rtol=1e-5)
    assert torch.isfinite(head_end.head_evidence(torch.tensor([1.0]), torch.tensor([0.0]))).all()


def test_vote_decides_after_enough_frames_with_someone_in_bed():
    vote = head_end.HeadVote(np.zeros(3))
    for _ in range(10):  # an empty bed says nothing, however it looks
        vote.add(-8.0, 0.1, 0.2)
    assert vote.frames == 0 and vote.decision() == 0
    for _ in range(head_end.MIN_FRAMES):
        assert vote.decision() == 0
        vote.add(-(head_end.DECIDE_LOGIT + 1), 0.02, 0.9)
    assert vote.decision() == -1 and 0.9 < vote.confidence() < 1
    weak = head_end.HeadVote(np.zeros(3))
    for _ in range(20):  # one-sided but too weak: never decided
        weak.add(head_end.DECIDE_LOGIT - 0.5, 0.9, 0.2)
    assert weak.decision() == 0
    mixed = head_end.HeadVote(np.zeros(3))
    for k in range(20):  # strong votes that disagree cancel out
        mixed.add(6.0 if k % 2 else -6.0, 0.9, 0.9)
    assert mixed.decision() == 0


def test_a_classifier_vote_counts_where_someone_is_seen_or_it_is_firm():
    vote = head_end.HeadVote(np.zeros(3))
    for _ in range(10):  # an empty bed: presence low, the classifier near 1/2
        vote.add(0.4, 0.1)
    assert vote.frames == 0 and not vote.seen
    for _ in range(head_end.MIN_FRAMES):  # a body end for end: the presence may drop,
        vote.add(-(head_end.CLASSIFIER_SEEN_LOGIT + 2), 0.2)  # the classifier is firm
    assert vote.frames == head_end.MIN_FRAMES and vote.decision() == -1
    unsure = head_end.HeadVote(np.zeros(3))
    for _ in range(head_end.MIN_FRAMES):  # someone seen, the classifier unsure: counted
        unsure.add(0.2, 0.9)
    assert unsure.frames == head_end.MIN_FRAMES and unsure.decision() == 0


def test_refit_keeps_what_the_person_told(scene):
    fit = _fit(scene)
    told = head_end.turned_fit(fit, 0.99)
    point = head_end.head_end_point(told)
    # the same bed fitted again with the same (wrong) end assumed: turned
    again = head_end.remembered(fit, point, 0.99)
    assert again.head_known and again.head_confidence == 0.99
    np.testing.assert_allclose(again.corners, told.corners)
    # fitted the right way round: only the head end becomes known
    right = head_end.remembered(told.__class__(**{**told.__dict__, "head_known": False}),
                                point, 0.99)
    assert right.head_known
    np.testing.assert_allclose(right.T_cam_bed, told.T_cam_bed)
    # a fit that tells the other end itself: the person's end wins
    known = _fit(scene, head_known=True)
    np.testing.assert_allclose(head_end.remembered(known, point, 0.99).corners, told.corners)
    assert head_end.remembered(told, point, 0.5) is told  # agrees: its own confidence
    # a bed elsewhere, or nothing told: unchanged
    assert head_end.remembered(fit, point + np.array([2.0, 0, 0]), 0.99) is fit
    assert head_end.remembered(fit, None, 1.0) is fit
    vote = head_end.HeadVote(head_end.head_end_point(fit))
    assert vote.about(fit) and not vote.about(told) and not vote.about(known)


def test_a_head_end_the_fit_told_is_checked_on_some_frames_and_turned_only_firmly():
    vote = head_end.HeadVote(np.zeros(3), checking=True, fit_confidence=0.9)
    for _ in range(head_end.MIN_FRAMES):  # every frame with someone seen until enough are in
        assert vote.due()
        vote.add(1.0, 0.95, 0.5)  # for the fit, not enough to confirm it
    asked = [vote.due() for _ in range(3 * head_end.CHECK_EVERY)]
    assert sum(asked) == 3  # the person agrees: a tenth of the frames
    for _ in range(5 * head_end.MIN_FRAMES):  # ... until the votes turn against the fit
        vote.add(-3.0, 0.05, 0.8)
    assert vote.mean < 0 and all(vote.due() for _ in range(5))
    # turned only where the votes outweigh the fit's own log-odds (logit 0.9 = 2.2)
    assert vote.turn_logit() == pytest.approx(np.log(9.0))
    assert vote.mean < -vote.turn_logit() and vote.decision() == -1
    sure = head_end.HeadVote(np.zeros(3), checking=True, fit_confidence=0.97)  # logit 3.5
    for _ in range(head_end.MIN_FRAMES):
        sure.add(-2.5, 0.1, 0.8)
    assert sure.decision() == 0  # would turn an unknown end or a fit sure at 0.9
    for _ in range(head_end.MIN_FRAMES):
        sure.add(-4.7, 0.01, 0.8)
    assert sure.mean < -3.5 and sure.decision() == -1
    certain = head_end.HeadVote(np.zeros(3), checking=True, fit_confidence=1.0)
    assert certain.turn_logit() == head_end.TURN_MAX_LOGIT  # a sure fit can still be turned
    unsure = head_end.HeadVote(np.zeros(3), checking=True, fit_confidence=0.6)
    assert unsure.turn_logit() == head_end.DECIDE_LOGIT
    agree = head_end.HeadVote(np.zeros(3), checking=True)
    for _ in range(head_end.MIN_FRAMES):
        agree.add(head_end.DECIDE_LOGIT + 0.1, 0.9, 0.1)
    assert agree.decision() == 1
    unknown = head_end.HeadVote(np.zeros(3))
    assert all(unknown.due() for _ in range(25))
    unknown.add(0.0, 0.1, 0.2)  # an empty bed: asked about a tenth of the frames
    assert sum(unknown.due() for _ in range(3 * head_end.CHECK_EVERY)) == 3
    unknown.add(0.0, 0.9, 0.2)  # someone again: every frame
    assert all(unknown.due() for _ in range(5))
    unsure = head_end.HeadVote(np.zeros(3), checking=True)
    for _ in range(head_end.CHECK_FRAMES):
        assert not unsure.given_up()
        unsure.add(1.0, 0.9, 0.5)
        unknown.add(1.0, 0.9, 0.5)
    assert unsure.given_up() and not unknown.given_up()  # an unknown end is never given up


def test_one_view_decides_an_unknown_end_and_turns_a_told_one_only_firmly(scene):
    unknown = _fit(scene)
    kept, what = head_end.decided_on_one_view(unknown, 0.5)  # nobody, or unsure
    assert what == "undecided" and kept is unknown
    right, what = head_end.decided_on_one_view(unknown, 9.0)
    assert what == "decided" and right.head_known and right.head_confidence > 0.99
    np.testing.assert_allclose(right.corners, unknown.corners)
    turned, what = head_end.decided_on_one_view(unknown, -2.0)
    assert what == "decided" and turned.head_known
    np.testing.assert_allclose(turned.corners, unknown.corners[[2, 3, 0, 1]])
    told = dataclasses.replace(_fit(scene, head_known=True), head_confidence=0.97)  # logit 3.5
    assert head_end.decided_on_one_view(told, -2.0)[1] == "undecided"  # not firm enough
    assert head_end.decided_on_one_view(told, 9.0) == (told, "confirmed")
    again, what = head_end.decided_on_one_view(told, -9.0)
    assert what == "turned"
    np.testing.assert_allclose(again.corners, told.corners[[2, 3, 0, 1]])
