"""TF1's LSTM cells. Parameters keep TF's names, shapes and gate order (kernel [input + H, 4H] in blocks i, j, f, o),
so that a TF1 checkpoint's arrays load unchanged (load_tf_weights). Where fastlstm's fused ops cover a cell (tanh
activation, no proj_clip), its steps run on them, and ``fused_sequence`` runs a whole sequence in one op for the
drivers (rnn.py); ``fuses()`` says whether it does."""

import torch
from torch import nn

from .. import functional, layout
from .base import (TF_LAYER_NORM_EPSILON, LSTMStateCell, LSTMStateTuple, SeededGenerators, tf_bias, tf_kernel,
                   tf_layer_norm)


def _is_tanh(activation):
    return activation is None or activation is torch.tanh


def _clip(value, limit):
    return value if limit is None or limit <= 0 else value.clamp(-limit, limit)


class _FusableLSTMCell(LSTMStateCell):
    """An LSTM cell whose math fastlstm's fused ops implement: ``fused_spec`` returns their arguments, or None."""

    _spec_cache = None

    def fused_spec(self):
        """The fused ops' keyword arguments (TF layout). Without gradients to track they are kept until
        a parameter changes (data pointer or version), which spares the peephole stack per step."""
        tracking = torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())
        if tracking or torch.compiler.is_compiling():
            return self._make_fused_spec()
        key = tuple((p.data_ptr(), p._version) for p in self.parameters())
        if self._spec_cache is None or self._spec_cache[0] != key:
            spec = self._make_fused_spec()
            if spec is not None:
                spec = {k: v.contiguous() if isinstance(v, torch.Tensor) else v for k, v in spec.items()}
            self._spec_cache = (key, spec)
        return self._spec_cache[1]

    def _make_fused_spec(self):
        """The fused ops' arguments, or None when they do not cover this cell's configuration."""
        raise NotImplementedError

    def fuses(self):
        return self.fused_spec() is not None

    def fused_sequence(self, inputs, state, lengths):
        """inputs [T, B, input_size] time-major, state LSTMStateTuple(c, h), lengths [B] or None -> (outputs,
        final state), in one fused op."""
        c, h = state
        outputs, h_n, c_n = functional.lstm(inputs, h, c, sequence_lengths=lengths, **self.fused_spec())
        return outputs, LSTMStateTuple(c_n, h_n)

    def _spec(self, w_peephole=None, cell_clip=None, projection_kernel=None):
        # The fused ops' keyword arguments. TF layout: the ops take the kernel whole, as TF's LSTMBlockCell does, so
        # its gradient comes back as one tensor (two row views would cost two full-size SliceBackward fills a step).
        return dict(w_ih=self.kernel, w_hh=None, b_ih=self.bias, w_hr=projection_kernel, w_peephole=w_peephole,
                    forget_bias=self.forget_bias, cell_clip=float(cell_clip or 0.0), tf_layout=True)

    def _fused_step(self, inputs, state, spec):
        c, h = state
        h_new, c_new = functional.lstm_cell(inputs, h, c, **spec)
        return h_new, LSTMStateTuple(c_new, h_new)


def _peephole(w_i_diag, w_f_diag, w_o_diag):
    return torch.stack([w_i_diag, w_f_diag, w_o_diag]) if w_i_diag is not None else None


class BasicLSTMCell(_FusableLSTMCell):
    """tf.nn.rnn_cell.BasicLSTMCell: c' = c * sigmoid(f + forget_bias) + sigmoid(i) * act(j), h' = act(c') * sigmoid(o).
    State LSTMStateTuple(c, h). TF variables: kernel [input_size + num_units, 4 * num_units], bias."""

    def __init__(self, input_size, num_units, forget_bias=1.0, activation=None, dtype=None, device=None):
        super().__init__()
        self.input_size, self.num_units = input_size, num_units
        self.forget_bias = float(forget_bias)
        self.activation = activation or torch.tanh
        self.kernel = tf_kernel(input_size + num_units, 4 * num_units, dtype, device)
        self.bias = tf_bias(4 * num_units, dtype=dtype, device=device)

    def _make_fused_spec(self):
        return self._spec() if _is_tanh(self.activation) else None

    def forward(self, inputs, state):
        spec = self.fused_spec()
        if spec is not None:
            return self._fused_step(inputs, state, spec)
        c, h = state
        i, j, f, o = (torch.cat([inputs, h], 1) @ self.kernel + self.bias).chunk(4, 1)
        new_c = c * torch.sigmoid(f + self.forget_bias) + torch.sigmoid(i) * self.activation(j)
        new_h = self.activation(new_c) * torch.sigmoid(o)
        return new_h, LSTMStateTuple(new_c, new_h)


