"""disrt_core.constants: tables made once per device."""

import torch

from disrt_core.constants import const, on_device
from disrt_core.sim.poses import JOINT_LIMITS


def test_constants_are_made_once_and_are_normal_tensors():
    with torch.inference_mode():
        a = const([[1, 2], [3, 4]], "cpu")
    assert not a.is_inference()  # usable where autograd saves it
    assert const(((1, 2), (3, 4)), torch.device("cpu")) is a  # lists and tuples alike
    assert a.tolist() == [[1, 2], [3, 4]] and a.dtype == torch.long
    assert const([1, 2], "cpu", torch.float32).dtype == torch.float32
    like = torch.zeros(1, dtype=torch.float64)
    limits = on_device(JOINT_LIMITS, like)
    assert limits.dtype == torch.float64 and on_device(JOINT_LIMITS, like) is limits
    assert torch.equal(limits.float(), JOINT_LIMITS)
