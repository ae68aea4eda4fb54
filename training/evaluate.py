"""Evaluate checkpoints or run the Table 1 sweep: ``python training/evaluate.py --help``.

Thin wrapper around :func:`disrt_core.train.cli.evaluate_main`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

from disrt_core.train.cli import evaluate_main

if __name__ == "__main__":
    raise SystemExit(evaluate_main())
