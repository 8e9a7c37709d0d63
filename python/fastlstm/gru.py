"""Drop-in replacements for torch.nn.GRU and torch.nn.GRUCell, as nn.py's for the LSTM: the same constructor
arguments, parameter names, shapes, registration order and initialisation, input forms and errors; ``backend``
("auto" | "fused" | "cudnn" | "reference", see functional.choose_gru_backend) and ``last_backend``."""

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from . import functional
from .cell_module import TorchCellBase
from .sequence import (StackParameters, TorchRNNChecks, check_not_empty, check_stack_args, init_uniform, record_backend,
                       register_stack_parameters, run_stack, sequence_form, stack_extra_repr)


class TorchGRUChecks(TorchRNNChecks):
    """torch.nn.GRU's public checking and permuting methods (one state tensor instead of the LSTM's two)."""

    def check_forward_args(self, input, hidden, batch_sizes):
        self.check_input(input, batch_sizes)
        self.check_hidden_size(hidden, self.get_expected_hidden_size(input, batch_sizes))

    def permute_hidden(self, hx, permutation):
        if permutation is None:
            return hx
        return hx.index_select(1, permutation)

    def _initial_state(self, form, hx):
        """h0 [layers * D, B, H] in the kernels' row order from the caller's hx (or zeros), checked as torch.nn.GRU
        checks it."""
        num_directions = 2 if self.bidirectional else 1
        if hx is None:
            batch = form.packed.batch_sizes[0] if form.packed is not None else form.batch  # (see LSTM's)
            hx = torch.zeros((self.num_layers * num_directions, batch, self.hidden_size), dtype=form.data.dtype,
                             device=form.data.device)
            if form.packed is None:
                self.check_forward_args(form.batched_input, hx, None)
            return hx
        if form.packed is not None:
            hx = self.permute_hidden(hx, form.packed.sorted_indices)
            self.check_hidden_size(hx, self.get_expected_hidden_size(form.packed.data, form.packed.batch_sizes))
            return hx
        if form.is_batched and hx.dim() != 3:
            raise RuntimeError(f"For batched 3-D input, hx should also be 3-D but got {hx.dim()}-D tensor")
        if not form.is_batched:
            if hx.dim() != 2:
                raise RuntimeError(f"For unbatched 2-D input, hx should also be 2-D but got {hx.dim()}-D tensor")
            hx = hx.unsqueeze(1)
        self.check_forward_args(form.batched_input, hx, None)
        return hx

    def _final_state(self, form, h_n):
        if form.packed is not None:
            return self.permute_hidden(h_n, form.packed.unsorted_indices)
        return h_n if form.is_batched else h_n.squeeze(1)


# torch.nn.GRU refuses a proj_size argument whatever its value (even 0): this default tells "not given" apart.
_NOT_GIVEN = object()


class GRU(TorchGRUChecks, StackParameters, nn.Module):
    """torch.nn.GRU on fastlstm's kernels (the fused CPU kernels; cuDNN on CUDA tensors)."""

    WEIGHT_KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None, *, backend="auto", proj_size=_NOT_GIVEN):
        if proj_size is not _NOT_GIVEN:  # torch.nn.GRU's check, first, with its message
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__()
        factory_kwargs = {"device": device, "dtype": dtype}
        check_stack_args(input_size, hidden_size, num_layers, bias, batch_first, dropout)
        if backend not in functional.BACKENDS:
            raise ValueError(f"backend must be one of {functional.BACKENDS}, got {backend!r}")
        self.mode = "GRU"
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = 0
        self.backend = backend
        self.last_backend = None
        num_directions = 2 if bidirectional else 1
        gate_size = 3 * hidden_size

        def layer_shapes(layer):
            layer_input_size = input_size if layer == 0 else hidden_size * num_directions
            shapes = [("weight_ih", (gate_size, layer_input_size)), ("weight_hh", (gate_size, hidden_size))]
            if bias:
                shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
            return shapes

        register_stack_parameters(self, num_layers, bidirectional, layer_shapes, factory_kwargs)
        self.reset_parameters()

    def reset_parameters(self):
        init_uniform(self.parameters(), self.hidden_size)

    def to_torch(self):
        """A torch.nn.GRU with this module's configuration and a copy of its weights (see LSTM.to_torch)."""
        first = self.weight_ih_l0
        module = nn.GRU(self.input_size, self.hidden_size, num_layers=self.num_layers, bias=self.bias,
                        batch_first=self.batch_first, dropout=self.dropout, bidirectional=self.bidirectional,
                        device=first.device, dtype=first.dtype)
        module.load_state_dict(self.state_dict())
        return module.train(self.training)

    def flatten_parameters(self):
        """As torch.nn.GRU: nothing fastlstm's kernels need; cuDNN reads the parameters through ATen's binding."""

    def extra_repr(self):
        return stack_extra_repr(self, (("backend", "auto"),))

    def forward(self, input, hx=None):
        """input: (L, H_in), (L, N, H_in), (N, L, H_in) if batch_first, or a PackedSequence; hx (D*num_layers, [N,]
        H), zeros if None. Returns (output like the input form with D*H features, h_n)."""
        form = sequence_form(input, self.batch_first, "GRU", self.check_input)
        h0 = self._initial_state(form, hx)
        backend = functional.choose_gru_backend(self.backend, form.data, steps=form.steps)
        # Under torch.onnx.export the stack goes through ATen's RNN binding (aten::gru), which both exporters
        # translate to ONNX's GRU op, as for torch.nn.GRU.
        aten = backend == "cudnn" or functional.exporting_onnx()
        if aten:
            if backend != "cudnn":
                functional.forget_cached_rnn_kernels()
            args = (self._flat_weights, self.bias, self.num_layers, self.dropout, self.training, self.bidirectional)
            if form.packed is not None:
                packed = form.packed
                data, h_n = torch._VF.gru(packed.data, packed.batch_sizes, h0, *args)
                output = PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
            else:
                output, h_n = torch._VF.gru(form.batched_input, h0, *args, self.batch_first)
                output = form.batched_output(output)
        else:
            form.make_time_major()
            check_not_empty(form)  # (only here: see LSTM.forward)

            def run_direction(layer, direction, x, states, lengths):
                out, h = functional.gru_on(backend, x, states[0], *self._layer_weights(layer, direction),
                                           sequence_lengths=lengths)
                return out, (h,)

            output, (h_n,) = run_stack(form.x, (h0,), form.lengths, self.num_layers, self.bidirectional,
                                       self.dropout, self.training, run_direction)
            output = form.output(output)
        record_backend(self, backend)
        return output, self._final_state(form, h_n)


class GRUCell(TorchCellBase):
    """torch.nn.GRUCell on fastlstm's GRU op (one step)."""

    GATES, STATES, TORCH_CLASS = 3, 1, nn.GRUCell

    def forward(self, input, hx=None):
        """input (N, H_in) or (H_in); hx (N, H) or (H), zeros if None. Returns h' (N, H) or (H)."""
        x, (h,), is_batched = self.batched_inputs(input, hx)
        backend = "reference" if functional.exporting_onnx() else functional.choose_gru_backend(
            self.backend, x, single_step=True)
        weights = self._parameters
        h_new = functional.gru_cell_on(backend, x, h, weights["weight_ih"], weights["weight_hh"], weights["bias_ih"],
                                       weights["bias_hh"])
        record_backend(self, backend)
        return h_new if is_batched else h_new.squeeze(0)
