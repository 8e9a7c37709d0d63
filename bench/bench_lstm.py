"""fastlstm.LSTM against torch.nn.LSTM (and fastlstm's own reference path), same run, same threads.

Each measurement is the median of --repeats timed runs (after warm-up), the implementations interleaved round by
round so that background load hits them alike; the spread shown is the interquartile range in percent of the
median. A ratio is peer time / fastlstm time: above 1 means fastlstm is faster.
"""

import argparse
import json
import platform
from datetime import datetime, timezone
from pathlib import Path

import torch
from tqdm import tqdm

import fastlstm
from targets import all_rows, print_goal_table
from timing import cell, measure

CONFIGS = {  # (T, B, I, H)
    "C1": (100, 64, 512, 512),
    "C2": (100, 16, 256, 256),
    "C3": (50, 1, 128, 128),
    "C4": (200, 32, 128, 128),
}


def make_modules(input_size, hidden_size):
    torch_lstm = torch.nn.LSTM(input_size, hidden_size)
    fused = fastlstm.LSTM(input_size, hidden_size, backend="fused")
    reference = fastlstm.LSTM(input_size, hidden_size, backend="reference")
    fused.load_state_dict(torch_lstm.state_dict())
    reference.load_state_dict(torch_lstm.state_dict())
    return {"torch.nn.LSTM": torch_lstm, "fastlstm": fused, "fastlstm reference path": reference}


def step_function(module, x, mode):
    if mode == "inference":
        def run():
            with torch.no_grad():
                module(x)
    else:
        def run():
            output, (h_n, c_n) = module(x)
            (output.sum() + h_n.sum() + c_n.sum()).backward()
    return run


def bench_config(shape, mode, repeats, skip, progress):
    seq_len, batch, input_size, hidden_size = shape
    modules = make_modules(input_size, hidden_size)
    x = torch.randn(seq_len, batch, input_size, requires_grad=mode == "training")
    runs = {label: step_function(m, x, mode) for label, m in modules.items() if label not in skip}
    return measure(runs, repeats, on_round=lambda: progress.update(1))


def print_table(results, modes, configs):
    print()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    header = ("| config (T,B,I,H) | mode | torch.nn.LSTM ms | fastlstm ms | reference path ms | "
              "ratio vs torch.nn.LSTM | ratio vs reference path |")
    print(header)
    print("|" + "---|" * 7)
    for config in configs:
        for mode in modes:
            r = results[config][mode]

            def time_of(label):
                return cell(r[label]) if label in r else "skipped"

            def ratio(label):
                return f"{r[label]['median_ms'] / r['fastlstm']['median_ms']:.2f}x" if label in r else "-"

            print(f"| {config} {CONFIGS[config]} | {mode} | {time_of('torch.nn.LSTM')} | {time_of('fastlstm')} | "
                  f"{time_of('fastlstm reference path')} | {ratio('torch.nn.LSTM')} | "
                  f"{ratio('fastlstm reference path')} |")
    print("\n± is the interquartile range in % of the median; ratio = peer time / fastlstm time (> 1: fastlstm faster)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--modes", nargs="+", default=["inference", "training"], choices=["inference", "training"])
    parser.add_argument("--repeats", type=int, default=15, help="timed samples per implementation (median taken)")
    parser.add_argument("--no-reference", action="store_true", help="skip the slow graph-composed reference path")
    parser.add_argument("--no-goals", action="store_true", help="skip the goal table (single step, lengths, TF, ...)")
    parser.add_argument("--json", type=Path, default=Path("bench/results/bench_lstm.json"))
    args = parser.parse_args()

    torch.manual_seed(0)
    skip = {"fastlstm reference path"} if args.no_reference else set()
    results = {}
    with tqdm(total=len(args.configs) * len(args.modes) * args.repeats, desc="bench", unit="round") as progress:
        for config in args.configs:
            results[config] = {}
            for mode in args.modes:
                progress.set_postfix_str(f"{config} {mode}")
                results[config][mode] = bench_config(CONFIGS[config], mode, args.repeats, skip, progress)
    print_table(results, args.modes, args.configs)
    goal_rows = []
    if not args.no_goals:
        configs = {name: CONFIGS[name] for name in args.configs}
        with tqdm(total=7, desc="goal rows", unit="group") as progress:
            goal_rows = all_rows(results, configs, args.repeats, progress)
        print_goal_table(goal_rows)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                                     "results": results, "goals": goal_rows}, indent=2))


if __name__ == "__main__":
    main()
