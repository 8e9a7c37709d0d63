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
