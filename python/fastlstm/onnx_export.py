"""torch.onnx.export of fastlstm's own ops: each becomes ONNX's `LSTM` or `GRU` node.

The drop-in modules (fastlstm.LSTM, GRU, LSTMCell, GRUCell) do not need this: under export they run ATen's RNN binding
or plain ops, which torch translates itself. These translations serve what only fastlstm's ops run: the TF cells and
drivers (cells.*, rnn.*), functional.lstm / lstm_cell / gru and direct calls of torch.ops.fastlstm.*:
  - legacy exporter (dynamo=False): registered when fastlstm is imported (torch.onnx.register_custom_op_symbolic),
    nothing to pass;
  - dynamo exporter (dynamo=True): torch builds its translation table per export and offers one public way in, the
    custom_translation_table argument: pass ``fastlstm.onnx_export.translation_table()``.
One graph recipe serves both (the _Builder classes adapt the two exporters' graph APIs). What each option becomes:
  - sequence_lengths -> the node's sequence_lens (int32), an input of the graph like the batch and the length;
  - peepholes (w_peephole [3, H], TF's w_i_diag, w_f_diag, w_o_diag) -> P;
  - forget_bias -> added to the forget gate's bias B (the same sum the kernels form);
  - TF's weight layout (tf_layout) and gate order -> ONNX's (i, o, f, c) blocks, in the graph;
  - the GRU's two conventions -> linear_before_reset 1 (torch's) or 0 (TF's);
  - cell_clip and projections (w_hr, TF's num_proj) have no ONNX equivalent (ONNX's `clip` bounds the gates'
    pre-activations, not the cell state, and its LSTM projects nothing): the export stops with an error that says
    so, rather than emit a graph that computes something else. The layer-normalised LSTM's op likewise.
The workspace output (kept for backward) is an empty constant in the exported graph.
"""

import torch

# torch's gate blocks (i, f, g, o), TF's (i, j = g, f, o) and the GRU's (r, z, n), as ONNX's (i, o, f, c) / (z, r, h).
_TORCH_TO_ONNX_LSTM = (0, 3, 1, 2)
_TF_TO_ONNX_LSTM = (0, 3, 2, 1)
_TORCH_TO_ONNX_GRU = (1, 0, 2)
# fastlstm's peepholes (w_ci, w_cf, w_co) as ONNX's P (i, o, f).
_PEEPHOLES_TO_ONNX = (0, 2, 1)
_ONNX_FORGET_BLOCK = 2
_INT32 = 6  # ONNX's TensorProto.INT32
_LEGACY_OPSET = 14  # Squeeze / Unsqueeze / Slice take their axes as inputs from here on


class ExportError(ValueError):
    """A fastlstm option that ONNX cannot express."""


def _unsupported(what):
    raise ExportError(f"fastlstm's ONNX export: {what}. Export without it, or keep this model in PyTorch "
                      "(torch.export / AOTInductor run every fastlstm option).")


class _LegacyBuilder:
    """The legacy exporter's graph context (torch.onnx's GraphContext): attributes carry a type suffix."""

    def __init__(self, g):
        self.g = g

    def op(self, name, *inputs, outputs=1, **attributes):
        suffixed = {f"{key}_{'f' if isinstance(value, float) else 'i'}": value for key, value in attributes.items()}
        return self.g.op(name, *inputs, outputs=outputs, **suffixed)

    def const(self, tensor):
        return self.g.op("Constant", value_t=tensor)

    def absent(self):
        value = self.g.op("prim::Constant")  # an omitted optional input, as torch's own RNN symbolics write it
        value.setType(torch._C.OptionalType.ofTensor())
        return value

    @staticmethod
    def is_absent(value):
        from torch.onnx import symbolic_helper

        return value is None or symbolic_helper._is_none(value)

    @staticmethod
    def size(value, dim):
        from torch.onnx import symbolic_helper

        sizes = symbolic_helper._get_tensor_sizes(value)
        return None if sizes is None else sizes[dim]


