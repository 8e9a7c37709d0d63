"""bfloat16 / float16 on every op and module, and torch.autocast: against the float64 reference on the same
(rounded) inputs, against torch.nn at the same precision, opcheck per dtype, the bf16 backward against float32."""

import os
import subprocess
import sys

import pytest
import torch

import fastlstm
from fastlstm import ops, reference

LOW = [torch.bfloat16, torch.float16]
# Sizes: the bf16 kernel serves H a multiple of 32 with an even input size (cpu/lstm_bf16_op.h); the others run in
# float32 between casts. Both must hold the same tolerances.
KERNEL_SIZES = [(6, 3, 16, 32), (5, 70, 64, 96), (3, 1, 8, 64)]
CONVERTED_SIZES = [(4, 3, 5, 6), (3, 2, 6, 34)]
# One rounding of h (and c_n) to the low dtype: half an ulp at |h| < 1 is 2^-9 for bf16, 2^-12 for float16; the
# weights' and inputs' rounding is shared with the reference, so the rest is float32 summation.
OUTPUT_ATOL = {torch.bfloat16: 8e-3, torch.float16: 1.5e-3}


def low_inputs(seq_len, batch, input_size, hidden_size, dtype, *, bias=True, peephole=False):
    def rand(*shape, scale=1.0):
        return (torch.randn(*shape) * scale).to(dtype)
    scale = hidden_size ** -0.5
    return dict(x=rand(seq_len, batch, input_size), h0=rand(batch, hidden_size, scale=0.5),
                c0=rand(batch, hidden_size, scale=0.5), w_ih=rand(4 * hidden_size, input_size, scale=scale),
                w_hh=rand(4 * hidden_size, hidden_size, scale=scale),
                b_ih=rand(4 * hidden_size, scale=scale) if bias else None,
                b_hh=rand(4 * hidden_size, scale=scale) if bias else None,
                w_peephole=rand(3, hidden_size, scale=0.5) if peephole else None)


def as_float64(inputs):
    return {k: None if v is None else v.double() for k, v in inputs.items()}


def check_against_reference(dtype, result, inputs, **options):
    output, h_n, c_n = result[:3]
    i = as_float64(inputs)
    expected = reference.lstm_sequence(i["x"], i["h0"], i["c0"], i["w_ih"], i["w_hh"], i["b_ih"], i["b_hh"],
                                       w_peephole=i["w_peephole"], **options)
    assert output.dtype == h_n.dtype == c_n.dtype == dtype
    atol = OUTPUT_ATOL[dtype]
    torch.testing.assert_close(output.double(), expected[0], rtol=0, atol=atol)
    torch.testing.assert_close(h_n.double(), expected[1], rtol=0, atol=atol)
    torch.testing.assert_close(c_n.double(), expected[2], rtol=atol, atol=atol)


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("sizes", KERNEL_SIZES + CONVERTED_SIZES, ids=str)
@pytest.mark.parametrize("training", [False, True])
def test_forward_op_matches_the_float64_reference(dtype, sizes, training):
    inputs = low_inputs(*sizes, dtype)
    result = ops.forward(*inputs.values(), None, 0.0, 0.0, training)
    check_against_reference(dtype, result, inputs)
    workspace = result[3]
    assert workspace.dtype == torch.float32
    assert workspace.shape == ((sizes[0], sizes[1], 5 * sizes[3]) if training else (0,))


@pytest.mark.parametrize("dtype", LOW)
def test_tf_options_and_lengths(dtype):
    inputs = low_inputs(5, 4, 16, 32, dtype, peephole=True)
    result = ops.forward(*inputs.values(), None, 1.0, 0.9, True)
    check_against_reference(dtype, result, inputs, forget_bias=1.0, cell_clip=0.9)
    lengths = torch.tensor([5, 0, 3, 1])
    result = ops.forward(*inputs.values(), lengths, 1.0, 0.0, True)
    check_against_reference(dtype, result, inputs, forget_bias=1.0, sequence_lengths=lengths)