class LSTMCell(_FusableLSTMCell):
    """tf.nn.rnn_cell.LSTMCell: peepholes (i, f read c_prev, o reads the new c), cell_clip (the clipped c is
    carried), projection m = h . W_proj clipped to +-proj_clip; state LSTMStateTuple(c, m).
    TF variables: kernel [input_size + (num_proj or num_units), 4 * num_units], bias, w_f_diag, w_i_diag, w_o_diag,
    projection/kernel [num_units, num_proj]."""

    def __init__(self, input_size, num_units, use_peepholes=False, cell_clip=None, num_proj=None, proj_clip=None,
                 forget_bias=1.0, activation=None, dtype=None, device=None):
        super().__init__()
        self.input_size, self.num_units, self.num_proj = input_size, num_units, num_proj
        self.use_peepholes, self.cell_clip, self.proj_clip = use_peepholes, cell_clip, proj_clip
        self.forget_bias = float(forget_bias)
        self.activation = activation or torch.tanh
        out_size = num_proj or num_units
        self.kernel = tf_kernel(input_size + out_size, 4 * num_units, dtype, device)
        self.bias = tf_bias(4 * num_units, dtype=dtype, device=device)
        for name in ("w_f_diag", "w_i_diag", "w_o_diag"):
            value = nn.Parameter(torch.empty(num_units, dtype=dtype, device=device)) if use_peepholes else None
            if value is not None:
                nn.init.uniform_(value, -(3.0 / num_units) ** 0.5, (3.0 / num_units) ** 0.5)
            self.register_parameter(name, value)
        self.projection_kernel = tf_kernel(num_units, num_proj, dtype, device) if num_proj else None

    def tf_variables(self):
        return [("projection/kernel" if name == "projection_kernel" else name, p) for name, p in self.named_parameters()]

    def _make_fused_spec(self):
        # proj_clip clips inside the recurrence, which the fused ops do not do.
        if not _is_tanh(self.activation) or (self.num_proj and self.proj_clip is not None and self.proj_clip > 0):
            return None
        return self._spec(_peephole(self.w_i_diag, self.w_f_diag, self.w_o_diag), self.cell_clip,
                          self.projection_kernel)

    def forward(self, inputs, state):
        spec = self.fused_spec()
        if spec is not None:
            return self._fused_step(inputs, state, spec)
        c_prev, m_prev = state
        i, j, f, o = (torch.cat([inputs, m_prev], 1) @ self.kernel + self.bias).chunk(4, 1)
        if self.use_peepholes:
            i, f = i + self.w_i_diag * c_prev, f + self.w_f_diag * c_prev
        c = torch.sigmoid(f + self.forget_bias) * c_prev + torch.sigmoid(i) * self.activation(j)
        c = _clip(c, self.cell_clip)
        if self.use_peepholes:
            o = o + self.w_o_diag * c
        m = torch.sigmoid(o) * self.activation(c)
        if self.num_proj:
            m = _clip(m @ self.projection_kernel, self.proj_clip)
        return m, LSTMStateTuple(c, m)


class LSTMBlockCell(_FusableLSTMCell):
    """tf.contrib.rnn.LSTMBlockCell: one fused op per step, LSTMCell's math without projection. cell_clip None (or
    <= 0) means no clipping. TF variables: kernel, bias, w_i_diag, w_f_diag, w_o_diag."""

    def __init__(self, input_size, num_units, forget_bias=1.0, cell_clip=None, use_peephole=False, dtype=None,
                 device=None):
        super().__init__()
        self.input_size, self.num_units = input_size, num_units
        self.forget_bias, self.cell_clip, self.use_peephole = float(forget_bias), cell_clip, use_peephole
        self.kernel = tf_kernel(input_size + num_units, 4 * num_units, dtype, device)
        self.bias = tf_bias(4 * num_units, dtype=dtype, device=device)
        for name in ("w_i_diag", "w_f_diag", "w_o_diag"):
            value = nn.Parameter(torch.zeros(num_units, dtype=dtype, device=device)) if use_peephole else None
            self.register_parameter(name, value)

    def _make_fused_spec(self):
        return self._spec(_peephole(self.w_i_diag, self.w_f_diag, self.w_o_diag), self.cell_clip)

    def forward(self, inputs, state):
        return self._fused_step(inputs, state, self.fused_spec())


