#!/usr/bin/env bash
# Sets up (virtualenv, pinned torch, build) and runs the test suite. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
cd "$ROOT"
if [ "${FASTLSTM_SANITIZE:-0}" = 1 ]; then
  # The interpreter is not instrumented: the sanitizer runtimes must be loaded before anything else.
  LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
  export LD_PRELOAD
  # Python's and torch's own allocations live until exit by design: leaks are not what this build looks for.
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
fi
exec "$PYTHON" -m pytest -q "$@"
