"""Run by tests/wheel_check.sh in a fresh virtualenv holding only torch, numpy and the repaired wheel: the installed
package loads, its kernels run and match torch.nn, and its ops library loads without Python's fastlstm."""

import os
import subprocess
import sys

import torch

import fastlstm

site = os.path.dirname(os.path.dirname(fastlstm.__file__))
assert site.startswith(sys.prefix), f"fastlstm imported from {fastlstm.__file__}, not from this virtualenv"
info = fastlstm.build_info()
assert torch.__version__.startswith(info["torch"]), (info, torch.__version__)
print("fastlstm", fastlstm.__version__, "from", fastlstm.__file__)
print("build:", info, "| CPU:", fastlstm.cpu_capability()["level"])

torch.manual_seed(0)
for ours, theirs in ((fastlstm.LSTM, torch.nn.LSTM), (fastlstm.GRU, torch.nn.GRU)):
    kwargs = dict(input_size=8, hidden_size=16, num_layers=2, bidirectional=True, batch_first=True)
    reference = theirs(**kwargs)
    module = ours(**kwargs)
    module.load_state_dict(reference.state_dict())
    x = torch.randn(3, 7, 8, requires_grad=True)
    expected, got = reference(x)[0], module(x)[0]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(expected)
    expected_dx, = torch.autograd.grad(expected, x, grad)
    got_dx, = torch.autograd.grad(got, x, grad)
    torch.testing.assert_close(got_dx, expected_dx, rtol=1e-5, atol=1e-5)
    assert module.last_backend == "fused", module.last_backend
    print(ours.__name__, "matches", theirs.__name__, "forward and backward")

# The ops library alone (as a C++ deployment loads it): registers torch.ops.fastlstm.* without fastlstm's Python.
probe = ("import sys, torch; torch.ops.load_library(sys.argv[1]); assert 'fastlstm' not in sys.modules; "
         "print(torch.ops.fastlstm.forward.default._schema.name)")
subprocess.run([sys.executable, "-c", probe, fastlstm.ops_library()], check=True)
print("wheel smoke test passed")