class LSTMBlockFusedCell(LSTMBlockCell):
    """tf.contrib.rnn.LSTMBlockFusedCell: the whole time-major sequence in one fused op.

    forward(inputs [T, B, input_size], initial_state=None, sequence_length=None) -> (outputs [T, B, H],
    LSTMStateTuple(c, h)): outputs past a row's length are zero, the final state is the state at its length (the
    initial state for length 0)."""

    def forward(self, inputs, initial_state=None, sequence_length=None):
        if initial_state is None:
            initial_state = self.zero_state(inputs.shape[1], inputs.dtype, inputs.device)
        spec = self.fused_spec()
        c0, h0 = initial_state
        if sequence_length is not None:
            sequence_length = torch.as_tensor(sequence_length, dtype=torch.int64)
        outputs, h_n, c_n = functional.lstm(inputs, h0, c0, sequence_lengths=sequence_length, **spec)
        return outputs, LSTMStateTuple(c_n, h_n)


class LayerNormBasicLSTMCell(LSTMStateCell):
    """tf.contrib.rnn.LayerNormBasicLSTMCell: layer norm (epsilon 1e-12) on each of i, j, f, o and on the new c (the
    normalised c is carried); no bias when layer_norm; recurrent dropout (Semeniuta) on act(j) in training mode.
    TF variables: kernel, bias (without layer_norm), {input,transform,forget,output,state}/{gamma,beta}."""

    NORMS = ("input", "transform", "forget", "output", "state")

    def __init__(self, input_size, num_units, forget_bias=1.0, activation=None, layer_norm=True, norm_gain=1.0,
                 norm_shift=0.0, dropout_keep_prob=1.0, dropout_prob_seed=None, dtype=None, device=None):
        super().__init__()
        self.input_size, self.num_units = input_size, num_units
        self.forget_bias = float(forget_bias)
        self.activation = activation or torch.tanh
        self.layer_norm, self.dropout_keep_prob = layer_norm, dropout_keep_prob
        self._generator = SeededGenerators(dropout_prob_seed)
        self.kernel = tf_kernel(input_size + num_units, 4 * num_units, dtype, device)
        self.bias = None if layer_norm else tf_bias(4 * num_units, dtype=dtype, device=device)
        for norm in self.NORMS if layer_norm else ():
            setattr(self, f"{norm}_gamma", tf_bias(num_units, norm_gain, dtype, device))
            setattr(self, f"{norm}_beta", tf_bias(num_units, norm_shift, dtype, device))

    def tf_variables(self):
        renamed = []
        for name, parameter in self.named_parameters():
            for norm in self.NORMS:
                if name.startswith(norm + "_"):
                    name = f"{norm}/{name[len(norm) + 1:]}"
            renamed.append((name, parameter))
        return renamed

    def fuses(self):
        """With layer norm and tanh the whole cell is the fused layer-norm op (its joint per-gate formulation)."""
        return self.layer_norm and _is_tanh(self.activation)

    def _fused_weights(self):
        """The fused op's weights: TF's kernel in torch's layout and gate order, the per-gate gains and shifts (the
        op's ln_ih_weight and bias) stacked in torch's order (i, f, g=j, o), the state norm's."""
        w_ih, w_hh, _, _, _ = layout.torch_layout(self.kernel, None, None, None, self.input_size)
        gains = torch.cat([self.input_gamma, self.forget_gamma, self.transform_gamma, self.output_gamma])
        shifts = torch.cat([self.input_beta, self.forget_beta, self.transform_beta, self.output_beta])
        return w_ih, w_hh, shifts, gains, None, self.state_gamma, self.state_beta

    def fused_sequence(self, inputs, state, lengths):
        """As _FusableLSTMCell.fused_sequence: inputs [T, B, input_size] in one fused layer-norm op. The recurrent
        dropout's mask of all steps is drawn at once from the cell's generator (the same distribution as the step
        loop's per-step draws, not the same numbers)."""
        c, h = state
        g_mask = None
        if self.training and self.dropout_keep_prob < 1:
            shape = (inputs.shape[0], inputs.shape[1], self.num_units)
            keep = torch.empty(shape, dtype=inputs.dtype, device=inputs.device)
            g_mask = keep.bernoulli_(self.dropout_keep_prob, generator=self._generator(inputs.device))
            g_mask = g_mask / self.dropout_keep_prob
        outputs, h_n, c_n = functional.layer_norm_lstm(
            inputs, h, c, *self._fused_weights(), sequence_lengths=lengths, g_mask=g_mask, groups=4,
            eps=TF_LAYER_NORM_EPSILON, forget_bias=self.forget_bias, carry_normalized_cell=True)
        return outputs, LSTMStateTuple(c_n, h_n)

    def _norm(self, x, norm):
        if not self.layer_norm:
            return x
        return tf_layer_norm(x, getattr(self, f"{norm}_gamma"), getattr(self, f"{norm}_beta"))

    def _norm_gates(self, gates):
        """Each of the 4 gate blocks normalised on its own, as four _norm calls would, in one layer_norm kernel."""
        if not self.layer_norm:
            return gates
        blocks = gates.unflatten(1, (4, self.num_units))
        gamma = torch.stack([getattr(self, f"{norm}_gamma") for norm in self.NORMS[:4]])
        beta = torch.stack([getattr(self, f"{norm}_beta") for norm in self.NORMS[:4]])
        return torch.addcmul(beta, tf_layer_norm(blocks), gamma).flatten(1)

    def forward(self, inputs, state):
        if self.fuses():
            outputs, new_state = self.fused_sequence(inputs.unsqueeze(0), state, None)
            return outputs[0], new_state
        c, h = state
        gates = torch.cat([inputs, h], 1) @ self.kernel
        if self.bias is not None:
            gates = gates + self.bias
        i, j, f, o = self._norm_gates(gates).chunk(4, 1)
        g = self.activation(j)
        if self.training and self.dropout_keep_prob < 1:
            keep = torch.empty_like(g).bernoulli_(self.dropout_keep_prob, generator=self._generator(g.device))
            g = g * keep / self.dropout_keep_prob
        new_c = self._norm(c * torch.sigmoid(f + self.forget_bias) + torch.sigmoid(i) * g, "state")
        new_h = self.activation(new_c) * torch.sigmoid(o)
        return new_h, LSTMStateTuple(new_c, new_h)


