import pytest
import torch

import fastlstm  # noqa: F401  (registers torch.ops.fastlstm)

# Tolerances against torch.nn.LSTM and the reference. The fused kernels sum in another order (one hoisted GEMM for
# the input projection, BLAS blocking, weight gradients reduced over all T*B rows at once), so float32 results differ
# by rounding that grows with the length of the sums: ~1e-7 relative per value, a few 1e-6 after T steps and T*B-row
# reductions. float64 leaves ~1e-15 of the same; 1e-10 still flags any formula error.
TOLERANCES = {
    torch.float32: dict(rtol=1e-4, atol=2e-5),
    torch.float64: dict(rtol=1e-10, atol=1e-10),
}


def assert_close(actual, expected, dtype=None, **overrides):
    """torch.testing.assert_close at TOLERANCES of the (first) expected tensor's dtype; tuples and lists too."""
    first = torch.utils._pytree.tree_leaves(expected)[0]
    tolerance = dict(TOLERANCES[dtype or first.dtype])
    tolerance.update(overrides)
    torch.testing.assert_close(actual, expected, **tolerance)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(1234)
