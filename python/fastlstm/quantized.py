"""int8 dynamic quantization for inference: LSTM, GRU, LSTMCell and GRUCell with int8 weights (one scale per output
channel), float32 activations quantized per row as they enter each product, int32 sums on the CPU's int8 dot
products (AMX / AVX512_VNNI through oneDNN's brgemm; float32 GEMMs of the same integers elsewhere), float32 gate
math and states: torch.ops.fastlstm.quantized_lstm / quantized_gru (csrc/cpu/quantized_rnn_kernel.h).

    model = fastlstm.quantize_dynamic(model)  # fastlstm's (and torch.nn's Linear...) modules -> int8

or ``torch.ao.quantization.quantize_dynamic(model, {fastlstm.LSTM}, mapping=fastlstm.quantized.DYNAMIC_MAPPING)``:
torch's entry swaps modules by class through a mapping, and its default mapping knows only torch's classes, so
fastlstm's must be passed to it (fastlstm.quantize_dynamic merges both). Each module also converts on its own:
``fastlstm.quantized.LSTM.from_float(lstm)`` takes a fastlstm.LSTM or a torch.nn.LSTM (likewise the others).
The weights are buffers (``weight_ih_l0`` int8 [4H, I], ``weight_ih_l0_scale`` float32 [4H], float32 biases), so
state_dict save and load work as for any module. CPU only, no autograd (inference), no proj_size.
"""

import torch
from torch import nn

from .cell_module import TorchCellBase
from .gru import GRU as FloatGRU, GRUCell as FloatGRUCell, TorchGRUChecks
from .nn import LSTM as FloatLSTM, LSTMCell as FloatLSTMCell
from .sequence import TorchRNNChecks, check_not_empty, check_stack_args, run_stack, sequence_form, stack_extra_repr


def quantize_weight(weight):
    """weight [N, K] float -> (int8 [N, K], scale float32 [N]): symmetric per output channel, scale amax / 127 (a
    zero row: scale 0, values 0)."""
    w = weight.detach().to(torch.float32)
    scale = w.abs().amax(dim=1) / 127
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    values = torch.round(w / safe.unsqueeze(1)).clamp(-127, 127).to(torch.int8)
    return values, scale.contiguous()


def _check_float_module(cls, module):
    """from_float's input: one of the float classes the int8 class replaces, carrying no other qconfig than int8."""
    if not isinstance(module, cls.FLOAT_CLASSES):
        names = " or ".join(f"{c.__module__}.{c.__name__}" for c in cls.FLOAT_CLASSES)
        raise TypeError(f"fastlstm.quantized.{cls.__name__}.from_float: expected a {names}, got "
                        f"{type(module).__name__}")
    _check_qconfig(module)


def _check_qconfig(module):
    """torch's convert passes modules carrying a qconfig; only int8 weights are served (float16 dynamic is not)."""
    qconfig = getattr(module, "qconfig", None)
    if qconfig is not None:
        dtype = qconfig.weight().dtype
        if dtype != torch.qint8:
            raise ValueError(f"fastlstm.quantized: expected a qconfig with qint8 weights, got {dtype} (float16 "
                             "dynamic quantization is not implemented: bf16 modules serve that need)")


class _QuantizedWeights:
    """Registers and reads one int8 weight with its scale, and the float biases, per layer and direction."""

    def _register_layer(self, suffix, gate_size, input_size, hidden_size):
        for kind, k in (("weight_ih", input_size), ("weight_hh", hidden_size)):
            self.register_buffer(f"{kind}{suffix}", torch.zeros((gate_size, k), dtype=torch.int8))
            self.register_buffer(f"{kind}{suffix}_scale", torch.zeros(gate_size))
        for kind in ("bias_ih", "bias_hh"):
            self.register_buffer(f"{kind}{suffix}", torch.zeros(gate_size) if self.bias else None)

    def _load_layer(self, suffix, float_module, float_suffix):
        for kind in ("weight_ih", "weight_hh"):
            values, scale = quantize_weight(getattr(float_module, f"{kind}{float_suffix}"))
            getattr(self, f"{kind}{suffix}").copy_(values)
            getattr(self, f"{kind}{suffix}_scale").copy_(scale)
        if self.bias:
            for kind in ("bias_ih", "bias_hh"):
                getattr(self, f"{kind}{suffix}").copy_(getattr(float_module, f"{kind}{float_suffix}").detach())

    def _layer_args(self, suffix):
        return (getattr(self, f"weight_ih{suffix}"), getattr(self, f"weight_ih{suffix}_scale"),
                getattr(self, f"weight_hh{suffix}"), getattr(self, f"weight_hh{suffix}_scale"),
                getattr(self, f"bias_ih{suffix}"), getattr(self, f"bias_hh{suffix}"))

    def _input_dtype(self):
        return torch.float32


