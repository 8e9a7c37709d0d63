"""fastlstm against TensorFlow's own fused LSTM kernels and Keras' LSTM on the same weights. Runs where tensorflow
imports (tests/run.sh installs tensorflow-cpu when FASTLSTM_WITH_TF=1, as CI does); skips cleanly elsewhere."""

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")

import fastlstm  # noqa: E402
from fastlstm import cells, rnn  # noqa: E402
from fastlstm.cells import LSTMStateTuple  # noqa: E402

# TF computes in float32 (its fused kernels take float and half only): compare at float32 rounding.
TOL = dict(rtol=1e-4, atol=1e-5)
INPUT, UNITS, BATCH, STEPS = 4, 6, 3, 7


def numpy(t):
    return t.detach().cpu().numpy()


@pytest.mark.parametrize("use_peephole,cell_clip", [(False, None), (True, 0.5)])
def test_lstm_block_cell_matches_tf_raw_op(use_peephole, cell_clip):
    torch.manual_seed(0)
    cell = cells.LSTMBlockCell(INPUT, UNITS, forget_bias=1.0, cell_clip=cell_clip, use_peephole=use_peephole)
    with torch.no_grad():
        for p in cell.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    x, c, h = (torch.randn(BATCH, n) for n in (INPUT, UNITS, UNITS))
    zeros = np.zeros(UNITS, np.float32)
    peepholes = [numpy(p) for p in (cell.w_i_diag, cell.w_f_diag, cell.w_o_diag)] if use_peephole else [zeros] * 3
    result = tf.raw_ops.LSTMBlockCell(x=numpy(x), cs_prev=numpy(c), h_prev=numpy(h), w=numpy(cell.kernel),
                                      wci=peepholes[0], wcf=peepholes[1], wco=peepholes[2], b=numpy(cell.bias),
                                      forget_bias=1.0, cell_clip=cell_clip or -1.0, use_peephole=use_peephole)
    output, state = cell(x, LSTMStateTuple(c, h))
    np.testing.assert_allclose(numpy(output), result.h.numpy(), **TOL)
    np.testing.assert_allclose(numpy(state.c), result.cs.numpy(), **TOL)


def tf_block_lstm(op, x, h0, c0, w, b, peephole, cell_clip, use_peephole):
    kwargs = dict(seq_len_max=tf.constant(x.shape[0], tf.int64), x=x, cs_prev=c0, h_prev=h0, w=w, wci=peephole[0],
                  wcf=peephole[1], wco=peephole[2], b=b, cell_clip=cell_clip, use_peephole=use_peephole)
    if op == "BlockLSTM":
        kwargs["forget_bias"] = 0.0
    return getattr(tf.raw_ops, op)(**kwargs)


def icfo(matrix):
    """torch's gate blocks (i, f, g, o) -> TF's LSTMBlockCell / BlockLSTM layout (i, c=g, f, o)."""
    i, f, g, o = matrix.chunk(4, -1)
    return torch.cat([i, g, f, o], -1)


