#!/usr/bin/env bash
# Creates .venv at the repository root and installs disrt_ros into it, once (with the ROS 2
# wheels, the RealSense SDK and the test tools; libusb-1.0-0 from apt where it is missing).
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

# pyrealsense2 (RealSense input) needs libusb-1.0 from the system.
if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[bootstrap] installing libusb-1.0-0 (for pyrealsense2)"
    { apt-get update -qq && apt-get install -y -qq libusb-1.0-0 >/dev/null; } \
      || echo "[bootstrap] libusb-1.0-0 not installed: RealSense tests will be skipped"
  else
    echo "[bootstrap] for RealSense input install libusb-1.0-0 (sudo apt-get install libusb-1.0-0)"
  fi
fi
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
      -c "$ROOT/constraints.txt" -e "$ROOT[ros,dev,realsense,plot]"
  echo "$want" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
