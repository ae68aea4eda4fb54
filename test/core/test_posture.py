import math

import torch

from disrt_core.posture import LEFT, PRONE, RIGHT, SUPINE, posture_from_axis_angle


def test_posture_of_the_four_canonical_lying_orientations():
    root = torch.tensor([
        [0.0, 0.0, 0.0],  # chest (+z) up
        [0.0, math.pi / 2, 0.0],  # left side (+x) turned down
        [0.0, -math.pi / 2, 0.0],  # right side down
        [0.0, math.pi, 0.0],  # chest down
        [0.0, 0.0, 0.4],  # supine, rotated in the bed plane
        [0.0, math.pi / 2 - 0.3, 0.0],  # a rolled-back left lateral still counts as left
    ])
    assert posture_from_axis_angle(root).tolist() == [SUPINE, LEFT, RIGHT, PRONE, SUPINE, LEFT]
