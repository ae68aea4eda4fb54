"""The 24-joint SMPL skeleton every body model in disrt_core reports.

Joint order, names and parents are SMPL's (``smplx.joint_names.JOINT_NAMES[:24]``); Anny's
bones are mapped onto them in ``disrt_core.body.anny``.
"""

from __future__ import annotations

SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee",
    "spine2", "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot",
    "neck", "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
)  # fmt: skip

#: Parent of each joint (-1 for the pelvis, the root).
SMPL_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)  # fmt: skip

#: (parent, child) pairs: the 23 bones drawn between joints.
SMPL_BONES: tuple[tuple[int, int], ...] = tuple(
    (p, c) for c, p in enumerate(SMPL_PARENTS) if p >= 0
)

NUM_JOINTS = 24
NUM_BODY_JOINTS = 23  # all but the pelvis, whose rotation is the root orientation