@pytest.mark.parametrize("sizes", [(20, 8, 64, 64), (10, 4, 32, 128)], ids=str)
def test_bf16_error_no_worse_than_torch_nn(sizes):
    """Both from the same bf16 weights and inputs against float64: fastlstm's error at most torch.nn.LSTM's (bf16,
    oneDNN), with a margin for the rounding both make of h."""
    seq_len, batch, input_size, hidden_size = sizes
    torch_lstm = torch.nn.LSTM(input_size, hidden_size).bfloat16()
    ours = fastlstm.LSTM(input_size, hidden_size).bfloat16()
    ours.load_state_dict(torch_lstm.state_dict())
    x = torch.randn(seq_len, batch, input_size).bfloat16()
    exact = torch.nn.LSTM(input_size, hidden_size).double()
    exact.load_state_dict({k: v.double() for k, v in torch_lstm.state_dict().items()})
    with torch.no_grad():
        expected = exact(x.double())[0]
        torch_error = (torch_lstm(x)[0].double() - expected).abs().max().item()
        our_error = (ours(x)[0].double() - expected).abs().max().item()
    assert ours.last_backend == "fused"
    assert our_error <= 1.25 * torch_error + 1e-3, (our_error, torch_error)


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("sizes", [KERNEL_SIZES[0], CONVERTED_SIZES[1]], ids=str)
def test_backward_matches_float32_backward(dtype, sizes):
    """The low-precision backward against float32's on the same rounded values: gradients rounded once to the low
    dtype, so within a few of its ulps."""
    inputs = low_inputs(*sizes, dtype)
    leaves = {k: v.requires_grad_() for k, v in inputs.items() if v is not None}
    wide = {k: v.detach().float().requires_grad_() for k, v in leaves.items()}
    for tensors in (leaves, wide):
        args = [tensors.get(k) for k in inputs]
        output, h_n, c_n, _ = ops.forward(*args, None, 0.0, 0.0, True)
        (output.float().sum() + (h_n.float() * 0.5).sum() + c_n.float().sum()).backward()
    for name, leaf in leaves.items():
        assert leaf.grad.dtype == dtype, name
        scale = wide[name].grad.abs().max().item() + 1e-3
        torch.testing.assert_close(leaf.grad.float(), wide[name].grad, rtol=0, atol=4e-2 * scale, msg=name)


@pytest.mark.parametrize("dtype", LOW)
def test_opcheck_low_precision(dtype):
    inputs = low_inputs(4, 3, 16, 32, dtype, peephole=True)
    args = (*inputs.values(), None, 1.0, 0.0, True)
    torch.library.opcheck(ops.forward.default, args)
    output, h_n, c_n, workspace = ops.forward(*args)
    x, h0, c0, w_ih, w_hh, _, _, w_peephole = inputs.values()
    torch.library.opcheck(ops.backward.default, (torch.randn_like(output), torch.randn_like(h_n), None, x, h0, c0,
                                                 w_ih, w_hh, w_peephole, None, output, workspace, 0.0))
    cell_args = (x[0], h0, c0, w_ih, w_hh, inputs["b_ih"], inputs["b_hh"], None, 0.0, 0.0, True)
    torch.library.opcheck(ops.cell_forward.default, cell_args)
    gru_args = (x, h0, w_ih[:96], w_hh[:96], inputs["b_ih"][:96], inputs["b_hh"][:96], None, True, True)
    torch.library.opcheck(ops.gru.default, gru_args)


def test_mixed_dtypes_are_refused():
    inputs = low_inputs(3, 2, 16, 32, torch.bfloat16)
    inputs["w_hh"] = inputs["w_hh"].float()
    with pytest.raises(RuntimeError, match=r"expected w_hh (to have x's dtype|in) BFloat16.*got Float"):
        ops.forward(*inputs.values(), None, 0.0, 0.0, False)
    inputs = low_inputs(3, 2, 16, 32, torch.bfloat16)
    output, h_n, c_n, workspace = ops.forward(*inputs.values(), None, 0.0, 0.0, True)
    x, h0, c0, w_ih, w_hh = list(inputs.values())[:5]
    with pytest.raises(RuntimeError, match=r"expected workspace in Float \(the workspace of a low-precision forward"):
        ops.backward(output, None, None, x, h0, c0, w_ih, w_hh, None, None, output, workspace.bfloat16(), 0.0)


MODULES = [(fastlstm.LSTM, torch.nn.LSTM, dict(num_layers=2, bidirectional=True)),
           (fastlstm.GRU, torch.nn.GRU, dict(num_layers=2)),
           (fastlstm.LSTMCell, torch.nn.LSTMCell, {}), (fastlstm.GRUCell, torch.nn.GRUCell, {})]


def leaves(result):
    return [t for t in torch.utils._pytree.tree_leaves(result) if isinstance(t, torch.Tensor)]


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("ours,theirs,options", MODULES, ids=lambda v: getattr(v, "__name__", ""))
def test_modules_in_low_precision_match_float64(dtype, ours, theirs, options):
    """Each drop-in converted with .to(dtype) runs fused (not the composed path) and matches torch.nn's module in
    float64 on the same rounded weights and inputs."""
    module = ours(16, 32, **options).to(dtype)
    exact = theirs(16, 32, **options).double()
    exact.load_state_dict({k: v.double() for k, v in module.state_dict().items()})
    x = torch.randn(5, 3, 16).to(dtype)
    if ours in (fastlstm.LSTMCell, fastlstm.GRUCell):
        x = x[0]
    result = module(x)
    if hasattr(module, "last_backend"):
        assert module.last_backend == "fused"
    for actual, expected in zip(leaves(result), leaves(exact(x.double()))):
        assert actual.dtype == dtype
        torch.testing.assert_close(actual.double(), expected, rtol=OUTPUT_ATOL[dtype], atol=OUTPUT_ATOL[dtype])
    sum(t.float().sum() for t in leaves(result)).backward()
    assert all(p.grad is not None and p.grad.dtype == dtype for p in module.parameters())


