"""Low-precision goal rows (issue 20): fastlstm in bfloat16 against torch.nn.LSTM in bfloat16 (oneDNN) and under
torch.autocast, against fastlstm's own float32; the GRU and the layer-norm LSTM in bf16 against their float32; the
error of each bf16 path against float64 next to torch's; fastlstm's int8 dynamic-quantized LSTM against torch's
quantize_dynamic, ONNX Runtime's int8 model and fastlstm's float32, with the three int8 errors; and bf16 and int8
at the AVX2 dispatch level (simulated on a higher host: FASTLSTM_CPU_CAPABILITY
forces fastlstm's level, ONEDNN_MAX_CPU_ISA / ATEN_CPU_CAPABILITY torch's), in a subprocess."""

import json
import os
import subprocess
import sys

import torch

import fastlstm
from timing import cell, measure

RATIO_GOAL = 1.2
BF16_OVER_FLOAT32_GOAL = 1.8
OTHER_CELLS_GOAL = 1.6
INT8_GOAL = 1.5
INT8_OVER_FLOAT32_GOAL = 2.0
AVX2_SLOWDOWN_LIMIT = 1.1


def _run(module, x, mode, autocast=False):
    def forward():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            return module(x)

    if mode == "inference":
        def run():
            with torch.no_grad():
                forward()
    else:
        def run():
            output = forward()[0]
            output.float().sum().backward()
    return run


def _ratio_row(what, r, peer, goal, met_if=None):
    ratio = r[peer]["median_ms"] / r["fastlstm"]["median_ms"]
    return (f"{what}: {peer} {cell(r[peer])} ms, fastlstm {cell(r['fastlstm'])} ms", f"{ratio:.2f}x", f">= {goal}x",
            ratio >= goal)


def bf16_rows(configs, repeats):
    rows = []
    for config, (seq_len, batch, input_size, hidden) in configs.items():
        theirs = torch.nn.LSTM(input_size, hidden)
        ours = fastlstm.LSTM(input_size, hidden)
        ours.load_state_dict(theirs.state_dict())
        theirs_bf16, ours_bf16 = torch.nn.LSTM(input_size, hidden).bfloat16(), fastlstm.LSTM(input_size, hidden)
        theirs_bf16.load_state_dict(theirs.state_dict())
        ours_bf16.load_state_dict(theirs.state_dict())
        ours_bf16.bfloat16()
        shape = (seq_len, batch, input_size, hidden)
        for mode in ("inference", "training"):
            x = torch.randn(seq_len, batch, input_size, requires_grad=mode == "training")
            x_bf16 = x.detach().bfloat16().requires_grad_(mode == "training")
            r = measure({"torch.nn.LSTM bf16": _run(theirs_bf16, x_bf16, mode),
                         "fastlstm": _run(ours_bf16, x_bf16, mode)}, repeats)
            rows.append(_ratio_row(f"bf16 {config} {shape} {mode}, vs torch.nn.LSTM bf16", r, "torch.nn.LSTM bf16",
                                   RATIO_GOAL))
            if config in ("C1", "C2"):
                r = measure({"torch.nn.LSTM autocast": _run(theirs, x, mode, autocast=True),
                             "fastlstm": _run(ours, x, mode, autocast=True)}, repeats)
                rows.append(_ratio_row(f"autocast bf16 {config} {mode}, vs torch.nn.LSTM under autocast", r,
                                       "torch.nn.LSTM autocast", RATIO_GOAL))
            if config == "C1" and mode == "inference":
                r = measure({"fastlstm float32": _run(ours, x, mode), "fastlstm": _run(ours_bf16, x_bf16, mode)},
                            repeats)
                rows.append(_ratio_row(f"bf16 {config} inference, vs fastlstm float32", r, "fastlstm float32",
                                       BF16_OVER_FLOAT32_GOAL))
    return rows


