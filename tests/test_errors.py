"""Bad input gets an error that says what was expected and what came; nothing crashes the interpreter."""

import pytest
import torch

import fastlstm
from fastlstm import ops


def good_args(seq_len=4, batch=3, input_size=5, hidden=6, dtype=torch.float32):
    return dict(x=torch.randn(seq_len, batch, input_size, dtype=dtype), h0=torch.zeros(batch, hidden, dtype=dtype),
                c0=torch.zeros(batch, hidden, dtype=dtype), w_ih=torch.randn(4 * hidden, input_size, dtype=dtype),
                w_hh=torch.randn(4 * hidden, hidden, dtype=dtype), b_ih=None, b_hh=None, w_peephole=None,
                sequence_lengths=None)


def call_forward(**changes):
    args = good_args()
    args.update(changes)
    return ops.forward(*args.values(), 0.0, 0.0, False)


@pytest.mark.parametrize("changes,message", [
    (dict(x=torch.randn(3, 5)), r"expected x of 3 dims \[seq_len, batch, input_size\], got 2 dims of shape \[3, 5\]"),
    (dict(w_ih=torch.randn(24, 7)), r"expected w_ih of shape \[24, 5\] .* got \[24, 7\]"),
    (dict(w_hh=torch.randn(24, 5)), r"expected w_hh of shape \[4 \* hidden_size, hidden_size\], got \[24, 5\]"),
    (dict(h0=torch.zeros(2, 6)), r"expected h0 of shape \[3, 6\] \[batch, hidden_size\], got \[2, 6\]"),
    (dict(c0=torch.zeros(3, 6, dtype=torch.float64)), r"expected c0 to have x's dtype Float, got Double"),
    (dict(b_ih=torch.zeros(23)), r"expected b_ih of shape \[24\]"),
    (dict(w_peephole=torch.zeros(6)), r"expected w_peephole of shape \[3, 6\]"),
    (dict(x=torch.ones(4, 3, 5, dtype=torch.int32)),
     r"expected float32, float64, bfloat16 or float16 tensors, got x of dtype Int"),
    (dict(x=torch.randn(4, 3, 5, dtype=torch.float16)),
     r"expected h0 in Half \(the dtype of the op's other tensors\), got Float"),
    (dict(w_hh=torch.randn(24, 6, device="meta")), r"expected w_hh on x's device cpu, got meta"),
    (dict(sequence_lengths=torch.tensor([4, 5, 1])), r"expected every sequence length in \[0, 4\] .* got 5 for batch row 1"),
    (dict(sequence_lengths=torch.tensor([4, -1, 1])), r"got -1 for batch row 1"),
    (dict(sequence_lengths=torch.tensor([4, 1])), r"expected sequence_lengths of shape \[3\]"),
    (dict(sequence_lengths=torch.tensor([4.0, 1.0, 1.0])), r"expected integer sequence_lengths, got dtype Float"),
])
def test_forward_op_errors(changes, message):
    with pytest.raises(RuntimeError, match=message):
        call_forward(**changes)


@pytest.mark.parametrize("changes,tf_layout,message", [
    (dict(w_hh=None), False, r"expected w_hh of shape \[4 \* hidden_size, hidden_size\], got None"),
    (dict(w_ih=torch.randn(11, 24)), True, r"expected w_hh None with tf_layout .* got a tensor of shape \[24, 6\]"),
    (dict(w_ih=torch.randn(10, 24), w_hh=None), True,
     r"expected w_ih of shape \[11, 24\] \[input_size \+ hidden_size, 4 \* hidden_size\] \(tf_layout.* got \[10, 24\]"),
    (dict(w_ih=torch.randn(11, 23), w_hh=None), True, r"expected w_ih of shape \[input_size \+ hidden_size, 4 \* "
     r"hidden_size\] \(tf_layout: TF's kernel\), got \[11, 23\]"),
])
def test_weight_layout_errors(changes, tf_layout, message):
    args = good_args()
    args.update(changes)
    with pytest.raises(RuntimeError, match=message):
        ops.forward(*args.values(), 0.0, 0.0, False, tf_layout)


