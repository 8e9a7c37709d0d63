"""torch.onnx.export of fastlstm's modules: ONNX's LSTM op, run in ONNX Runtime against eager, as torch.nn.LSTM
exports (both exporters; the dynamo exporter specialises the sequence length for torch.nn.LSTM and fastlstm alike)."""

import io
import warnings

import pytest
import torch

import fastlstm
from conftest import assert_close

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def run_onnx(model_proto, x):
    session = ort.InferenceSession(model_proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return [torch.from_numpy(out) for out in session.run(None, {session.get_inputs()[0].name: x.numpy()})]


@pytest.mark.parametrize("kwargs", [dict(), dict(num_layers=2, bidirectional=True, batch_first=True)])
def test_legacy_exporter_emits_onnx_lstm_with_dynamic_batch_and_length(kwargs):
    module = fastlstm.LSTM(4, 5, **kwargs).eval()
    batch_first = kwargs.get("batch_first", False)
    shape = (2, 3, 4) if batch_first else (3, 2, 4)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and batch-size notes
        torch.onnx.export(module, (torch.randn(*shape),), buffer, dynamo=False, input_names=["x"],
                          output_names=["y", "h_n", "c_n"], dynamic_axes={"x": {0: "a", 1: "b"}})
    model = onnx.load_from_string(buffer.getvalue())
    assert "LSTM" in {node.op_type for node in model.graph.node}
    assert module.last_backend is None  # the export ran no fastlstm kernel and left the module as it was
    x = torch.randn(6, 5, 4)  # another batch size and length
    with torch.no_grad():
        output, (h_n, c_n) = module(x)
    got = run_onnx(model, x)
    assert_close(got[0], output)
    assert_close(got[1], h_n)
    assert_close(got[2], c_n)


def test_dynamo_exporter_as_for_torch_nn_lstm():
    pytest.importorskip("onnxscript")
    module = fastlstm.LSTM(4, 5).eval()
    program = torch.onnx.export(module, (torch.randn(3, 2, 4),), dynamo=True,
                                dynamic_shapes=({1: torch.export.Dim("batch")},))
    assert "LSTM" in {node.op_type for node in program.model_proto.graph.node}
    x = torch.randn(3, 6, 4)
    with torch.no_grad():
        expected = module(x)[0]
    assert_close(run_onnx(program.model_proto, x)[0], expected)


def test_lstm_cell_exports():
    cell = fastlstm.LSTMCell(4, 5).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(cell, (torch.randn(2, 4),), buffer, dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "b"}})
    x = torch.randn(7, 4)
    with torch.no_grad():
        h, c = cell(x)
    got = run_onnx(onnx.load_from_string(buffer.getvalue()), x)
    assert_close(got[0], h)
    assert_close(got[1], c)


@pytest.mark.parametrize("kwargs", [dict(), dict(num_layers=2, bidirectional=True, batch_first=True)])
def test_gru_exports_onnx_gru_with_dynamic_batch_and_length(kwargs):
    module = fastlstm.GRU(4, 5, **kwargs).eval()
    shape = (2, 3, 4) if kwargs.get("batch_first") else (3, 2, 4)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(*shape),), buffer, dynamo=False, input_names=["x"],
                          output_names=["y", "h_n"], dynamic_axes={"x": {0: "a", 1: "b"}})
    model = onnx.load_from_string(buffer.getvalue())
    assert "GRU" in {node.op_type for node in model.graph.node}
    x = torch.randn(6, 5, 4)
    with torch.no_grad():
        output, h_n = module(x)
    got = run_onnx(model, x)
    assert_close(got[0], output)
    assert_close(got[1], h_n)
    cell = fastlstm.GRUCell(4, 5).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(cell, (torch.randn(2, 4),), buffer, dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "b"}})
    with torch.no_grad():
        assert_close(run_onnx(onnx.load_from_string(buffer.getvalue()), x[0])[0], cell(x[0]))


# fastlstm's own ops (the TF cells and drivers, functional.*): ONNX's LSTM / GRU through the symbolics registered at
# import (python/fastlstm/onnx_export.py), with the lengths an input of the graph.

def export_legacy(module, args, input_names, dynamic_axes):
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notes, the drivers' tracer warnings
        torch.onnx.export(module, args, buffer, dynamo=False, input_names=input_names, dynamic_axes=dynamic_axes)
    return onnx.load_from_string(buffer.getvalue())