@pytest.mark.parametrize("use_peephole,cell_clip", [(False, 0.0), (True, 0.0), (True, 0.4)])
def test_fused_op_matches_tf_block_lstm(use_peephole, cell_clip):
    """Forward against BlockLSTMV2 (torch's gate layout on a [I + H, 4H] kernel) and BlockLSTM (TF's layout);
    gradients against BlockLSTM only: BlockLSTMV2's registered gradient is wrong in TF 2.21 (its dx differs from
    torch.nn.LSTM's by 0.37 on this case while BlockLSTM's matches to 1e-7). Gradients are compared without
    clipping: TF's fused kernels pass the gradient straight through the clip, fastlstm's is the true one."""
    torch.manual_seed(1)
    x = torch.randn(STEPS, BATCH, INPUT)
    w = torch.randn(INPUT + UNITS, 4 * UNITS) * 0.4
    b = torch.randn(4 * UNITS) * 0.3
    peephole = torch.randn(3, UNITS) * 0.5 if use_peephole else torch.zeros(3, UNITS)
    h0, c0 = torch.randn(BATCH, UNITS) * 0.5, torch.randn(BATCH, UNITS) * 0.5
    loss_weights = np.linspace(-1, 1, STEPS * BATCH * UNITS, dtype=np.float32).reshape(STEPS, BATCH, UNITS)

    leaves = [t.clone().requires_grad_() for t in (x, h0, c0, w, b, peephole)]
    lx, lh0, lc0, lw, lb, lp = leaves
    output, h_n, c_n = fastlstm.functional.lstm(lx, lh0, lc0, lw[:INPUT].t(), lw[INPUT:].t(), lb, None,
                                                w_peephole=lp if use_peephole else None, cell_clip=cell_clip)
    v2 = tf_block_lstm("BlockLSTMV2", *(numpy(t) for t in (x, h0, c0, w, b, peephole)), cell_clip, use_peephole)
    np.testing.assert_allclose(numpy(output), v2.h.numpy(), **TOL)
    np.testing.assert_allclose(numpy(c_n), v2.cs.numpy()[-1], **TOL)

    tf_vars = [tf.Variable(numpy(v)) for v in (x, h0, c0, icfo(w), icfo(b), peephole)]
    with tf.GradientTape() as tape:
        v1 = tf_block_lstm("BlockLSTM", *tf_vars[:5], tf_vars[5], cell_clip, use_peephole)
        loss = tf.reduce_sum(v1.h * loss_weights)
    np.testing.assert_allclose(numpy(output), v1.h.numpy(), **TOL)
    if cell_clip:
        return
    tf_grads = tape.gradient(loss, tf_vars)
    grads = torch.autograd.grad((output * torch.from_numpy(loss_weights)).sum(), leaves, allow_unused=True)
    for name, ours, theirs in zip(("x", "h0", "c0", "w", "b", "peephole"), grads, tf_grads):
        if name in ("w", "b"):
            ours = icfo(ours)
        if name == "peephole" and not use_peephole:
            continue
        np.testing.assert_allclose(numpy(ours), theirs.numpy(), **TOL, err_msg=name)


def test_lstm_matches_keras_lstm():
    torch.manual_seed(2)
    keras_lstm = tf.keras.layers.LSTM(UNITS, return_sequences=True, return_state=True)
    x = np.random.default_rng(0).standard_normal((BATCH, STEPS, INPUT)).astype(np.float32)
    keras_out, keras_h, keras_c = keras_lstm(x)
    kernel, recurrent_kernel, bias = (v.numpy() for v in keras_lstm.weights)
    ours = fastlstm.LSTM(INPUT, UNITS, batch_first=True)
    ours.load_state_dict({  # Keras keeps torch's gate order (i, f, c, o) and one bias
        "weight_ih_l0": torch.from_numpy(kernel.T.copy()), "weight_hh_l0": torch.from_numpy(recurrent_kernel.T.copy()),
        "bias_ih_l0": torch.from_numpy(bias), "bias_hh_l0": torch.zeros(4 * UNITS)})
    out, (h_n, c_n) = ours(torch.from_numpy(x))
    np.testing.assert_allclose(numpy(out), keras_out.numpy(), **TOL)
    np.testing.assert_allclose(numpy(h_n[0]), keras_h.numpy(), **TOL)
    np.testing.assert_allclose(numpy(c_n[0]), keras_c.numpy(), **TOL)


def test_dynamic_rnn_of_block_cell_matches_tf_block_lstm_with_lengths():
    """A fused-path driver against TF's real kernel: lengths cut via BlockLSTM's seq_len_max per row are not
    expressible, so each row runs alone in TF with its own length."""
    torch.manual_seed(3)
    cell = cells.LSTMBlockCell(INPUT, UNITS, forget_bias=1.0)
    x, lengths = torch.randn(BATCH, STEPS, INPUT), [7, 4, 1]
    out, state = rnn.dynamic_rnn(cell, x, sequence_length=lengths)
    zeros = np.zeros(UNITS, np.float32)
    for row, n in enumerate(lengths):
        result = tf.raw_ops.BlockLSTM(seq_len_max=tf.constant(n, tf.int64), x=numpy(x[row:row + 1, :n]).transpose(1, 0, 2),
                                      cs_prev=np.zeros((1, UNITS), np.float32), h_prev=np.zeros((1, UNITS), np.float32),
                                      w=numpy(cell.kernel), wci=zeros, wcf=zeros, wco=zeros, b=numpy(cell.bias),
                                      forget_bias=1.0, cell_clip=-1.0, use_peephole=False)
        np.testing.assert_allclose(numpy(out[row, :n]), result.h.numpy()[:, 0], **TOL)
        np.testing.assert_allclose(numpy(state.h[row]), result.h.numpy()[-1, 0], **TOL)


