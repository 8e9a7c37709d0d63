#!/usr/bin/env bash
# Sets up (virtualenv, pinned torch, build) and runs the test suite. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
cd "$ROOT"
exec "$PYTHON" -m pytest -q "$@"
