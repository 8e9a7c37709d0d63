"""The GRU: torch.ops.fastlstm.gru / gru_backward against the graph-composed reference (reference.gru_sequence) and
torch.nn.GRU, gradcheck, opcheck, the edge cases, and the drop-ins fastlstm.GRU / GRUCell against torch.nn's
(every input form, state_dict both ways, torch.compile). PyTorch's own module inputs: test_module_db.py."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import fastlstm
from fastlstm import functional, reference
from conftest import assert_close

ops = torch.ops.fastlstm


def make_inputs(T, B, I, H, dtype=torch.float64, bias=True, seed=0):
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0):
        return (torch.randn(*shape, generator=generator, dtype=dtype) * scale).requires_grad_()

    return dict(x=randn(T, B, I), h0=randn(B, H), w_ih=randn(3 * H, I, scale=I ** -0.5),
                w_hh=randn(3 * H, H, scale=H ** -0.5), b_ih=randn(3 * H, scale=0.3) if bias else None,
                b_hh=randn(3 * H, scale=0.3) if bias else None)


def run_op(inputs, lengths=None, training=True, linear_before_reset=True):
    output, h_n, _ = ops.gru(*inputs.values(), lengths, training, linear_before_reset)
    return output, h_n


CASES = [(5, 3, 4, 6), (2, 3, 4, 6), (7, 20, 16, 40), (6, 1, 3, 33), (9, 17, 8, 64)]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("lengths", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("convention", ["torch", "tf"])
def test_matches_reference_forward_and_backward(dtype, case, lengths, bias, convention):
    inputs = make_inputs(*case, dtype=dtype, bias=bias)
    seq_lengths = torch.randint(0, case[0] + 1, (case[1],), generator=torch.Generator().manual_seed(3)) \
        if lengths else None
    linear_before_reset = convention == "torch"
    got = run_op(inputs, seq_lengths, linear_before_reset=linear_before_reset)
    expected = reference.gru_sequence(*inputs.values(), sequence_lengths=seq_lengths,
                                      linear_before_reset=linear_before_reset)
    tolerance = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=2e-5, atol=2e-6)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, **tolerance)
    grads = [torch.randn_like(t) for t in expected]
    tensors = [t for t in inputs.values() if t is not None]
    for a, b in zip(torch.autograd.grad(got, tensors, grads), torch.autograd.grad(expected, tensors, grads)):
        scale = b.abs().max().clamp_min(1.0)
        torch.testing.assert_close(a / scale, b / scale, **tolerance)
    with torch.no_grad():
        for a, b in zip(run_op(inputs, seq_lengths, training=False, linear_before_reset=linear_before_reset), got):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("linear_before_reset", [True, False])
def test_gradcheck_and_opcheck(linear_before_reset):
    inputs = make_inputs(4, 3, 2, 3, seed=1)
    lengths = torch.tensor([4, 0, 2])
    names = list(inputs)

    def run(*values):
        return run_op(dict(zip(names, values)), lengths, linear_before_reset=linear_before_reset)

    assert torch.autograd.gradcheck(run, list(inputs.values()))
    options = dict(linear_before_reset=linear_before_reset)
    torch.library.opcheck(ops.gru.default, (*inputs.values(), lengths), options)
    output, h_n, workspace = ops.gru(*inputs.values(), lengths, **options)
    plain = [t.detach() for t in inputs.values()]
    torch.library.opcheck(ops.gru_backward.default, (torch.randn_like(output), torch.randn_like(h_n), *plain[:4],
                                                      lengths, output.detach(), workspace), options)


def test_no_steps_and_no_rows_pass_the_state_through():
    inputs = make_inputs(0, 3, 4, 5)
    output, h_n = run_op(inputs)
    assert output.shape == (0, 3, 5) and torch.equal(h_n, inputs["h0"])
    (grad_h,) = torch.autograd.grad(h_n, inputs["h0"], torch.ones_like(h_n))
    assert torch.equal(grad_h, torch.ones_like(h_n))
    output, h_n = run_op(make_inputs(4, 0, 4, 5))
    assert output.shape == (4, 0, 5) and h_n.shape == (0, 5)


def test_errors_say_what_was_expected():
    inputs = make_inputs(3, 2, 4, 5, dtype=torch.float32)
    with pytest.raises(RuntimeError, match=r"expected w_hh of shape \[3 \* hidden_size, hidden_size\]"):
        run_op(dict(inputs, w_hh=torch.zeros(20, 5)))
    with pytest.raises(RuntimeError, match=r"expected b_ih of shape \[15\]"):
        run_op(dict(inputs, b_ih=torch.zeros(14)))
    with pytest.raises(RuntimeError, match="every sequence length in"):
        run_op(inputs, torch.tensor([4, 1]))
    with torch.no_grad():
        output, h_n, workspace = ops.gru(*inputs.values(), None, False)
    with pytest.raises(RuntimeError, match="kept no workspace"):
        ops.gru_backward(output, None, *(t.detach() for t in list(inputs.values())[:4]), None, output, workspace)


def test_nan_reaches_only_its_row():
    inputs = make_inputs(5, 4, 3, 8, dtype=torch.float32)
    with torch.no_grad():
        inputs["x"][2, 1, 0] = float("nan")
    output, _ = run_op(inputs)
    assert torch.isnan(output[2:, 1]).all() and not torch.isnan(output[:2]).any()
    assert not torch.isnan(output[:, [0, 2, 3]]).any()


@pytest.mark.parametrize("backend", ["fused", "reference"])
def test_gru_module_matches_torch_in_every_form(backend):
    torch.manual_seed(0)
    theirs = torch.nn.GRU(3, 5, num_layers=2, bidirectional=True, dtype=torch.float64)
    torch.manual_seed(0)
    ours = fastlstm.GRU(3, 5, num_layers=2, bidirectional=True, dtype=torch.float64, backend=backend)
    for name, value in theirs.state_dict().items():  # the same seed gives the same weights
        assert torch.equal(ours.state_dict()[name], value), name
    x = torch.randn(6, 4, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 4, 5, dtype=torch.float64)
    assert_close(ours(x, h0), theirs(x, h0))
    assert ours.last_backend == backend
    lengths = torch.tensor([6, 2, 5, 1])
    (out_ours, h_ours) = ours(pack_padded_sequence(x, lengths, enforce_sorted=False), h0)
    (out_theirs, h_theirs) = theirs(pack_padded_sequence(x, lengths, enforce_sorted=False), h0)
    assert_close(out_ours.data, out_theirs.data)
    assert_close(h_ours, h_theirs)
    grads = torch.autograd.grad(out_ours.data.sum() + h_ours.sum(), [x, *ours.parameters()])
    expected = torch.autograd.grad(out_theirs.data.sum() + h_theirs.sum(), [x, *theirs.parameters()])
    assert_close(grads, expected)
    assert_close(ours(x[:, 0], h0[:, 0]), theirs(x[:, 0], h0[:, 0]))  # unbatched
    batch_first = fastlstm.GRU(3, 5, num_layers=2, bidirectional=True, batch_first=True, dtype=torch.float64)
    batch_first.load_state_dict(theirs.state_dict())
    assert_close(batch_first(x.transpose(0, 1))[0], theirs(x)[0].transpose(0, 1))
    assert torch.nn.GRU(3, 5, num_layers=2, bidirectional=True, dtype=torch.float64).load_state_dict(
        ours.state_dict())


def test_gru_cell_matches_torch_and_compiles():
    torch.manual_seed(0)
    theirs = torch.nn.GRUCell(4, 6)
    torch.manual_seed(0)
    ours = fastlstm.GRUCell(4, 6)
    x, h = torch.randn(3, 4), torch.randn(3, 6)
    assert_close(ours(x, h), theirs(x, h))
    assert ours.last_backend == "fused"
    assert_close(ours(x[0]), theirs(x[0]))
    compiled = torch.compile(ours, fullgraph=True, backend="aot_eager")
    assert_close(compiled(x, h), theirs(x, h))


def test_gru_module_compiles_fullgraph():
    module = fastlstm.GRU(3, 4, batch_first=True)
    x = torch.randn(2, 5, 3, requires_grad=True)
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager")
    out, h = compiled(x)
    assert_close(out, module(x)[0])
    out.sum().backward()
    assert x.grad is not None


def test_backends_refuse_what_they_cannot_serve():
    x = torch.randn(3, 2, 4, dtype=torch.complex64)
    with pytest.raises(ValueError, match="backend='fused' does not support dtype"):
        functional.gru(x, torch.zeros(2, 5, dtype=torch.complex64), torch.zeros(15, 4, dtype=torch.complex64),
                       torch.zeros(15, 5, dtype=torch.complex64), backend="fused")
    with pytest.raises(ValueError, match="backend='cudnn' cannot serve device cpu"):
        fastlstm.GRU(4, 5, backend="cudnn")(x.real)
