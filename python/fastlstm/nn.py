"""Drop-in replacements for torch.nn.LSTM and torch.nn.LSTMCell.

Same constructor arguments, parameter names, shapes, registration order and initialisation (so the same seed gives the
same weights, and a state_dict moves both ways unchanged), same input forms (unbatched, batch_first, PackedSequence)
and the same errors. Extra keyword: ``backend`` ("auto" | "fused" | "cudnn" | "reference", see functional.py);
after each call ``last_backend`` says which one ran.

They are not subclasses of the torch modules on purpose: torch.compile refuses any instance of torch.nn.LSTM.
"""

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from . import functional
from .cell_module import TorchCellBase
from .sequence import (StackParameters, TorchRNNChecks, check_not_empty, check_stack_args, init_uniform, record_backend,
                       register_stack_parameters, run_stack, sequence_form, stack_extra_repr)


class LSTM(TorchRNNChecks, StackParameters, nn.Module):
    """torch.nn.LSTM on fastlstm's kernels. Shapes and semantics are torch.nn.LSTM's (check_forward_args,
    permute_hidden and the other public methods included)."""

    WEIGHT_KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None, *, backend="auto"):
        super().__init__()
        factory_kwargs = {"device": device, "dtype": dtype}
        check_stack_args(input_size, hidden_size, num_layers, bias, batch_first, dropout)
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if backend not in functional.BACKENDS:
            raise ValueError(f"backend must be one of {functional.BACKENDS}, got {backend!r}")

        self.mode = "LSTM"
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self.backend = backend
        self.last_backend = None

        num_directions = 2 if bidirectional else 1
        real_hidden_size = proj_size if proj_size > 0 else hidden_size
        gate_size = 4 * hidden_size

        def layer_shapes(layer):
            layer_input_size = input_size if layer == 0 else real_hidden_size * num_directions
            shapes = [("weight_ih", (gate_size, layer_input_size)), ("weight_hh", (gate_size, real_hidden_size))]
            if bias:
                shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
            if proj_size > 0:
                shapes += [("weight_hr", (proj_size, hidden_size))]
            return shapes

        register_stack_parameters(self, num_layers, bidirectional, layer_shapes, factory_kwargs)
        self.reset_parameters()

    def reset_parameters(self):
        init_uniform(self.parameters(), self.hidden_size)

    def to_torch(self):
        """A torch.nn.LSTM with this module's configuration and a copy of its weights (same device, dtype and train
        mode), for what matches modules by torch's classes. (int8: fastlstm.quantize_dynamic converts fastlstm's
        modules itself, to fastlstm.quantized's.)"""
        first = self.weight_ih_l0
        module = nn.LSTM(self.input_size, self.hidden_size, num_layers=self.num_layers, bias=self.bias,
                         batch_first=self.batch_first, dropout=self.dropout, bidirectional=self.bidirectional,
                         proj_size=self.proj_size, device=first.device, dtype=first.dtype)
        module.load_state_dict(self.state_dict())
        return module.train(self.training)

    def flatten_parameters(self):
        """As torch.nn.LSTM: on CUDA with cuDNN, lays the parameters out in one buffer that cuDNN reads without a
        copy per call. fastlstm's own kernels read the parameters wherever they are."""
        weights = self._flat_weights
        first = weights[0]
        if not all(isinstance(w, torch.Tensor) and w.dtype == first.dtype and w.is_cuda
                   and torch.backends.cudnn.is_acceptable(w) for w in weights):
            return
        if len({w.data_ptr() for w in weights}) != len(weights):
            return
        from torch.backends.cudnn import rnn as cudnn_rnn

        with torch.cuda.device_of(first), torch.no_grad():
            if torch._use_cudnn_rnn_flatten_weight():
                num_weights = (4 if self.bias else 2) + (1 if self.proj_size > 0 else 0)
                torch._cudnn_rnn_flatten_weight(weights, num_weights, self.input_size,
                                                cudnn_rnn.get_cudnn_mode(self.mode), self.hidden_size,
                                                self.proj_size, self.num_layers, self.batch_first,
                                                bool(self.bidirectional))

    def _apply(self, fn, recurse=True):
        result = super()._apply(fn, recurse)
        self.flatten_parameters()  # as torch.nn.LSTM after .cuda() / .to()
        return result

    def extra_repr(self):
        return stack_extra_repr(self, (("backend", "auto"),))

    def forward(self, input, hx=None):
        """input: (L, H_in), (L, N, H_in), (N, L, H_in) if batch_first, or a PackedSequence.
        hx: (h_0 (D*num_layers, [N,] H_out), c_0 (D*num_layers, [N,] H_cell)); zeros if None.
        Returns output like the input form with D*H_out features, and (h_n, c_n)."""
        form = sequence_form(input, self.batch_first, "LSTM", self.check_input)
        h0, c0 = self._initial_state(form, hx)
        backend = functional.choose_backend(self.backend, form.data, getattr(self, "weight_hr_l0", None),
                                             steps=form.steps)
        # Under torch.onnx.export the stack goes through ATen's RNN binding (aten::lstm), which both exporters
        # translate to ONNX's LSTM op, as they do for torch.nn.LSTM: no translation of fastlstm's ops needed.
        aten = backend == "cudnn" or functional.exporting_onnx()
        if not aten:
            # Only here: ATen's binding checks the length itself, and under the dynamo exporter a check in Python
            # would fix the length of the exported graph (its guard on the length outlives the export's RNN rewrite).
            form.make_time_major()
            check_not_empty(form)

        if aten:
            # The whole stack in one call of ATen's RNN binding, as torch.nn.LSTM does (cuDNN on CUDA).
            if backend != "cudnn":
                functional.forget_cached_rnn_kernels()
            args = (self._flat_weights, self.bias, self.num_layers, self.dropout, self.training, self.bidirectional)
            if form.packed is not None:
                data, h_n, c_n = torch._VF.lstm(form.packed.data, form.packed.batch_sizes, (h0, c0), *args)
                packed = form.packed
                output = PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
            else:
                output, h_n, c_n = torch._VF.lstm(form.batched_input, (h0, c0), *args, self.batch_first)
                output = form.batched_output(output)
        else:
            def run_direction(layer, direction, x, states, lengths):
                w_ih, w_hh, b_ih, b_hh, w_hr = self._layer_weights(layer, direction)
                out, h, c = functional.lstm_on(backend, x, *states, w_ih, w_hh, b_ih, b_hh, w_hr=w_hr,
                                               sequence_lengths=lengths)
                return out, (h, c)

            output, (h_n, c_n) = run_stack(form.x, (h0, c0), form.lengths, self.num_layers, self.bidirectional,
                                           self.dropout, self.training, run_direction)
            output = form.output(output)
        record_backend(self, backend)
        return output, self._final_state(form, h_n, c_n)


class LSTMCell(TorchCellBase):
    """torch.nn.LSTMCell on fastlstm's single-step kernel (TF's LSTMBlockCell)."""

    GATES, STATES, TORCH_CLASS = 4, 2, nn.LSTMCell

    def forward(self, input, hx=None):
        """input (N, H_in) or (H_in); hx (h_0, c_0) each (N, H) or (H), zeros if None. Returns (h_1, c_1)."""
        x, (h, c), is_batched = self.batched_inputs(input, hx)
        # Under torch.onnx.export the step is plain torch ops (the reference), which every exporter translates.
        backend = "reference" if functional.exporting_onnx() else functional.choose_backend(
            self.backend, x, single_step=True)
        weights = self._parameters  # (one lookup: each nn.Module attribute of a parameter costs ~0.5 us)
        h_new, c_new = functional.lstm_cell_on(backend, x, h, c, weights["weight_ih"], weights["weight_hh"],
                                               weights["bias_ih"], weights["bias_hh"])
        record_backend(self, backend)
        if not is_batched:
            h_new, c_new = h_new.squeeze(0), c_new.squeeze(0)
        return h_new, c_new