class _ScriptBuilder:
    """The dynamo exporter's: onnxscript's ops, recorded by the exporter's evaluator."""

    def __init__(self):
        from onnxscript import opset18

        self.ops = opset18

    def op(self, name, *inputs, outputs=1, **attributes):
        return getattr(self.ops, name)(*inputs, **attributes)

    def const(self, tensor):
        import onnx_ir

        return self.ops.Constant(value=onnx_ir.tensor(tensor.numpy()))

    def absent(self):
        return None

    @staticmethod
    def is_absent(value):
        return value is None

    @staticmethod
    def size(value, dim):
        size = value.shape[dim]
        return size if isinstance(size, int) else None


def _static_size(b, value, dim, what):
    size = b.size(value, dim)
    if size is None:
        _unsupported(f"{what} must have a static size")
    return size


def _axes(b, *axes):
    return b.const(torch.tensor(axes, dtype=torch.int64))


def _columns(b, matrix, start, end):
    return b.op("Slice", matrix, _axes(b, start), _axes(b, end), _axes(b, 1))


def _blocks(b, matrix, block, order):
    """matrix's equal row blocks of `block` rows, concatenated in `order`."""
    parts = [b.op("Slice", matrix, _axes(b, k * block), _axes(b, (k + 1) * block), _axes(b, 0)) for k in order]
    return b.op("Concat", *parts, axis=0)


def _biases(b, b_ih, b_hh, hidden_size, gates, order, forget_bias=0.0):
    """ONNX's B [1, 2 * gates * H]: W's biases then R's in ONNX's gate order; forget_bias joins the forget gate's."""
    parts = [_blocks(b, bias, hidden_size, order) if not b.is_absent(bias) else
             b.const(torch.zeros(gates * hidden_size)) for bias in (b_ih, b_hh)]
    if forget_bias != 0.0:
        shift = torch.zeros(gates * hidden_size)
        shift[_ONNX_FORGET_BLOCK * hidden_size:(_ONNX_FORGET_BLOCK + 1) * hidden_size] = forget_bias
        parts[0] = b.op("Add", parts[0], b.const(shift))
    return b.op("Unsqueeze", b.op("Concat", *parts, axis=0), _axes(b, 0))


def _lengths(b, sequence_lengths):
    return b.absent() if b.is_absent(sequence_lengths) else b.op("Cast", sequence_lengths, to=_INT32)


def _lstm(b, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peephole, sequence_lengths, forget_bias, cell_clip, tf_layout,
          w_hr):
    """ONNX's LSTM over x [T, B, I] with states [B, H]: (Y [T, 1, B, H], Y_h [1, B, H], Y_c [1, B, H])."""
    if cell_clip != 0.0:
        _unsupported("cell_clip has no ONNX equivalent (the LSTM op's 'clip' bounds the gates' pre-activations, "
                     "not the cell state)")
    if not b.is_absent(w_hr):
        _unsupported("projections (w_hr / num_proj) have no ONNX equivalent (ONNX's LSTM projects nothing)")
    input_size = _static_size(b, x, 2, "x's features")
    if tf_layout:
        hidden_size = _static_size(b, w_ih, 1, "the kernel's columns") // 4
        kernel = b.op("Transpose", w_ih, perm=[1, 0])  # [4H, I + H], TF's gate order
        w = _columns(b, kernel, 0, input_size)
        r = _columns(b, kernel, input_size, input_size + hidden_size)
        order = _TF_TO_ONNX_LSTM
    else:
        hidden_size = _static_size(b, w_hh, 1, "w_hh's columns")
        w, r, order = w_ih, w_hh, _TORCH_TO_ONNX_LSTM
    inputs = [x] + [b.op("Unsqueeze", _blocks(b, m, hidden_size, order), _axes(b, 0)) for m in (w, r)]
    inputs += [_biases(b, b_ih, b_hh, hidden_size, 4, order, forget_bias), _lengths(b, sequence_lengths),
               b.op("Unsqueeze", h0, _axes(b, 0)), b.op("Unsqueeze", c0, _axes(b, 0))]
    if not b.is_absent(w_peephole):
        peepholes = _blocks(b, w_peephole, 1, _PEEPHOLES_TO_ONNX)
        inputs.append(b.op("Reshape", peepholes, b.const(torch.tensor([1, -1]))))
    return b.op("LSTM", *inputs, hidden_size=hidden_size, outputs=3)


