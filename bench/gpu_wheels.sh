#!/usr/bin/env bash
# Run here (with network to the package index) before a GPU session: fetches into .whl/ the build tools the GPU
# machine's image lacks (Eigen through cmeel-eigen; it has torch, scikit-build-core, ninja, CMake, pytest, numpy,
# tqdm), for its Python 3.12. Then on the device tool: carry [".whl"], command "bench/gpu_run.sh".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 -d .whl cmeel-eigen==3.4.1 cmeel==0.62.0 nanobind==3.1.0 scikit-build-core==1.1.2
ls .whl
