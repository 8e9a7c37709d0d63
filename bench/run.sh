#!/usr/bin/env bash
# Sets up (virtualenv, pinned torch, build) and benchmarks fastlstm against torch.nn.LSTM. Arguments go to
# bench/bench_lstm.py (--help lists them).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../tests/setup_env.sh"
cd "$ROOT"
exec "$PYTHON" bench/bench_lstm.py "$@"
