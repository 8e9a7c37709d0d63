"""The recurrent cells' math composed from plain torch ops: the oracle of the tests and the path for what no kernel
covers (the LSTM with TF's options; the layer-normalised LSTM).

Torch gate order (i, f, g, o) and weight layout (w_ih [4H, I], w_hh [4H, H_out], b_ih/b_hh [4H], w_hr [H_out, H]).
TF options: ``forget_bias`` is added to f before the sigmoid; ``cell_clip`` > 0 clips c to +-cell_clip (the clipped c
is carried); ``w_peephole`` [3, H] holds (w_ci, w_cf, w_co): i and f read c_prev, o reads the new c.
"""

import torch


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, *, w_hr=None, w_peephole=None, forget_bias=0.0,
              cell_clip=0.0):
    """One step. x [B, I], h [B, H_out], c [B, H] -> (h_new [B, H_out], c_new [B, H])."""
    gates = x @ w_ih.t() + h @ w_hh.t()
    if b_ih is not None:
        gates = gates + b_ih
    if b_hh is not None:
        gates = gates + b_hh
    i, f, g, o = gates.chunk(4, dim=-1)
    if w_peephole is not None:
        i = i + w_peephole[0] * c
        f = f + w_peephole[1] * c
    i = torch.sigmoid(i)
    f = torch.sigmoid(f + forget_bias)
    g = torch.tanh(g)
    c_new = f * c + i * g
    if cell_clip > 0:
        c_new = c_new.clamp(-cell_clip, cell_clip)
    if w_peephole is not None:
        o = o + w_peephole[2] * c_new
    h_new = torch.sigmoid(o) * torch.tanh(c_new)
    if w_hr is not None:
        h_new = h_new @ w_hr.t()
    return h_new, c_new


def run_steps(step, x, states, sequence_lengths=None):
    """Runs step(x_t, states) -> (output_t, new states) over time-major x [T, B, ...], every cell's sequence loop.
    Rows past their length (sequence_lengths [B]) keep their state and output zeros. Returns (outputs [T, B, F],
    final states); with T = 0, the initial states (copied) and a [0, B, F] output of the first state's width."""
    running = None
    if sequence_lengths is not None:
        steps = torch.arange(x.shape[0], device=sequence_lengths.device)
        running = (steps.unsqueeze(1) < sequence_lengths.unsqueeze(0)).to(x.device).unsqueeze(-1)  # [T, B, 1]
    outputs = []
    for t in range(x.shape[0]):
        output, new_states = step(x[t], states)
        if running is None:
            states = new_states
            outputs.append(output)
        else:
            states = tuple(torch.where(running[t], new, old) for new, old in zip(new_states, states))
            outputs.append(torch.where(running[t], output, torch.zeros_like(output)))
    if not outputs:
        return x.new_zeros((0, x.shape[1], states[0].shape[-1])), tuple(s.clone() for s in states)
    return torch.stack(outputs), states


def lstm_sequence(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, *, w_hr=None, w_peephole=None,
                  sequence_lengths=None, forget_bias=0.0, cell_clip=0.0):
    """One layer, one direction. x [T, B, I], h0 [B, H_out], c0 [B, H], sequence_lengths [B] or None.

    Returns output [T, B, H_out] (zero past a row's length), h_n [B, H_out], c_n [B, H] (the state at each row's
    length; the initial state for length 0).
    """
    def step(x_t, state):
        h, c = lstm_cell(x_t, *state, w_ih, w_hh, b_ih, b_hh, w_hr=w_hr, w_peephole=w_peephole,
                         forget_bias=forget_bias, cell_clip=cell_clip)
        return h, (h, c)

    output, (h, c) = run_steps(step, x, (h0, c0), sequence_lengths)
    return output, h, c


