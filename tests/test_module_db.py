"""PyTorch's own module test inputs (torch.testing._internal.common_modules) run against the drop-ins: the contract
fastlstm.LSTM / LSTMCell / GRU / GRUCell claim is torch.nn's, for the torch this suite is pinned to."""

import re

import pytest
import torch
from torch.testing._internal.common_modules import ModuleErrorEnum, module_db

import fastlstm

DROP_INS = {torch.nn.LSTM: fastlstm.LSTM, torch.nn.LSTMCell: fastlstm.LSTMCell, torch.nn.GRU: fastlstm.GRU,
            torch.nn.GRUCell: fastlstm.GRUCell}
INFOS = [info for info in module_db if info.module_cls in DROP_INS]


def _construct(cls, constructor_input, seed=0):
    torch.manual_seed(seed)
    return cls(*constructor_input.args, **constructor_input.kwargs)


def test_module_db_has_the_drop_ins():
    assert {info.module_cls for info in INFOS} == set(DROP_INS)


@pytest.mark.parametrize("info", INFOS, ids=lambda info: info.module_cls.__name__)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_module_inputs_match_torch(info, dtype, training):
    samples = info.module_inputs_func(info, device="cpu", dtype=dtype, requires_grad=True, training=training)
    assert samples
    # float32: torch.testing's default atol; the GRU's weight gradients sum T * B products in another order.
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-12}
    for sample in samples:
        ours = _construct(DROP_INS[info.module_cls], sample.constructor_input).to(dtype).train(training)
        theirs = _construct(info.module_cls, sample.constructor_input).to(dtype).train(training)
        ours.load_state_dict(theirs.state_dict())
        args, kwargs = sample.forward_input.args, sample.forward_input.kwargs
        expected = theirs(*args, **kwargs)
        got = ours(*args, **kwargs)
        torch.testing.assert_close(got, expected, **tol)
        if sample.reference_fn is not None:
            reference = sample.reference_fn(ours, *args, **kwargs)  # (it passes the parameters itself)
            torch.testing.assert_close(got, reference, **tol)
        # Gradients of the input and of every parameter.
        flat_got = [t for t in torch.utils._pytree.tree_leaves(got) if t.requires_grad]
        flat_expected = [t for t in torch.utils._pytree.tree_leaves(expected) if t.requires_grad]
        inputs = [t for t in torch.utils._pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        grads_out = [torch.randn_like(t) for t in flat_expected]
        g_ours = torch.autograd.grad(flat_got, inputs + list(ours.parameters()), grads_out)
        g_theirs = torch.autograd.grad(flat_expected, inputs + list(theirs.parameters()), grads_out)
        torch.testing.assert_close(g_ours, g_theirs, **tol)


@pytest.mark.parametrize("info", INFOS, ids=lambda info: info.module_cls.__name__)
def test_module_error_inputs_match_torch(info):
    samples = info.module_error_inputs_func(info, device="cpu", dtype=torch.float32, requires_grad=False,
                                            training=True)
    assert samples
    for sample in samples:
        module_input = sample.module_error_input
        cls = DROP_INS[info.module_cls]
        with pytest.raises(sample.error_type) as raised:
            module = _construct(cls, module_input.constructor_input)
            if sample.error_on == ModuleErrorEnum.FORWARD_ERROR:
                module(*module_input.forward_input.args, **module_input.forward_input.kwargs)
        assert re.search(sample.error_regex, str(raised.value)), (sample.error_regex, str(raised.value))
