#!/usr/bin/env bash
# Creates .venv at the repository root and installs disrt_ros into it, once.
# Sourced by scripts/demo.sh and scripts/test.sh; safe to run again (it only
# reinstalls when setup.py or constraints.txt changed).
#
# Environment:
#   DISRT_PYTHON   interpreter to build the venv from (default: python3.11, else python3)
#   DISRT_TORCH    pip requirement for PyTorch (default: torch==2.13.0). On a CPU-only
#                  machine without a local CPU wheel, use e.g.
#                  DISRT_TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${DISRT_PYTHON:-$(command -v python3.11 || command -v python3)}"
STAMP="$VENV/.disrt-installed"
want="$(cat "$ROOT/setup.py" "$ROOT/constraints.txt" | sha256sum | cut -c1-16)"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[bootstrap] creating $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "[bootstrap] installing PyTorch and disrt_ros into .venv (first run: a few minutes)"
  # PyTorch first and on its own, so that no resolver can pull a CUDA build in its place.
  # shellcheck disable=SC2086
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check ${DISRT_TORCH:-torch==2.13.0}
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
      -c "$ROOT/constraints.txt" -e "$ROOT[ros,dev]"
  echo "$want" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
