"""The sequence layer every recurrent module shares (a new module is a cell plus this): torch.nn.RNNBase's argument
checks and initialisation, the input forms (unbatched, batch_first, PackedSequence) to and from the time-major padded
batch the kernels take, reversal within each row's length, and the layer stack (directions, inter-layer dropout)."""

import math
import numbers
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from . import functional


def init_uniform(parameters, hidden_size):
    """torch.nn.RNNBase's initialisation, in registration order (so the same seed gives the same weights)."""
    stdv = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0
    for weight in parameters:
        nn.init.uniform_(weight, -stdv, stdv)


def check_sizes(input_size, hidden_size):
    """torch.nn.RNNBase's checks of the sizes, in its order and with its messages."""
    if not isinstance(input_size, int):
        raise TypeError(f"input_size should be of type int, got: {type(input_size).__name__}")
    if input_size <= 0:
        raise ValueError("input_size must be greater than zero")
    if not isinstance(hidden_size, int):
        raise TypeError(f"hidden_size should be of type int, got: {type(hidden_size).__name__}")
    if hidden_size <= 0:
        raise ValueError("hidden_size must be greater than zero")


def check_stack_args(input_size, hidden_size, num_layers, bias, batch_first, dropout):
    """torch.nn.RNNBase's checks of the stack's arguments, in its order and with its messages."""
    if not isinstance(dropout, numbers.Number) or not 0 <= dropout <= 1 or isinstance(dropout, bool):
        raise ValueError(
            "dropout should be a number in range [0, 1] representing the probability of an element being zeroed"
        )
    if dropout > 0 and num_layers == 1:
        warnings.warn(
            "dropout option adds dropout after all but last recurrent layer, so non-zero dropout expects "
            f"num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}"
        )
    if not isinstance(bias, bool):
        raise TypeError(f"bias should be of type bool, got: {type(bias).__name__}")
    if not isinstance(batch_first, bool):
        raise TypeError(f"batch_first should be of type bool, got: {type(batch_first).__name__}")
    check_sizes(input_size, hidden_size)
    if num_layers <= 0:
        raise ValueError("num_layers must be greater than zero")


def register_stack_parameters(module, num_layers, bidirectional, layer_shapes, factory_kwargs):
    """Registers each layer's and direction's parameters as torch.nn.RNNBase names them (``{kind}_l{layer}`` and
    ``_reverse``), in its order; layer_shapes(layer) -> [(kind, shape), ...]. Sets module._all_weights (the names,
    per layer and direction) and module._flat_weights_names (all of them, in order), as torch.nn.RNNBase does."""
    module._all_weights = []
    for layer in range(num_layers):
        for direction in range(2 if bidirectional else 1):
            suffix = "_reverse" if direction == 1 else ""
            shapes = layer_shapes(layer)
            names = [f"{kind}_l{layer}{suffix}" for kind, _ in shapes]
            for name, (_, shape) in zip(names, shapes):
                setattr(module, name, nn.Parameter(torch.empty(shape, **factory_kwargs)))
            module._all_weights.append(names)
    module._flat_weights_names = [name for names in module._all_weights for name in names]


class StackParameters:
    """torch.nn.RNNBase's views of a stack's parameters (registered by register_stack_parameters), for fastlstm's
    stacks (LSTM, GRU, LayerNormLSTM). WEIGHT_KINDS: the kinds one layer and direction may have, in the order
    _layer_weights returns them."""

    WEIGHT_KINDS = ()

    @property
    def _flat_weights(self):
        # None for a parameter deleted (del module.weight_hh_l0) and not yet assigned again, as torch.nn.RNNBase's
        # _init_flat_weights: .to() / .double() and flatten_parameters() still work meanwhile.
        return [getattr(self, name, None) for name in self._flat_weights_names]

    @property
    def all_weights(self):
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def _layer_weights(self, layer, direction):
        """The parameters of one layer and direction, one per WEIGHT_KINDS; None where the module has none."""
        suffix = "_reverse" if direction == 1 else ""
        weights = []
        for kind in self.WEIGHT_KINDS:
            name = f"{kind}_l{layer}{suffix}"
            weight = getattr(self, name, None)
            if weight is None and name in self._flat_weights_names:
                raise AttributeError(f"{type(self).__name__}: expected parameter {name!r}, got none (it was deleted); "
                                     f"assign it again (module.{name} = ...) before calling the module")
            weights.append(weight)
        return weights