@pytest.mark.parametrize("dtype", LOW)
def test_layer_norm_lstm_low_precision(dtype):
    module = fastlstm.LayerNormLSTM(16, 32).to(dtype)
    exact = fastlstm.LayerNormLSTM(16, 32, backend="reference").double()
    exact.load_state_dict({k: v.double() for k, v in module.state_dict().items()})
    x = torch.randn(5, 3, 16).to(dtype)
    output, (h_n, c_n) = module(x)
    expected, (h_e, c_e) = exact(x.double())
    assert output.dtype == dtype
    torch.testing.assert_close(output.double(), expected, rtol=0, atol=2 * OUTPUT_ATOL[dtype])
    torch.testing.assert_close(c_n.double(), c_e, rtol=2 * OUTPUT_ATOL[dtype], atol=2 * OUTPUT_ATOL[dtype])


@pytest.mark.parametrize("ours,theirs,options", MODULES, ids=lambda v: getattr(v, "__name__", ""))
def test_autocast_dtypes_and_gradients_as_torch_nn(ours, theirs, options):
    """Under torch.autocast("cpu", bfloat16): the result dtypes torch.nn's modules give (LSTM: bf16; GRU and the
    cells: float32), values close to theirs, float32 gradients on the float32 weights."""
    module = ours(16, 32, **options)
    peer = theirs(16, 32, **options)
    peer.load_state_dict(module.state_dict())
    x = torch.randn(5, 3, 16)
    if ours in (fastlstm.LSTMCell, fastlstm.GRUCell):
        x = x[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        result, expected = module(x), peer(x)
    for actual, wanted in zip(leaves(result), leaves(expected)):
        assert actual.dtype == wanted.dtype
        torch.testing.assert_close(actual.float(), wanted.float(), rtol=0, atol=3e-2)
    sum(t.float().sum() for t in leaves(result)).backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in module.parameters())


