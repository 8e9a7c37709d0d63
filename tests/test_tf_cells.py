"""fastlstm.cells / rnn / wrappers / tf_weights against hand-written TF1 formulas (written here, not imported from the
implementation), against each other, and gradcheck in float64."""

import pytest
import torch

from fastlstm import cells, rnn, tf_weights
from fastlstm.cells import LSTMStateTuple
from conftest import assert_close

DTYPE = torch.float64
INPUT, UNITS, BATCH = 3, 5, 4


def randomize(cell, scale=0.5):
    with torch.no_grad():
        for p in cell.parameters():
            p.copy_(torch.randn_like(p) * scale)
    return cell


def lstm_state(units=UNITS, out=None):
    return LSTMStateTuple(torch.randn(BATCH, units, dtype=DTYPE), torch.randn(BATCH, out or units, dtype=DTYPE))


def sig(x):
    return 1 / (1 + torch.exp(-x))


def split4(m):
    return m.chunk(4, 1)


def layer_norm(x, gamma, beta):
    mean = x.mean(1, keepdim=True)
    var = ((x - mean) ** 2).mean(1, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-12) * gamma + beta


# --- one step of each cell against TF's formula ------------------------------------------------------------------

def test_basic_lstm_cell_formula():
    cell = randomize(cells.BasicLSTMCell(INPUT, UNITS, forget_bias=1.0, dtype=DTYPE))
    x, (c, h) = torch.randn(BATCH, INPUT, dtype=DTYPE), lstm_state()
    i, j, f, o = split4(torch.cat([x, h], 1) @ cell.kernel + cell.bias)
    new_c = c * sig(f + 1.0) + sig(i) * torch.tanh(j)
    new_h = torch.tanh(new_c) * sig(o)
    output, state = cell(x, LSTMStateTuple(c, h))
    assert_close(output, new_h)
    assert_close(state.c, new_c)
    assert_close(state.h, new_h)


@pytest.mark.parametrize("peepholes,cell_clip,num_proj,proj_clip",
                         [(False, None, None, None), (True, 0.3, None, None), (True, 0.3, 2, 0.1), (False, None, 2, None)])
def test_lstm_cell_formula(peepholes, cell_clip, num_proj, proj_clip):
    cell = randomize(cells.LSTMCell(INPUT, UNITS, use_peepholes=peepholes, cell_clip=cell_clip, num_proj=num_proj,
                                    proj_clip=proj_clip, forget_bias=0.7, dtype=DTYPE))
    x, (c, m) = torch.randn(BATCH, INPUT, dtype=DTYPE), lstm_state(out=num_proj)
    i, j, f, o = split4(torch.cat([x, m], 1) @ cell.kernel + cell.bias)
    if peepholes:
        new_c = sig(f + 0.7 + cell.w_f_diag * c) * c + sig(i + cell.w_i_diag * c) * torch.tanh(j)
    else:
        new_c = sig(f + 0.7) * c + sig(i) * torch.tanh(j)
    if cell_clip:
        new_c = torch.clamp(new_c, -cell_clip, cell_clip)
    new_m = sig(o + (cell.w_o_diag * new_c if peepholes else 0)) * torch.tanh(new_c)
    if num_proj:
        new_m = new_m @ cell.projection_kernel
        if proj_clip:
            new_m = torch.clamp(new_m, -proj_clip, proj_clip)
    output, state = cell(x, LSTMStateTuple(c, m))
    assert_close(output, new_m)
    assert_close(state.c, new_c)
    assert output.shape == (BATCH, num_proj or UNITS)


@pytest.mark.parametrize("use_peephole,cell_clip", [(False, None), (True, 0.4)])
def test_lstm_block_cell_formula(use_peephole, cell_clip):
    cell = randomize(cells.LSTMBlockCell(INPUT, UNITS, forget_bias=1.0, cell_clip=cell_clip,
                                         use_peephole=use_peephole, dtype=DTYPE))
    x, (c, h) = torch.randn(BATCH, INPUT, dtype=DTYPE), lstm_state()
    i, ci, f, o = split4(torch.cat([x, h], 1) @ cell.kernel + cell.bias)
    wci, wcf, wco = (cell.w_i_diag, cell.w_f_diag, cell.w_o_diag) if use_peephole else (0, 0, 0)
    i, f = sig(c * wci + i), sig(c * wcf + f + 1.0)
    cs = torch.tanh(ci) * i + c * f
    if cell_clip:
        cs = cs.clamp(-cell_clip, cell_clip)
    new_h = torch.tanh(cs) * sig(cs * wco + o)
    output, state = cell(x, LSTMStateTuple(c, h))
    assert_close(output, new_h)
    assert_close(state.c, cs)