def record_backend(module, backend):
    """Sets module.last_backend to the backend that ran (not while compiling or exporting, which run no kernel)."""
    if module.last_backend != backend and not torch.compiler.is_compiling() and not functional.exporting_onnx():
        module.last_backend = backend  # (nn.Module.__setattr__ costs ~1 us: only on a change)


def stack_extra_repr(module, extras=()):
    """torch.nn.RNNBase's extra_repr, then `extras`: (attribute, default) pairs shown when not at their default."""
    s = "{input_size}, {hidden_size}"
    if getattr(module, "proj_size", 0) != 0:
        s += ", proj_size={proj_size}"
    for name, default in (("num_layers", 1), ("bias", True), ("batch_first", False), ("dropout", 0),
                          ("bidirectional", False)) + tuple(extras):
        if getattr(module, name) != default:
            s += f", {name}={{{name}!r}}" if isinstance(default, str) else f", {name}={{{name}}}"
    return s.format(**module.__dict__)


def unpack(data, batch_sizes):
    """PackedSequence data [sum(lengths), I] -> (time-major padded x [T, B, I] with rows longest first, as the kernels
    want them, lengths [B], the rows of x.view(T * B, I) that hold the packed data, in packed order).

    One index_copy each way (torch's pad_packed_sequence copies step by step, forward and backward)."""
    batch = int(batch_sizes[0])
    running = torch.arange(batch).unsqueeze(0) < batch_sizes.unsqueeze(1)  # [T, B], packed order is row-major
    positions = running.flatten().nonzero().squeeze(1).to(data.device)
    # In place into the fresh zeros: the out-of-place index_copy cloned them first (1.2 against 0.2 ms at C4's shape).
    x = data.new_zeros((len(batch_sizes) * batch, data.shape[1]))
    x.index_copy_(0, positions, data)
    return x.view(len(batch_sizes), batch, data.shape[1]), running.sum(0), positions


def reverse_within_lengths(x, lengths):
    """Reverse each row of time-major x [T, B, ...] within its own length; steps past it stay where they are."""
    if lengths is None:
        return x.flip(0)
    steps = torch.arange(x.shape[0], device=x.device).unsqueeze(1)  # [T, 1]
    row_lengths = lengths.to(x.device).unsqueeze(0)  # [1, B]
    index = torch.where(steps < row_lengths, row_lengths - 1 - steps, steps)
    return x.gather(0, index.unsqueeze(-1).expand_as(x))


@dataclass
class SequenceForm:
    """How a module's input came (so that its output goes back the same way) and the padded batch made of it."""
    x: torch.Tensor  # [T, B, I] time-major, rows longest first when packed (None until make_time_major())
    lengths: torch.Tensor  # [B] for a PackedSequence, else None
    batch: int
    is_batched: bool
    batch_first: bool
    packed: PackedSequence = None  # the input, when it was one
    positions: torch.Tensor = None  # rows of x.view(T * B, I) holding the packed data, in packed order
    batched_input: torch.Tensor = None  # a tensor input with its batch dimension, in the caller's layout

    @property
    def steps(self):
        """T: the padded length (a PackedSequence's is its number of batch sizes)."""
        if self.packed is not None:
            return len(self.packed.batch_sizes)
        return self.batched_input.shape[1 if self.batch_first else 0]

    @property
    def data(self):
        """The input's values: the packed data of a PackedSequence, else the batched input."""
        return self.packed.data if self.packed is not None else self.batched_input

    def make_time_major(self):
        """Makes x for the kernels. The ATen path (cuDNN, ONNX export) skips this and takes the input as it came:
        under the dynamo ONNX exporter even an unused view of the input made the exported length a constant."""
        if self.x is not None:
            return
        if self.packed is not None:
            self.x, self.lengths, self.positions = unpack(self.packed.data, self.packed.batch_sizes)
        else:
            self.x = self.batched_input.transpose(0, 1) if self.batch_first else self.batched_input

    def output(self, output):
        """The stack's time-major output [T, B, F] in the form the input came."""
        if self.packed is not None:
            data = output.reshape(-1, output.shape[-1]).index_select(0, self.positions)
            return PackedSequence(data, self.packed.batch_sizes, self.packed.sorted_indices,
                                  self.packed.unsorted_indices)
        if not self.is_batched:
            return output.squeeze(1)
        return output.transpose(0, 1) if self.batch_first else output

    def batched_output(self, output):
        """The output of ATen's RNN binding run on batched_input (in the caller's layout, as torch.nn's modules run it:
        only then does the dynamo ONNX exporter keep the length dynamic with batch_first) in the form the input came."""
        return output if self.is_batched else output.squeeze(0 if self.batch_first else 1)