def test_autocast_runs_the_bf16_path_and_compiles():
    module = fastlstm.LSTM(16, 32)
    x = torch.randn(5, 3, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        eager = module(x)[0]
        compiled = torch.compile(module, fullgraph=True)(x)[0]
        direct = ops.forward(x, torch.zeros(3, 32), torch.zeros(3, 32), module.weight_ih_l0, module.weight_hh_l0,
                             module.bias_ih_l0, module.bias_hh_l0)[0]
    bf16 = fastlstm.LSTM(16, 32).bfloat16()
    bf16.load_state_dict(module.state_dict())
    with torch.no_grad():
        expected = bf16(x.bfloat16())[0]
    for result in (eager, compiled, direct):
        assert result.dtype == torch.bfloat16
        torch.testing.assert_close(result, expected.detach(), rtol=0, atol=1e-2)


def test_packed_weights_follow_in_place_changes():
    """The bf16 kernel keeps packed weights between calls: an optimizer step, a `.data` swap and a new module must
    each be seen."""
    module = fastlstm.LSTM(16, 32).bfloat16()
    x = torch.randn(4, 2, 16).bfloat16()
    with torch.no_grad():
        before = module(x)[0]
        module.weight_hh_l0.mul_(0.5)
        after_step = module(x)[0]
        module.weight_ih_l0.data = torch.zeros_like(module.weight_ih_l0)
        after_swap = module(x)[0]
    assert not torch.equal(before, after_step)
    assert not torch.equal(after_step, after_swap)
    fresh = fastlstm.LSTM(16, 32).bfloat16()
    fresh.load_state_dict(module.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fresh(x)[0], after_swap, rtol=0, atol=0)
    fastlstm.empty_cache()
    with torch.no_grad():
        torch.testing.assert_close(module(x)[0], after_swap, rtol=0, atol=0)


SUBPROCESS_CHECK = """
import torch, fastlstm
torch.manual_seed(0)
module = fastlstm.LSTM(16, 64).bfloat16()
x = torch.randn(6, 5, 16).bfloat16()
with torch.no_grad():
    torch.save(module(x)[0], {path!r})
"""


@pytest.mark.parametrize("environment", [{"FASTLSTM_BF16": "convert"}, {"FASTLSTM_CPU_CAPABILITY": "avx2"},
                                         {"FASTLSTM_CPU_CAPABILITY": "baseline"}], ids=str)
def test_every_level_and_the_converting_path_agree(tmp_path, environment):
    """The bf16 kernel (where this CPU has it) and the float32-between-casts path, also at the lower dispatch
    levels, give the same outputs up to bf16 rounding (each in its own process: the choices are made once)."""
    results = []
    for extra in ({}, environment):
        path = tmp_path / f"{len(results)}.pt"
        subprocess.run([sys.executable, "-c", SUBPROCESS_CHECK.format(path=str(path))], check=True, timeout=300,
                       env={**os.environ, **extra})
        results.append(torch.load(path))
    torch.testing.assert_close(results[0].float(), results[1].float(), rtol=0, atol=8e-3)


@pytest.mark.parametrize("sizes", KERNEL_SIZES + [(6, 20, 32, 64)], ids=str)
def test_gru_bf16_inference_kernel_matches_the_float64_reference(sizes):
    """The GRU's bf16 kernel (inference: training=False, torch's convention; the input's products per step from 16
    rows, else at once) against the float64 reference, and no less accurate than torch.nn.GRU in bf16."""
    seq_len, batch, input_size, hidden_size = sizes
    torch.manual_seed(0)
    theirs = torch.nn.GRU(input_size, hidden_size).bfloat16()
    w_ih, w_hh, b_ih, b_hh = [p.detach() for p in theirs.parameters()]
    x = torch.randn(seq_len, batch, input_size).bfloat16()
    h0 = (torch.randn(batch, hidden_size) * 0.5).bfloat16()
    output, h_n, workspace = ops.gru(x, h0, w_ih, w_hh, b_ih, b_hh, None, False, True)
    assert output.dtype == h_n.dtype == torch.bfloat16 and workspace.numel() == 0
    expected, expected_h = reference.gru_sequence(*(t.double() for t in (x, h0, w_ih, w_hh, b_ih, b_hh)))
    torch.testing.assert_close(output.double(), expected, rtol=0, atol=OUTPUT_ATOL[torch.bfloat16])
    torch.testing.assert_close(h_n.double(), expected_h, rtol=0, atol=OUTPUT_ATOL[torch.bfloat16])
    with torch.no_grad():
        their_error = (theirs(x, h0.unsqueeze(0))[0].double() - expected).abs().max().item()
    assert (output.double() - expected).abs().max().item() <= their_error * 1.25


@pytest.mark.parametrize("variant", ["haste", "tf-joint-per-gate"])
@pytest.mark.parametrize("sizes", KERNEL_SIZES, ids=str)
def test_layer_norm_lstm_bf16_inference_kernel_matches_the_float64_reference(sizes, variant):
    """The layer-norm LSTM's bf16 kernel (inference, rows split across threads) against the float64 reference: haste's
    separate norms over all gates, and TF's joint norm per gate with forget_bias and the normalised cell carried."""
    seq_len, batch, input_size, hidden_size = sizes
    torch.manual_seed(0)
    G = 4 * hidden_size
    separate = variant == "haste"
    x = torch.randn(seq_len, batch, input_size).bfloat16()
    h0, c0 = (torch.randn(batch, hidden_size) * 0.5).bfloat16(), (torch.randn(batch, hidden_size) * 0.5).bfloat16()
    w_ih = (torch.randn(G, input_size) * input_size ** -0.5).bfloat16()
    w_hh = (torch.randn(G, hidden_size) * hidden_size ** -0.5).bfloat16()
    bias = (torch.randn(G) * 0.1).bfloat16()
    ln_ih, ln_hh = (1 + 0.1 * torch.randn(G)).bfloat16(), (1 + 0.1 * torch.randn(G)).bfloat16() if separate else None
    ln_cw, ln_cb = (1 + 0.1 * torch.randn(hidden_size)).bfloat16(), (0.1 * torch.randn(hidden_size)).bfloat16()
    groups, forget_bias, carry = (1, 0.0, False) if separate else (4, 1.0, True)
    args = (x, h0, c0, w_ih, w_hh, bias, ln_ih, ln_hh, ln_cw, ln_cb)
    output, h_n, c_n, workspace = ops.layer_norm_lstm(*args, None, None, groups, 1e-5, forget_bias, carry, False)
    assert output.dtype == h_n.dtype == c_n.dtype == torch.bfloat16 and workspace.numel() == 0
    expected = reference.layer_norm_lstm_sequence(*(None if t is None else t.double() for t in args), groups=groups,
                                                  eps=1e-5, forget_bias=forget_bias, carry_normalized_cell=carry)
    atol = 2 * OUTPUT_ATOL[torch.bfloat16]
    torch.testing.assert_close(output.double(), expected[0], rtol=0, atol=atol)
    torch.testing.assert_close(c_n.double(), expected[2], rtol=atol, atol=atol)
