#!/usr/bin/env bash
# The main job on the embedded default: set-up on first use, then the demo.
# Extra arguments go to `disrt-demo` (see `disrt-demo --help`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/bootstrap.sh
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
exec disrt-demo "$@"
