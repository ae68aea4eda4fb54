"""Generator batches as the arrays of a dataset shard."""

from __future__ import annotations

import numpy as np
from torch import Tensor

_SHARD_DTYPES = {"depth": np.uint16, "bed_mm": np.float32, "params": np.float32,
                 "params_cam": np.float32, "joints": np.float32, "cover": np.uint8,
                 "posture": np.uint8, "pressure": np.float16, "K": np.float32,
                 "T_cam_bed": np.float32, "depth_raw": np.uint16}


def to_shard_arrays(batch: dict[str, Tensor]) -> dict[str, np.ndarray]:
    """The shard keys of a batch as numpy arrays in ``SAMPLE_SCHEMA`` dtypes."""
    return {key: batch[key].detach().cpu().numpy().astype(dtype)
            for key, dtype in _SHARD_DTYPES.items() if key in batch}
