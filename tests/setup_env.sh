# Sourced by tests/run.sh and bench/run.sh: makes .venv with the pinned torch and build tools, and (re)builds
# fastlstm into it when its sources changed. Quick when nothing changed. Sets $PYTHON.
#   FASTLSTM_VENV   where the virtualenv lives (default: <repo>/.venv)
#   FASTLSTM_TORCH  the torch to pin (default 2.13.0, the CPU wheel these machines carry locally)
#   FASTLSTM_WITH_TF=1  also install tensorflow-cpu (the optional peer of tests/test_tf_reference.py and bench/)
#   FASTLSTM_NATIVE=1   compile the CPU kernels for this machine only (-march=native) instead of once per ISA level
#   FASTLSTM_SANITIZE=1 build with AddressSanitizer + UBSan (use its own FASTLSTM_VENV; tests/run.sh preloads the
#                       sanitizer runtimes)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FASTLSTM_VENV:-$ROOT/.venv}"
TORCH_PIN="${FASTLSTM_TORCH:-2.13.0}"
# Build and test tools, pinned so that every machine builds the same thing.
# onnx + onnxruntime + onnxscript: the ONNX export tests (both exporters) and the bench's inference peer;
# matplotlib: the bench's picture.
TOOLS=(scikit-build-core==1.1.2 nanobind==3.1.0 cmeel-eigen==3.4.1 ninja==1.13.2 numpy==2.4.6 pytest==9.0.3 tqdm==4.70.1
       expecttest==0.3.0 onnx==1.23.2 onnxruntime==1.32.0 onnxscript==0.7.2 matplotlib==3.11.2)

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV" >&2
  python3 -m venv "$VENV"
fi
PYTHON="$VENV/bin/python"

tools_stamp="$VENV/.fastlstm-tools"
if [ "${FASTLSTM_WITH_TF:-0}" = 1 ]; then
  TOOLS+=(tensorflow-cpu==2.21.0)
fi
wanted_tools="torch==$TORCH_PIN ${TOOLS[*]}"
if [ "$(cat "$tools_stamp" 2>/dev/null)" != "$wanted_tools" ]; then
  echo "setup: installing $wanted_tools" >&2
  "$PYTHON" -m pip install -q --disable-pip-version-check "torch==$TORCH_PIN" "${TOOLS[@]}"
  echo "$wanted_tools" >"$tools_stamp"
fi

# Rebuild when any source or build file changed (a content hash, so a fresh clone builds once).
build_stamp="$VENV/.fastlstm-build"
source_hash="$(cd "$ROOT" && { find csrc python cmake CMakeLists.txt pyproject.toml -type f \
  ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum; echo "sanitize=${FASTLSTM_SANITIZE:-0} native=${FASTLSTM_NATIVE:-0}"; } \
  | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$build_stamp" 2>/dev/null)" != "$source_hash" ]; then
  echo "setup: building fastlstm (pip install --no-build-isolation, against the torch above)" >&2
  # One build folder per environment: a CPU and a CUDA torch must not share a CMake cache.
  (cd "$ROOT" && "$PYTHON" -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps \
    -C "build-dir=build/$(basename "$VENV")" \
    -C "cmake.define.FASTLSTM_SANITIZE=$([ "${FASTLSTM_SANITIZE:-0}" = 1 ] && echo ON || echo OFF)" \
    -C "cmake.define.FASTLSTM_NATIVE=$([ "${FASTLSTM_NATIVE:-0}" = 1 ] && echo ON || echo OFF)" .)
  echo "$source_hash" >"$build_stamp"
fi
export PYTHON
