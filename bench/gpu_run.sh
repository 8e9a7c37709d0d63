#!/usr/bin/env bash
# The whole GPU check in one run, for a lent GPU machine (torch with CUDA installed, no network): here, first
# bench/gpu_wheels.sh; then the device tool with carry [".whl"] and command "bench/gpu_run.sh".
# Stages, each time-boxed, each log also in $OUT (build/gpu_logs without it); a failing stage does not stop the
# ones after it (except the build), the exit status is the first failure's:
#   env       GPU, driver, torch / CUDA / cuDNN versions, tools found
#   build     fastlstm against this torch, CUDA kernels for this GPU's architecture only, CPU kernels -march=native
#   tests     tests/test_cuda.py (every test that runs on CUDA) and tests/test_ops.py
#   memcheck  every CUDA op at tiny shapes under compute-sanitizer memcheck (tests/cuda_memcheck.py)
#   bench     bench/bench_gpu.py (extra arguments go to it)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
LOGS="${OUT:-$PWD/build/gpu_logs}"
mkdir -p "$LOGS"
export PYTHONUNBUFFERED=1
status=0

stage() {  # stage NAME SECONDS COMMAND...
  local name=$1 limit=$2 start=$SECONDS rc
  shift 2
  echo "=== $name (limit ${limit} s)"
  timeout "$limit" "$@" > >(tee "$LOGS/$name.log") 2>&1
  rc=$?
  echo "=== $name: exit $rc after $((SECONDS - start)) s" | tee -a "$LOGS/summary.log"
  if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then status=$rc; fi
  return "$rc"
}

if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu_run: no CUDA GPU visible to $PYTHON's torch (or no torch): nothing to run here" >&2
  exit 2
fi
if compgen -G ".whl/*.whl" > /dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
arch="$("$PYTHON" -c "import torch; print('%d%d' % torch.cuda.get_device_capability())")"

stage env 60 bash -c "nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  $PYTHON -c 'import torch, nanobind; print(\"torch\", torch.__version__, \"CUDA\", torch.version.cuda, \"cuDNN\",
    torch.backends.cudnn.version(), \"nanobind\", nanobind.__version__, \"sm_$arch\")'
  nvcc --version | tail -2; command -v compute-sanitizer; nproc"

export CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)"
stage build 420 "$PYTHON" -m pip install -q --no-build-isolation --no-deps -C build-dir=build/gpu \
  -C "cmake.define.FASTLSTM_CUDA_ARCHITECTURES=$arch" -C cmake.define.FASTLSTM_NATIVE=ON . || exit "$status"

stage tests 240 "$PYTHON" -m pytest -q -p no:cacheprovider -rs --timeout 120 -W ignore tests/test_cuda.py \
  tests/test_ops.py

if command -v compute-sanitizer > /dev/null; then
  PYTORCH_NO_CUDA_MEMORY_CACHING=1 FASTLSTM_UNDER=memcheck stage memcheck 180 compute-sanitizer --tool memcheck \
    --error-exitcode 9 --print-limit 20 "$PYTHON" tests/cuda_memcheck.py
else
  echo "=== memcheck: compute-sanitizer not found, skipped" | tee -a "$LOGS/summary.log"
fi

stage bench 300 "$PYTHON" bench/bench_gpu.py "$@"
cat "$LOGS/summary.log"
exit "$status"