def other_cell_rows(configs, repeats):
    if "C1" not in configs:
        return []
    seq_len, batch, input_size, hidden = configs["C1"]
    x = torch.randn(seq_len, batch, input_size)
    rows = []
    for name, make in (("GRU", lambda: fastlstm.GRU(input_size, hidden)),
                       ("LayerNormLSTM", lambda: fastlstm.LayerNormLSTM(input_size, hidden))):
        wide = make()
        narrow = make()
        narrow.load_state_dict(wide.state_dict())
        narrow.bfloat16()
        r = measure({f"{name} float32": _run(wide, x, "inference"),
                     "fastlstm": _run(narrow, x.bfloat16(), "inference")}, repeats)
        rows.append(_ratio_row(f"{name} bf16 C1 inference, vs its float32", r, f"{name} float32", OTHER_CELLS_GOAL))
    theirs = torch.nn.GRU(input_size, hidden).bfloat16()
    ours = fastlstm.GRU(input_size, hidden)
    ours.load_state_dict(theirs.state_dict())
    ours.bfloat16()
    r = measure({"torch.nn.GRU bf16": _run(theirs, x.bfloat16(), "inference"),
                 "fastlstm": _run(ours, x.bfloat16(), "inference")}, repeats)
    rows.append(_ratio_row("GRU bf16 C1 inference, vs torch.nn.GRU bf16", r, "torch.nn.GRU bf16", RATIO_GOAL))
    return rows


def error_rows(configs):
    """Max |output - float64| over one C2-sized call from the same bf16 weights and inputs, fastlstm and torch."""
    seq_len, batch, input_size, hidden = configs.get("C2", (100, 16, 256, 256))
    theirs = torch.nn.LSTM(input_size, hidden).bfloat16()
    ours = fastlstm.LSTM(input_size, hidden).bfloat16()
    ours.load_state_dict(theirs.state_dict())
    exact = torch.nn.LSTM(input_size, hidden).double()
    exact.load_state_dict({k: v.double() for k, v in theirs.state_dict().items()})
    x = torch.randn(seq_len, batch, input_size).bfloat16()
    with torch.no_grad():
        expected = exact(x.double())[0]
        errors = {label: (m(x)[0].double() - expected).abs().max().item() for label, m in
                  (("torch", theirs), ("fastlstm", ours))}
    return [(f"bf16 max error vs float64, C2 shape: torch.nn.LSTM {errors['torch']:.2e}, fastlstm "
             f"{errors['fastlstm']:.2e}", f"{errors['fastlstm'] / errors['torch']:.2f}x torch's", "<= 1.0x torch's",
             errors["fastlstm"] <= errors["torch"] * 1.0001)]


def _torch_quantized(module):
    """torch's quantize_dynamic of a torch.nn module (its entry swaps children only: the module goes in a
    Sequential; quantizing the bare module returns it in float, which an earlier version of this bench timed)."""
    quantized = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(module), {type(module)},
                                                       dtype=torch.qint8)[0]
    assert "quantized" in type(quantized).__module__, type(quantized)
    return quantized


def int8_rows(configs, repeats):
    """fastlstm's int8 LSTM against torch's quantize_dynamic LSTM (fbgemm) and ONNX Runtime's int8 model (its
    quantize_dynamic of the exported torch.nn.LSTM: DynamicQuantizeLSTM), C1 also against fastlstm's float32; then
    the int8 error against float32 of the three on one C2 call from the same weights."""
    from onnx_peer import onnxruntime_run

    rows = []
    for config, (seq_len, batch, input_size, hidden) in configs.items():
        if config not in ("C1", "C2", "C4"):
            continue
        lstm = torch.nn.LSTM(input_size, hidden)
        ours_float = fastlstm.LSTM(input_size, hidden)
        ours_float.load_state_dict(lstm.state_dict())
        ours = fastlstm.quantize_dynamic(ours_float)
        x = torch.randn(seq_len, batch, input_size)
        runs = {"torch int8": _run(_torch_quantized(lstm), x, "inference"), "fastlstm": _run(ours, x, "inference"),
                "ONNX Runtime int8": onnxruntime_run(lstm, x, quantized=True)}
        if config == "C1":
            runs["fastlstm float32"] = _run(ours_float, x, "inference")
        r = measure(runs, repeats)
        shape = (seq_len, batch, input_size, hidden)
        rows.append(_ratio_row(f"int8 dynamic {config} {shape} inference, vs torch quantize_dynamic", r, "torch int8",
                               INT8_GOAL))
        rows.append(_ratio_row(f"int8 dynamic {config} inference, vs ONNX Runtime's quantized model", r,
                               "ONNX Runtime int8", 1.0))
        if config == "C1":
            rows.append(_ratio_row("int8 dynamic C1 inference, vs fastlstm float32", r, "fastlstm float32",
                                   INT8_OVER_FLOAT32_GOAL))
    rows.append(int8_error_row(configs))
    return rows