def tf_layer_norm_basic_lstm_step(x, c, h, kernel, norms, forget_bias):
    """tf.contrib.rnn.LayerNormBasicLSTMCell.call (TF 1.15's code, which TF 2 no longer ships) in TF ops: the
    concat, linear, split, contrib.layers.layer_norm per gate (tf.nn.moments, tf.nn.batch_normalization with
    variance_epsilon 1e-12) and on the new c."""
    def norm(v, name):
        mean, variance = tf.nn.moments(v, [1], keepdims=True)
        return tf.nn.batch_normalization(v, mean, variance, norms[name + "/beta"], norms[name + "/gamma"], 1e-12)

    i, j, f, o = tf.split(tf.matmul(tf.concat([x, h], 1), kernel), 4, axis=1)
    i, j, f, o = norm(i, "input"), norm(j, "transform"), norm(f, "forget"), norm(o, "output")
    new_c = norm(c * tf.sigmoid(f + forget_bias) + tf.sigmoid(i) * tf.tanh(j), "state")
    return tf.tanh(new_c) * tf.sigmoid(o), new_c


def test_layer_norm_basic_lstm_cell_on_the_fused_op_matches_tf():
    torch.manual_seed(0)
    cell = cells.LayerNormBasicLSTMCell(INPUT, UNITS, forget_bias=0.7)
    with torch.no_grad():
        for name, p in cell.named_parameters():
            p.add_(0.3 * torch.randn_like(p))
    assert rnn.uses_fused_op(cell)
    x = torch.randn(BATCH, STEPS, INPUT, requires_grad=True)
    outputs, state = rnn.dynamic_rnn(cell, x)
    weights = dict(cell.tf_variables())
    grads = torch.autograd.grad((outputs * torch.linspace(-1, 1, UNITS)).sum() + state.c.sum(),
                                [x] + list(weights.values()))

    tf_vars = {name: tf.Variable(numpy(p)) for name, p in weights.items()}
    tf_x = tf.Variable(numpy(x))
    with tf.GradientTape() as tape:
        c = h = tf.zeros((BATCH, UNITS))
        tf_outputs = []
        for t in range(STEPS):
            h, c = tf_layer_norm_basic_lstm_step(tf_x[:, t], c, h, tf_vars["kernel"], tf_vars, 0.7)
            tf_outputs.append(h)
        tf_outputs = tf.stack(tf_outputs, 1)
        loss = tf.reduce_sum(tf_outputs * tf.linspace(-1.0, 1.0, UNITS)) + tf.reduce_sum(c)
    tf_grads = tape.gradient(loss, [tf_x] + list(tf_vars.values()))
    np.testing.assert_allclose(numpy(outputs), tf_outputs.numpy(), **TOL)
    np.testing.assert_allclose(numpy(state.c), c.numpy(), **TOL)
    for name, ours, theirs in zip(["x"] + list(weights), grads, tf_grads):
        np.testing.assert_allclose(numpy(ours), theirs.numpy(), rtol=1e-3, atol=1e-4, err_msg=name)


