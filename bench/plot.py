"""The bench's ratio table as a picture: per config (C1-C4) and mode (inference, training), fastlstm's speed-up over
each peer (torch.nn.LSTM, ONNX Runtime's LSTM; and the GRU's over torch.nn.GRU and ONNX Runtime's GRU, from the goal
rows), with each row's goal as a line. bench_lstm.py writes it next to its JSON and to bench/latest.png (the one the
README shows); run it alone to redraw from a JSON:

    python bench/plot.py bench/results/bench_lstm.json bench/latest.png
"""

import json
import re
import sys

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt  # noqa: E402

from targets import ONNXRUNTIME_GOAL, RATIO_GOALS  # noqa: E402

MODES = ("inference", "training")
SERIES = (  # (label, colour)
    ("LSTM vs torch.nn.LSTM", "#1f77b4"),
    ("LSTM vs ONNX Runtime", "#aec7e8"),
    ("GRU vs torch.nn.GRU", "#d62728"),
    ("GRU vs ONNX Runtime's GRU", "#ff9896"),
)
GRU_GOAL = 1.2


def _gru_ratios(goal_rows):
    """{(config, mode, peer): ratio} from the GRU's goal rows (gru_rows.py's wording)."""
    ratios = {}
    for what, measured, _, _ in goal_rows:
        found = re.match(r"fastlstm\.GRU vs (torch\.nn\.GRU|ONNX Runtime's GRU), (C\d)\b.*?(inference|training)", what)
        if found and measured.endswith("x"):
            peer = "torch" if found.group(1) == "torch.nn.GRU" else "onnxruntime"
            ratios[(found.group(2), found.group(3), peer)] = float(measured[:-1])
    return ratios


def ratios_of(data):
    """{config: {mode: {series label: ratio}}} from bench_lstm.py's JSON."""
    gru = _gru_ratios(data.get("goals", []))
    table = {}
    for config, modes in data["results"].items():
        for mode in MODES:
            r = modes.get(mode)
            if r is None:
                continue
            ours = r["fastlstm"]["median_ms"]
            row = {"LSTM vs torch.nn.LSTM": r["torch.nn.LSTM"]["median_ms"] / ours}
            if "onnxruntime" in r:
                row["LSTM vs ONNX Runtime"] = r["onnxruntime"]["median_ms"] / ours
            if (config, mode, "torch") in gru:
                row["GRU vs torch.nn.GRU"] = gru[(config, mode, "torch")]
            if (config, mode, "onnxruntime") in gru:
                row["GRU vs ONNX Runtime's GRU"] = gru[(config, mode, "onnxruntime")]
            table.setdefault(config, {})[mode] = row
    return table


def write_png(data, path):
    table = ratios_of(data)
    configs = list(table)
    figure, axes = plt.subplots(1, len(MODES), figsize=(12, 4.5), sharey=True)
    width = 0.8 / len(SERIES)
    for axis, mode in zip(axes, MODES):
        for k, (label, colour) in enumerate(SERIES):
            xs = [c + (k - (len(SERIES) - 1) / 2) * width for c in range(len(configs))]
            values = [table[config].get(mode, {}).get(label, 0.0) for config in configs]
            bars = axis.bar(xs, values, width, label=label, color=colour)
            for bar, value in zip(bars, values):
                if value:
                    axis.annotate(f"{value:.2f}", (bar.get_x() + bar.get_width() / 2, value), ha="center",
                                  va="bottom", fontsize=6, rotation=90)
        for c, config in enumerate(configs):  # the goals, over their config's bars
            left, right = c - 0.45, c + 0.45
            axis.hlines(RATIO_GOALS.get(config, 1.2), left, right, colors="black", linestyles="--", linewidth=1)
            if mode == "inference":
                axis.hlines(ONNXRUNTIME_GOAL, left, right, colors="grey", linestyles=":", linewidth=1)
        axis.axhline(1.0, color="grey", linewidth=0.5)
        axis.set_xticks(range(len(configs)), configs)
        axis.set_title(mode)
        axis.set_yscale("log")
        axis.set_ylabel("peer time / fastlstm time (> 1: fastlstm faster)")
    axes[0].legend(fontsize=7, loc="upper left")
    host = data.get("host", {})
    figure.suptitle(f"fastlstm vs peers, torch {data.get('torch', '?')}, {host.get('cpu', '')} "
                    f"[{host.get('flags', '')}; fastlstm level {host.get('fastlstm_level', '')}] -- dashed: the "
                    f"LSTM's goal vs torch (the GRU's: {GRU_GOAL}x), dotted: goal vs ONNX Runtime", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main():
    source, target = sys.argv[1:3]
    with open(source) as f:
        write_png(json.load(f), target)


if __name__ == "__main__":
    main()
