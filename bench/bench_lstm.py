"""fastlstm.LSTM against torch.nn.LSTM, ONNX Runtime's CPU LSTM (inference; torch.nn.LSTM exported to ONNX) and
fastlstm's own reference path, same run, same threads.

Each measurement is the median of --repeats timed runs (after warm-up), the implementations interleaved round by
round so that background load hits them alike; the spread shown is the interquartile range in percent of the
median. A ratio is peer time / fastlstm time: above 1 means fastlstm is faster.
"""

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path

import torch
from tqdm import tqdm

import fastlstm
from host import describe, gemm_choices, print_host
from onnx_peer import onnxruntime_run
from plot import write_png
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
    """Times the peers; returns (results, the GEMM engines fastlstm measured fastest for shapes new in this row)."""
    seq_len, batch, input_size, hidden_size = shape
    modules = make_modules(input_size, hidden_size)
    x = torch.randn(seq_len, batch, input_size, requires_grad=mode == "training")
    runs = {label: step_function(m, x, mode) for label, m in modules.items() if label not in skip}
    if mode == "inference" and "onnxruntime" not in skip:
        runs["onnxruntime"] = onnxruntime_run(modules["torch.nn.LSTM"], x)
    known = gemm_choices()
    result = measure(runs, repeats, on_round=lambda: progress.update(1))
    new = {shape: engine for shape, engine in gemm_choices().items() if shape not in known}
    return result, new


def print_table(results, modes, configs, host):
    print()
    print(f"torch {torch.__version__}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print_host(host)
    header = ("| config (T,B,I,H) | mode | torch.nn.LSTM ms | ONNX Runtime ms | fastlstm ms | reference path ms | "
              "vs torch.nn.LSTM | vs ONNX Runtime | vs reference path |")
    print(header)
    print("|" + "---|" * 9)
    for config in configs:
        for mode in modes:
            r = results[config][mode]

            def time_of(label):
                return cell(r[label]) if label in r else "-"

            def ratio(label):
                return f"{r[label]['median_ms'] / r['fastlstm']['median_ms']:.2f}x" if label in r else "-"

            print(f"| {config} {CONFIGS[config]} | {mode} | {time_of('torch.nn.LSTM')} | {time_of('onnxruntime')} | "
                  f"{time_of('fastlstm')} | {time_of('fastlstm reference path')} | {ratio('torch.nn.LSTM')} | "
                  f"{ratio('onnxruntime')} | {ratio('fastlstm reference path')} |")
    print("\n± is the interquartile range in % of the median; ratio = peer time / fastlstm time (> 1: fastlstm faster)")
    print("\nGEMM engines fastlstm measured fastest (shape class first seen in that row -> engine):")
    for config in configs:
        for mode in modes:
            engines = results[config][mode + " engines"]
            listed = "; ".join(f"{shape}: {engine}" for shape, engine in engines.items()) or "(classes seen before)"
            print(f"- {config} {mode}: {listed}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--modes", nargs="+", default=["inference", "training"], choices=["inference", "training"])
    parser.add_argument("--repeats", type=int, default=15, help="timed samples per implementation (median taken)")
    parser.add_argument("--no-reference", action="store_true", help="skip the slow graph-composed reference path")
    parser.add_argument("--no-onnxruntime", action="store_true", help="skip the ONNX Runtime peer")
    parser.add_argument("--no-goals", action="store_true", help="skip the goal table (single step, lengths, TF, ...)")
    parser.add_argument("--json", type=Path, default=Path("bench/results/bench_lstm.json"))
    args = parser.parse_args()

    torch.manual_seed(0)
    skip = {"fastlstm reference path"} if args.no_reference else set()
    if args.no_onnxruntime:
        skip.add("onnxruntime")
    host = describe()
    results = {}
    with tqdm(total=len(args.configs) * len(args.modes) * args.repeats, desc="bench", unit="round") as progress:
        for config in args.configs:
            results[config] = {}
            for mode in args.modes:
                progress.set_postfix_str(f"{config} {mode}")
                results[config][mode], results[config][mode + " engines"] = bench_config(
                    CONFIGS[config], mode, args.repeats, skip, progress)
    print_table(results, args.modes, args.configs, host)
    goal_rows = []
    if not args.no_goals:
        configs = {name: CONFIGS[name] for name in args.configs}
        with tqdm(total=10, desc="goal rows", unit="group") as progress:
            goal_rows = all_rows(results, configs, args.repeats, progress)
        print_goal_table(goal_rows)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    data = {"torch": torch.__version__, "host": host, "results": results, "goals": goal_rows}
    args.json.write_text(json.dumps(data, indent=2))
    # The picture of the ratio table, next to the JSON and as bench/latest.png (the one the README shows).
    for png in (args.json.with_suffix(".png"), Path(__file__).parent / "latest.png"):
        write_png(data, png)
    print(f"\nwrote {args.json}, {args.json.with_suffix('.png')} and bench/latest.png")


if __name__ == "__main__":
    main()
