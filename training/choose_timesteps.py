"""Choose a checkpoint's sampler timesteps on a validation set and write them into its
header: ``python training/choose_timesteps.py --help``.

Thin wrapper around :func:`disrt_core.train.timesteps.main`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

from disrt_core.train.timesteps import main

if __name__ == "__main__":
    raise SystemExit(main())
