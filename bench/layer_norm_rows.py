"""The layer-normalised LSTM's goal rows (issue 12), in both formulations:
- fused LN-LSTM vs fastlstm's own fused plain LSTM (<= 1.3x its time), C2 and C4, inference and training: haste's
  formulation as fastlstm.LayerNormLSTM against fastlstm.LSTM; TF's as dynamic_rnn(LayerNormBasicLSTMCell) against
  dynamic_rnn(BasicLSTMCell);
- fused vs graph-composed, same formulation (>= 3x), C2 and C4, training;
- fastlstm.LayerNormLSTM vs the best PyTorch LN-LSTM a user can write (>= 3x), C2 training: the same cell written in
  torch ops, as a TorchScript'd sequence loop and as a torch.compile'd cell in a Python loop; the faster one counts."""

import torch
from torch import nn

import fastlstm
from fastlstm import cells, rnn
from timing import cell, measure

SHAPES = {"C2": (100, 16, 256, 256), "C4": (200, 32, 128, 128)}
PLAIN_RATIO_GOAL = 1.3
COMPOSED_GOAL = 3.0
USER_GOAL = 3.0


def composed_tanh(x):
    return torch.tanh(x)  # not torch.tanh itself: the cell then runs its graph-composed step loop


class UserLayerNormLSTM(nn.Module):
    """A layer-normalised LSTM as a PyTorch user writes it (haste's formulation, torch ops), one layer."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.ih = nn.Linear(input_size, 4 * hidden_size, bias=False)
        self.hh = nn.Linear(hidden_size, 4 * hidden_size)
        self.ln_ih, self.ln_hh = nn.LayerNorm(4 * hidden_size, bias=False), nn.LayerNorm(4 * hidden_size, bias=False)
        self.ln_cell = nn.LayerNorm(hidden_size)

    def cell(self, wx, h, c):
        gates = self.ln_ih(wx) + self.ln_hh(self.hh(h))
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(self.ln_cell(c)), c

    def forward(self, x, h, c):
        wx = self.ih(x)
        outputs = []
        for t in range(x.shape[0]):
            h, c = self.cell(wx[t], h, c)
            outputs.append(h)
        return torch.stack(outputs), h, c


class CompiledCellLSTM(UserLayerNormLSTM):
    """The same, its cell compiled by torch.compile (the loop stays in Python: compiling the unrolled loop of 100+
    steps takes minutes)."""

    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.cell = torch.compile(self.cell, dynamic=False)


def _train(run):
    def step():
        output, h, c = run()
        (output.sum() + h.sum() + c.sum()).backward()
    return step


def _infer(run):
    def step():
        with torch.no_grad():
            run()
    return step


def _haste_modules(input_size, hidden):
    plain = fastlstm.LSTM(input_size, hidden, backend="fused")
    fused = fastlstm.LayerNormLSTM(input_size, hidden, backend="fused")
    composed = fastlstm.LayerNormLSTM(input_size, hidden, backend="reference")
    composed.load_state_dict(fused.state_dict())
    return plain, fused, composed


def _module_run(module, x):
    def run():
        output, (h, c) = module(x)
        return output, h, c
    return run


def _driver_run(tf_cell, x):
    def run():
        output, state = rnn.dynamic_rnn(tf_cell, x, time_major=True)
        return output, state.h, state.c
    return run


def _ratio_rows(label, shape_name, shape, mode, r, plain, fused, composed):
    rows = []
    ratio = r[fused]["median_ms"] / r[plain]["median_ms"]
    rows.append((f"{label}, {shape_name} {shape} {mode}: fused {cell(r[fused])} ms vs plain fused LSTM "
                 f"{cell(r[plain])} ms (time ratio)", f"{ratio:.2f}x", f"<= {PLAIN_RATIO_GOAL}x",
                 ratio <= PLAIN_RATIO_GOAL))
    if composed in r:
        speedup = r[composed]["median_ms"] / r[fused]["median_ms"]
        rows.append((f"{label}, {shape_name} {mode}: fused vs graph-composed {cell(r[composed])} ms",
                     f"{speedup:.2f}x", f">= {COMPOSED_GOAL}x", speedup >= COMPOSED_GOAL))
    return rows


def layer_norm_rows(repeats):
    torch.manual_seed(0)
    rows = []
    for shape_name, shape in SHAPES.items():
        seq_len, batch, input_size, hidden = shape
        plain, fused, composed = _haste_modules(input_size, hidden)
        tf_plain = cells.BasicLSTMCell(input_size, hidden)
        tf_fused = cells.LayerNormBasicLSTMCell(input_size, hidden)
        tf_composed = cells.LayerNormBasicLSTMCell(input_size, hidden, activation=composed_tanh)
        tf_composed.load_state_dict(tf_fused.state_dict())
        assert rnn.uses_fused_op(tf_fused) and not rnn.uses_fused_op(tf_composed)
        for mode in ("inference", "training"):
            x = torch.randn(seq_len, batch, input_size, requires_grad=mode == "training")
            wrap = _train if mode == "training" else _infer
            runs = {"plain": wrap(_module_run(plain, x)), "haste": wrap(_module_run(fused, x)),
                    "tf plain": wrap(_driver_run(tf_plain, x)), "tf": wrap(_driver_run(tf_fused, x))}
            if mode == "training":
                runs["haste composed"] = wrap(_module_run(composed, x))
                runs["tf composed"] = wrap(_driver_run(tf_composed, x))
            r = measure(runs, repeats)
            rows += _ratio_rows("LayerNormLSTM (haste's formulation)", shape_name, shape, mode, r, "plain", "haste",
                                "haste composed")
            rows += _ratio_rows("dynamic_rnn(LayerNormBasicLSTMCell) (TF's)", shape_name, shape, mode, r,
                                "tf plain", "tf", "tf composed")
    rows += user_loop_rows(repeats)
    return rows


def user_loop_rows(repeats):
    seq_len, batch, input_size, hidden = SHAPES["C2"]
    torch.manual_seed(0)
    ours = fastlstm.LayerNormLSTM(input_size, hidden, backend="fused")
    scripted = torch.jit.script(UserLayerNormLSTM(input_size, hidden))
    compiled = CompiledCellLSTM(input_size, hidden)
    x = torch.randn(seq_len, batch, input_size, requires_grad=True)
    h0 = torch.zeros(batch, hidden)
    runs = {"fastlstm": _train(_module_run(ours, x)), "torchscript": _train(lambda: scripted(x, h0, h0)),
            "compiled": _train(lambda: compiled(x, h0, h0))}
    r = measure(runs, repeats)
    best = min(("torchscript", "compiled"), key=lambda k: r[k]["median_ms"])
    speedup = r[best]["median_ms"] / r["fastlstm"]["median_ms"]
    return [(f"fastlstm.LayerNormLSTM {cell(r['fastlstm'])} ms vs the best user-written PyTorch LN-LSTM, C2 training "
             f"(TorchScript loop {cell(r['torchscript'])} ms, torch.compile'd cell {cell(r['compiled'])} ms)",
             f"{speedup:.2f}x", f">= {USER_GOAL}x", speedup >= USER_GOAL)]


__all__ = ["layer_norm_rows"]
