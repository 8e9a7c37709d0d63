"""TF1 contrib's rarer LSTM variants: NASCell, PhasedLSTMCell, GLSTMCell (graph-composed)."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import LSTMStateCell, LSTMStateTuple, tf_bias, tf_kernel


class NASCell(LSTMStateCell):
    """tf.contrib.rnn.NASCell (Zoph & Le 2017): 8 branches of x . W and m . R combined in a fixed tree; state
    LSTMStateTuple(c, m). TF variables: kernel [input_size, 8H], recurrent_kernel [num_proj or H, 8H], bias (with
    use_biases), projection_weights [H, num_proj]."""

    BRANCHES = 8

    def __init__(self, input_size, num_units, num_proj=None, use_biases=False, dtype=None, device=None):
        super().__init__()
        self.input_size, self.num_units, self.num_proj = input_size, num_units, num_proj
        self.kernel = tf_kernel(input_size, self.BRANCHES * num_units, dtype, device)
        self.recurrent_kernel = tf_kernel(num_proj or num_units, self.BRANCHES * num_units, dtype, device)
        self.bias = tf_bias(self.BRANCHES * num_units, dtype=dtype, device=device) if use_biases else None
        self.projection_weights = tf_kernel(num_units, num_proj, dtype, device) if num_proj else None

    def forward(self, inputs, state):
        c_prev, m_prev = state
        m_matrix = m_prev @ self.recurrent_kernel
        if self.bias is not None:
            m_matrix = m_matrix + self.bias
        x = (inputs @ self.kernel).chunk(self.BRANCHES, 1)
        m = m_matrix.chunk(self.BRANCHES, 1)
        layer1 = [torch.sigmoid(x[0] + m[0]), F.relu(x[1] + m[1]), torch.sigmoid(x[2] + m[2]), F.relu(x[3] * m[3]),
                  torch.tanh(x[4] + m[4]), torch.sigmoid(x[5] + m[5]), torch.tanh(x[6] + m[6]),
                  torch.sigmoid(x[7] + m[7])]
        l2_0 = torch.tanh(layer1[0] * layer1[1])
        l2_1 = torch.tanh(layer1[2] + layer1[3])
        l2_2 = torch.tanh(layer1[4] * layer1[5])
        l2_3 = torch.sigmoid(layer1[6] + layer1[7])
        l2_0 = torch.tanh(l2_0 + c_prev)  # the cell is injected here
        new_c = l2_0 * l2_1
        new_m = torch.tanh(new_c * torch.tanh(l2_2 + l2_3))
        if self.num_proj:
            new_m = new_m @ self.projection_weights
        return new_m, LSTMStateTuple(new_c, new_m)


class PhasedLSTMCell(LSTMStateCell):
    """tf.contrib.rnn.PhasedLSTMCell (Neil et al. 2016). inputs = (time [B, 1], x [B, input_size]); a time gate k,
    open for a fraction ratio_on of each unit's period (shifted by its phase), leaks with `leak` when closed:
    c' = k * c_new + (1 - k) * c, h' = k * h_new + (1 - k) * h.
    TF variables: mask_gates/{kernel,bias}, new_input/{kernel,bias}, output_gate/{kernel,bias}, period, phase,
    ratio_on."""

    def __init__(self, input_size, num_units, use_peepholes=False, leak=0.001, ratio_on=0.1, trainable_ratio_on=True,
                 period_init_min=1.0, period_init_max=1000.0, dtype=None, device=None):
        super().__init__()
        self.input_size, self.num_units = input_size, num_units
        self.use_peepholes, self.leak = use_peepholes, leak
        gate_inputs = input_size + num_units + (num_units if use_peepholes else 0)
        self.mask_gates_kernel = tf_kernel(gate_inputs, 2 * num_units, dtype, device)
        self.mask_gates_bias = tf_bias(2 * num_units, dtype=dtype, device=device)
        self.new_input_kernel = tf_kernel(input_size + num_units, num_units, dtype, device)
        self.new_input_bias = tf_bias(num_units, dtype=dtype, device=device)
        self.output_gate_kernel = tf_kernel(gate_inputs, num_units, dtype, device)
        self.output_gate_bias = tf_bias(num_units, dtype=dtype, device=device)
        log_period = torch.empty(num_units, dtype=dtype, device=device).uniform_(math.log(period_init_min),
                                                                                  math.log(period_init_max))
        self.period = nn.Parameter(log_period.exp())
        self.phase = nn.Parameter(torch.rand(num_units, dtype=dtype, device=device) * self.period.detach())
        self.ratio_on = nn.Parameter(torch.full((num_units,), float(ratio_on), dtype=dtype, device=device),
                                     requires_grad=trainable_ratio_on)

    def tf_variables(self):
        renamed = []
        for name, parameter in self.named_parameters():
            for scope in ("mask_gates", "new_input", "output_gate"):
                if name.startswith(scope + "_"):
                    name = f"{scope}/{name[len(scope) + 1:]}"
            renamed.append((name, parameter))
        return renamed

    def forward(self, inputs, state):
        time, x = inputs
        c_prev, h_prev = state
        mask_in = [x, h_prev] + ([c_prev] if self.use_peepholes else [])
        input_gate, forget_gate = torch.sigmoid(
            torch.cat(mask_in, 1) @ self.mask_gates_kernel + self.mask_gates_bias).chunk(2, 1)
        new_input = torch.tanh(torch.cat([x, h_prev], 1) @ self.new_input_kernel + self.new_input_bias)
        new_c = c_prev * forget_gate + input_gate * new_input
        out_in = [x, h_prev] + ([new_c] if self.use_peepholes else [])
        output_gate = torch.sigmoid(torch.cat(out_in, 1) @ self.output_gate_kernel + self.output_gate_bias)
        new_h = torch.tanh(new_c) * output_gate
        shifted = time - self.phase
        cycle_ratio = (shifted - self.period * torch.floor(shifted / self.period)) / self.period
        k_up = 2 * cycle_ratio / self.ratio_on
        k = torch.where(cycle_ratio < self.ratio_on, 2 - k_up, self.leak * cycle_ratio)
        k = torch.where(cycle_ratio < 0.5 * self.ratio_on, k_up, k)
        new_c = k * new_c + (1 - k) * c_prev
        new_h = k * new_h + (1 - k) * h_prev
        return new_h, LSTMStateTuple(new_c, new_h)


class GLSTMCell(LSTMStateCell):
    """tf.contrib.rnn.GLSTMCell (Kuchaiev & Ginsburg 2017, group LSTM): inputs and m_prev are split into
    number_of_groups feature groups; each group has its own kernel (no bias: TF's group linears have none) producing
    its share of i, j, f, o, then one bias per gate. TF variables: group{k}/kernel [(input_size + out) / groups,
    4H / groups], bias_i, bias_j, bias_f, bias_o [H], projection/kernel [H, num_proj]."""

    def __init__(self, input_size, num_units, num_proj=None, number_of_groups=1, forget_bias=1.0, activation=None,
                 dtype=None, device=None):
        super().__init__()
        out_size = num_proj or num_units
        for name, size in (("input_size", input_size), ("num_units", num_units), ("output size", out_size)):
            if size % number_of_groups:
                raise ValueError(f"GLSTMCell: {name} {size} must be divisible by number_of_groups "
                                 f"{number_of_groups}")
        self.input_size, self.num_units, self.num_proj = input_size, num_units, num_proj
        self.groups, self.forget_bias = number_of_groups, float(forget_bias)
        self.activation = activation or torch.tanh
        group_in = (input_size + out_size) // number_of_groups
        self.group_kernels = nn.ParameterList(
            [tf_kernel(group_in, 4 * num_units // number_of_groups, dtype, device) for _ in range(number_of_groups)])
        for gate in "ijfo":
            setattr(self, f"bias_{gate}", tf_bias(num_units, dtype=dtype, device=device))
        self.projection_kernel = tf_kernel(num_units, num_proj, dtype, device) if num_proj else None

    def tf_variables(self):
        names = []
        for name, parameter in self.named_parameters():
            if name.startswith("group_kernels."):
                name = f"group{name.split('.')[1]}/kernel"
            elif name == "projection_kernel":
                name = "projection/kernel"
            names.append((name, parameter))
        return names

    def forward(self, inputs, state):
        c_prev, m_prev = state
        xs, ms = inputs.chunk(self.groups, 1), m_prev.chunk(self.groups, 1)
        parts = [(torch.cat([x, m], 1) @ kernel).chunk(4, 1) for x, m, kernel in zip(xs, ms, self.group_kernels)]
        i, j, f, o = (torch.cat([p[k] for p in parts], 1) + getattr(self, f"bias_{gate}")
                      for k, gate in enumerate("ijfo"))
        c = torch.sigmoid(f + self.forget_bias) * c_prev + torch.sigmoid(i) * torch.tanh(j)
        m = torch.sigmoid(o) * self.activation(c)
        if self.num_proj:
            m = m @ self.projection_kernel
        return m, LSTMStateTuple(c, m)


__all__ = ["NASCell", "PhasedLSTMCell", "GLSTMCell"]