@pytest.mark.parametrize("layer_norm", [True, False])
def test_layer_norm_basic_lstm_cell_formula(layer_norm):
    cell = randomize(cells.LayerNormBasicLSTMCell(INPUT, UNITS, forget_bias=1.0, layer_norm=layer_norm, dtype=DTYPE))
    x, (c, h) = torch.randn(BATCH, INPUT, dtype=DTYPE), lstm_state()
    gates = torch.cat([x, h], 1) @ cell.kernel + (0 if layer_norm else cell.bias)
    i, j, f, o = split4(gates)
    if layer_norm:
        i, j, f, o = (layer_norm_of(v, cell, n) for v, n in zip((i, j, f, o), ("input", "transform", "forget", "output")))
    new_c = c * sig(f + 1.0) + sig(i) * torch.tanh(j)
    if layer_norm:
        new_c = layer_norm_of(new_c, cell, "state")
    new_h = torch.tanh(new_c) * sig(o)
    output, state = cell(x, LSTMStateTuple(c, h))
    assert_close(output, new_h)
    assert_close(state.c, new_c)


def layer_norm_of(v, cell, name):
    return layer_norm(v, getattr(cell, f"{name}_gamma"), getattr(cell, f"{name}_beta"))


def test_layer_norm_cell_dropout_only_in_training():
    cell = cells.LayerNormBasicLSTMCell(INPUT, UNITS, dropout_keep_prob=0.5, dtype=DTYPE)
    x, state = torch.randn(BATCH, INPUT, dtype=DTYPE), lstm_state()
    cell.eval()
    assert torch.equal(cell(x, state)[0], cell(x, state)[0])
    cell.train()
    assert not torch.equal(cell(x, state)[0], cell(x, state)[0])


@pytest.mark.parametrize("peepholes,num_proj", [(False, None), (True, 2)])
def test_coupled_input_forget_gate_formula(peepholes, num_proj):
    cell = randomize(cells.CoupledInputForgetGateLSTMCell(INPUT, UNITS, use_peepholes=peepholes, num_proj=num_proj,
                                                          forget_bias=1.0, dtype=DTYPE))
    x, (c, m) = torch.randn(BATCH, INPUT, dtype=DTYPE), lstm_state(out=num_proj)
    j, f, o = (torch.cat([x, m], 1) @ cell.W_0 + cell.B).chunk(3, 1)
    f_act = sig(f + 1.0 + (cell.W_F_diag * c if peepholes else 0))
    new_c = f_act * c + (1 - f_act) * torch.tanh(j)
    new_m = sig(o + (cell.W_O_diag * new_c if peepholes else 0)) * torch.tanh(new_c)
    if num_proj:
        new_m = new_m @ cell.W_P_0
    output, state = cell(x, LSTMStateTuple(c, m))
    assert_close(output, new_m)
    assert_close(state.c, new_c)


def test_gru_cell_formula():
    cell = randomize(cells.GRUCell(INPUT, UNITS, dtype=DTYPE))
    x, h = torch.randn(BATCH, INPUT, dtype=DTYPE), torch.randn(BATCH, UNITS, dtype=DTYPE)
    r, u = sig(torch.cat([x, h], 1) @ cell.gates_kernel + cell.gates_bias).chunk(2, 1)
    cand = torch.tanh(torch.cat([x, r * h], 1) @ cell.candidate_kernel + cell.candidate_bias)
    new_h = u * h + (1 - u) * cand
    output, state = cell(x, h)
    assert_close(output, new_h)
    assert_close(state, new_h)


def test_ugrnn_cell_formula():
    cell = randomize(cells.UGRNNCell(INPUT, UNITS, forget_bias=1.0, dtype=DTYPE))
    x, h = torch.randn(BATCH, INPUT, dtype=DTYPE), torch.randn(BATCH, UNITS, dtype=DTYPE)
    g, c = (torch.cat([x, h], 1) @ cell.kernel + cell.bias).chunk(2, 1)
    g = sig(g + 1.0)
    assert_close(cell(x, h)[0], g * h + (1 - g) * torch.tanh(c))


# --- gradcheck for every cell --------------------------------------------------------------------------------------

GRADCHECK_CELLS = {
    "basic": lambda: cells.BasicLSTMCell(2, 3, dtype=DTYPE),
    "lstm_peephole_clip": lambda: cells.LSTMCell(2, 3, use_peepholes=True, cell_clip=0.8, dtype=DTYPE),
    "lstm_proj": lambda: cells.LSTMCell(2, 3, num_proj=2, proj_clip=5.0, dtype=DTYPE),
    "block": lambda: cells.LSTMBlockCell(2, 3, use_peephole=True, dtype=DTYPE),
    "layer_norm": lambda: cells.LayerNormBasicLSTMCell(2, 3, dtype=DTYPE),
    "cifg": lambda: cells.CoupledInputForgetGateLSTMCell(2, 3, use_peepholes=True, num_proj=2, dtype=DTYPE),
    "gru": lambda: cells.GRUCell(2, 3, dtype=DTYPE),
    "ugrnn": lambda: cells.UGRNNCell(2, 3, dtype=DTYPE),
}


