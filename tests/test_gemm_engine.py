"""Every GEMM engine (cpu/gemm_engine.h) gives torch.nn.LSTM's results; the default (measured per shape class) is
covered by the other tests."""

import os
import subprocess
import sys

import pytest

SCRIPT = """
import os, torch, fastlstm
assert fastlstm._C.gemm_engine() == os.environ["FASTLSTM_GEMM"], fastlstm._C.gemm_engine()
torch.manual_seed(0)
for dtype, tol in [(torch.float64, 1e-10), (torch.float32, 1e-4)]:
    ours = fastlstm.LSTM(70, 72, num_layers=2, bidirectional=True, dtype=dtype)
    theirs = torch.nn.LSTM(70, 72, num_layers=2, bidirectional=True, dtype=dtype)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(6, 20, 70, dtype=dtype, requires_grad=True)
    a, b = ours(x)[0], theirs(x)[0]
    torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    ga = torch.autograd.grad(a.sum(), [x, *ours.parameters()])
    gb = torch.autograd.grad(b.sum(), [x, *theirs.parameters()])
    for u, v in zip(ga, gb):
        torch.testing.assert_close(u, v, rtol=tol, atol=tol)
print("ok")
"""


def test_engine_is_measured_by_default():
    import torch

    import fastlstm

    if os.environ.get("FASTLSTM_GEMM"):
        pytest.skip("FASTLSTM_GEMM forces an engine in this run")
    assert fastlstm._C.gemm_engine() == "auto"
    with torch.no_grad():
        fastlstm.LSTM(64, 64)(torch.randn(5, 8, 64))
    choices = fastlstm.cpu_capability()["gemm_choices"]
    assert choices and all(engine in ("rows", "brgemm", "blas", "eigen") for _, engine in choices), choices


def test_unknown_engine_is_a_clear_error():
    env = dict(os.environ, FASTLSTM_GEMM="mkl")
    code = "import torch, fastlstm; fastlstm.LSTM(3, 4)(torch.randn(2, 1, 3))"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "expected FASTLSTM_GEMM to be one of auto, brgemm, blas, eigen, got 'mkl'" in result.stderr


@pytest.mark.parametrize("engine", ["eigen", "blas", "brgemm"])
def test_forced_gemm_engine_matches_torch(engine):
    env = dict(os.environ, FASTLSTM_GEMM=engine)
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
