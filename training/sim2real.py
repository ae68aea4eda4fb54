"""The sim-to-real benchmark (SIM2REAL.md): ``python training/sim2real.py --device cuda``.

Thin wrapper around :func:`disrt_core.train.sim2real.main` (its module docstring says what it
runs; ``--help`` lists the options).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

from disrt_core.train.sim2real import main

if __name__ == "__main__":
    raise SystemExit(main())
