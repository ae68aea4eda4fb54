"""The bed's head end from the person lying there, through the pose network.

Where the automatic bed fit (``head="auto"``) cannot tell the head end (no pillow, boards or
body shape it trusts: ``BedFit.head_known`` False), the node takes the end toward the image
side ``head_fallback`` and looks again. The pose network was trained with the head at the
top of its image (row 0, label +y): for a body seen end for end it answers a body that
matches the depth badly, and the presence probability (``Prediction.present_prob``, which
weighs how well the answered body agrees with what is seen, :mod:`disrt_core.occupancy`)
drops. On the network image and on the same image turned 180° (:func:`turned_image`; the
grid is centred on the mattress, so the turn is the bed frame turned about its vertical
axis, :func:`turned_fit`), the difference of the two log-odds (:func:`head_evidence`, + for
the end taken now) says which end the head lies at.

Decision (:class:`HeadVote`): the mean evidence over at least ``MIN_FRAMES`` frames with
someone on the bed must reach ``DECIDE_LOGIT`` in size. [choice] Measured per frame with the
shipped default weights (5 steps, one hypothesis as the node runs, seed 0; 256 held-out
scenes each, ``training/experiments/head_from_body.py``): the sign alone is right on 96.5 %
of generated room frames (D435, the bed found as the node finds it), 97.7 % of Kinect v2
bed scenes and 86.7 % of the SIM2REAL target domain; at |evidence| ≥ 3 it decides 59 / 60 /
45 % of them with no wrong end, at ≥ 2 76 / 74 / 60 % with one wrong end (target domain).
Frames of one scene err together, so the threshold is set on single frames, and the mean
over frames only averages the sensor's noise. Per scene as the node votes (``--rooms``: the
bed-fit benchmark's cached scenes, seed 500, 8 sensors, 5 frames), at 2 the vote took no
wrong end among 305 fits right either way round, and turned 9 of the 13 beds whose head end
the fit could not tell and whose fallback end was wrong (4 at 3); on the tuning rooms
(seeds 3000-3047, 310 fits) none wrong either, 7 of 13 turned. It is only asked where the
fit cannot tell, where the fallback end is a guess (wrong for 13 of the 18 such room fits),
hence 2 rather than 3. Weights other than the shipped ones keep the rule (it uses their own
presence output) but not these rates. [choice, 2026-12-06, second session] The default continued
on rooms since then answers the turned image less badly: per frame on the D435 validation
rooms (`--data data/diffxt/val_rooms`) it decides 57 % at 2 with no wrong end, 69.5 % at 1.5
with one (the earlier weights: 68.4 % at 2 with one), and per scene on the benchmark's
scenes it turned only 5 of 15 wrong fallback ends at 2; hence 1.5, the same operating point:
9 of 15 turned there, 7 of 13 on the tuning rooms, no wrong vote on either (also none
among the checked ends).

**The posture classifier's vote** [choice, 2026-12-06, sixth session]. Where the node's
posture classifier has the head end's output (:mod:`disrt_core.model.posture_net`, the
shipped one since then; ``posture_source: classifier``), a frame's evidence is that
log-odds instead, computed with the posture in the node's output graph: no second
inference. Per frame on the held-out sets of ``training/train_posture.py`` (every frame
also turned; ``docs/posture_eval.md``), |evidence| ≥ ``DECIDE_LOGIT`` decides 99.1 % of
generated room frames with 0.29 % wrong (the presence difference: 64.7 % with 0.59 %),
100 % of Kinect v2 bed scenes with none wrong (72.7 %, none) and 97.3 % of the SIM2REAL
target domain with 0.59 % wrong (48.0 % with 3.1 %); it tells all 21 room frames whose
fitted bed lay end for end (the presence 17). Per scene as the node votes
(``head_from_body.py --rooms --posture``, the cached scenes above, 5 frames): it turns all
16 wrong fallback ends and all 4 confidently wrong ends the fit told (the presence: 7 and
2), with no wrong vote, so the node's bed is right wherever the fit's corners are (227 of
256). The thresholds stay. A frame counts as someone seen where the presence reaches
``MIN_PRESENT`` or the |log-odds| reaches ``CLASSIFIER_SEEN_LOGIT``: trained to 1/2 on
empty and sat-on beds, they stay under 1.0 on 98.4 % of 128 held-out such room frames (mean
0.13), while a lying person's are ≥ 7.2 on 95 % of room frames (≥ 2.6 in the target
domain). The log-odds are not calibrated (median ~16), so the vote's confidence is near 1.

**Check** of a head end the fit told itself (``checking``): on every frame with someone seen
until ``MIN_FRAMES`` are in, and on while their mean is against the fit, else on every
``CHECK_EVERY``-th frame, until a vote of ``DECIDE_LOGIT`` confirms it or ``CHECK_FRAMES``
frames with someone seen leave it undecided (the fit's end stands); a mean vote against it
that outweighs the fit's own log-odds, logit(``fit_confidence``) kept within
``DECIDE_LOGIT`` .. ``TURN_MAX_LOGIT`` (a fit's confidence near 1 is no certainty), turns
the bed (the node says so at WARN). [choice, 2026-12-06, fourth session] Before, a fixed
−3.0 on every 10th frame: in generated rooms (``bench_room_node``, Kinect v2 seed 7) a fit
confidently wrong at 0.86 from the person's shape under a sheet stayed unturned through a 12
s run; its frames vote about −1 under the sheet and −7 once the person lies on the side
under a blanket, and a vote on every 10th frame averaged too few of them. With the shipped
default (``training/experiments/head_from_body.py``: ``--rooms``, the bed-fit benchmark's
cached scenes, seed 500, and the tuning rooms 3000-3047, 5 frames each; ``--nights``, 19
demo room nights of 12 s, 5 sensors, seeds 4-7, a vote on every other frame; replayed the
same way offline, single frames of the validation rooms 6000-6095 and tuning rooms
4000-4095): a vote of −1.5 or below comes in 0.2-1.4 % of the frames of right fits and in
43-90 % of those of wrong ones, so a fit's mean vote against it is strong evidence, but a
few right fits of one scene vote steadily about −2.2 (the presence saturated both ways
round, 0.9 against 0.99) at confidence 0.96-0.98. In the 19 room nights (the demo's own
frames) one of the two confident wrong fits (seed 7, Kinect v2 at 0.88) is turned at frame
46 (4.6 s), the other (Azure NFOV at 0.93, a steady mean −1.9 against its 2.5) is left after
30 votes; the old rule turns neither within the 12 s (means about −2, never −3.0); the 17
right ones are kept, none turned; checking every frame while the votes doubt the fit is what
lets the mean build up at all. Weighing the fit's confidence also turns 4 of the 10
confident wrong fits of the single-frame validation rooms (0 at −3.0), and of the
benchmark's 4 with 5 frames the same 2; it turns no right fit among the 1,914 right fits the
fit told in all sets but the one the old rule turns too (a single frame of the rooms
4000-4095 at −4.3, confidence 0.98). Checking every frame while the votes doubt the fit
costs a second inference on those frames only. Once the person told or confirmed a head end,
re-fits of the same bed keep it (:func:`remembered`), also against a re-fit's own head end.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from disrt_core.geometry.bedframe import BED_CENTRE_LABEL

DECIDE_LOGIT = 1.5  # |mean evidence| that decides the head end (module docstring)
MIN_FRAMES = 5  # frames with someone on the bed before deciding
TURN_MAX_LOGIT = 4.0  # the most |mean evidence| that turns a head end the fit told
CHECK_EVERY = 10  # a head end the fit told is checked on every 10th frame until confirmed
CHECK_FRAMES = 30  # ... or until this many frames with someone in bed left it undecided
MIN_PRESENT = 0.5  # a frame counts when either orientation's presence reaches this
CLASSIFIER_SEEN_LOGIT = 1.0  # ... or the classifier's |head-end log-odds| (module docstring)
SAME_END_M = 0.5  # a re-fitted bed keeps the votes where its head end moved less than this


def turned_image(net: Tensor) -> Tensor:
    """Network images [..., 128, 54] of the bed turned end for end (180° about the vertical
    through the mattress centre): rows and columns reversed."""
    return net.flip(-1, -2)


def turn_bed_pose(T_cam_bed: np.ndarray) -> np.ndarray:
    """``T_cam_bed`` [4,4] of the same bed with its head and foot ends swapped: the label
    frame turned 180° about z through ``BED_CENTRE_LABEL`` (x → 2cx − x, y → 2cy − y)."""
    cx, cy = BED_CENTRE_LABEL
    turn = np.array([[-1.0, 0, 0, 2 * cx], [0, -1.0, 0, 2 * cy], [0, 0, 1, 0], [0, 0, 0, 1]])
    return np.asarray(T_cam_bed, np.float64) @ turn


def turned_fit(fit, head_confidence: float):
    """A ``BedFit`` with its ends swapped, its head end now known (corners keep their order
    head-left, head-right, foot-right, foot-left: the old foot-right corner is the new
    head-left)."""
    return dataclasses.replace(fit, T_cam_bed=turn_bed_pose(fit.T_cam_bed),
                               corners=np.asarray(fit.corners)[[2, 3, 0, 1]],
                               head_cues=tuple(-c for c in fit.head_cues), head_known=True,
                               head_confidence=head_confidence)


def head_evidence(present: Tensor, present_turned: Tensor) -> Tensor:
    """Log-odds [B] for the head end taken now: logit(present) − logit(present_turned), of
    the presence probabilities [B] on the network image and on it turned."""
    p = torch.stack([present, present_turned]).float().clamp(1e-4, 1 - 1e-4)
    logit = torch.log(p) - torch.log1p(-p)
    return logit[0] - logit[1]


def head_end_point(fit) -> np.ndarray:
    """Camera-frame centre [3] of the fit's head end (mean of its two head corners)."""
    return np.asarray(fit.corners)[:2].mean(axis=0)


