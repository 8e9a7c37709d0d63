#!/usr/bin/env bash
# On a machine with an NVIDIA GPU and a CUDA torch already installed (no network needed): build fastlstm against
# that torch, run the CUDA tests, run the GPU benchmark. Build tools (scikit-build-core, cmeel-eigen, ninja, pytest)
# must be importable; wheels found in .whl/ (bench/gpu_wheels.sh fetches what the device image lacks) are installed
# into /tmp/site first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
if compgen -G ".whl/*.whl" > /dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PYTHON" -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU visible'; print(torch.__version__, torch.cuda.get_device_name())"
"$PYTHON" -m pip install -q --no-build-isolation --no-deps -C build-dir=build/gpu .
"$PYTHON" -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_ops.py
"$PYTHON" bench/bench_gpu.py "$@"