@pytest.mark.parametrize("name", list(GRADCHECK_CELLS))
def test_cell_gradcheck(name):
    cell = randomize(GRADCHECK_CELLS[name]())
    state = cell.zero_state(2, DTYPE)
    state = torch.utils._pytree.tree_map(lambda t: (torch.randn_like(t) * 0.3).requires_grad_(), state)
    leaves = torch.utils._pytree.tree_leaves(state)
    x = torch.randn(2, 2, dtype=DTYPE, requires_grad=True)
    params = list(cell.parameters())

    def run(x, *tensors):
        state_in = torch.utils._pytree.tree_unflatten(list(tensors[:len(leaves)]),
                                                      torch.utils._pytree.tree_structure(state))
        params = dict(zip([n for n, _ in cell.named_parameters()], tensors[len(leaves):]))
        output, new_state = torch.func.functional_call(cell, params, (x, state_in))
        return (output, *torch.utils._pytree.tree_leaves(new_state))

    assert torch.autograd.gradcheck(run, (x, *leaves, *[p.detach().requires_grad_() for p in params]))


# --- LSTMBlockFusedCell and the drivers -----------------------------------------------------------------------------

def step_loop(cell, inputs_time_major, state, lengths=None):
    """A plain per-step loop with TF's length semantics, written here as the drivers' oracle."""
    outputs = []
    for t in range(inputs_time_major.shape[0]):
        output, new_state = cell(inputs_time_major[t], state)
        if lengths is not None:
            running = torch.tensor([t < n for n in lengths]).view(-1, 1)
            new_state = torch.utils._pytree.tree_map(lambda a, b: torch.where(running, a, b), new_state, state)
            output = torch.where(running, output, torch.zeros_like(output))
        state = new_state
        outputs.append(output)
    return torch.stack(outputs), state


DRIVER_CELLS = {
    "basic(fused)": lambda: cells.BasicLSTMCell(INPUT, UNITS, dtype=DTYPE),
    "lstm_peephole_clip(fused)": lambda: cells.LSTMCell(INPUT, UNITS, use_peepholes=True, cell_clip=0.5, dtype=DTYPE),
    "block(fused)": lambda: cells.LSTMBlockCell(INPUT, UNITS, use_peephole=True, cell_clip=0.5, dtype=DTYPE),
    "lstm_proj(fused)": lambda: cells.LSTMCell(INPUT, UNITS, use_peepholes=True, num_proj=2, dtype=DTYPE),
    "lstm_proj_clip(loop)": lambda: cells.LSTMCell(INPUT, UNITS, num_proj=2, proj_clip=0.3, dtype=DTYPE),
    "layer_norm(fused)": lambda: cells.LayerNormBasicLSTMCell(INPUT, UNITS, forget_bias=0.5, dtype=DTYPE),
    "layer_norm_off(loop)": lambda: cells.LayerNormBasicLSTMCell(INPUT, UNITS, layer_norm=False, dtype=DTYPE),
    "gru(fused)": lambda: cells.GRUCell(INPUT, UNITS, dtype=DTYPE),
    "gru_block(fused)": lambda: cells.GRUBlockCell(INPUT, UNITS, dtype=DTYPE),
    "gru_tanh_object(loop)": lambda: cells.GRUCell(INPUT, UNITS, activation=lambda v: torch.tanh(v), dtype=DTYPE),
    "multi(loop)": lambda: cells.MultiRNNCell([cells.BasicLSTMCell(INPUT, UNITS, dtype=DTYPE),
                                              cells.GRUCell(UNITS, UNITS, dtype=DTYPE)]),
}


@pytest.mark.parametrize("name", list(DRIVER_CELLS))
@pytest.mark.parametrize("lengths", [None, [6, 2, 0, 4]], ids=str)
@pytest.mark.parametrize("time_major", [False, True])
def test_dynamic_and_static_rnn_match_the_step_loop(name, lengths, time_major):
    cell = randomize(DRIVER_CELLS[name]())
    assert rnn.uses_fused_op(cell) == name.endswith("(fused)")
    x = torch.randn(6, BATCH, INPUT, dtype=DTYPE, requires_grad=True)
    expected_out, expected_state = step_loop(cell, x, cell.zero_state(BATCH, DTYPE), lengths)
    inputs = x if time_major else x.transpose(0, 1)
    out, state = rnn.dynamic_rnn(cell, inputs, sequence_length=lengths, time_major=time_major)
    assert_close(out if time_major else out.transpose(0, 1), expected_out)
    for a, b in zip(torch.utils._pytree.tree_leaves(state), torch.utils._pytree.tree_leaves(expected_state)):
        assert_close(a, b)
    static_out, static_state = rnn.static_rnn(cell, list(x.unbind(0)), sequence_length=lengths)
    assert_close(torch.stack(static_out), expected_out)
    grads = torch.autograd.grad(out.sum(), [x, *cell.parameters()])
    expected_grads = torch.autograd.grad(expected_out.sum(), [x, *cell.parameters()])
    for a, b in zip(grads, expected_grads):
        assert_close(a, b)