@dataclass
class HeadVote:
    """Evidence for the head end of one bed fit, frame by frame (see the module)."""

    head_point: np.ndarray  # camera-frame head-end centre of the fit the votes are about
    checking: bool = False  # the fit told its head end itself: only checked
    frames: int = 0
    total: float = 0.0
    asked: int = 0
    seen: bool = True  # whether the last frame asked about showed someone on the bed
    fit_confidence: float = 0.5  # the fit's own confidence in its head end (``checking``)

    def due(self) -> bool:
        """Whether to ask the network about this frame (it costs a second inference): every
        frame while someone is seen on the bed, for a fit that cannot tell its head end, or
        that told it while fewer than ``MIN_FRAMES`` frames are in or their votes are against
        it; else every ``CHECK_EVERY``-th (an empty bed, or a head end the fit told and the
        person does not doubt: a tenth more work until someone in bed confirms it)."""
        self.asked += 1
        doubt = self.frames < MIN_FRAMES or self.total < 0
        return ((self.seen and (not self.checking or doubt))
                or (self.asked - 1) % CHECK_EVERY == 0)

    def add(self, evidence: float, present: float, present_turned: float | None = None
            ) -> None:
        """One frame's evidence: :func:`head_evidence` of ``present`` and
        ``present_turned``, or (``present_turned`` None) the posture classifier's head-end
        log-odds. Frames where nobody is seen on the bed (an empty bed: neither orientation's
        presence reaches ``MIN_PRESENT``; for the classifier, the presence does not and its
        log-odds stay under ``CLASSIFIER_SEEN_LOGIT``) say nothing and are skipped."""
        if present_turned is None:
            self.seen = present >= MIN_PRESENT or abs(evidence) >= CLASSIFIER_SEEN_LOGIT
        else:
            self.seen = max(present, present_turned) >= MIN_PRESENT
        if self.seen and np.isfinite(evidence):
            self.frames += 1
            self.total += float(evidence)

    @property
    def mean(self) -> float:
        return self.total / self.frames if self.frames else 0.0

    def decision(self) -> int:
        """+1: the head end taken now is right; −1: it is the foot end; 0: not yet. A head
        end the fit told itself (``checking``) is turned only where the votes outweigh its
        confidence (:meth:`turn_logit`)."""
        against = self.turn_logit()
        if self.frames < MIN_FRAMES or not (self.mean >= DECIDE_LOGIT or
                                            self.mean <= -against):
            return 0
        return 1 if self.mean > 0 else -1

    def turn_logit(self) -> float:
        """|mean evidence| against the head end taken now that turns it: ``DECIDE_LOGIT``
        for an end the fit could not tell, the fit's own log-odds within ``DECIDE_LOGIT`` ..
        ``TURN_MAX_LOGIT`` for one it told (module docstring)."""
        if not self.checking:
            return DECIDE_LOGIT
        p = min(max(self.fit_confidence, 0.5), 1 - 1e-6)
        return float(np.clip(np.log(p / (1 - p)), DECIDE_LOGIT, TURN_MAX_LOGIT))

    def given_up(self) -> bool:
        """A check (``checking``) that ``CHECK_FRAMES`` frames with someone in bed left
        undecided: the fit's own head end stands, and the checks stop."""
        return self.checking and self.frames >= CHECK_FRAMES and not self.decision()

    def confidence(self) -> float:
        """sigmoid(|mean|), in [0.5, 1)."""
        return float(1 / (1 + np.exp(-abs(self.mean))))

    def about(self, fit) -> bool:
        """Whether these votes are about ``fit``: the same head end within ``SAME_END_M``
        (a re-fit of the same bed the same way round), known or not as before."""
        return at_head_end(fit, self.head_point) and self.checking == fit.head_known


