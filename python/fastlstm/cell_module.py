"""What the drop-in single-step modules (nn.LSTMCell, gru.GRUCell) share: torch.nn.RNNCellBase's constructor,
parameters, initialisation, repr and input checks (its messages), for a cell of `gates` gate blocks and `states`
state tensors."""

import torch
from torch import nn

from . import functional
from .sequence import init_uniform


class TorchCellBase(nn.Module):
    """Subclasses set GATES, STATES (1: hx is a tensor; 2: a tuple) and TORCH_CLASS (the torch.nn module they
    replace), and implement forward with batched_inputs()."""

    GATES = None
    STATES = None
    TORCH_CLASS = None

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None, *, backend="auto"):
        super().__init__()
        factory_kwargs = {"device": device, "dtype": dtype}
        if backend not in functional.BACKENDS:
            raise ValueError(f"backend must be one of {functional.BACKENDS}, got {backend!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.backend = backend
        self.last_backend = None
        gate_size = self.GATES * hidden_size
        self.weight_ih = nn.Parameter(torch.empty((gate_size, input_size), **factory_kwargs))
        self.weight_hh = nn.Parameter(torch.empty((gate_size, hidden_size), **factory_kwargs))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(gate_size, **factory_kwargs))
            self.bias_hh = nn.Parameter(torch.empty(gate_size, **factory_kwargs))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        init_uniform(self.parameters(), self.hidden_size)

    def to_torch(self):
        """The torch.nn module this one replaces, with its configuration and a copy of its weights (for what matches
        modules by torch's classes)."""
        first = self.weight_ih
        module = self.TORCH_CLASS(self.input_size, self.hidden_size, bias=self.bias, device=first.device,
                                  dtype=first.dtype)
        module.load_state_dict(self.state_dict())
        return module.train(self.training)

    def extra_repr(self):
        s = "{input_size}, {hidden_size}"
        if self.bias is not True:
            s += ", bias={bias}"
        return s.format(**self.__dict__)

    def batched_inputs(self, input, hx):
        """input (N, H_in) or (H_in); hx: STATES tensors (N, H) or (H), or None (zeros) -> (x [N, H_in], the states
        [N, H] as a list, is_batched), checked as torch.nn's cells check them, with their messages."""
        name = type(self).__name__
        if input.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        states = None if hx is None else (hx,) if self.STATES == 1 else tuple(hx)
        if states is not None:
            for index, value in enumerate(states):
                if value.dim() not in (1, 2):
                    label = "hidden" if self.STATES == 1 else f"hx[{index}]"
                    raise ValueError(f"{name}: Expected {label} to be 1D or 2D, got {value.dim()}D instead")
        is_batched = input.dim() == 2
        x = input if is_batched else input.unsqueeze(0)
        if x.size(1) != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {x.size(1)} expected {self.input_size}")
        batch = x.shape[0]
        if states is None:
            zeros = x.new_zeros((batch, self.hidden_size))
            return x, [zeros] * self.STATES, is_batched
        states = [s if is_batched else s.unsqueeze(0) for s in states]
        for label, state in enumerate(states):  # torch's check_rnn_cell_forward_hidden, its messages
            shape = state.shape
            if shape[0] != batch:
                raise RuntimeError(f"Input batch size {batch} doesn't match hidden{label} batch size {shape[0]}")
            if shape[1] != self.hidden_size:
                raise RuntimeError(f"hidden{label} has inconsistent hidden_size: got {shape[1]}, "
                                   f"expected {self.hidden_size}")
        return x, states, is_batched
