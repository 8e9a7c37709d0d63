"""TF1's GRU-family cells. GRUCell and GRUBlockCell (V2) run on fastlstm's fused GRU op in TF's convention
(linear_before_reset=False) when their activation is tanh: one step, or a whole sequence in one op for the drivers
(``fused_sequence``); UGRNNCell is graph-composed."""

import torch

from .. import functional
from .base import VectorStateCell, tf_bias, tf_kernel


class GRUCell(VectorStateCell):
    """tf.nn.rnn_cell.GRUCell: r, u = sigmoid([x, h] . W_gates + b_gates); c = act([x, r * h] . W_cand + b_cand);
    h' = u * h + (1 - u) * c. The reset gate multiplies h before the matmul (TF); cuDNN and torch.nn.GRU instead
    multiply (W_hn h + b_hn). TF variables: gates/kernel [input_size + num_units, 2 * num_units], gates/bias (ones),
    candidate/kernel [input_size + num_units, num_units], candidate/bias."""

    def __init__(self, input_size, num_units, activation=None, dtype=None, device=None):
        super().__init__()
        self.input_size, self.num_units = input_size, num_units
        self.activation = activation or torch.tanh
        self.gates_kernel = tf_kernel(input_size + num_units, 2 * num_units, dtype, device)
        self.gates_bias = tf_bias(2 * num_units, 1.0, dtype, device)
        self.candidate_kernel = tf_kernel(input_size + num_units, num_units, dtype, device)
        self.candidate_bias = tf_bias(num_units, dtype=dtype, device=device)

    def tf_variables(self):
        return [(name.replace("_", "/", 1), parameter) for name, parameter in self.named_parameters()]

    def _tf_weights(self):
        """(gates kernel, gates bias, candidate kernel, candidate bias), TF's layout."""
        return self.gates_kernel, self.gates_bias, self.candidate_kernel, self.candidate_bias

    def fuses(self):
        return self.activation is torch.tanh

    def fused_sequence(self, inputs, state, lengths):
        """inputs [T, B, input_size] time-major, state h [B, H], lengths [B] or None -> (outputs, final h), in one
        fused op: TF's kernels split into the op's w_ih [3H, I] and w_hh [3H, H] (blocks r, u, c), one bias."""
        gates_kernel, gates_bias, candidate_kernel, candidate_bias = self._tf_weights()
        rows = self.input_size
        w_ih = torch.cat([gates_kernel[:rows], candidate_kernel[:rows]], 1).t()
        w_hh = torch.cat([gates_kernel[rows:], candidate_kernel[rows:]], 1).t()
        bias = torch.cat([gates_bias, candidate_bias])
        return functional.gru(inputs, state, w_ih, w_hh, bias, None, sequence_lengths=lengths,
                              linear_before_reset=False)

    def forward(self, inputs, state):
        if self.fuses():
            outputs, new_h = self.fused_sequence(inputs.unsqueeze(0), state, None)
            return new_h, new_h
        gates_kernel, gates_bias, candidate_kernel, candidate_bias = self._tf_weights()
        r, u = torch.sigmoid(torch.cat([inputs, state], 1) @ gates_kernel + gates_bias).chunk(2, 1)
        c = self.activation(torch.cat([inputs, r * state], 1) @ candidate_kernel + candidate_bias)
        new_h = u * state + (1 - u) * c
        return new_h, new_h


class GRUBlockCellV2(GRUCell):
    """tf.contrib.rnn.GRUBlockCellV2: TF's fused GRU (contrib gru_ops), GRUCell's math and variable names
    (gates/kernel, gates/bias, candidate/kernel, candidate/bias); always tanh."""

    def __init__(self, input_size, num_units, dtype=None, device=None):
        super().__init__(input_size, num_units, dtype=dtype, device=device)

    def forward(self, inputs, state):
        outputs, new_h = self.fused_sequence(inputs.unsqueeze(0), state, None)
        return new_h, new_h


class GRUBlockCell(GRUBlockCellV2):
    """tf.contrib.rnn.GRUBlockCell: as GRUBlockCellV2, with the variables TF's first GRUBlockCell names w_ru
    [input_size + num_units, 2 * num_units], b_ru (ones), w_c [input_size + num_units, num_units], b_c (the raw op
    GRUBlockCell's arguments)."""

    def tf_variables(self):
        names = {"gates_kernel": "w_ru", "gates_bias": "b_ru", "candidate_kernel": "w_c", "candidate_bias": "b_c"}
        return [(names[name], parameter) for name, parameter in self.named_parameters()]


class UGRNNCell(VectorStateCell):
    """tf.contrib.rnn.UGRNNCell (Collins et al., update-gate RNN): g, c = split([x, h] . W + b);
    g = sigmoid(g + forget_bias), c = act(c), h' = g * h + (1 - g) * c.
    TF variables: kernel [input_size + num_units, 2 * num_units], bias."""

    def __init__(self, input_size, num_units, forget_bias=1.0, activation=None, dtype=None, device=None):
        super().__init__()
        self.input_size, self.num_units = input_size, num_units
        self.forget_bias = float(forget_bias)
        self.activation = activation or torch.tanh
        self.kernel = tf_kernel(input_size + num_units, 2 * num_units, dtype, device)
        self.bias = tf_bias(2 * num_units, dtype=dtype, device=device)

    def forward(self, inputs, state):
        g, c = (torch.cat([inputs, state], 1) @ self.kernel + self.bias).chunk(2, 1)
        g = torch.sigmoid(g + self.forget_bias)
        new_h = g * state + (1 - g) * self.activation(c)
        return new_h, new_h


__all__ = ["GRUCell", "GRUBlockCell", "GRUBlockCellV2", "UGRNNCell"]