class CoupledInputForgetGateLSTMCell(LSTMStateCell):
    """tf.contrib.rnn.CoupledInputForgetGateLSTMCell: the input gate is 1 - f, c = f * c_prev + (1 - f) * act(j);
    peepholes on f (reads c_prev) and o (reads the new c); optional projection as LSTMCell.
    TF variables: W_0 [input_size + (num_proj or num_units), 3 * num_units] (blocks j, f, o), B [3 * num_units],
    W_F_diag, W_O_diag, W_P_0 [num_units, num_proj]."""

    def __init__(self, input_size, num_units, use_peepholes=False, num_proj=None, proj_clip=None, forget_bias=1.0,
                 activation=None, dtype=None, device=None):
        super().__init__()
        self.input_size, self.num_units, self.num_proj = input_size, num_units, num_proj
        self.use_peepholes, self.proj_clip = use_peepholes, proj_clip
        self.forget_bias = float(forget_bias)
        self.activation = activation or torch.tanh
        self.W_0 = tf_kernel(input_size + (num_proj or num_units), 3 * num_units, dtype, device)
        self.B = tf_bias(3 * num_units, dtype=dtype, device=device)
        for name in ("W_F_diag", "W_O_diag"):
            value = nn.Parameter(torch.empty(num_units, dtype=dtype, device=device)) if use_peepholes else None
            if value is not None:
                nn.init.uniform_(value, -(3.0 / num_units) ** 0.5, (3.0 / num_units) ** 0.5)
            self.register_parameter(name, value)
        self.W_P_0 = tf_kernel(num_units, num_proj, dtype, device) if num_proj else None

    def forward(self, inputs, state):
        c_prev, m_prev = state
        j, f, o = (torch.cat([inputs, m_prev], 1) @ self.W_0 + self.B).chunk(3, 1)
        if self.use_peepholes:
            f = f + self.W_F_diag * c_prev
        f_act = torch.sigmoid(f + self.forget_bias)
        c = f_act * c_prev + (1 - f_act) * self.activation(j)
        if self.use_peepholes:
            o = o + self.W_O_diag * c
        m = torch.sigmoid(o) * self.activation(c)
        if self.num_proj:
            m = _clip(m @ self.W_P_0, self.proj_clip)
        return m, LSTMStateTuple(c, m)


__all__ = ["BasicLSTMCell", "LSTMCell", "LSTMBlockCell", "LSTMBlockFusedCell", "LayerNormBasicLSTMCell",
           "CoupledInputForgetGateLSTMCell"]