def test_zero_length_rows_keep_the_initial_state():
    cell = randomize(cells.LSTMBlockCell(INPUT, UNITS, dtype=DTYPE))
    initial = lstm_state()
    out, state = rnn.dynamic_rnn(cell, torch.randn(BATCH, 5, INPUT, dtype=DTYPE), [0, 5, 0, 1],
                                 initial_state=initial)
    assert torch.equal(out[0], torch.zeros_like(out[0]))
    assert torch.equal(state.c[0], initial.c[0]) and torch.equal(state.h[2], initial.h[2])


def test_lstm_block_fused_cell_matches_block_cell_loop():
    fused = randomize(cells.LSTMBlockFusedCell(INPUT, UNITS, use_peephole=True, cell_clip=0.6, dtype=DTYPE))
    block = cells.LSTMBlockCell(INPUT, UNITS, use_peephole=True, cell_clip=0.6, dtype=DTYPE)
    block.load_state_dict(fused.state_dict())
    x, initial, lengths = torch.randn(7, BATCH, INPUT, dtype=DTYPE), lstm_state(), [7, 3, 0, 5]
    out, state = fused(x, initial_state=initial, sequence_length=lengths)
    expected_out, expected_state = step_loop(block, x, initial, lengths)
    assert_close(out, expected_out)
    assert_close(state.c, expected_state.c)
    assert_close(state.h, expected_state.h)


def test_bidirectional_reverses_each_row_within_its_length():
    cell_fw, cell_bw = (randomize(cells.BasicLSTMCell(INPUT, UNITS, dtype=DTYPE)) for _ in range(2))
    x, lengths = torch.randn(BATCH, 6, INPUT, dtype=DTYPE), [6, 2, 0, 4]
    (out_fw, out_bw), (state_fw, state_bw) = rnn.bidirectional_dynamic_rnn(cell_fw, cell_bw, x, lengths)
    for b, n in enumerate(lengths):
        row = x[b:b + 1, :n]
        expected_fw, _ = rnn.dynamic_rnn(cell_fw, row)
        expected_bw, expected_state = rnn.dynamic_rnn(cell_bw, row.flip(1))
        assert_close(out_fw[b, :n], expected_fw[0])
        assert_close(out_bw[b, :n], expected_bw[0].flip(0))
        assert torch.equal(out_bw[b, n:], torch.zeros_like(out_bw[b, n:]))
        if n:
            assert_close(state_bw.h[b], expected_state.h[0])


@pytest.mark.parametrize("cell_name", ["basic(fused)", "lstm_peephole_clip(fused)", "lstm_proj(fused)", "gru(fused)"])
def test_swap_memory_changes_no_result(cell_name, monkeypatch):
    # Chunks of 2 steps (see the next test), so that the fused path's chunking is part of what must change nothing.
    monkeypatch.setattr(rnn, "SWAP_CHUNK_BYTES", 2 * BATCH * 6 * UNITS * 8)
    cell = randomize(DRIVER_CELLS[cell_name]())
    x = torch.randn(BATCH, 7, INPUT, dtype=DTYPE, requires_grad=True)
    zero = cell.zero_state(BATCH, DTYPE)
    h0 = torch.randn_like(zero.h if isinstance(zero, LSTMStateTuple) else zero).requires_grad_()
    initial = LSTMStateTuple(zero.c, h0) if isinstance(zero, LSTMStateTuple) else h0
    results = []
    for swap in (False, True):
        out, state = rnn.dynamic_rnn(cell, x, sequence_length=[7, 2, 0, 5], initial_state=initial,
                                     swap_memory=swap)
        loss = out.pow(2).sum() + sum(s.sum() for s in torch.utils._pytree.tree_leaves(state))
        results.append((out, *torch.utils._pytree.tree_leaves(state),
                        *torch.autograd.grad(loss, [x, h0, *cell.parameters()])))
    for a, b in zip(*results):
        assert_close(b, a)


