"""What the wheel promises about its build: the torch it requires, what it compiled in, and how a build without the
user's torch stops (tests/wheel_check.sh builds, repairs and installs the real wheel in .ci/run)."""

import importlib.metadata
import os
import subprocess
import sys

import torch

import fastlstm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROVIDER_DIR = os.path.join(ROOT, "cmake")
TORCH_MINOR = ".".join(torch.__version__.split("+")[0].split(".")[:2])


def run_provider(prelude):
    code = (f"{prelude}; import sys; sys.path.insert(0, {PROVIDER_DIR!r}); import torch_requirement; "
            "print(torch_requirement.dynamic_metadata({}, {}))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_the_installed_package_requires_the_torch_minor_version_it_was_built_against():
    requires = [r for r in importlib.metadata.requires("fastlstm") if r.startswith("torch")]
    assert requires == [f"torch=={TORCH_MINOR}.*"]
    result = run_provider("pass")
    assert result.returncode == 0, result.stderr
    assert f"'torch=={TORCH_MINOR}.*'" in result.stdout


def test_a_build_environment_without_torch_stops_with_how_to_build():
    result = run_provider("import sys; sys.modules['torch'] = None")  # (import torch then fails)
    assert result.returncode != 0
    assert "builds without build isolation" in result.stderr
    assert "pip install --no-build-isolation" in result.stderr


def test_build_info_says_what_was_compiled_in():
    info = fastlstm.build_info()
    assert set(info) == {"torch", "isa_levels", "native", "cuda_architectures", "python_abi"}
    assert torch.__version__.startswith(info["torch"])
    assert "baseline" in info["isa_levels"]
    assert fastlstm.cpu_capability()["level"] in info["isa_levels"] or info["native"]
    cuda_kernels = torch._C._dispatch_has_kernel_for_dispatch_key("fastlstm::forward", "CUDA")
    assert bool(info["cuda_architectures"]) == cuda_kernels
    # nanobind builds for Python's stable ABI from 3.12 on; below that, for this Python only
    expected_abi = "abi3" if sys.version_info >= (3, 12) else f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert info["python_abi"] == expected_abi