def sequence_form(input, batch_first, module_name, check_packed):
    """Reads a module's input: a PackedSequence (left packed: see SequenceForm.make_time_major; check_packed(data,
    batch_sizes) checks it), or (L, H_in) / (L, N, H_in) / (N, L, H_in) with batch_first. A tensor input is checked
    by the module (check_forward_args, as torch.nn.LSTM), then by check_not_empty."""
    if isinstance(input, PackedSequence):
        check_packed(input.data, input.batch_sizes)
        return SequenceForm(None, None, int(input.batch_sizes[0]), True, batch_first, input)
    if input.dim() not in (2, 3):
        raise ValueError(f"{module_name}: Expected input to be 2D or 3D, got {input.dim()}D instead")
    is_batched = input.dim() == 3
    batched = input if is_batched else input.unsqueeze(0 if batch_first else 1)
    batch = batched.shape[0 if batch_first else 1]
    return SequenceForm(None, None, batch, is_batched, batch_first, batched_input=batched)


def check_not_empty(form):
    if form.packed is None and form.x.shape[0] == 0:
        raise RuntimeError("Expected sequence length to be larger than 0 in RNN")  # torch.nn.RNNBase's error


class TorchRNNChecks:
    """torch.nn.LSTM's public checking and permuting methods, with its semantics and messages (users subclass the
    modules and call these). Needs input_size, hidden_size, num_layers, bidirectional, batch_first, proj_size and a
    first weight `weight_ih_l0`."""

    def _input_dtype(self):
        """The dtype the input must have (the int8 modules of fastlstm.quantized take float32)."""
        return self.weight_ih_l0.dtype

    def check_input(self, input, batch_sizes):
        dtype = self._input_dtype()
        if input.dtype != dtype and not torch._C._is_any_autocast_enabled():
            raise ValueError(
                f"RNN input dtype ({input.dtype}) does not match weight dtype ({dtype}). "
                f"Convert input: input.to({dtype}), or convert model: model.to({input.dtype})"
            )
        expected_input_dim = 2 if batch_sizes is not None else 3
        if input.dim() != expected_input_dim:
            raise RuntimeError(f"input must have {expected_input_dim} dimensions, got {input.dim()}")
        if self.input_size != input.size(-1):
            raise RuntimeError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got {input.size(-1)}"
            )

    def _mini_batch(self, input, batch_sizes):
        if batch_sizes is not None:
            return int(batch_sizes[0])
        return input.size(0) if self.batch_first else input.size(1)

    def get_expected_hidden_size(self, input, batch_sizes):
        num_directions = 2 if self.bidirectional else 1
        size = self.proj_size if getattr(self, "proj_size", 0) > 0 else self.hidden_size
        return (self.num_layers * num_directions, self._mini_batch(input, batch_sizes), size)

    def get_expected_cell_size(self, input, batch_sizes):
        num_directions = 2 if self.bidirectional else 1
        return (self.num_layers * num_directions, self._mini_batch(input, batch_sizes), self.hidden_size)

    def check_hidden_size(self, hx, expected_hidden_size, msg="Expected hidden size {}, got {}"):
        if hx.size() != expected_hidden_size:
            raise RuntimeError(msg.format(expected_hidden_size, list(hx.size())))

    def check_forward_args(self, input, hidden, batch_sizes):
        self.check_input(input, batch_sizes)
        self.check_hidden_size(hidden[0], self.get_expected_hidden_size(input, batch_sizes),
                               "Expected hidden[0] size {}, got {}")
        self.check_hidden_size(hidden[1], self.get_expected_cell_size(input, batch_sizes),
                               "Expected hidden[1] size {}, got {}")

    def permute_hidden(self, hx, permutation):
        if permutation is None:
            return hx
        return hx[0].index_select(1, permutation), hx[1].index_select(1, permutation)

    def _initial_state(self, form, hx):
        """(h0, c0) [layers * D, B, *] in the kernels' row order from the caller's hx (or zeros), checked as
        torch.nn.LSTM checks them."""
        num_directions = 2 if self.bidirectional else 1
        if hx is None:
            like = form.data
            # A packed input's batch as torch.nn.LSTM takes it, batch_sizes[0]: a tensor, which a trace (ONNX
            # export) keeps as a dynamic size where an int would become a constant.
            batch = form.packed.batch_sizes[0] if form.packed is not None else form.batch
            shape = (self.num_layers * num_directions, batch)
            out_size = self.proj_size if getattr(self, "proj_size", 0) > 0 else self.hidden_size
            hx = tuple(torch.zeros(shape + (size,), dtype=like.dtype, device=like.device)
                       for size in (out_size, self.hidden_size))
            if form.packed is None:
                self.check_forward_args(form.batched_input, hx, None)
            return hx
        h0, c0 = hx
        if form.packed is not None:
            h0, c0 = self.permute_hidden((h0, c0), form.packed.sorted_indices)
            # (torch.nn.LSTM leaves these to its C++ kernel; the messages are its check_forward_args')
            self.check_hidden_size(h0, self.get_expected_hidden_size(form.packed.data, form.packed.batch_sizes),
                                   "Expected hidden[0] size {}, got {}")
            self.check_hidden_size(c0, self.get_expected_cell_size(form.packed.data, form.packed.batch_sizes),
                                   "Expected hidden[1] size {}, got {}")
            return h0, c0
        expected_dim, kind = (3, "batched 3-D") if form.is_batched else (2, "unbatched 2-D")
        if h0.dim() != expected_dim or c0.dim() != expected_dim:
            raise RuntimeError(f"For {kind} input, hx and cx should also be {expected_dim}-D but got "
                               f"({h0.dim()}-D, {c0.dim()}-D) tensors")
        if not form.is_batched:
            h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
        self.check_forward_args(form.batched_input, (h0, c0), None)
        return h0, c0

    def _final_state(self, form, h_n, c_n):
        """(h_n, c_n) in the caller's row order and form."""
        if form.packed is not None:
            return self.permute_hidden((h_n, c_n), form.packed.unsorted_indices)
        return (h_n, c_n) if form.is_batched else (h_n.squeeze(1), c_n.squeeze(1))


