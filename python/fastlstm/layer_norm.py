"""fastlstm.LayerNormLSTM: the layer-normalised LSTM of Ba et al. (2016) as haste's LayerNormLSTM computes it (see
reference.layer_norm_lstm_cell), with torch.nn.LSTM's constructor, input forms and state_dict conventions, and a
loader for haste's weights.

Parameters per layer and direction (suffix ``_l{k}`` / ``_l{k}_reverse`` as torch.nn.LSTM): torch.nn.LSTM's
``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` (gate order i, f, g, o; registered first and initialised as
torch.nn.LSTM, so the same seed gives the same weights), then the layer norms' ``ln_ih_weight`` [4H],
``ln_hh_weight`` [4H] (gains of the norms of W_ih x and W_hh h; their shifts would only repeat the biases),
``ln_cell_weight`` and ``ln_cell_bias`` [H] (of the norm of c before its tanh): gains initialised to 1, shifts to 0.

backend: "auto" (the fused kernels, torch.ops.fastlstm.layer_norm_lstm, on CPU float32/float64 tensors; the
graph-composed reference elsewhere), "fused" (also on CUDA tensors where the build has the CUDA kernels: built and
linked, not yet run on a GPU) or "reference".
"""

import torch
from torch import nn

from . import functional
from .sequence import (StackParameters, TorchRNNChecks, check_not_empty, check_stack_args, init_uniform, record_backend,
                       register_stack_parameters, run_stack, sequence_form, stack_extra_repr)

BACKENDS = functional.LAYER_NORM_BACKENDS
_LN_SHAPES = (("ln_ih_weight", 4), ("ln_hh_weight", 4), ("ln_cell_weight", 1), ("ln_cell_bias", 1))


class LayerNormLSTM(TorchRNNChecks, StackParameters, nn.Module):
    """A layer-normalised LSTM with torch.nn.LSTM's constructor (no proj_size) and forward: input (L, H_in),
    (L, N, H_in), (N, L, H_in) if batch_first, or a PackedSequence; hx = (h_0, c_0) each (D*num_layers, [N,] H).
    eps: the layer norms' epsilon (torch's and haste's default)."""

    WEIGHT_KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") + tuple(kind for kind, _ in _LN_SHAPES)

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None, *, eps=1e-5, backend="auto"):
        super().__init__()
        factory_kwargs = {"device": device, "dtype": dtype}
        check_stack_args(input_size, hidden_size, num_layers, bias, batch_first, dropout)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.eps = float(eps)
        self.backend = backend
        self.last_backend = None

        num_directions = 2 if bidirectional else 1

        def layer_shapes(layer):
            layer_input_size = input_size if layer == 0 else hidden_size * num_directions
            shapes = [("weight_ih", (4 * hidden_size, layer_input_size)),
                      ("weight_hh", (4 * hidden_size, hidden_size))]
            if bias:
                shapes += [("bias_ih", (4 * hidden_size,)), ("bias_hh", (4 * hidden_size,))]
            return shapes + [(kind, (blocks * hidden_size,)) for kind, blocks in _LN_SHAPES]

        register_stack_parameters(self, num_layers, bidirectional, layer_shapes, factory_kwargs)
        self.reset_parameters()

    def reset_parameters(self):
        lstm_weights = [p for name, p in self.named_parameters() if not name.startswith("ln_")]
        init_uniform(lstm_weights, self.hidden_size)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.startswith("ln_"):
                    p.fill_(0.0 if name.startswith("ln_cell_bias") else 1.0)

    def extra_repr(self):
        return stack_extra_repr(self, (("eps", 1e-5),))

    def forward(self, input, hx=None):
        form = sequence_form(input, self.batch_first, "LayerNormLSTM", self.check_input)
        h0, c0 = self._initial_state(form, hx)
        form.make_time_major()
        check_not_empty(form)
        chosen = functional.choose_layer_norm_backend(self.backend, form.x)

        def run_direction(layer, direction, x, states, lengths):
            w_ih, w_hh, b_ih, b_hh, *norms = self._layer_weights(layer, direction)
            bias = b_ih + b_hh if self.bias else None
            out, h, c = functional.layer_norm_lstm_on(chosen, x, *states, w_ih, w_hh, bias, *norms,
                                                      sequence_lengths=lengths, eps=self.eps)
            return out, (h, c)

        output, (h_n, c_n) = run_stack(form.x, (h0, c0), form.lengths, self.num_layers, self.bidirectional,
                                       self.dropout, self.training, run_direction)
        record_backend(self, chosen)
        return form.output(output), self._final_state(form, h_n, c_n)


def _haste_to_torch_gates(t, hidden_size, dim=0):
    """haste's gate blocks (i, g, f, o) along dim -> torch's (i, f, g, o)."""
    i, g, f, o = t.split(hidden_size, dim=dim)
    return torch.cat([i, f, g, o], dim=dim)


def load_haste_weights(module, state_dict, layer=0, direction=0):
    """Loads the weights of a haste.LayerNormLSTM (its state_dict: kernel [I, 4H], recurrent_kernel [H, 4H], bias
    [4H], gamma [2, 4H], gamma_h [H], beta_h [H]; haste's gate order i, g, f, o) into one layer and direction of a
    LayerNormLSTM. haste's single bias goes to bias_ih (bias_hh is zeroed). haste's forget_bias is part of its
    bias already (it initialises the f block to it)."""
    hidden = module.hidden_size
    suffix = "_reverse" if direction == 1 else ""
    kernel, recurrent = state_dict["kernel"], state_dict["recurrent_kernel"]
    expected = {"kernel": (module._layer_weights(layer, direction)[0].shape[1], 4 * hidden),
                "recurrent_kernel": (hidden, 4 * hidden), "bias": (4 * hidden,), "gamma": (2, 4 * hidden),
                "gamma_h": (hidden,), "beta_h": (hidden,)}
    for name, shape in expected.items():
        if name not in state_dict:
            raise KeyError(f"load_haste_weights: haste's state_dict has no {name!r} (keys: {sorted(state_dict)})")
        if tuple(state_dict[name].shape) != shape:
            raise ValueError(f"load_haste_weights: expected {name} of shape {shape} for this module, "
                             f"got {tuple(state_dict[name].shape)}")
    if not module.bias:
        raise ValueError("load_haste_weights: haste's LayerNormLSTM has a bias; build the module with bias=True")
    values = {
        "weight_ih": _haste_to_torch_gates(kernel.t(), hidden),
        "weight_hh": _haste_to_torch_gates(recurrent.t(), hidden),
        "bias_ih": _haste_to_torch_gates(state_dict["bias"], hidden),
        "bias_hh": torch.zeros_like(state_dict["bias"]),
        "ln_ih_weight": _haste_to_torch_gates(state_dict["gamma"][0], hidden),
        "ln_hh_weight": _haste_to_torch_gates(state_dict["gamma"][1], hidden),
        "ln_cell_weight": state_dict["gamma_h"],
        "ln_cell_bias": state_dict["beta_h"],
    }
    with torch.no_grad():
        for kind, value in values.items():
            getattr(module, f"{kind}_l{layer}{suffix}").copy_(value)
