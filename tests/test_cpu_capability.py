"""Runtime ISA dispatch: one build runs on every x86-64 CPU, each level gives torch's results, and no code of a
higher level can be reached from a lower one."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fastlstm

HERE = Path(__file__).parent
LEVELS = fastlstm.cpu_capability()["supported"]


def test_runs_the_best_level_the_cpu_has():
    info = fastlstm.cpu_capability()
    forced = os.environ.get("FASTLSTM_CPU_CAPABILITY")
    assert info["level"] in info["supported"]
    assert info["supported"][0] in ("baseline", "native")
    if not forced:
        assert info["level"] == info["supported"][-1], info


def test_a_higher_level_than_the_cpu_has_runs_the_best_there_is():
    result = subprocess.run(
        [sys.executable, "-c", "import fastlstm; print(fastlstm.cpu_capability()['level'])"],
        env={**os.environ, "FASTLSTM_CPU_CAPABILITY": "avx512"}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == LEVELS[-1]


def test_an_unknown_level_is_a_clear_error():
    result = subprocess.run([sys.executable, "-c", "import torch, fastlstm; fastlstm.LSTM(3, 4)(torch.randn(2, 1, 3))"],
                            env={**os.environ, "FASTLSTM_CPU_CAPABILITY": "sse9"}, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0
    assert "expected FASTLSTM_CPU_CAPABILITY to be one of baseline, avx2, avx512, got 'sse9'" in result.stderr


@pytest.mark.parametrize("level", LEVELS[:-1] or ["(only one level)"])
def test_kernel_tests_pass_at_every_lower_level(level):
    """The default level runs the whole suite; every lower level this CPU supports runs the kernel tests and the
    edge cases (NaN / inf propagation, zero sizes) of every kernel."""
    if level == "(only one level)":
        pytest.skip("this CPU or build has a single level")
    env = {**os.environ, "FASTLSTM_CPU_CAPABILITY": level}
    check = subprocess.run([sys.executable, "-c", "import fastlstm; print(fastlstm.cpu_capability()['level'])"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert check.stdout.strip() == level, check.stderr
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                             str(HERE / "test_ops.py"), str(HERE / "test_nn_parity.py"),
                             str(HERE / "test_edge_cases.py"), "-k", "not memory and not index_arithmetic"],
                            env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]


WIDE_REGISTER = {"avx2": re.compile(r"%ymm"), "avx512": re.compile(r"%zmm|%k[1-7]\b")}
OWNERS = {"avx2": ("isa_avx2", "isa_avx512", "fastlstm_eigen_avx2", "fastlstm_eigen_avx512"),
          "avx512": ("isa_avx512", "fastlstm_eigen_avx512")}


@pytest.mark.skipif(shutil.which("objdump") is None, reason="needs binutils' objdump")
def test_wide_registers_only_in_their_levels_code():
    """A function that uses AVX2 (ymm) or AVX-512 (zmm, mask) registers must belong to that level's namespace: an
    inline function shared between levels must be the baseline copy (the link order sees to it)."""
    # The installed library keeps its symbols (pyproject.toml: install.strip = false): a stripped one would show its
    # local functions under the name of the exported symbol before them.
    library = fastlstm.ops_library()  # the kernels (fastlstm._C is the thin Python module over it)
    disassembly = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", library], capture_output=True,
                                 text=True, check=True).stdout
    offenders = {}
    function = None
    for line in disassembly.splitlines():
        header = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if header:
            function = header.group(1)
            continue
        if function is None:
            continue
        for level, pattern in WIDE_REGISTER.items():
            if pattern.search(line) and not any(owner in function for owner in OWNERS[level]):
                offenders.setdefault(level, set()).add(function)
    assert not offenders, {level: sorted(names)[:10] for level, names in offenders.items()}
