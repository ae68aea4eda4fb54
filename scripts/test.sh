#!/usr/bin/env bash
# The whole test suite: set-up on first use, then ruff and pytest (pytest's summary last).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh test/core -k body`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/bootstrap.sh
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
echo "[test] ruff check"
ruff check .
echo "[test] pytest"
# Exit status 5 ("no tests collected") is a failure too: pytest returns it non-zero.
exec python -m pytest -ra "$@"
