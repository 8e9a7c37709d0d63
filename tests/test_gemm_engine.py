"""The Eigen GEMM (used when torch exports no BLAS) gives the same results as the BLAS one."""

import os
import subprocess
import sys

SCRIPT = """
import torch, fastlstm
assert fastlstm._C.gemm_engine() == "eigen", fastlstm._C.gemm_engine()
torch.manual_seed(0)
ours = fastlstm.LSTM(5, 7, num_layers=2, bidirectional=True, dtype=torch.float64)
theirs = torch.nn.LSTM(5, 7, num_layers=2, bidirectional=True, dtype=torch.float64)
theirs.load_state_dict(ours.state_dict())
x = torch.randn(6, 3, 5, dtype=torch.float64, requires_grad=True)
a, b = ours(x)[0], theirs(x)[0]
torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
ga = torch.autograd.grad(a.sum(), [x, *ours.parameters()])
gb = torch.autograd.grad(b.sum(), [x, *theirs.parameters()])
for u, v in zip(ga, gb):
    torch.testing.assert_close(u, v, rtol=1e-10, atol=1e-10)
print("ok")
"""


def test_blas_engine_is_the_default():
    import fastlstm

    assert fastlstm._C.gemm_engine() == "blas"


def test_eigen_gemm_engine_matches_torch():
    env = dict(os.environ, FASTLSTM_GEMM="eigen")
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