@pytest.mark.parametrize("changes,w_hr,message", [
    (dict(w_hh=torch.randn(24, 4), h0=torch.zeros(3, 4)), torch.randn(4, 5),
     r"expected w_hr of shape \[4, 6\] \[proj_size, hidden_size\], got \[4, 5\]"),
    (dict(w_hh=torch.randn(24, 4)), torch.randn(4, 6), r"expected h0 of shape \[3, 4\] \[batch, proj_size\], got \[3, 6\]"),
    (dict(w_hh=torch.randn(24, 4), h0=torch.zeros(3, 4)), torch.randn(4, 6, dtype=torch.float64),
     r"expected w_hr to have x's dtype Float, got Double"),
])
def test_projection_errors(changes, w_hr, message):
    args = good_args()
    args.update(changes)
    with pytest.raises(RuntimeError, match=message):
        ops.forward(*args.values(), 0.0, 0.0, False, False, w_hr)


def test_backward_without_workspace_is_a_clear_error():
    args = good_args()
    for name in ("x", "w_ih"):
        args[name].requires_grad_()
    output, h_n, c_n, workspace = ops.forward(*args.values(), 0.0, 0.0, False)
    with pytest.raises(RuntimeError, match="ran with training=False and kept no workspace"):
        output.sum().backward()


def test_cell_op_errors():
    args = good_args()
    with pytest.raises(RuntimeError, match=r"expected x of 2 dims \[batch, input_size\], got 3 dims"):
        ops.cell_forward(args["x"], args["h0"], args["c0"], args["w_ih"], args["w_hh"], None, None, None, 0.0, 0.0,
                         False)


def test_module_errors_match_torch():
    ours, theirs = fastlstm.LSTM(5, 6, num_layers=2), torch.nn.LSTM(5, 6, num_layers=2)
    cases = [
        (torch.randn(2, 3, 4, 5), None),
        (torch.randn(4, 3, 7), None),
        (torch.randn(4, 3, 5, dtype=torch.float64), None),
        (torch.randn(4, 3, 5), (torch.zeros(2, 6), torch.zeros(2, 6))),
        (torch.randn(4, 5), (torch.zeros(2, 3, 6), torch.zeros(2, 3, 6))),
        (torch.randn(4, 3, 5), (torch.zeros(1, 3, 6), torch.zeros(2, 3, 6))),
        (torch.randn(4, 3, 5), (torch.zeros(2, 3, 6), torch.zeros(2, 2, 6))),
    ]
    for x, hx in cases:
        with pytest.raises((RuntimeError, ValueError)) as theirs_error:
            theirs(x, hx)
        with pytest.raises(theirs_error.type) as ours_error:
            ours(x, hx)
        assert str(ours_error.value) == str(theirs_error.value)


def test_cell_module_errors():
    cell = fastlstm.LSTMCell(5, 6)
    with pytest.raises(ValueError, match="LSTMCell: Expected input to be 1D or 2D, got 3D instead"):
        cell(torch.randn(1, 2, 5))
    with pytest.raises(RuntimeError, match="input has inconsistent input_size: got 4 expected 5"):
        cell(torch.randn(2, 4))


def test_weight_on_another_device_through_the_module():
    module = fastlstm.LSTM(5, 6)
    module.weight_hh_l0 = torch.nn.Parameter(module.weight_hh_l0.detach().to("meta"))
    with pytest.raises(RuntimeError, match="expected w_hh on x's device cpu, got meta"):
        module(torch.randn(4, 3, 5))


def test_reference_backend_has_second_derivatives():
    module = fastlstm.LSTM(3, 4, dtype=torch.float64, backend="reference")
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x: module(x)[0], (x,))


def test_import_against_another_torch_is_a_clear_error():
    """A torch extension loads only in the torch it was built with: fastlstm says which two versions differ before
    loading its library."""
    import subprocess
    import sys

    code = "import torch; torch.__version__ = '1.99.0'; import fastlstm"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "fastlstm was built against torch" in result.stderr and "1.99.0" in result.stderr
