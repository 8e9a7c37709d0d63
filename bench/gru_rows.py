"""The GRU's goal rows (issue 13): fastlstm.GRU against torch.nn.GRU (oneDNN) at the C1-C4 shapes, inference and
training (>= 1.2x), against ONNX Runtime's GRU (torch.nn.GRU exported; >= 1.0x, inference), the single step
(fastlstm.GRUCell vs torch.nn.GRUCell, no_grad, B=1 H=128, >= 3x) and variable lengths (a PackedSequence at the C4
shape, lengths U[T/2, T], forward + backward, >= 4x)."""

import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import fastlstm
from onnx_peer import onnxruntime_run
from timing import cell, measure

RATIO_GOAL = 1.2
ONNXRUNTIME_GOAL = 1.0
SINGLE_STEP_GOAL = 3.0
PACKED_GOAL = 4.0


def _run(module, x, mode):
    if mode == "inference":
        def run():
            with torch.no_grad():
                module(x)
    else:
        def run():
            output, h_n = module(x)
            (output.sum() + h_n.sum()).backward()
    return run


def ratio_rows(configs, repeats, with_onnxruntime=True):
    rows = []
    for config, (seq_len, batch, input_size, hidden) in configs.items():
        theirs = torch.nn.GRU(input_size, hidden)
        ours = fastlstm.GRU(input_size, hidden, backend="fused")
        ours.load_state_dict(theirs.state_dict())
        for mode in ("inference", "training"):
            x = torch.randn(seq_len, batch, input_size, requires_grad=mode == "training")
            runs = {"torch": _run(theirs, x, mode), "fastlstm": _run(ours, x, mode)}
            if mode == "inference" and with_onnxruntime:
                runs["onnxruntime"] = onnxruntime_run(theirs, x)
            r = measure(runs, repeats)
            ratio = r["torch"]["median_ms"] / r["fastlstm"]["median_ms"]
            shape = (seq_len, batch, input_size, hidden)
            rows.append((f"fastlstm.GRU vs torch.nn.GRU, {config} {shape} {mode}: torch {cell(r['torch'])} ms, "
                         f"fastlstm {cell(r['fastlstm'])} ms", f"{ratio:.2f}x", f">= {RATIO_GOAL}x",
                         ratio >= RATIO_GOAL))
            if "onnxruntime" in r:
                ratio = r["onnxruntime"]["median_ms"] / r["fastlstm"]["median_ms"]
                rows.append((f"fastlstm.GRU vs ONNX Runtime's GRU, {config} {mode}: {cell(r['onnxruntime'])} ms",
                             f"{ratio:.2f}x", f">= {ONNXRUNTIME_GOAL}x", ratio >= ONNXRUNTIME_GOAL))
    return rows


def single_step_rows(repeats, batch=1, hidden=128):
    theirs = torch.nn.GRUCell(hidden, hidden)
    ours = fastlstm.GRUCell(hidden, hidden)
    ours.load_state_dict(theirs.state_dict())
    x, h = torch.randn(batch, hidden), torch.zeros(batch, hidden)

    def step(module):
        def run():
            with torch.no_grad():
                module(x, h)
        return run

    r = measure({"torch": step(theirs), "fastlstm": step(ours)}, repeats)
    ratio = r["torch"]["median_ms"] / r["fastlstm"]["median_ms"]
    return [(f"single step GRUCell, no_grad, B={batch} H={hidden}: torch {1e3 * r['torch']['median_ms']:.1f} us, "
             f"fastlstm {1e3 * r['fastlstm']['median_ms']:.1f} us", f"{ratio:.2f}x", f">= {SINGLE_STEP_GOAL}x",
             ratio >= SINGLE_STEP_GOAL)]


def packed_rows(repeats, seq_len=200, batch=32, input_size=128, hidden=128):
    theirs = torch.nn.GRU(input_size, hidden)
    ours = fastlstm.GRU(input_size, hidden)
    ours.load_state_dict(theirs.state_dict())
    lengths = torch.randint(seq_len // 2, seq_len + 1, (batch,), generator=torch.Generator().manual_seed(0))
    x = torch.randn(seq_len, batch, input_size)
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)  # built once: the rows time the GRUs
    packed = PackedSequence(packed.data.requires_grad_(), packed.batch_sizes, packed.sorted_indices,
                            packed.unsorted_indices)

    def run(module):
        def go():
            output, h_n = module(packed)
            (output.data.sum() + h_n.sum()).backward()
        return go

    r = measure({"torch": run(theirs), "fastlstm": run(ours)}, repeats)
    ratio = r["torch"]["median_ms"] / r["fastlstm"]["median_ms"]
    return [(f"GRU on a PackedSequence, lengths U[{seq_len // 2}, {seq_len}], C4 shape, fwd+bwd: torch "
             f"{cell(r['torch'])} ms, fastlstm {cell(r['fastlstm'])} ms", f"{ratio:.2f}x", f">= {PACKED_GOAL}x",
             ratio >= PACKED_GOAL)]


def gru_rows(configs, repeats):
    return ratio_rows(configs, repeats) + single_step_rows(repeats) + packed_rows(repeats)


__all__ = ["gru_rows"]