def test_swap_memory_runs_the_fused_op_a_chunk_at_a_time(monkeypatch):
    """Each fused call's workspace and output stay within SWAP_CHUNK_BYTES: what the device must hold at once."""
    steps_per_chunk = 3
    monkeypatch.setattr(rnn, "SWAP_CHUNK_BYTES", steps_per_chunk * BATCH * 6 * UNITS * 8)
    calls, fused_lstm = [], rnn.functional.lstm

    def recording_lstm(x, *args, **kwargs):
        calls.append((x.shape[0], kwargs["sequence_lengths"]))
        return fused_lstm(x, *args, **kwargs)

    monkeypatch.setattr(rnn.functional, "lstm", recording_lstm)
    cell = randomize(cells.BasicLSTMCell(INPUT, UNITS, dtype=DTYPE))
    x = torch.randn(BATCH, 8, INPUT, dtype=DTYPE)
    rnn.dynamic_rnn(cell, x, sequence_length=[8, 4, 0, 3], swap_memory=True)
    assert [steps for steps, _ in calls] == [3, 3, 2]
    assert [lengths.tolist() for _, lengths in calls] == [[3, 3, 0, 3], [3, 1, 0, 0], [2, 0, 0, 0]]
    calls.clear()
    rnn.dynamic_rnn(cell, x, swap_memory=False)
    assert [steps for steps, _ in calls] == [8]


# --- wrappers --------------------------------------------------------------------------------------------------------

def test_dropout_wrapper_masks():
    base = cells.BasicLSTMCell(INPUT, UNITS, dtype=DTYPE)
    x = torch.ones(BATCH, 5, INPUT, dtype=DTYPE)
    seen = []

    class Recorder(cells.RNNCell):
        state_size = property(lambda self: base.state_size)
        output_size = property(lambda self: base.output_size)

        def forward(self, inputs, state):
            seen.append(inputs)
            return base(inputs, state)

    variational = cells.DropoutWrapper(Recorder(), input_keep_prob=0.5, state_keep_prob=0.5,
                                       variational_recurrent=True, seed=3)
    rnn.dynamic_rnn(variational, x)
    assert all(torch.equal(s, seen[0]) for s in seen)  # one input mask per sequence
    first_sequence = seen[0]
    seen.clear()
    rnn.dynamic_rnn(variational, x)
    assert not torch.equal(seen[0], first_sequence)  # a new mask for the next sequence
    seen.clear()
    plain = cells.DropoutWrapper(Recorder(), input_keep_prob=0.5, seed=3)
    rnn.dynamic_rnn(plain, x)
    assert not all(torch.equal(s, seen[0]) for s in seen)
    seen.clear()
    plain.eval()
    rnn.dynamic_rnn(plain, x)
    assert all(torch.equal(s, torch.ones_like(s)) for s in seen)


def test_dropout_wrapper_never_drops_c_and_keep_one_is_identity():
    cell = randomize(cells.BasicLSTMCell(INPUT, UNITS, dtype=DTYPE))
    x, state = torch.randn(BATCH, INPUT, dtype=DTYPE), lstm_state()
    _, expected = cell(x, state)
    _, dropped = cells.DropoutWrapper(cell, state_keep_prob=0.3, seed=0)(x, state)
    assert torch.equal(dropped.c, expected.c)
    assert not torch.equal(dropped.h, expected.h)
    output, same = cells.DropoutWrapper(cell)(x, state)
    assert torch.equal(output, cell(x, state)[0]) and torch.equal(same.h, expected.h)


def test_residual_and_multi_rnn_cells():
    inner = randomize(cells.GRUCell(UNITS, UNITS, dtype=DTYPE))
    x, h = torch.randn(BATCH, UNITS, dtype=DTYPE), torch.randn(BATCH, UNITS, dtype=DTYPE)
    output, state = cells.ResidualWrapper(inner)(x, h)
    assert_close(output, x + inner(x, h)[0])
    stack = cells.MultiRNNCell([inner, cells.ResidualWrapper(inner)])
    out, states = stack(x, (h, h))
    first, first_state = inner(x, h)
    second, second_state = inner(first, h)
    assert_close(out, first + second)
    assert_close(states[0], first_state) and assert_close(states[1], second_state)


def test_zoneout_wrapper():
    cell = randomize(cells.BasicLSTMCell(INPUT, UNITS, dtype=DTYPE))
    x, state = torch.randn(BATCH, INPUT, dtype=DTYPE), lstm_state()
    _, new = cell(x, state)
    wrapper = cells.ZoneoutWrapper(cell, (0.3, 0.6), seed=1)
    _, zoned = wrapper(x, state)
    for previous, fresh, got in ((state.c, new.c, zoned.c), (state.h, new.h, zoned.h)):
        assert bool(((got == previous) | (got == fresh)).all())
    wrapper.eval()
    _, expected = wrapper(x, state)
    assert_close(expected.c, 0.3 * state.c + 0.7 * new.c)
    assert_close(expected.h, 0.6 * state.h + 0.4 * new.h)