def int8_error_row(configs):
    from onnx_peer import onnxruntime_run

    seq_len, batch, input_size, hidden = configs.get("C2", (100, 16, 256, 256))
    lstm = torch.nn.LSTM(input_size, hidden)
    x = torch.randn(seq_len, batch, input_size)
    with torch.no_grad():
        expected = lstm(x)[0]
        errors = {"torch": (_torch_quantized(lstm)(x)[0] - expected).abs().max().item(),
                  "fastlstm": (fastlstm.quantized.LSTM.from_float(lstm)(x)[0] - expected).abs().max().item(),
                  "ONNX Runtime": (torch.from_numpy(onnxruntime_run(lstm, x, quantized=True)()[0]) - expected)
                  .abs().max().item()}
    return (f"int8 max error vs float32, C2 shape: torch quantize_dynamic {errors['torch']:.2e}, ONNX Runtime "
            f"{errors['ONNX Runtime']:.2e}, fastlstm {errors['fastlstm']:.2e}",
            f"{errors['fastlstm'] / errors['torch']:.2f}x torch's", "<= 1.0x torch's",
            errors["fastlstm"] <= errors["torch"])


AVX2_SCRIPT = """
import json, sys, torch, fastlstm
sys.path.insert(0, {bench!r})
from timing import measure
seq_len, batch, input_size, hidden = {shape!r}
wide = fastlstm.LSTM(input_size, hidden)
narrow = fastlstm.LSTM(input_size, hidden)
narrow.load_state_dict(wide.state_dict())
narrow.bfloat16()
x = torch.randn(seq_len, batch, input_size)
def run(m, x):
    def go():
        with torch.no_grad():
            m(x)
    return go
int8 = fastlstm.quantize_dynamic(wide)
r = measure({{"float32": run(wide, x), "bf16": run(narrow, x.bfloat16()), "int8": run(int8, x)}}, {repeats})
print(json.dumps({{"level": fastlstm.cpu_capability()["level"], **r}}))
"""


def avx2_rows(configs, repeats):
    shape = configs.get("C2", (100, 16, 256, 256))
    environment = {**os.environ, "FASTLSTM_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                   "ATEN_CPU_CAPABILITY": "avx2"}
    script = AVX2_SCRIPT.format(bench=os.path.dirname(os.path.abspath(__file__)), shape=shape, repeats=repeats)
    result = json.loads(subprocess.run([sys.executable, "-c", script], env=environment, check=True,
                                       capture_output=True, text=True, timeout=900).stdout.splitlines()[-1])
    slowdown = result["bf16"]["median_ms"] / result["float32"]["median_ms"]
    return [(f"bf16 at the {result['level']} level (forced: simulated on this host), C2 inference: float32 "
             f"{cell(result['float32'])} ms, bf16 {cell(result['bf16'])} ms", f"{slowdown:.2f}x float32's time",
             f"<= {AVX2_SLOWDOWN_LIMIT}x", slowdown <= AVX2_SLOWDOWN_LIMIT),
            (f"int8 at the {result['level']} level (forced: simulated; float32 GEMMs of the int8 values there), C2 "
             f"inference: int8 {cell(result['int8'])} ms",
             f"{result['int8']['median_ms'] / result['float32']['median_ms']:.2f}x float32's time", "(none set)",
             None)]


def low_precision_rows(configs, repeats):
    return (bf16_rows(configs, repeats) + other_cell_rows(configs, repeats) + error_rows(configs)
            + int8_rows(configs, repeats) + avx2_rows(configs, repeats))


__all__ = ["low_precision_rows"]