# The GRU, gate blocks r, z, n. linear_before_reset (ONNX's name): torch.nn.GRU's and cuDNN's convention, the reset
# gate multiplies W_hn h + b_hn; without, TF1's GRUCell / GRUBlockCell: n = tanh(W_in x + b_in + W_hn (r * h) + b_hn).
def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, *, linear_before_reset=True):
    """One step. x [B, I], h [B, H], w_ih [3H, I], w_hh [3H, H], b_ih/b_hh [3H] -> h_new [B, H]."""
    gi = x @ w_ih.t()
    w_hr, w_hz, w_hn = w_hh.chunk(3, dim=0)
    gh = h @ (w_hh if linear_before_reset else torch.cat([w_hr, w_hz])).t()
    if b_ih is not None:
        gi = gi + b_ih
    if b_hh is not None:
        gh = gh + (b_hh if linear_before_reset else b_hh[: 2 * h.shape[-1]])
    i_r, i_z, i_n = gi.chunk(3, dim=-1)
    r = torch.sigmoid(i_r + gh[..., : h.shape[-1]])
    z = torch.sigmoid(i_z + gh[..., h.shape[-1]: 2 * h.shape[-1]])
    if linear_before_reset:
        n = torch.tanh(i_n + r * gh[..., 2 * h.shape[-1]:])
    else:
        n = torch.tanh(i_n + (r * h) @ w_hn.t() + (b_hh[2 * h.shape[-1]:] if b_hh is not None else 0))
    return (1 - z) * n + z * h


def gru_sequence(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, sequence_lengths=None, linear_before_reset=True):
    """One layer, one direction. x [T, B, I], h0 [B, H] -> (output [T, B, H], h_n [B, H]); lengths as
    lstm_sequence."""
    def step(x_t, state):
        h = gru_cell(x_t, state[0], w_ih, w_hh, b_ih, b_hh, linear_before_reset=linear_before_reset)
        return h, (h,)

    output, (h,) = run_steps(step, x, (h0,), sequence_lengths)
    return output, h


# The layer-normalised LSTM, as the fused op layer_norm_lstm computes it (csrc/layer_norm_lstm_params.h): layer norm
# of the gate pre-activations in `groups` groups of 4H / groups values -- of W_ih x and of W_hh h separately, each
# with its gain (haste's LayerNormLSTM, Ba et al. 2016), or, without ln_hh_weight, of their sum (TF1's
# LayerNormBasicLSTMCell: groups=4, one norm per gate) -- plus bias; forget_bias on f; g times g_mask (recurrent
# dropout); the new c normalised with gain and shift before its tanh, and carried normalised with
# carry_normalized_cell (TF) or not (haste). Biased variance, eps inside the square root, as
# torch.nn.functional.layer_norm.
def _group_norm(v, groups, gain, eps):
    size = v.shape[-1] // groups
    return torch.nn.functional.layer_norm(v.unflatten(-1, (groups, size)), (size,), eps=eps).flatten(-2) * gain


def layer_norm_lstm_cell(x, h, c, w_ih, w_hh, bias, ln_ih_weight, ln_hh_weight, ln_cell_weight, ln_cell_bias, *,
                         groups=1, eps=1e-5, forget_bias=0.0, carry_normalized_cell=False, g_mask=None,
                         projected_x=None):
    """One step. x [B, I], h and c [B, H]; bias, ln_ih_weight, ln_hh_weight [4H] (bias and ln_hh_weight may be
    None); ln_cell_weight, ln_cell_bias [H]; g_mask [B, H] or None. projected_x: W_ih x already computed (the
    sequence computes it for all steps at once). Returns (h_new, c_new)."""
    wx = projected_x if projected_x is not None else x @ w_ih.t()
    wh = h @ w_hh.t()
    if ln_hh_weight is not None:
        gates = _group_norm(wx, groups, ln_ih_weight, eps) + _group_norm(wh, groups, ln_hh_weight, eps)
    else:
        gates = _group_norm(wx + wh, groups, ln_ih_weight, eps)
    if bias is not None:
        gates = gates + bias
    i, f, g, o = gates.chunk(4, dim=-1)
    g = torch.tanh(g)
    if g_mask is not None:
        g = g * g_mask
    c_new = torch.sigmoid(f + forget_bias) * c + torch.sigmoid(i) * g
    c_norm = torch.nn.functional.layer_norm(c_new, (c_new.shape[-1],), ln_cell_weight, ln_cell_bias, eps)
    return torch.sigmoid(o) * torch.tanh(c_norm), (c_norm if carry_normalized_cell else c_new)