# --- TF weights ------------------------------------------------------------------------------------------------------

def test_load_tf_weights_names_and_shapes():
    cell = cells.LSTMCell(INPUT, UNITS, use_peepholes=True, num_proj=2)
    names = dict(cell.tf_variables())
    assert set(names) == {"kernel", "bias", "w_f_diag", "w_i_diag", "w_o_diag", "projection/kernel"}
    arrays = {name: torch.randn(p.shape).numpy() for name, p in names.items()}
    cell.load_tf_weights(arrays)
    assert torch.equal(cell.projection_kernel, torch.as_tensor(arrays["projection/kernel"]))
    assert set(dict(cells.GRUCell(INPUT, UNITS).tf_variables())) == {
        "gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias"}
    assert set(dict(cells.LayerNormBasicLSTMCell(INPUT, UNITS).tf_variables())) == {"kernel"} | {
        f"{n}/{v}" for n in ("input", "transform", "forget", "output", "state") for v in ("gamma", "beta")}
    with pytest.raises(ValueError, match="has shape"):
        cell.load_tf_weights(dict(arrays, kernel=torch.zeros(2, 2).numpy()))
    with pytest.raises(KeyError, match="missing TF variables"):
        cell.load_tf_weights({"kernel": arrays["kernel"]})


def test_tf_weights_to_torch_lstm_and_back():
    cell = randomize(cells.BasicLSTMCell(INPUT, UNITS, forget_bias=1.0, dtype=DTYPE))
    state_dict = tf_weights.lstm_state_dict_from_tf(cell.kernel.detach(), cell.bias.detach(), INPUT, forget_bias=1.0)
    torch_lstm = torch.nn.LSTM(INPUT, UNITS, dtype=DTYPE)
    torch_lstm.load_state_dict(state_dict)
    x = torch.randn(6, BATCH, INPUT, dtype=DTYPE)
    expected, state = rnn.dynamic_rnn(cell, x, time_major=True)
    out, (h_n, c_n) = torch_lstm(x)
    assert_close(out, expected)
    assert_close(c_n[0], state.c)
    kernel, bias = tf_weights.tf_from_lstm_state_dict(torch_lstm.state_dict(), forget_bias=1.0)
    assert_close(kernel, cell.kernel.detach())
    assert_close(bias, cell.bias.detach())


def test_tf_projection_weights_to_torch_lstm_and_back():
    """LSTMCell(num_proj) <-> torch.nn.LSTM(proj_size): the projection kernel [H, P] is weight_hr^T."""
    cell = randomize(cells.LSTMCell(INPUT, UNITS, num_proj=2, forget_bias=0.5, dtype=DTYPE))
    state_dict = tf_weights.lstm_state_dict_from_tf(cell.kernel.detach(), cell.bias.detach(), INPUT, forget_bias=0.5,
                                                    projection_kernel=cell.projection_kernel.detach())
    torch_lstm = torch.nn.LSTM(INPUT, UNITS, proj_size=2, dtype=DTYPE)
    torch_lstm.load_state_dict(state_dict)
    x = torch.randn(6, BATCH, INPUT, dtype=DTYPE)
    expected, state = rnn.dynamic_rnn(cell, x, time_major=True)
    out, (h_n, c_n) = torch_lstm(x)
    assert_close(out, expected)
    assert_close(h_n[0], state.h)
    assert_close(c_n[0], state.c)
    kernel, bias, projection_kernel = tf_weights.tf_from_lstm_state_dict(torch_lstm.state_dict(), forget_bias=0.5)
    assert_close(kernel, cell.kernel.detach())
    assert_close(bias, cell.bias.detach())
    assert_close(projection_kernel, cell.projection_kernel.detach())
    with pytest.raises(ValueError, match=r"expected a TF kernel of shape \[input_size \+ num_proj, 4H\]"):
        tf_weights.lstm_state_dict_from_tf(cell.kernel.detach()[1:], cell.bias.detach(), INPUT,
                                           projection_kernel=cell.projection_kernel.detach())


# --- contrib variants ------------------------------------------------------------------------------------------------