def _no_workspace(b):
    return b.const(torch.zeros(0))


def _forward(b, x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, w_peephole=None, sequence_lengths=None,
             forget_bias=0.0, cell_clip=0.0, training=True, tf_layout=False, w_hr=None):
    y, y_h, y_c = _lstm(b, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peephole, sequence_lengths, forget_bias, cell_clip,
                        tf_layout, w_hr)
    return (b.op("Squeeze", y, _axes(b, 1)), b.op("Squeeze", y_h, _axes(b, 0)), b.op("Squeeze", y_c, _axes(b, 0)),
            _no_workspace(b))


def _cell_forward(b, x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, w_peephole=None, forget_bias=0.0, cell_clip=0.0,
                  training=True, tf_layout=False, w_hr=None):
    _, y_h, y_c = _lstm(b, b.op("Unsqueeze", x, _axes(b, 0)), h, c, w_ih, w_hh, b_ih, b_hh, w_peephole, b.absent(),
                        forget_bias, cell_clip, tf_layout, w_hr)
    return b.op("Squeeze", y_h, _axes(b, 0)), b.op("Squeeze", y_c, _axes(b, 0)), _no_workspace(b)


def _gru(b, x, h0, w_ih, w_hh, b_ih=None, b_hh=None, sequence_lengths=None, training=True, linear_before_reset=True):
    hidden_size = _static_size(b, w_hh, 1, "w_hh's columns")
    inputs = [x] + [b.op("Unsqueeze", _blocks(b, m, hidden_size, _TORCH_TO_ONNX_GRU), _axes(b, 0))
                    for m in (w_ih, w_hh)]
    inputs += [_biases(b, b_ih, b_hh, hidden_size, 3, _TORCH_TO_ONNX_GRU), _lengths(b, sequence_lengths),
               b.op("Unsqueeze", h0, _axes(b, 0))]
    y, y_h = b.op("GRU", *inputs, hidden_size=hidden_size, linear_before_reset=int(linear_before_reset), outputs=2)
    return b.op("Squeeze", y, _axes(b, 1)), b.op("Squeeze", y_h, _axes(b, 0)), _no_workspace(b)


def _layer_norm_lstm(b, *args, **kwargs):
    _unsupported("the layer-normalised LSTM has no ONNX operator (ONNX's LSTM normalises nothing)")


# op name -> (recipe, the legacy exporter's argument kinds: v a value, f a float, b a bool)
_RECIPES = {
    "forward": (_forward, "vvvvvvvvvffbbv"),
    "cell_forward": (_cell_forward, "vvvvvvvvffbbv"),
    "gru": (_gru, "vvvvvvvbb"),
    "layer_norm_lstm": (_layer_norm_lstm, None),
}


def _legacy_symbolic(recipe, kinds):
    from torch.onnx import symbolic_helper

    def symbolic(g, *args):
        if kinds is not None:  # the floats and bools arrive as graph constants
            args = [value if kind == "v" else symbolic_helper._get_const(value, kind, f"argument {k}")
                    for k, (kind, value) in enumerate(zip(kinds, args))]
        return recipe(_LegacyBuilder(g), *args)

    return symbolic


def register_legacy():
    """Registers the translations with the legacy exporter (done when fastlstm is imported)."""
    from torch.onnx import register_custom_op_symbolic

    for name, (recipe, kinds) in _RECIPES.items():
        register_custom_op_symbolic(f"fastlstm::{name}", _legacy_symbolic(recipe, kinds), _LEGACY_OPSET)


def translation_table():
    """{fastlstm op: its translation} for torch.onnx.export(..., dynamo=True, custom_translation_table=...)."""

    def translation(recipe):
        return lambda *args, **kwargs: recipe(_ScriptBuilder(), *args, **kwargs)

    return {getattr(torch.ops.fastlstm, name).default: translation(recipe) for name, (recipe, _) in _RECIPES.items()}
