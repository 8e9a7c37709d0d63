"""TF1's GRU-family cells (graph-composed: fastlstm has no fused GRU kernel yet)."""

import torch

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

    def forward(self, inputs, state):
        r, u = torch.sigmoid(torch.cat([inputs, state], 1) @ self.gates_kernel + self.gates_bias).chunk(2, 1)
        c = self.activation(torch.cat([inputs, r * state], 1) @ self.candidate_kernel + self.candidate_bias)
        new_h = u * state + (1 - u) * c
        return new_h, new_h


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


__all__ = ["GRUCell", "UGRNNCell"]