class _QuantizedStack(_QuantizedWeights, nn.Module):
    """The stack shared by the int8 LSTM and GRU: constructor arguments, buffers and the layer loop of torch.nn's."""

    GATES = None
    FLOAT_CLASSES = ()

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False):
        super().__init__()
        check_stack_args(input_size, hidden_size, num_layers, bias, batch_first, dropout)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, float(dropout), bidirectional
        self.proj_size = 0
        num_directions = 2 if bidirectional else 1
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * num_directions
            for direction in range(num_directions):
                self._register_layer(self._suffix(layer, direction), self.GATES * hidden_size, layer_input,
                                     hidden_size)

    @staticmethod
    def _suffix(layer, direction):
        return f"_l{layer}" + ("_reverse" if direction == 1 else "")

    @classmethod
    def from_float(cls, module, use_precomputed_fake_quant=False):
        """The int8 module of a float fastlstm / torch.nn module (its weights quantized per output channel)."""
        _check_float_module(cls, module)
        if getattr(module, "proj_size", 0):
            raise ValueError(f"fastlstm.quantized.{cls.__name__}: proj_size > 0 is not supported by the int8 kernels")
        quantized = cls(module.input_size, module.hidden_size, num_layers=module.num_layers, bias=module.bias,
                        batch_first=module.batch_first, dropout=module.dropout, bidirectional=module.bidirectional)
        with torch.no_grad():
            for layer in range(module.num_layers):
                for direction in range(2 if module.bidirectional else 1):
                    suffix = cls._suffix(layer, direction)
                    quantized._load_layer(suffix, module, suffix)
        return quantized.train(module.training)

    def extra_repr(self):
        return stack_extra_repr(self) + ", dtype=torch.qint8"

    def _run(self, form, states, run_layer):
        form.make_time_major()
        check_not_empty(form)

        def run_direction(layer, direction, x, initial, lengths):
            return run_layer(x, initial, self._layer_args(self._suffix(layer, direction)), lengths)

        output, finals = run_stack(form.x, states, form.lengths, self.num_layers, self.bidirectional, self.dropout,
                                   self.training, run_direction)
        return form.output(output), finals


class LSTM(_QuantizedStack, TorchRNNChecks):
    """torch.nn.LSTM's interface (input forms, hx, checks and messages) on int8 weights: see the module's doc."""

    GATES = 4
    FLOAT_CLASSES = (FloatLSTM, nn.LSTM)

    def forward(self, input, hx=None):
        form = sequence_form(input, self.batch_first, "quantized LSTM", self.check_input)
        states = self._initial_state(form, hx)

        def run_layer(x, initial, args, lengths):
            output, h, c = torch.ops.fastlstm.quantized_lstm(x, *initial, *args, sequence_lengths=lengths)
            return output, (h, c)

        output, (h_n, c_n) = self._run(form, states, run_layer)
        return output, self._final_state(form, h_n, c_n)


class GRU(_QuantizedStack, TorchGRUChecks):
    """torch.nn.GRU's interface on int8 weights (torch's GRU convention)."""

    GATES = 3
    FLOAT_CLASSES = (FloatGRU, nn.GRU)

    def forward(self, input, hx=None):
        form = sequence_form(input, self.batch_first, "quantized GRU", self.check_input)
        h0 = self._initial_state(form, hx)

        def run_layer(x, initial, args, lengths):
            output, h = torch.ops.fastlstm.quantized_gru(x, initial[0], *args, sequence_lengths=lengths)
            return output, (h,)

        output, (h_n,) = self._run(form, (h0,), run_layer)
        return output, self._final_state(form, h_n)