def decided_on_one_view(fit, evidence: float):
    """``fit`` decided by one view's head-end evidence (the posture classifier's log-odds on
    a median frame, as ``disrt-fit-bed`` has it) with :class:`HeadVote`'s thresholds:
    (fit, what) with ``what`` one of "decided" (an unknown end now known, or turned),
    "confirmed", "turned" (a told end the evidence outweighs), "undecided"."""
    vote = HeadVote(head_end_point(fit), checking=fit.head_known,
                    fit_confidence=fit.head_confidence)
    confidence = float(1 / (1 + np.exp(-abs(evidence))))
    if evidence <= -vote.turn_logit():
        return turned_fit(fit, confidence), "turned" if fit.head_known else "decided"
    if evidence >= DECIDE_LOGIT:
        return (fit, "confirmed") if fit.head_known else (dataclasses.replace(
            fit, head_known=True, head_confidence=confidence), "decided")
    return fit, "undecided"


def at_head_end(fit, head_point: np.ndarray | None) -> bool:
    """Whether ``head_point`` (camera frame) lies within ``SAME_END_M`` of the fit's head
    end centre."""
    return head_point is not None and bool(
        np.linalg.norm(head_end_point(fit) - head_point) < SAME_END_M)


def remembered(fit, head_point: np.ndarray | None, head_confidence: float):
    """A re-fit ``fit`` of a bed whose head end the person told before (its centre at
    ``head_point``, camera frame): turned that way round with its head end known, where one
    of its ends lies within ``SAME_END_M`` of the point (also against the fit's own head
    end: the person's vote was the stronger evidence); else ``fit`` unchanged."""
    if head_point is None:
        return fit
    if at_head_end(fit, head_point):
        return fit if fit.head_known else dataclasses.replace(
            fit, head_known=True, head_confidence=head_confidence)
    if np.linalg.norm(np.asarray(fit.corners)[2:].mean(axis=0) - head_point) < SAME_END_M:
        return turned_fit(fit, head_confidence)
    return fit
