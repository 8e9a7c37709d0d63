"""torch.ops.fastlstm.* against fastlstm.reference: every option, gradcheck in float64, opcheck."""

import pytest
import torch

from fastlstm import functional, ops, reference
from conftest import assert_close


def make_inputs(seq_len, batch, input_size, hidden_size, dtype=torch.float64, *, bias=True, peephole=False,
                proj_size=0, requires_grad=True):
    """The ops' tensor inputs by name, in schema order; "w_hr" [proj_size, H] only with a projection (the ops take it
    last, by keyword here)."""
    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, dtype=dtype) * scale).requires_grad_(requires_grad)

    scale = 1.0 / hidden_size**0.5
    recurrent = proj_size or hidden_size
    inputs = dict(
        x=rand(seq_len, batch, input_size),
        h0=rand(batch, recurrent, scale=0.5),
        c0=rand(batch, hidden_size, scale=0.5),
        w_ih=rand(4 * hidden_size, input_size, scale=scale),
        w_hh=rand(4 * hidden_size, recurrent, scale=scale),
        b_ih=rand(4 * hidden_size, scale=scale) if bias else None,
        b_hh=rand(4 * hidden_size, scale=scale) if bias else None,
        w_peephole=rand(3, hidden_size, scale=0.5) if peephole else None,
    )
    if proj_size:
        inputs["w_hr"] = rand(proj_size, hidden_size, scale=scale)
    return inputs


def fused_sequence(inputs, lengths=None, forget_bias=0.0, cell_clip=0.0, training=True):
    i = inputs
    output, h_n, c_n, _ = ops.forward(i["x"], i["h0"], i["c0"], i["w_ih"], i["w_hh"], i["b_ih"], i["b_hh"],
                                      i["w_peephole"], lengths, forget_bias, cell_clip, training,
                                      w_hr=i.get("w_hr"))
    return output, h_n, c_n


def reference_sequence(inputs, lengths=None, forget_bias=0.0, cell_clip=0.0):
    i = inputs
    return reference.lstm_sequence(i["x"], i["h0"], i["c0"], i["w_ih"], i["w_hh"], i["b_ih"], i["b_hh"],
                                   w_hr=i.get("w_hr"), w_peephole=i["w_peephole"], sequence_lengths=lengths,
                                   forget_bias=forget_bias, cell_clip=cell_clip)


def fused_cell(inputs, forget_bias=0.0, cell_clip=0.0, training=True):
    i = inputs
    h_new, c_new, _ = ops.cell_forward(i["x"][0], i["h0"], i["c0"], i["w_ih"], i["w_hh"], i["b_ih"], i["b_hh"],
                                       i["w_peephole"], forget_bias, cell_clip, training, w_hr=i.get("w_hr"))
    return h_new, c_new


def reference_cell(inputs, forget_bias=0.0, cell_clip=0.0):
    i = inputs
    return reference.lstm_cell(i["x"][0], i["h0"], i["c0"], i["w_ih"], i["w_hh"], i["b_ih"], i["b_hh"],
                               w_hr=i.get("w_hr"), w_peephole=i["w_peephole"], forget_bias=forget_bias,
                               cell_clip=cell_clip)


def leaves(inputs):
    return [t for t in inputs.values() if t is not None and t.requires_grad]


def compare_with_grads(fused_outputs, reference_outputs, inputs, dtype):
    for actual, expected in zip(fused_outputs, reference_outputs):
        assert_close(actual, expected, dtype)
    # Weight every output differently so that a swapped or dropped gradient shows.
    weights = [torch.randn_like(t) for t in reference_outputs]
    fused_grads = torch.autograd.grad(sum((w * t).sum() for w, t in zip(weights, fused_outputs)), leaves(inputs))
    ref_grads = torch.autograd.grad(sum((w * t).sum() for w, t in zip(weights, reference_outputs)), leaves(inputs))
    for actual, expected in zip(fused_grads, ref_grads):
        assert_close(actual, expected, dtype)