def run_onnx_inputs(model_proto, inputs):
    session = ort.InferenceSession(model_proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return [torch.from_numpy(out) for out in session.run(None, {n: v.numpy() for n, v in zip(names, inputs)})]


class BlockFused(torch.nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.cell = fastlstm.cells.LSTMBlockFusedCell(4, 5, **kwargs)

    def forward(self, x, lengths):
        outputs, (c, h) = self.cell(x, sequence_length=lengths)
        return outputs, c, h


class TFDriver(torch.nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def forward(self, x, lengths):
        outputs, state = fastlstm.rnn.dynamic_rnn(self.cell, x, sequence_length=lengths)
        return (outputs, *state) if isinstance(state, tuple) else (outputs, state)


def check_against_eager(module, model, inputs):
    with torch.no_grad():
        expected = module(*inputs)
    got = run_onnx_inputs(model, inputs)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert_close(g, e)


@pytest.mark.parametrize("use_peephole", [False, True])
def test_tf_fused_cell_exports_onnx_lstm_with_lengths_peepholes_and_forget_bias(use_peephole):
    module = BlockFused(forget_bias=1.5, use_peephole=use_peephole).eval()
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-0.5, 0.5)  # the peepholes start at zero in TF; make them count
    model = export_legacy(module, (torch.randn(3, 2, 4), torch.tensor([3, 1])), ["x", "lengths"],
                          {"x": {0: "T", 1: "B"}, "lengths": {0: "B"}})
    lstm_nodes = [node for node in model.graph.node if node.op_type == "LSTM"]
    assert len(lstm_nodes) == 1
    assert len(lstm_nodes[0].input) == (8 if use_peephole else 7)  # X W R B sequence_lens h0 c0 [P]
    check_against_eager(module, model, (torch.randn(6, 5, 4), torch.tensor([6, 0, 3, 1, 5])))


def test_tf_lstm_cell_in_dynamic_rnn_exports_batch_first_with_lengths():
    cell = fastlstm.cells.LSTMCell(4, 5, use_peepholes=True, forget_bias=0.5)
    module = TFDriver(cell).eval()
    model = export_legacy(module, (torch.randn(2, 3, 4), torch.tensor([3, 2])), ["x", "lengths"],
                          {"x": {0: "B", 1: "T"}, "lengths": {0: "B"}})
    assert "LSTM" in {node.op_type for node in model.graph.node}
    check_against_eager(module, model, (torch.randn(4, 7, 4), torch.tensor([7, 1, 4, 6])))


def test_tf_gru_block_cell_exports_onnx_gru_without_linear_before_reset():
    module = TFDriver(fastlstm.cells.GRUBlockCellV2(4, 5)).eval()
    model = export_legacy(module, (torch.randn(2, 3, 4), torch.tensor([3, 2])), ["x", "lengths"],
                          {"x": {0: "B", 1: "T"}, "lengths": {0: "B"}})
    gru = [node for node in model.graph.node if node.op_type == "GRU"]
    assert len(gru) == 1
    assert {a.name: a.i for a in gru[0].attribute}["linear_before_reset"] == 0
    check_against_eager(module, model, (torch.randn(4, 7, 4), torch.tensor([7, 1, 4, 6])))


class FunctionalLSTM(torch.nn.Module):
    """functional.lstm in torch's layout with every ONNX-expressible option."""

    def __init__(self):
        super().__init__()
        self.w_ih, self.w_hh = torch.nn.Parameter(torch.randn(20, 4) / 3), torch.nn.Parameter(torch.randn(20, 5) / 3)
        self.b_ih, self.b_hh = torch.nn.Parameter(torch.randn(20) / 3), torch.nn.Parameter(torch.randn(20) / 3)
        self.w_peephole = torch.nn.Parameter(torch.randn(3, 5) / 3)

    def forward(self, x, h0, c0):
        return fastlstm.functional.lstm(x, h0, c0, self.w_ih, self.w_hh, self.b_ih, self.b_hh,
                                        w_peephole=self.w_peephole, forget_bias=1.0)


def test_functional_lstm_in_torch_layout_exports_with_initial_state():
    module = FunctionalLSTM().eval()
    model = export_legacy(module, (torch.randn(3, 2, 4), torch.randn(2, 5), torch.randn(2, 5)), ["x", "h0", "c0"],
                          {"x": {0: "T", 1: "B"}, "h0": {0: "B"}, "c0": {0: "B"}})
    check_against_eager(module, model, (torch.randn(5, 3, 4), torch.randn(3, 5), torch.randn(3, 5)))


@pytest.mark.parametrize("make, message", [
    (lambda: BlockFused(cell_clip=3.0), "cell_clip has no ONNX equivalent"),
    (lambda: TFDriver(fastlstm.cells.LSTMCell(4, 5, num_proj=3)), "projections"),
])
def test_tf_options_without_onnx_equivalent_stop_the_export(make, message):
    with pytest.raises(fastlstm.onnx_export.ExportError, match=message):
        export_legacy(make().eval(), (torch.randn(2, 2, 4), torch.tensor([2, 1])), ["x", "lengths"], {})


def test_layer_norm_lstm_export_says_onnx_has_no_such_op():
    module = fastlstm.LayerNormLSTM(4, 5).eval()
    with pytest.raises(fastlstm.onnx_export.ExportError, match="layer-normalised LSTM has no ONNX operator"):
        export_legacy(module, (torch.randn(3, 2, 4),), ["x"], {})


class PackedModel(torch.nn.Module):
    """The usual variable-length pattern: pack, run, pad back."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x, lengths):
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
        output, state = self.rnn(packed)
        return (torch.nn.utils.rnn.pad_packed_sequence(output)[0], *(state if isinstance(state, tuple) else (state,)))


@pytest.mark.parametrize("make_rnn", [torch.nn.LSTM, fastlstm.LSTM, torch.nn.GRU, fastlstm.GRU],
                         ids=["torch.nn.LSTM", "fastlstm.LSTM", "torch.nn.GRU", "fastlstm.GRU"])
def test_packed_sequence_in_the_model_exports_as_for_torch_nn(make_rnn):
    """pack_padded_sequence -> LSTM / GRU -> pad_packed_sequence: the lengths become the node's sequence_lens (legacy
    exporter), for fastlstm's modules as for torch.nn's."""
    module = PackedModel(make_rnn(4, 5, num_layers=2)).eval()
    model = export_legacy(module, (torch.randn(3, 2, 4), torch.tensor([3, 1])), ["x", "lengths"],
                          {"x": {0: "T", 1: "B"}, "lengths": {0: "B"}})
    assert {"LSTM", "GRU"} & {node.op_type for node in model.graph.node}
    check_against_eager(module, model, (torch.randn(6, 4, 4), torch.tensor([6, 2, 4, 1])))


def test_dynamo_exporter_translates_fastlstm_ops_with_the_shipped_table():
    pytest.importorskip("onnxscript")
    module = BlockFused(forget_bias=1.0, use_peephole=True).eval()
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-0.5, 0.5)
    inputs = (torch.randn(3, 2, 4), torch.tensor([3, 1]))
    program = torch.onnx.export(module, inputs, dynamo=True,
                                custom_translation_table=fastlstm.onnx_export.translation_table(),
                                dynamic_shapes=({1: torch.export.Dim("batch")}, {0: torch.export.Dim("batch")}))
    assert "LSTM" in {node.op_type for node in program.model_proto.graph.node}
    check_against_eager(module, program.model_proto, (torch.randn(3, 5, 4), torch.tensor([3, 0, 2, 1, 3])))
    gru = TFDriver(fastlstm.cells.GRUBlockCellV2(4, 5)).eval()
    program = torch.onnx.export(gru, (torch.randn(2, 3, 4), torch.tensor([3, 2])), dynamo=True,
                                custom_translation_table=fastlstm.onnx_export.translation_table())
    assert "GRU" in {node.op_type for node in program.model_proto.graph.node}
    check_against_eager(gru, program.model_proto, (torch.randn(2, 3, 4), torch.tensor([1, 3])))


def graph_input_dims(model_proto):
    return [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model_proto.graph.input]


@pytest.mark.parametrize("make_rnn", [torch.nn.LSTM, fastlstm.LSTM, torch.nn.GRU, fastlstm.GRU],
                         ids=["torch.nn.LSTM", "fastlstm.LSTM", "torch.nn.GRU", "fastlstm.GRU"])
def test_dynamo_exporter_keeps_batch_and_length_dynamic_as_for_torch_nn(make_rnn):
    """torch's dynamo exporter rewrites ATen's RNN ops into a loop over a dynamic length (torch 2.13); fastlstm's
    modules export through them alike and run at another batch and length, also when exported again in the same
    process (torch.nn's modules are not: the rewrite leaves a stale dispatch cache, see
    functional.forget_cached_rnn_kernels, so the torch.nn cases empty it first)."""
    pytest.importorskip("onnxscript")
    module = make_rnn(8, 16, num_layers=2, bidirectional=True, batch_first=True).eval()
    dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("seq")}
    for export in range(1 if make_rnn.__module__.startswith("torch") else 2):
        if make_rnn.__module__.startswith("torch"):
            fastlstm.functional.forget_cached_rnn_kernels()
        program = torch.onnx.export(module, (torch.randn(2, 5, 8),), dynamo=True, dynamic_shapes=(dims,))
        assert graph_input_dims(program.model_proto) == [["batch", "seq", 8]], f"export {export + 1}"
        x = torch.randn(3, 7, 8)
        with torch.no_grad():
            output, state = module(x)
        got = run_onnx(program.model_proto, x)
        assert_close(got[0], output)
        assert_close(got[1:], list(state) if isinstance(state, tuple) else [state])


DYNAMO_OP_CASES = {
    # module, example inputs, their dynamic dimensions, inputs at another batch and length
    "fused-cell-lengths-peepholes-forget-bias": (
        lambda: BlockFused(forget_bias=1.0, use_peephole=True), (torch.randn(3, 2, 4), torch.tensor([3, 1])),
        ({0: "seq", 1: "batch"}, {0: "batch"}), (torch.randn(6, 5, 4), torch.tensor([6, 0, 3, 1, 5]))),
    "tf-layout-dynamic-rnn-batch-first": (
        lambda: TFDriver(fastlstm.cells.LSTMCell(4, 5, use_peepholes=True, forget_bias=0.5)),
        (torch.randn(2, 3, 4), torch.tensor([3, 2])), ({0: "batch", 1: "seq"}, {0: "batch"}),
        (torch.randn(4, 7, 4), torch.tensor([7, 1, 4, 6]))),
    "tf-gru": (
        lambda: TFDriver(fastlstm.cells.GRUBlockCellV2(4, 5)), (torch.randn(2, 3, 4), torch.tensor([3, 2])),
        ({0: "batch", 1: "seq"}, {0: "batch"}), (torch.randn(4, 7, 4), torch.tensor([7, 1, 4, 6]))),
    "functional-lstm-torch-layout": (
        FunctionalLSTM, (torch.randn(3, 2, 4), torch.randn(2, 5), torch.randn(2, 5)),
        ({0: "seq", 1: "batch"}, {0: "batch"}, {0: "batch"}), (torch.randn(5, 3, 4), torch.randn(3, 5),
                                                             torch.randn(3, 5))),
}


@pytest.mark.parametrize("case", DYNAMO_OP_CASES)
def test_dynamo_exporter_keeps_batch_and_length_dynamic_for_fastlstm_ops(case):
    pytest.importorskip("onnxscript")
    make, inputs, dims, other_inputs = DYNAMO_OP_CASES[case]
    module = make().eval()
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-0.5, 0.5)  # TF's peepholes start at zero; make them count
    dynamic_shapes = tuple({axis: torch.export.Dim(name) for axis, name in d.items()} for d in dims)
    program = torch.onnx.export(module, inputs, dynamo=True, dynamic_shapes=dynamic_shapes,
                                custom_translation_table=fastlstm.onnx_export.translation_table())
    assert all(isinstance(name, str) for d, dims_of in zip(graph_input_dims(program.model_proto), dims)
               for axis, name in enumerate(d) if axis in dims_of)
    check_against_eager(module, program.model_proto, other_inputs)


class Tagger(torch.nn.Module):
    """A model around the LSTM whose Reshape depends on the length (where a fixed length failed at run time)."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(20, 8)
        self.lstm = fastlstm.LSTM(8, 16, num_layers=2, bidirectional=True, batch_first=True)
        self.out = torch.nn.Linear(32, 5)

    def forward(self, tokens):
        y, _ = self.lstm(self.embed(tokens))
        return self.out(y.reshape(-1, 32)).reshape(tokens.shape[0], tokens.shape[1], 5)


def test_dynamo_exporter_keeps_the_length_dynamic_inside_a_larger_model():
    pytest.importorskip("onnxscript")
    model = Tagger().eval()
    dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("seq")}
    program = torch.onnx.export(model, (torch.randint(0, 20, (2, 5)),), dynamo=True, dynamic_shapes=(dims,))
    assert graph_input_dims(program.model_proto) == [["batch", "seq"]]
    tokens = torch.randint(0, 20, (4, 9))
    with torch.no_grad():
        expected = model(tokens)
    assert_close(run_onnx(program.model_proto, tokens)[0], expected)