def test_gru_block_cell_matches_tf_raw_ops_forward_and_gradient():
    """cells.GRUBlockCell (fastlstm's fused GRU op, TF's convention) against TF's own fused kernels
    (tf.raw_ops.GRUBlockCell and GRUBlockCellGrad), one step."""
    torch.manual_seed(0)
    cell = cells.GRUBlockCell(INPUT, UNITS)
    with torch.no_grad():
        for p in cell.parameters():
            p.add_(0.3 * torch.randn_like(p))
    weights = dict(cell.tf_variables())
    x = torch.randn(BATCH, INPUT, requires_grad=True)
    h = torch.randn(BATCH, UNITS, requires_grad=True)
    new_h, _ = cell(x, h)
    d_h = torch.randn(BATCH, UNITS)
    grads = torch.autograd.grad(new_h, [x, h, weights["b_ru"], weights["b_c"]], d_h)
    args = dict(x=numpy(x), h_prev=numpy(h), w_ru=numpy(weights["w_ru"]), w_c=numpy(weights["w_c"]),
                b_ru=numpy(weights["b_ru"]), b_c=numpy(weights["b_c"]))
    r, u, c, tf_h = tf.raw_ops.GRUBlockCell(**args)
    np.testing.assert_allclose(numpy(new_h), tf_h.numpy(), **TOL)
    d_x, d_h_prev, d_c_bar, d_r_bar_u_bar = tf.raw_ops.GRUBlockCellGrad(**args, r=r, u=u, c=c, d_h=numpy(d_h))
    np.testing.assert_allclose(numpy(grads[0]), d_x.numpy(), **TOL)
    np.testing.assert_allclose(numpy(grads[1]), d_h_prev.numpy(), **TOL)
    # The biases' gradients are the pre-activations' gradients summed over the batch.
    np.testing.assert_allclose(numpy(grads[2]), d_r_bar_u_bar.numpy().sum(0), **TOL)
    np.testing.assert_allclose(numpy(grads[3]), d_c_bar.numpy().sum(0), **TOL)


def test_gru_cell_sequence_on_the_fused_op_matches_tf():
    """dynamic_rnn(cells.GRUCell) -- one fused op over the sequence, with lengths -- against TF's GRUCell math in TF
    ops (rnn_cell_impl.GRUCell.call), forward and gradients."""
    torch.manual_seed(0)
    cell = cells.GRUCell(INPUT, UNITS)
    assert rnn.uses_fused_op(cell)
    x = torch.randn(BATCH, STEPS, INPUT, requires_grad=True)
    lengths = [STEPS, 2, 5]
    outputs, state = rnn.dynamic_rnn(cell, x, sequence_length=lengths)
    weights = dict(cell.tf_variables())
    grads = torch.autograd.grad(outputs.sum() + state.sum(), [x] + list(weights.values()))

    tf_vars = {name: tf.Variable(numpy(p)) for name, p in weights.items()}
    tf_x = tf.Variable(numpy(x))
    with tf.GradientTape() as tape:
        h = tf.zeros((BATCH, UNITS))
        tf_outputs = []
        for t in range(STEPS):
            xt = tf_x[:, t]
            gates = tf.sigmoid(tf.matmul(tf.concat([xt, h], 1), tf_vars["gates/kernel"]) + tf_vars["gates/bias"])
            r, u = tf.split(gates, 2, axis=1)
            c = tf.tanh(tf.matmul(tf.concat([xt, r * h], 1), tf_vars["candidate/kernel"]) + tf_vars["candidate/bias"])
            new_h = u * h + (1 - u) * c
            running = tf.constant([[1.0] if t < n else [0.0] for n in lengths])
            h = running * new_h + (1 - running) * h
            tf_outputs.append(running * new_h)
        tf_outputs = tf.stack(tf_outputs, 1)
        loss = tf.reduce_sum(tf_outputs) + tf.reduce_sum(h)
    tf_grads = tape.gradient(loss, [tf_x] + list(tf_vars.values()))
    np.testing.assert_allclose(numpy(outputs), tf_outputs.numpy(), **TOL)
    np.testing.assert_allclose(numpy(state), h.numpy(), **TOL)
    for name, ours, theirs in zip(["x"] + list(weights), grads, tf_grads):
        np.testing.assert_allclose(numpy(ours), theirs.numpy(), rtol=1e-3, atol=1e-4, err_msg=name)
