"""dynamic_rnn on the fused op against the step loops, at C2 (T, B, I, H) = (100, 16, 256, 256) by default.

Three ways to run one BasicLSTMCell over a sequence: the fused whole-sequence op (what dynamic_rnn does for the cells
the op covers), a Python loop over the fused single-step op (a subclass that overrides forward), and a Python loop
over the graph-composed cell (a non-tanh-identical activation object forces the composed path)."""

import argparse

import torch

from fastlstm import cells, rnn
from timing import cell, measure


class StepLoopCell(cells.BasicLSTMCell):
    """Same math; overriding forward takes the cell off the fused whole-sequence path (one fused op per step)."""

    def forward(self, inputs, state):
        return super().forward(inputs, state)


def composed_tanh(x):
    return torch.tanh(x)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shape", type=int, nargs=4, default=[100, 16, 256, 256], metavar=("T", "B", "I", "H"))
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    seq_len, batch, input_size, hidden = args.shape
    fused = cells.BasicLSTMCell(input_size, hidden)
    step_loop = StepLoopCell(input_size, hidden)
    composed = cells.BasicLSTMCell(input_size, hidden, activation=composed_tanh)
    for other in (step_loop, composed):
        other.load_state_dict(fused.state_dict())
    assert rnn.uses_fused_op(fused) and not rnn.uses_fused_op(step_loop) and not rnn.uses_fused_op(composed)
    x = torch.randn(batch, seq_len, input_size, requires_grad=True)

    def run(c, train):
        def go():
            if train:
                out, state = rnn.dynamic_rnn(c, x)
                (out.sum() + state.c.sum()).backward()
            else:
                with torch.no_grad():
                    rnn.dynamic_rnn(c, x)
        return go

    print(f"dynamic_rnn(BasicLSTMCell), (T, B, I, H) = {tuple(args.shape)}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print("| mode | fused sequence op ms | loop of fused step ops ms | loop of composed cell ms | "
          "speed-up vs step-op loop | speed-up vs composed loop |")
    print("|---|---|---|---|---|---|")
    for mode in ("inference", "training"):
        r = measure({name: run(c, mode == "training") for name, c in
                     (("fused", fused), ("step", step_loop), ("composed", composed))}, args.repeats)
        print(f"| {mode} | {cell(r['fused'])} | {cell(r['step'])} | {cell(r['composed'])} | "
              f"{r['step']['median_ms'] / r['fused']['median_ms']:.2f}x | "
              f"{r['composed']['median_ms'] / r['fused']['median_ms']:.2f}x |")


if __name__ == "__main__":
    main()
