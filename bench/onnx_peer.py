"""ONNX Runtime's CPU LSTM / GRU as a peer of the inference rows: torch.nn.LSTM / GRU exported to ONNX's LSTM / GRU
op (the TorchScript-based exporter: it needs only the onnx package), run with intra-op threads = torch's."""

import io
import warnings

import torch


def onnxruntime_run(torch_lstm, x, quantized=False):
    """A zero-argument callable running torch_lstm's (a torch.nn.LSTM or GRU) ONNX export on x in ONNX Runtime
    (outputs checked once). quantized: the export through onnxruntime.quantization.quantize_dynamic (int8 weights:
    its DynamicQuantizeLSTM for the LSTM), checked loosely."""
    import onnxruntime

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and batch-size notes
        torch.onnx.export(torch_lstm, (x.detach(),), buffer, dynamo=False, input_names=["x"],
                          output_names=["output", "h_n"] + (["c_n"] if isinstance(torch_lstm, torch.nn.LSTM) else []),
                          dynamic_axes={"x": {0: "seq_len", 1: "batch"}})
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    # ONNX Runtime's pool threads spin after each run by default: interleaved with the other peers, the spinning
    # took the cores from whoever ran next (torch.nn.LSTM's C2 samples spread by +-117%).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    model = _quantized(buffer.getvalue()) if quantized else buffer.getvalue()
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    feed = {"x": x.detach().numpy()}
    with torch.no_grad():
        expected = torch_lstm(x)[0]
    tolerance = dict(rtol=0, atol=0.1) if quantized else dict(rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.from_numpy(session.run(None, feed)[0]), expected, **tolerance)
    return lambda: session.run(None, feed)


def _quantized(model_bytes):
    import os
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as folder:
        source, target = os.path.join(folder, "float.onnx"), os.path.join(folder, "int8.onnx")
        with open(source, "wb") as f:
            f.write(model_bytes)
        quantize_dynamic(source, target, weight_type=QuantType.QInt8)
        with open(target, "rb") as f:
            return f.read()