def run_stack(x, states, lengths, num_layers, bidirectional, dropout, training, run_direction):
    """The layer stack: x [T, B, I] time-major; states: the initial state tensors [layers * D, B, *] (one per kind:
    (h0, c0) for the LSTM); run_direction(layer, direction, x, initial states, lengths) -> (output [T, B, F], final
    states). The reverse direction reads each row reversed within its length. Inter-layer dropout as torch.nn's.
    Returns (the last layer's output [T, B, D * F], the final states stacked [layers * D, B, *] per kind)."""
    num_directions = 2 if bidirectional else 1
    layer_input = x
    finals = [[] for _ in states]
    for layer in range(num_layers):
        outputs = []
        for direction in range(num_directions):
            index = layer * num_directions + direction
            seq = layer_input if direction == 0 else reverse_within_lengths(layer_input, lengths)
            out, final = run_direction(layer, direction, seq, tuple(s[index] for s in states), lengths)
            outputs.append(out if direction == 0 else reverse_within_lengths(out, lengths))
            for kind, value in zip(finals, final):
                kind.append(value)
        layer_input = outputs[0] if num_directions == 1 else torch.cat(outputs, dim=2)
        if dropout > 0 and training and layer < num_layers - 1:
            layer_input = F.dropout(layer_input, p=dropout, training=True)
    return layer_input, tuple(torch.stack(kind) for kind in finals)