def test_nas_cell_formula():
    cell = randomize(cells.NASCell(INPUT, UNITS, num_proj=2, use_biases=True, dtype=DTYPE))
    x, (c, m) = torch.randn(BATCH, INPUT, dtype=DTYPE), lstm_state(out=2)
    xi = (x @ cell.kernel).chunk(8, 1)
    mi = (m @ cell.recurrent_kernel + cell.bias).chunk(8, 1)
    relu = torch.relu
    l1 = [sig(xi[0] + mi[0]), relu(xi[1] + mi[1]), sig(xi[2] + mi[2]), relu(xi[3] * mi[3]), torch.tanh(xi[4] + mi[4]),
          sig(xi[5] + mi[5]), torch.tanh(xi[6] + mi[6]), sig(xi[7] + mi[7])]
    new_c = torch.tanh(torch.tanh(l1[0] * l1[1]) + c) * torch.tanh(l1[2] + l1[3])
    new_m = torch.tanh(new_c * torch.tanh(torch.tanh(l1[4] * l1[5]) + sig(l1[6] + l1[7]))) @ cell.projection_weights
    output, state = cell(x, LSTMStateTuple(c, m))
    assert_close(output, new_m)
    assert_close(state.c, new_c)


def test_phased_lstm_cell_time_gate():
    cell = randomize(cells.PhasedLSTMCell(INPUT, UNITS, use_peepholes=True, dtype=DTYPE))
    with torch.no_grad():
        cell.period.copy_(torch.linspace(2.0, 10.0, UNITS, dtype=DTYPE))
        cell.phase.copy_(torch.linspace(0.0, 1.0, UNITS, dtype=DTYPE))
        cell.ratio_on.fill_(0.2)
    x, (c, h) = torch.randn(BATCH, INPUT, dtype=DTYPE), lstm_state()
    time = torch.tensor([[0.3], [1.7], [4.2], [9.9]], dtype=DTYPE)
    ig, fg = sig(torch.cat([x, h, c], 1) @ cell.mask_gates_kernel + cell.mask_gates_bias).chunk(2, 1)
    c_new = c * fg + ig * torch.tanh(torch.cat([x, h], 1) @ cell.new_input_kernel + cell.new_input_bias)
    og = sig(torch.cat([x, h, c_new], 1) @ cell.output_gate_kernel + cell.output_gate_bias)
    h_new = torch.tanh(c_new) * og
    phi = torch.remainder(time - cell.phase, cell.period) / cell.period
    k = torch.where(phi < 0.1, 2 * phi / 0.2, torch.where(phi < 0.2, 2 - 2 * phi / 0.2, 0.001 * phi))
    output, state = cell((time, x), LSTMStateTuple(c, h))
    assert_close(state.c, k * c_new + (1 - k) * c)
    assert_close(output, k * h_new + (1 - k) * h)
    times = torch.arange(6, dtype=DTYPE).view(6, 1, 1).expand(6, BATCH, 1)
    out, _ = rnn.dynamic_rnn(cell, (times, torch.randn(6, BATCH, INPUT, dtype=DTYPE)), time_major=True,
                             sequence_length=[6, 3, 0, 1])
    assert out.shape == (6, BATCH, UNITS) and torch.equal(out[:, 2], torch.zeros_like(out[:, 2]))


def test_glstm_cell_groups():
    cell = randomize(cells.GLSTMCell(4, 6, num_proj=4, number_of_groups=2, dtype=DTYPE))
    x, (c, m) = torch.randn(BATCH, 4, dtype=DTYPE), LSTMStateTuple(torch.randn(BATCH, 6, dtype=DTYPE),
                                                                   torch.randn(BATCH, 4, dtype=DTYPE))
    parts = [(torch.cat([x[:, 2 * g:2 * g + 2], m[:, 2 * g:2 * g + 2]], 1) @ cell.group_kernels[g]).chunk(4, 1)
             for g in range(2)]
    i, j, f, o = (torch.cat([p[k] for p in parts], 1) + getattr(cell, f"bias_{n}") for k, n in enumerate("ijfo"))
    new_c = sig(f + 1.0) * c + sig(i) * torch.tanh(j)
    new_m = (sig(o) * torch.tanh(new_c)) @ cell.projection_kernel
    output, state = cell(x, LSTMStateTuple(c, m))
    assert_close(output, new_m)
    assert_close(state.c, new_c)
    assert set(dict(cell.tf_variables())) == {"group0/kernel", "group1/kernel", "bias_i", "bias_j", "bias_f", "bias_o",
                                              "projection/kernel"}
    with pytest.raises(ValueError, match="divisible by number_of_groups"):
        cells.GLSTMCell(3, 6, number_of_groups=2)


