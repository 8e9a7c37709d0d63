#!/usr/bin/env bash
# On a machine with an NVIDIA GPU and a CUDA torch already installed (no network needed): build fastlstm against
# that torch, run the CUDA tests, run the GPU benchmark. Build tools (scikit-build-core, cmeel-eigen, ninja, pytest)
# must be importable; a folder of their wheels can be given as WHEELS=path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
if [ -n "${WHEELS:-}" ]; then
  "$PYTHON" -m pip install -q --no-index --find-links "$WHEELS" scikit-build-core cmeel-eigen ninja pytest numpy tqdm
fi
"$PYTHON" -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU visible'; print(torch.__version__, torch.cuda.get_device_name())"
"$PYTHON" -m pip install -q --no-build-isolation --no-deps -C build-dir=build/gpu .
"$PYTHON" -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_ops.py
"$PYTHON" bench/bench_gpu.py "$@"
