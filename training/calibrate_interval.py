"""Calibrate a checkpoint's joint intervals (the 90 % radius from the hypotheses' spread) on a
validation set and write them into its header: ``python training/calibrate_interval.py
--help``.

Thin wrapper around :func:`disrt_core.train.interval.main`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

from disrt_core.train.interval import main

if __name__ == "__main__":
    raise SystemExit(main())