@pytest.mark.parametrize("ndims", [1, 2, 3])
def test_conv_lstm_cell_same_padding_formula(ndims):
    spatial = [5, 4, 3][:ndims]
    kernel_shape = [3, 2, 3][:ndims]
    cell = randomize(cells.ConvLSTMCell(ndims, spatial + [2], 3, kernel_shape, dtype=DTYPE))
    x = torch.randn(BATCH, *spatial, 2, dtype=DTYPE)
    c, h = (torch.randn(BATCH, *spatial, 3, dtype=DTYPE) for _ in range(2))
    # SAME convolution written as a sum over kernel offsets, channels-last, as TF computes it.
    z = torch.cat([x, h], -1)
    gates = cell.biases.expand(BATCH, *spatial, 12).clone()
    for offset in torch.cartesian_prod(*[torch.arange(k) for k in kernel_shape]).view(-1, ndims):
        shifted = z
        for axis, (o, k) in enumerate(zip(offset.tolist(), kernel_shape)):
            shift = o - (k - 1) // 2
            shifted = shifted.roll(-shift, 1 + axis)
            index = torch.arange(spatial[axis]) + shift
            valid = ((index >= 0) & (index < spatial[axis])).to(DTYPE)
            shifted = shifted * valid.view(*([1] * (1 + axis)), -1, *([1] * (ndims - axis)))
        gates = gates + shifted @ cell.kernel[tuple(offset.tolist())]
    i, j, f, o = gates.chunk(4, -1)
    new_c = sig(f + 1.0) * c + sig(i) * torch.tanh(j)
    output, state = cell(x, LSTMStateTuple(c, h))
    assert_close(state.c, new_c)
    assert_close(output, torch.tanh(new_c) * sig(o))
    out, _ = rnn.dynamic_rnn(cell, torch.randn(BATCH, 4, *spatial, 2, dtype=DTYPE), sequence_length=[4, 1, 0, 2])
    assert out.shape == (BATCH, 4, *spatial, 3) and torch.equal(out[2], torch.zeros_like(out[2]))


CONTRIB_GRADCHECK = {
    "nas": lambda: cells.NASCell(2, 3, num_proj=2, use_biases=True, dtype=DTYPE),
    "glstm": lambda: cells.GLSTMCell(2, 4, number_of_groups=2, dtype=DTYPE),
    "conv2d": lambda: cells.Conv2DLSTMCell([3, 2, 1], 2, [3, 2], dtype=DTYPE),
}


@pytest.mark.parametrize("name", list(CONTRIB_GRADCHECK))
def test_contrib_cell_gradcheck(name):
    cell = randomize(CONTRIB_GRADCHECK[name]())
    state = torch.utils._pytree.tree_map(lambda t: (torch.randn_like(t) * 0.3).requires_grad_(),
                                         cell.zero_state(2, DTYPE))
    x_shape = (2, 3, 2, 1) if name == "conv2d" else (2, 2)
    x = torch.randn(*x_shape, dtype=DTYPE, requires_grad=True)
    names = [n for n, _ in cell.named_parameters()]
    params = [p.detach().requires_grad_() for p in cell.parameters()]

    def run(x, c, h, *tensors):
        output, new_state = torch.func.functional_call(cell, dict(zip(names, tensors)), (x, LSTMStateTuple(c, h)))
        return output, new_state.c

    assert torch.autograd.gradcheck(run, (x, state.c, state.h, *params))


def test_phased_lstm_gradcheck():
    cell = randomize(cells.PhasedLSTMCell(2, 3, dtype=DTYPE))
    with torch.no_grad():
        cell.period.copy_(torch.tensor([2.0, 3.0, 5.0], dtype=DTYPE))
        cell.phase.copy_(torch.tensor([0.1, 0.5, 1.0], dtype=DTYPE))
        cell.ratio_on.fill_(0.3)
    time = torch.tensor([[0.2], [1.1]], dtype=DTYPE)
    x = torch.randn(2, 2, dtype=DTYPE, requires_grad=True)
    c, h = (torch.randn(2, 3, dtype=DTYPE, requires_grad=True) for _ in range(2))
    names = [n for n, _ in cell.named_parameters() if n not in ("period", "phase", "ratio_on")]
    params = [dict(cell.named_parameters())[n].detach().requires_grad_() for n in names]

    def run(x, c, h, *tensors):
        return torch.func.functional_call(cell, dict(zip(names, tensors)), ((time, x), LSTMStateTuple(c, h)),
                                          strict=False)[0]

    assert torch.autograd.gradcheck(run, (x, c, h, *params))


def test_fused_weights_cache_follows_parameter_changes():
    cell = randomize(cells.LSTMBlockCell(INPUT, UNITS, dtype=DTYPE))
    x, state = torch.randn(BATCH, INPUT, dtype=DTYPE), lstm_state()
    with torch.no_grad():
        first = cell(x, state)[0]
        assert torch.equal(cell(x, state)[0], first)
        cell.kernel.mul_(0.5)  # an optimizer step: same storage, new version
        second = cell(x, state)[0]
    i, ci, f, o = split4(torch.cat([x, state.h], 1) @ cell.kernel.detach() + cell.bias.detach())
    cs = torch.tanh(ci) * sig(i) + state.c * sig(f + 1.0)
    assert_close(second, torch.tanh(cs) * sig(o))
    assert not torch.allclose(first, second)
