"""The three memory scenarios of the edge-case tests, one per process: prints the RSS growth (MB) after it.
Usage: python tests/memory_scenarios.py {fastlstm,torch} {big_then_small,random_shapes,huge_batch_inference}"""

import gc
import sys

import torch


def rss_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def make(kind, input_size, hidden_size):
    if kind == "torch":
        return torch.nn.LSTM(input_size, hidden_size)
    import fastlstm

    return fastlstm.LSTM(input_size, hidden_size)


def train_call(model, seq_len, batch):
    x = torch.randn(seq_len, batch, model.input_size, requires_grad=True)
    output, (h, c) = model(x)
    (output.sum() + h.sum() + c.sum()).backward()


def main(kind, scenario):
    torch.manual_seed(0)
    model = make(kind, 64, 128)
    # Warm-up at small sizes, so that the libraries' own one-time allocations are not counted.
    for _ in range(3):
        train_call(model, 16, 8)
        with torch.no_grad():
            model(torch.randn(16, 8, 64))
    gc.collect()
    before = rss_mb()
    if scenario == "big_then_small":
        train_call(model, 1000, 64)
        for _ in range(20):
            train_call(model, 16, 8)
    elif scenario == "random_shapes":
        generator = torch.Generator().manual_seed(1)
        for _ in range(200):
            seq_len = int(torch.randint(16, 257, (1,), generator=generator))
            batch = int(torch.randint(8, 65, (1,), generator=generator))
            train_call(model, seq_len, batch)
    elif scenario == "huge_batch_inference":
        with torch.no_grad():
            model(torch.randn(4, 16384, 64))
            for _ in range(20):
                model(torch.randn(16, 8, 64))
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")
    model.zero_grad(set_to_none=True)
    gc.collect()
    print(f"{rss_mb() - before:.1f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