OPTIONS = [
    dict(),
    dict(forget_bias=1.0),
    dict(cell_clip=0.6),
    dict(peephole=True),
    dict(peephole=True, forget_bias=1.0, cell_clip=0.6),
]
LENGTHS = {
    "none": None,
    "sorted": [5, 5, 3, 1],
    "unsorted_with_zero": [2, 5, 0, 4],
    "all_zero": [0, 0, 0, 0],
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o) or "plain")
@pytest.mark.parametrize("lengths", list(LENGTHS), ids=str)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("proj_size", [0, 4], ids=["no_proj", "proj"])
def test_sequence_matches_reference(dtype, options, lengths, bias, proj_size):
    options = dict(options)
    inputs = make_inputs(5, 4, 3, 7, dtype, bias=bias, peephole=options.pop("peephole", False), proj_size=proj_size)
    lengths = None if LENGTHS[lengths] is None else torch.tensor(LENGTHS[lengths])
    compare_with_grads(fused_sequence(inputs, lengths, **options), reference_sequence(inputs, lengths, **options),
                       inputs, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o) or "plain")
@pytest.mark.parametrize("proj_size", [0, 4], ids=["no_proj", "proj"])
def test_cell_matches_reference(dtype, options, proj_size):
    options = dict(options)
    inputs = make_inputs(1, 3, 5, 9, dtype, peephole=options.pop("peephole", False), proj_size=proj_size)
    compare_with_grads(fused_cell(inputs, **options), reference_cell(inputs, **options), inputs, dtype)


def test_length_semantics():
    """Past a row's length the output is 0 and the final state is the state at its length (initial for 0)."""
    inputs = make_inputs(6, 3, 2, 4, requires_grad=False)
    lengths = torch.tensor([6, 0, 3])
    output, h_n, c_n = fused_sequence(inputs, lengths, training=False)
    full_output, _, _ = fused_sequence(inputs, None, training=False)
    assert torch.equal(output[3:, 2], torch.zeros_like(output[3:, 2]))
    assert torch.equal(output[:, 1], torch.zeros_like(output[:, 1]))
    torch.testing.assert_close(output[:3, 2], full_output[:3, 2])
    torch.testing.assert_close(h_n[2], full_output[2, 2])
    torch.testing.assert_close(h_n[1], inputs["h0"][1])
    torch.testing.assert_close(c_n[1], inputs["c0"][1])


def test_training_flag_only_changes_the_workspace():
    inputs = make_inputs(4, 2, 3, 5, torch.float32, requires_grad=False)
    with_workspace = ops.forward(*inputs.values(), None, 0.0, 0.0, True)
    without = ops.forward(*inputs.values(), None, 0.0, 0.0, False)
    assert with_workspace[3].shape == (4, 2, 5 * 5) and without[3].shape == (0,)
    for a, b in zip(with_workspace[:3], without[:3]):
        assert torch.equal(a, b)


def test_cell_clip_is_applied_and_carried():
    inputs = make_inputs(8, 3, 4, 6, requires_grad=False)
    inputs["b_ih"] = inputs["b_ih"] + 3.0  # drive c well past the clip
    _, _, c_n = fused_sequence(inputs, cell_clip=0.25, training=False)
    assert c_n.abs().max() <= 0.25
    assert (c_n.abs() == 0.25).any()


def test_zero_length_sequence():
    inputs = make_inputs(0, 2, 3, 4, torch.float32)
    output, h_n, c_n = fused_sequence(inputs)
    assert output.shape == (0, 2, 4)
    torch.testing.assert_close(h_n, inputs["h0"])
    torch.testing.assert_close(c_n, inputs["c0"])