def layer_norm_lstm_sequence(x, h0, c0, w_ih, w_hh, bias, ln_ih_weight, ln_hh_weight, ln_cell_weight, ln_cell_bias,
                             *, sequence_lengths=None, g_mask=None, groups=1, eps=1e-5, forget_bias=0.0,
                             carry_normalized_cell=False):
    """One layer, one direction of layer_norm_lstm_cell (g_mask [T, B, H]); shapes and lengths as lstm_sequence."""
    hidden = h0.shape[-1]
    steps = x @ w_ih.t()
    if g_mask is not None:
        steps = torch.cat([steps, g_mask], -1)

    def step(step_t, state):
        wx_t, mask_t = (step_t[..., :4 * hidden], step_t[..., 4 * hidden:]) if g_mask is not None else (step_t, None)
        h, c = layer_norm_lstm_cell(None, *state, w_ih, w_hh, bias, ln_ih_weight, ln_hh_weight, ln_cell_weight,
                                    ln_cell_bias, groups=groups, eps=eps, forget_bias=forget_bias,
                                    carry_normalized_cell=carry_normalized_cell, g_mask=mask_t, projected_x=wx_t)
        return h, (h, c)

    output, (h, c) = run_steps(step, steps, (h0, c0), sequence_lengths)
    if output.shape[0] == 0:
        output = x.new_zeros((0, x.shape[1], h0.shape[-1]))
    return output, h, c


# int8 dynamic quantization, as the kernels quantized_lstm / quantized_gru compute it (csrc/cpu/quantized_rnn_kernel.h):
# int8 weights with one scale per output channel; each activation row quantized as it enters a product (the input
# once, h at every step): symmetric, q = round(a * 127 / amax) in [-127, 127], scale amax / 127; the product's
# integer sums are exact, then times scale_row * scale_channel in float32; bias, gate math and states in float32.
def quantize_rows(a):
    """a [..., K] -> (q [..., K]: integers in [-127, 127] as floats, scale [...]). A row holding NaN gets a NaN
    scale."""
    amax = a.abs().amax(-1)
    usable = (amax > 0) & torch.isfinite(amax)
    inverse = torch.where(usable, 127 / torch.where(usable, amax, torch.ones_like(amax)), torch.zeros_like(amax))
    q = torch.round(a * inverse.unsqueeze(-1)).clamp(-127, 127)
    return torch.nan_to_num(q, nan=-127.0), amax / 127


def quantized_product(a, w_int8, w_scale):
    """a [..., K] float32 times W^T, W = w_int8 [N, K] * w_scale [N] per channel, with a quantized per row."""
    q, scale = quantize_rows(a)
    sums = (q.double() @ w_int8.double().t()).float()  # exact: |sum| < 2^24 for K < 1040, as the kernels' int32
    return (scale.unsqueeze(-1) * w_scale) * sums


def quantized_lstm_sequence(x, h0, c0, w_ih, w_ih_scale, w_hh, w_hh_scale, b_ih=None, b_hh=None, *,
                            sequence_lengths=None):
    """One layer, one direction of fastlstm::quantized_lstm: x [T, B, I], w_ih [4H, I] int8, w_ih_scale [4H], ...
    -> (output [T, B, H], h_n, c_n); lengths as lstm_sequence."""
    bias = torch.zeros(w_ih.shape[0], dtype=x.dtype, device=x.device)
    if b_ih is not None:
        bias = bias + b_ih
    if b_hh is not None:
        bias = bias + b_hh
    x_proj = quantized_product(x, w_ih, w_ih_scale) + bias

    def step(x_t, state):
        h, c = state
        i, f, g, o = (x_t + quantized_product(h, w_hh, w_hh_scale)).chunk(4, dim=-1)
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_new = torch.sigmoid(o) * torch.tanh(c_new)
        return h_new, (h_new, c_new)

    output, (h, c) = run_steps(step, x_proj, (h0, c0), sequence_lengths)
    return output, h, c


def quantized_gru_sequence(x, h0, w_ih, w_ih_scale, w_hh, w_hh_scale, b_ih=None, b_hh=None, *,
                           sequence_lengths=None):
    """One layer, one direction of fastlstm::quantized_gru (torch's GRU convention) -> (output [T, B, H], h_n)."""
    x_proj = quantized_product(x, w_ih, w_ih_scale) + (b_ih if b_ih is not None else 0)
    H = h0.shape[-1]

    def step(x_t, state):
        h = state[0]
        rec = quantized_product(h, w_hh, w_hh_scale) + (b_hh if b_hh is not None else 0)
        r = torch.sigmoid(x_t[..., :H] + rec[..., :H])
        z = torch.sigmoid(x_t[..., H:2 * H] + rec[..., H:2 * H])
        n = torch.tanh(x_t[..., 2 * H:] + r * rec[..., 2 * H:])
        h_new = (1 - z) * n + z * h
        return h_new, (h_new,)

    output, (h,) = run_steps(step, x_proj, (h0,), sequence_lengths)
    return output, h
