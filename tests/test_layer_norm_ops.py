"""torch.ops.fastlstm.layer_norm_lstm / layer_norm_lstm_backward against the graph-composed reference
(reference.layer_norm_lstm_sequence), in both formulations (haste's separate norms, TF's joint per-gate norm with
forget_bias, the carried normalised c and a g mask), with lengths, both dtypes, gradcheck, opcheck and the edge cases."""

import pytest
import torch

import fastlstm  # noqa: F401  (registers the ops)
from fastlstm import reference
from conftest import assert_close

ops = torch.ops.fastlstm

HASTE = dict(groups=1, eps=1e-5, forget_bias=0.0, carry_normalized_cell=False)
TF = dict(groups=4, eps=1e-12, forget_bias=1.0, carry_normalized_cell=True)


def make_inputs(T, B, I, H, dtype=torch.float64, separate=True, bias=True, mask=False, lengths=False, seed=0):
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0, offset=0.0):
        return (torch.randn(*shape, generator=generator, dtype=dtype) * scale + offset).requires_grad_()

    tensors = dict(
        x=randn(T, B, I), h0=randn(B, H), c0=randn(B, H), w_ih=randn(4 * H, I, scale=I ** -0.5),
        w_hh=randn(4 * H, H, scale=H ** -0.5), bias=randn(4 * H, scale=0.3) if bias else None,
        ln_ih_weight=randn(4 * H, scale=0.2, offset=1.0),
        ln_hh_weight=randn(4 * H, scale=0.2, offset=1.0) if separate else None,
        ln_cell_weight=randn(H, scale=0.2, offset=1.0), ln_cell_bias=randn(H, scale=0.2))
    extras = dict(
        sequence_lengths=torch.randint(0, T + 1, (B,), generator=generator) if lengths else None,
        g_mask=(torch.rand(T, B, H, generator=generator, dtype=dtype) > 0.3).to(dtype) / 0.7 if mask else None)
    return tensors, extras


def run_op(tensors, extras, options, training=True):
    output, h_n, c_n, _ = ops.layer_norm_lstm(*tensors.values(), extras["sequence_lengths"], extras["g_mask"],
                                              **options, training=training)
    return output, h_n, c_n


def run_reference(tensors, extras, options):
    return reference.layer_norm_lstm_sequence(*tensors.values(), **extras, **options)


CASES = [  # (T, B, I, H): packed and engine recurrent products, one and two threads, H off the vector width
    (5, 3, 4, 6), (2, 3, 4, 6), (7, 20, 16, 40), (6, 1, 3, 33), (9, 17, 8, 64)]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("formulation", ["haste", "tf"])
@pytest.mark.parametrize("lengths", [False, True])
def test_matches_reference_forward_and_backward(dtype, case, formulation, lengths):
    separate = formulation == "haste"
    options = HASTE if separate else TF
    tensors, extras = make_inputs(*case, dtype=dtype, separate=separate, bias=separate, mask=not separate,
                                  lengths=lengths)
    got = run_op(tensors, extras, options)
    expected = run_reference(tensors, extras, options)
    tolerance = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=2e-4, atol=2e-5)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, **tolerance)
    grads = [torch.randn_like(t) for t in expected]
    inputs = [t for t in tensors.values() if t is not None]
    for a, b in zip(torch.autograd.grad(got, inputs, grads), torch.autograd.grad(expected, inputs, grads)):
        scale = b.abs().max().clamp_min(1.0)
        torch.testing.assert_close(a / scale, b / scale, **tolerance)
    with torch.no_grad():  # inference (no workspace) computes the same
        for a, b in zip(run_op(tensors, extras, options, training=False), got):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("formulation", ["haste", "tf"])
def test_gradcheck(formulation):
    separate = formulation == "haste"
    options = HASTE if separate else TF
    options = dict(options, eps=1e-5)  # TF's 1e-12 makes the finite differences of a norm ill-conditioned
    tensors, extras = make_inputs(4, 3, 2, 3, separate=separate, mask=not separate, lengths=True, seed=1)
    names = [name for name, t in tensors.items() if t is not None]

    def run(*values):
        return run_op(dict(tensors, **dict(zip(names, values))), extras, options)

    assert torch.autograd.gradcheck(run, [tensors[name] for name in names])