def test_non_contiguous_inputs():
    inputs = make_inputs(5, 3, 4, 6, torch.float64, requires_grad=False)
    strided = dict(inputs)
    strided["x"] = inputs["x"].transpose(0, 1).contiguous().transpose(0, 1)
    strided["w_ih"] = inputs["w_ih"].t().contiguous().t()
    strided["h0"] = torch.cat([inputs["h0"], inputs["h0"]], 1)[:, : inputs["h0"].shape[1]]
    assert not strided["x"].is_contiguous() and not strided["w_ih"].is_contiguous()
    for a, b in zip(fused_sequence(strided, training=False), fused_sequence(inputs, training=False)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("peephole", [False, True])
@pytest.mark.parametrize("lengths", [None, [3, 1, 0], [1, 3, 2]], ids=str)
@pytest.mark.parametrize("proj_size", [0, 2], ids=["no_proj", "proj"])
def test_sequence_gradcheck(peephole, lengths, proj_size):
    inputs = make_inputs(3, 3, 2, 3, peephole=peephole, proj_size=proj_size)
    lengths = None if lengths is None else torch.tensor(lengths)
    names = [k for k, v in inputs.items() if v is not None]

    def run(*tensors):
        return fused_sequence(dict(inputs, **dict(zip(names, tensors))), lengths, forget_bias=0.5,
                              cell_clip=0.9 if peephole else 0.0)

    assert torch.autograd.gradcheck(run, [inputs[k] for k in names])


@pytest.mark.parametrize("peephole", [False, True])
@pytest.mark.parametrize("proj_size", [0, 2], ids=["no_proj", "proj"])
def test_cell_gradcheck(peephole, proj_size):
    inputs = make_inputs(1, 2, 3, 4, peephole=peephole, proj_size=proj_size)
    names = [k for k, v in inputs.items() if v is not None]

    def run(*tensors):
        return fused_cell(dict(inputs, **dict(zip(names, tensors))), forget_bias=1.0,
                          cell_clip=0.7 if peephole else 0.0)

    assert torch.autograd.gradcheck(run, [inputs[k] for k in names])


def test_gradient_of_clip_is_zero_where_clipped():
    """The true gradient of the clip (TF's fused kernels pass it straight through instead)."""
    inputs = make_inputs(1, 1, 2, 3)
    with torch.no_grad():
        inputs["b_ih"] += 5.0  # i, f, g saturate: c = f*c0 + i*g is far above the clip
        inputs["c0"].fill_(2.0)
    _, _, c_n = fused_sequence(inputs, cell_clip=0.5)
    assert torch.equal(c_n.detach().abs(), torch.full_like(c_n, 0.5))
    (grad_c0,) = torch.autograd.grad(c_n.sum(), [inputs["c0"]])
    assert torch.equal(grad_c0, torch.zeros_like(grad_c0))


def _opcheck(op, args):
    torch.library.opcheck(op, args)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("peephole", [False, True])
@pytest.mark.parametrize("lengths", [None, [2, 4, 1]], ids=str)
def test_opcheck_forward_and_backward(dtype, peephole, lengths):
    inputs = make_inputs(4, 3, 5, 6, dtype, peephole=peephole)
    lengths = None if lengths is None else torch.tensor(lengths)
    args = (*inputs.values(), lengths, 1.0, 0.8 if peephole else 0.0, True)
    _opcheck(ops.forward.default, args)
    output, h_n, c_n, workspace = ops.forward(*args)
    detached = [t.detach() if t is not None else None for t in inputs.values()]
    x, h0, c0, w_ih, w_hh, _, _, w_peephole = detached
    backward_args = (torch.randn_like(output), torch.randn_like(h_n), None, x, h0, c0, w_ih, w_hh, w_peephole,
                     lengths, output.detach(), workspace.detach(), 0.8 if peephole else 0.0)
    _opcheck(ops.backward.default, backward_args)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("peephole", [False, True])
def test_opcheck_cell_forward_and_backward(dtype, peephole):
    inputs = make_inputs(1, 3, 5, 6, dtype, peephole=peephole)
    inputs["x"] = inputs["x"][0].detach().requires_grad_()
    args = (*inputs.values(), 1.0, 0.0, True)
    _opcheck(ops.cell_forward.default, args)
    h_new, c_new, workspace = ops.cell_forward(*args)
    x, h, c, w_ih, w_hh, _, _, w_peephole = [t.detach() if t is not None else None for t in inputs.values()]
    _opcheck(ops.cell_backward.default,
             (torch.randn_like(h_new), None, x, h, c, w_ih, w_hh, w_peephole, workspace.detach(), 0.0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("tf_layout", [False, True], ids=["torch_layout", "tf_layout"])
def test_opcheck_with_projection(dtype, tf_layout):
    inputs = make_inputs(4, 3, 5, 6, dtype, peephole=True, proj_size=2)
    if tf_layout:
        inputs, _ = to_tf_layout(inputs)
    w_hr = inputs.pop("w_hr")
    lengths = torch.tensor([2, 4, 1])
    args = (*inputs.values(), lengths, 1.0, 0.8, True, tf_layout, w_hr)
    _opcheck(ops.forward.default, args)
    output, h_n, c_n, workspace = ops.forward(*args)
    x, h0, c0, w_ih, w_hh, _, _, w_peephole = [t.detach() if t is not None else None for t in inputs.values()]
    _opcheck(ops.backward.default, (torch.randn_like(output), torch.randn_like(h_n), None, x, h0, c0, w_ih, w_hh,
                                    w_peephole, lengths, output.detach(), workspace.detach(), 0.8, tf_layout,
                                    w_hr.detach()))
    step = dict(inputs, x=inputs["x"][0].detach().requires_grad_())
    cell_args = (*step.values(), 1.0, 0.8, True, tf_layout, w_hr)
    _opcheck(ops.cell_forward.default, cell_args)
    h_new, c_new, cell_workspace = ops.cell_forward(*cell_args)
    _opcheck(ops.cell_backward.default, (torch.randn_like(h_new), torch.randn_like(c_new), x[0], h0, c0, w_ih, w_hh,
                                         w_peephole, cell_workspace.detach(), 0.8, tf_layout, w_hr.detach()))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("lengths", [None, "ragged"], ids=str)
@pytest.mark.parametrize("proj_size", [0, 37], ids=["no_proj", "proj"])
@pytest.mark.parametrize("batch", [16, 6], ids=["rows_split", "units_split"])
def test_thread_team_path_matches_reference(dtype, lengths, proj_size, batch):
    """Sizes where the time loop runs in a team of threads (cpu/lstm_kernel.cpp: >= 64 kFLOP of recurrent GEMM per
    step). Each thread owns a slice of the hidden units (H = 100: slices of 64 and 36 units, and of 23 and 14
    projected units), or, float32 without projection at B = 16, a slice of the batch rows (forward_rows_split)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        inputs = make_inputs(7, batch, 9, 100, dtype, peephole=True, proj_size=proj_size)
        lengths = None if lengths is None else torch.tensor([7, 3, 0, 7, 5, 1, 2, 7, 6, 4, 7, 7, 0, 3, 2, 1][:batch])
        options = dict(forget_bias=0.5, cell_clip=0.8)
        compare_with_grads(fused_sequence(inputs, lengths, **options), reference_sequence(inputs, lengths, **options),
                           inputs, dtype)
        # One step of this size (1.28 MFLOP) takes a team too.
        compare_with_grads(fused_cell(inputs, **options), reference_cell(inputs, **options), inputs, dtype)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("lengths", [None, [3, 1]], ids=str)
@pytest.mark.parametrize("proj_size", [0, 66], ids=["no_proj", "proj"])
def test_few_rows_weight_gradients_match_reference(dtype, lengths, proj_size):
    """T * B below the input and hidden sizes (single steps, short sequences at batch 1-2): torch-layout weight
    gradients come from grad_pre^T . inputs directly (cpu/lstm_kernel.cpp), on brgemm at float32."""
    inputs = make_inputs(3, 2, 70, 80, dtype, peephole=True, proj_size=proj_size)
    lengths = None if lengths is None else torch.tensor(lengths)
    options = dict(forget_bias=0.5)
    compare_with_grads(fused_sequence(inputs, lengths, **options), reference_sequence(inputs, lengths, **options),
                       inputs, dtype)
    compare_with_grads(fused_cell(inputs), reference_cell(inputs), inputs, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch", [2, 13])
@pytest.mark.parametrize("proj_size", [0, 11], ids=["no_proj", "proj"])
def test_small_batch_shapes_match_reference(dtype, batch, proj_size):
    """2-16 rows against a weight read transposed take a row-dot kernel (cpu/gemm.cpp): row blocks of 8 and a
    remainder, sizes that are no multiple of the vector width; torch's layout and TF's."""
    inputs = make_inputs(3, batch, 19, 21, dtype, peephole=True, proj_size=proj_size)
    compare_with_grads(fused_sequence(inputs, forget_bias=0.5), reference_sequence(inputs, forget_bias=0.5), inputs,
                       dtype)
    compare_with_grads(fused_cell(inputs), reference_cell(inputs), inputs, dtype)
    i, _ = to_tf_layout(inputs)
    kwargs = dict(w_peephole=i["w_peephole"], w_hr=i.get("w_hr"), forget_bias=0.5, tf_layout=True)
    for run in (lambda backend: functional.lstm(i["x"], i["h0"], i["c0"], i["w_ih"], None, i["b_ih"], i["b_hh"],
                                                backend=backend, **kwargs),
                lambda backend: functional.lstm_cell(i["x"][0], i["h0"], i["c0"], i["w_ih"], None, i["b_ih"],
                                                     i["b_hh"], backend=backend, **kwargs)):
        compare_with_grads(run("fused"), run("reference"), i, dtype)


def to_tf_layout(inputs):
    """The same weights in TF's layout (one kernel [I + R, 4H] in w_ih, gate blocks i, j, f, o; w_hh None; TF's
    projection kernel [H, P] in w_hr), as new leaves."""
    def tf_order(m):
        i, f, g, o = m.chunk(4, -1)
        return torch.cat([i, g, f, o], -1)

    converted = dict(inputs)
    kernel = torch.cat([inputs["w_ih"].t(), inputs["w_hh"].t()])
    converted["w_ih"] = tf_order(kernel).detach().contiguous().requires_grad_()
    converted["w_hh"] = None
    for name in ("b_ih", "b_hh"):
        if inputs[name] is not None:
            converted[name] = tf_order(inputs[name]).detach().requires_grad_()
    if "w_hr" in inputs:
        converted["w_hr"] = inputs["w_hr"].t().detach().contiguous().requires_grad_()
    return converted, tf_order


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(5, 4, 3, 7), (7, 16, 9, 100)], ids=["small", "thread_team"])
@pytest.mark.parametrize("lengths", [None, "ragged"], ids=str)
@pytest.mark.parametrize("proj", [False, True], ids=["no_proj", "proj"])
def test_tf_layout_matches_torch_layout(dtype, shape, lengths, proj):
    """tf_layout=True takes TF's kernel as it is and gives the torch-layout results, gradients included (the kernel's
    in TF's layout)."""
    seq_len, batch, input_size, hidden = shape
    inputs = make_inputs(seq_len, batch, input_size, hidden, dtype, peephole=True, proj_size=hidden // 2 if proj else 0)
    tf_inputs, tf_order = to_tf_layout(inputs)
    lengths = None if lengths is None else torch.randint(0, seq_len + 1, (batch,))
    options = dict(forget_bias=0.5, cell_clip=0.8)
    i = tf_inputs
    tf_result = ops.forward(i["x"], i["h0"], i["c0"], i["w_ih"], i["w_hh"], i["b_ih"], i["b_hh"], i["w_peephole"],
                            lengths, 0.5, 0.8, True, True, i.get("w_hr"))[:3]
    torch_result = fused_sequence(inputs, lengths, **options)
    weights = [torch.randn_like(t) for t in torch_result]
    for a, b in zip(tf_result, torch_result):
        assert_close(a, b, dtype)
    names = ["x", "h0", "c0", "w_ih", "b_ih", "b_hh", "w_peephole"] + (["w_hr"] if proj else [])
    tf_grads = torch.autograd.grad(sum((w * t).sum() for w, t in zip(weights, tf_result)), [i[n] for n in names])
    grads = dict(zip(names + ["w_hh"], torch.autograd.grad(sum((w * t).sum() for w, t in zip(weights, torch_result)),
                                                          [inputs[n] for n in names + ["w_hh"]])))
    grads["w_ih"] = torch.cat([grads["w_ih"].t(), grads.pop("w_hh").t()])  # the kernel's, in torch's gate order
    for name, a in zip(names, tf_grads):
        b = grads[name]
        expected = tf_order(b) if name in ("w_ih", "b_ih", "b_hh") else b.t() if name == "w_hr" else b
        assert_close(a, expected, dtype)


@pytest.mark.parametrize("proj_size", [0, 4], ids=["no_proj", "proj"])
def test_tf_layout_on_other_backends_converts_to_torch_layout(proj_size):
    """Backends without TF's layout (the reference here; cuDNN on a GPU) get the kernel converted (layout.torch_layout),
    differentiably: same results and kernel gradients as the fused ops reading it in place."""
    inputs, _ = to_tf_layout(make_inputs(4, 3, 5, 6, peephole=True, proj_size=proj_size))
    i = inputs
    lengths = torch.tensor([4, 1, 3])
    kwargs = dict(w_peephole=i["w_peephole"], w_hr=i.get("w_hr"), forget_bias=0.5, cell_clip=0.8, tf_layout=True)
    for run in (lambda backend: functional.lstm(i["x"], i["h0"], i["c0"], i["w_ih"], None, i["b_ih"], i["b_hh"],
                                                sequence_lengths=lengths, backend=backend, **kwargs),
                lambda backend: functional.lstm_cell(i["x"][0], i["h0"], i["c0"], i["w_ih"], None, i["b_ih"],
                                                     i["b_hh"], backend=backend, **kwargs)):
        compare_with_grads(run("fused"), run("reference"), inputs, torch.float64)


def test_tf_layout_cell_gradcheck_and_opcheck():
    inputs, _ = to_tf_layout(make_inputs(1, 3, 4, 5, peephole=True))
    inputs["x"] = inputs["x"][0].detach().requires_grad_()
    names = [k for k, v in inputs.items() if v is not None]

    def run(*tensors):
        i = dict(inputs, **dict(zip(names, tensors)))
        return ops.cell_forward(i["x"], i["h0"], i["c0"], i["w_ih"], i["w_hh"], i["b_ih"], i["b_hh"], i["w_peephole"],
                                1.0, 0.7, True, True)[:2]

    assert torch.autograd.gradcheck(run, [inputs[k] for k in names])
    _opcheck(ops.cell_forward.default, (*inputs.values(), 1.0, 0.7, True, True))
    seq, _ = to_tf_layout(make_inputs(4, 3, 5, 6, peephole=True))
    _opcheck(ops.forward.default, (*seq.values(), torch.tensor([4, 1, 3]), 1.0, 0.7, True, True))


@pytest.mark.parametrize("seed", range(12))
def test_random_configurations_match_reference(seed):
    """Random sizes (team and single-thread paths, batch shrinking at random), options and layouts, float64."""
    generator = torch.Generator().manual_seed(seed)

    def draw(low, high):
        return int(torch.randint(low, high + 1, (1,), generator=generator))

    seq_len, batch, input_size, hidden = draw(1, 9), draw(1, 24), draw(1, 40), draw(1, 120)
    peephole, bias = bool(draw(0, 1)), bool(draw(0, 1))
    proj_size = draw(1, hidden) if draw(0, 1) else 0
    inputs = make_inputs(seq_len, batch, input_size, hidden, peephole=peephole, bias=bias, proj_size=proj_size)
    lengths = torch.randint(0, seq_len + 1, (batch,), generator=generator) if draw(0, 1) else None
    options = dict(forget_bias=float(draw(0, 2)) / 2, cell_clip=[0.0, 0.5, 2.0][draw(0, 2)])
    threads = torch.get_num_threads()
    torch.set_num_threads(draw(1, 2))
    try:
        compare_with_grads(fused_sequence(inputs, lengths, **options), reference_sequence(inputs, lengths, **options),
                           inputs, torch.float64)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_direct_calls_match_torch_ops(dtype, requires_grad):
    """fastlstm._direct (the eager path of functional.py) returns what torch.ops returns, values and gradients, with
    and without the autograd layer."""
    from fastlstm import _direct

    inputs = make_inputs(5, 3, 4, 6, dtype, peephole=True, requires_grad=requires_grad)
    names = ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh", "w_peephole")
    args = [inputs[name] for name in names]
    lengths = torch.tensor([5, 2, 0])
    options = (0.5, 3.0, requires_grad, False, None)
    for direct, op, call_args in ((_direct.forward, ops.forward, args + [lengths]),
                                  (_direct.cell_forward, ops.cell_forward, [args[0][0]] + args[1:])):
        expected = op(*call_args, *options)
        got = direct(*call_args, *options, not requires_grad)
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert_close(g, e, rtol=0, atol=0)
        if requires_grad:
            leaves = [t for t in call_args if t is not None and t.requires_grad]
            grads_expected = torch.autograd.grad(expected[0].sum() + expected[2].sum(), leaves)
            grads_got = torch.autograd.grad(got[0].sum() + got[2].sum(), leaves)
            for g, e in zip(grads_got, grads_expected):
                assert_close(g, e, rtol=0, atol=0)
        else:
            assert got[-1].numel() == 0  # no workspace kept