class _QuantizedCell(_QuantizedWeights, nn.Module):
    """The int8 cells: torch.nn.LSTMCell's / GRUCell's interface (TorchCellBase.batched_inputs), one step of the
    sequence kernel."""

    GATES = STATES = None
    FLOAT_CLASSES = ()
    batched_inputs = TorchCellBase.batched_inputs

    def __init__(self, input_size, hidden_size, bias=True):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self._register_layer("", self.GATES * hidden_size, input_size, hidden_size)

    @classmethod
    def from_float(cls, module, use_precomputed_fake_quant=False):
        _check_float_module(cls, module)
        quantized = cls(module.input_size, module.hidden_size, bias=module.bias)
        with torch.no_grad():
            quantized._load_layer("", module, "")
        return quantized.train(module.training)

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False") + \
            ", dtype=torch.qint8"

    def _step_inputs(self, input, hx):
        if input.dtype != torch.float32:
            raise ValueError(f"{type(self).__name__}: expected float32 input (int8 weights, float32 activations), "
                             f"got {input.dtype}")
        x, states, is_batched = self.batched_inputs(input, hx)
        return x.unsqueeze(0), states, is_batched


class LSTMCell(_QuantizedCell):
    GATES, STATES = 4, 2
    FLOAT_CLASSES = (FloatLSTMCell, nn.LSTMCell)

    def forward(self, input, hx=None):
        """input (N, H_in) or (H_in); hx (h_0, c_0) each (N, H) or (H), zeros if None. Returns (h_1, c_1)."""
        x, (h, c), is_batched = self._step_inputs(input, hx)
        _, h_new, c_new = torch.ops.fastlstm.quantized_lstm(x, h, c, *self._layer_args(""))
        return (h_new, c_new) if is_batched else (h_new.squeeze(0), c_new.squeeze(0))


class GRUCell(_QuantizedCell):
    GATES, STATES = 3, 1
    FLOAT_CLASSES = (FloatGRUCell, nn.GRUCell)

    def forward(self, input, hx=None):
        """input (N, H_in) or (H_in); hx (N, H) or (H), zeros if None. Returns h_1."""
        x, (h,), is_batched = self._step_inputs(input, hx)
        _, h_new = torch.ops.fastlstm.quantized_gru(x, h, *self._layer_args(""))
        return h_new if is_batched else h_new.squeeze(0)


# fastlstm's float modules -> their int8 versions, for torch.ao.quantization.quantize_dynamic(mapping=...).
DYNAMIC_MAPPING = {FloatLSTM: LSTM, FloatGRU: GRU, FloatLSTMCell: LSTMCell, FloatGRUCell: GRUCell}


def quantize_dynamic(model, qconfig_spec=None, dtype=torch.qint8, mapping=None, inplace=False):
    """torch.ao.quantization.quantize_dynamic with fastlstm's modules added: fastlstm.LSTM / GRU / LSTMCell /
    GRUCell become fastlstm.quantized's int8 modules, torch's own modules what torch's default mapping makes them
    (nn.Linear -> its dynamic int8 Linear, nn.LSTM -> torch's; pass mapping={nn.LSTM: fastlstm.quantized.LSTM} to
    run those on fastlstm's kernel too). qconfig_spec: as torch's (None: every class of the mapping); dtype qint8.
    A model that is itself such a module is converted too (torch's entry converts children only)."""
    from torch.ao.quantization import quantize_dynamic as torch_quantize_dynamic
    from torch.ao.quantization.quantization_mappings import get_default_dynamic_quant_module_mappings

    if dtype != torch.qint8:
        raise ValueError(f"fastlstm.quantize_dynamic: expected dtype torch.qint8, got {dtype}")
    full_mapping = {**get_default_dynamic_quant_module_mappings(), **DYNAMIC_MAPPING, **(mapping or {})}
    if qconfig_spec is None:  # torch's default classes, and fastlstm's
        qconfig_spec = {nn.Linear, nn.LSTM, nn.GRU, nn.LSTMCell, nn.RNNCell, nn.GRUCell, *DYNAMIC_MAPPING}
    if type(model) in full_mapping:
        if isinstance(qconfig_spec, (set, list, tuple)) and type(model) not in qconfig_spec:
            return model
        return full_mapping[type(model)].from_float(model)
    return torch_quantize_dynamic(model, qconfig_spec, dtype, full_mapping, inplace)