@pytest.mark.parametrize("formulation", ["haste", "tf"])
def test_opcheck(formulation):
    separate = formulation == "haste"
    tensors, extras = make_inputs(3, 2, 3, 4, dtype=torch.float32, separate=separate, mask=not separate,
                                  lengths=True)
    options = HASTE if separate else TF
    args = (*tensors.values(), extras["sequence_lengths"], extras["g_mask"])
    torch.library.opcheck(ops.layer_norm_lstm.default, args, dict(options))
    output, h_n, c_n, workspace = ops.layer_norm_lstm(*args, **options)
    grads = (torch.randn_like(output), None, torch.randn_like(c_n))
    backward_args = (*grads, *(t.detach() if t is not None else None for name, t in tensors.items()
                               if name != "bias"), extras["sequence_lengths"], extras["g_mask"], output.detach(),
                     workspace, options["groups"], options["carry_normalized_cell"])
    torch.library.opcheck(ops.layer_norm_lstm_backward.default, backward_args)


def test_no_steps_and_no_rows_pass_the_state_through():
    tensors, extras = make_inputs(0, 3, 4, 5)
    output, h_n, c_n = run_op(tensors, extras, HASTE)
    assert output.shape == (0, 3, 5)
    assert torch.equal(h_n, tensors["h0"]) and torch.equal(c_n, tensors["c0"])
    grad_h, grad_c = torch.autograd.grad((h_n, c_n), (tensors["h0"], tensors["c0"]),
                                         (torch.ones_like(h_n), torch.full_like(c_n, 2.0)))
    assert torch.equal(grad_h, torch.ones_like(h_n)) and torch.equal(grad_c, torch.full_like(c_n, 2.0))
    tensors, extras = make_inputs(4, 0, 4, 5)
    output, h_n, c_n = run_op(tensors, extras, TF)
    assert output.shape == (4, 0, 5) and h_n.shape == (0, 5)


def test_results_do_not_depend_on_the_thread_count():
    tensors, extras = make_inputs(6, 32, 16, 64, dtype=torch.float32, lengths=True)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run_op(tensors, extras, HASTE)
        torch.set_num_threads(max(2, threads))
        many = run_op(tensors, extras, HASTE)
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(one, many):  # the same math; only the GEMM engines' blocking may round differently
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_nan_reaches_only_its_row():
    tensors, extras = make_inputs(5, 4, 3, 8, dtype=torch.float32)
    with torch.no_grad():
        tensors["x"][2, 1, 0] = float("nan")
    output, h_n, c_n = run_op(tensors, extras, HASTE)
    assert torch.isnan(output[2:, 1]).all() and not torch.isnan(output[:2]).any()
    assert not torch.isnan(output[:, [0, 2, 3]]).any()


def test_errors_say_what_was_expected():
    tensors, extras = make_inputs(3, 2, 4, 5, dtype=torch.float32)
    with pytest.raises(RuntimeError, match="expected groups 1 .* or 4"):
        run_op(tensors, extras, dict(HASTE, groups=2))
    with pytest.raises(RuntimeError, match="expected eps > 0"):
        run_op(tensors, extras, dict(HASTE, eps=0.0))
    with pytest.raises(RuntimeError, match=r"expected ln_cell_weight of shape \[5\]"):
        run_op(dict(tensors, ln_cell_weight=torch.ones(4)), extras, HASTE)
    with pytest.raises(RuntimeError, match=r"expected g_mask of shape \[3, 2, 5\]"):
        run_op(tensors, dict(extras, g_mask=torch.ones(3, 2, 4)), HASTE)
    with pytest.raises(RuntimeError, match="expected w_ih to have x's dtype"):
        run_op(dict(tensors, w_ih=tensors["w_ih"].double()), extras, HASTE)
    with torch.no_grad():
        output, h_n, c_n, workspace = ops.layer_norm_lstm(*tensors.values(), training=False)
    with pytest.raises(RuntimeError, match="kept no workspace"):
        ops.layer_norm_lstm_backward(output, None, None, *(t for n, t in tensors.items() if n != "bias"), None, None,
                                     output, workspace, 1, False)


