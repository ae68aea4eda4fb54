"""Train the DiSRT-In-Bed denoiser: ``python training/train.py --config config/train_synth.yaml``.

Thin wrapper around :func:`disrt_core.train.cli.train_main` (see its module docstring for
the options; ``--help`` lists them). Runs under ``torchrun`` for DDP.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

from disrt_core.train.cli import train_main

if __name__ == "__main__":
    raise SystemExit(train_main())
