"""GPU benchmark, run by bench/gpu_run.sh on a lent GPU. CUDA-event timing, median of repeats, spread as
(max - min) / median. Tables (markdown) on stdout:
  1. LSTM: torch.nn.LSTM (cuDNN), fastlstm's cuDNN backend and its fused CUDA kernels; C1-C4, B4 (T=100, B=4,
     I=H=1024: latency-bound); inference and training.
  2. GRU: torch.nn.GRU (cuDNN) against fastlstm's fused kernels in both conventions (torch's, and TF's
     linear_before_reset=False, which cuDNN cannot run: its peer is the plain-torch reference).
  3. Layer-norm LSTM: the fused kernels against the same model in plain torch ops (reference.py), eager and with its
     step under torch.compile (haste's comparison).
  4. bfloat16: torch.nn.LSTM in bf16 and under autocast against fastlstm's.
  5. A sequence over 65,535 steps under backend="auto" (cuDNN fails there: pytorch/pytorch#133751) and
     swap_memory's peak device memory on a long sequence."""

import argparse
import statistics
import time

import torch

import fastlstm
from fastlstm import functional, reference, rnn, cells

LSTM_CONFIGS = {
    "C1": (100, 64, 512, 512), "C2": (100, 16, 256, 256), "C3": (50, 1, 128, 128), "C4": (200, 32, 128, 128),
    "B4": (100, 4, 1024, 1024),
}
REPEATS = 11
# bench/gpu_run.sh runs on CUDA; --rehearse runs every section on the CPU at tiny sizes (a check of the script, not
# a measurement).
DEVICE = "cuda"
LONG_STEPS = 70000


def synchronize():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def time_ms(run, repeats=None, inner=3):
    """Median and spread of `repeats` samples, each the mean of `inner` calls, after warm-up calls."""
    for _ in range(2):
        run()
    synchronize()
    samples = []
    for _ in range(repeats or REPEATS):
        if DEVICE == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(inner):
                run()
            end.record()
            torch.cuda.synchronize()
            samples.append(start.elapsed_time(end) / inner)
        else:
            start = time.perf_counter()
            for _ in range(inner):
                run()
            samples.append((time.perf_counter() - start) * 1e3 / inner)
    median = statistics.median(samples)
    return median, (max(samples) - min(samples)) / median


def fmt(result):
    if isinstance(result, str):
        return result
    median, spread = result
    return f"{median:.3f} ±{100 * spread:.0f}%"


def ratio(slower, faster):
    return "-" if isinstance(slower, str) or isinstance(faster, str) else f"{slower[0] / faster[0]:.2f}x"


def try_time(run):
    """time_ms(run), or what failed (a backend that cannot serve a row is a finding, not the end of the bench)."""
    try:
        return time_ms(run)
    except (RuntimeError, ValueError) as error:
        return f"fails: {str(error).splitlines()[0][:80]}"


def runner(call, leaves, mode):
    """A closure running `call()` for inference (no_grad) or training (forward + backward into `leaves`)."""
    def run():
        if mode == "inference":
            with torch.no_grad():
                call()
        else:
            out = call()
            out = out[0] if isinstance(out, tuple) else out
            torch.autograd.grad(out.float().sum(), leaves)
    return run


def lstm_rows():
    print("\n### LSTM (ms, median ±spread)")
    print("| config (T,B,I,H) | mode | torch.nn.LSTM | fastlstm cudnn | fastlstm fused | cudnn/torch | fused speed vs cuDNN |")
    print("|---|---|---|---|---|---|---|")
    for name, (seq_len, batch, input_size, hidden) in LSTM_CONFIGS.items():
        torch.manual_seed(0)
        modules = {"torch": torch.nn.LSTM(input_size, hidden).to(DEVICE)}
        for backend in ("cudnn", "fused"):
            modules[backend] = fastlstm.LSTM(input_size, hidden, backend=backend).to(DEVICE)
            modules[backend].load_state_dict(modules["torch"].state_dict())
        x = torch.randn(seq_len, batch, input_size, device=DEVICE, requires_grad=True)
        for mode in ("inference", "training"):
            t = {key: try_time(runner(lambda m=m: m(x), [x, *m.parameters()], mode)) for key, m in modules.items()}
            print(f"| {name} {(seq_len, batch, input_size, hidden)} | {mode} | {fmt(t['torch'])} | {fmt(t['cudnn'])} | "
                  f"{fmt(t['fused'])} | {ratio(t['torch'], t['cudnn'])} | {ratio(t['cudnn'], t['fused'])} |")


def gru_rows():
    print("\n### GRU (ms, median ±spread)")
    print("| config | mode | torch.nn.GRU | fused (torch's GRU) | fused vs torch | reference (TF's GRU) | "
          "fused (TF's GRU) | fused vs reference |")
    print("|---|---|---|---|---|---|---|---|")
    for name in ("C1", "C2", "C4"):
        seq_len, batch, input_size, hidden = LSTM_CONFIGS[name]
        torch.manual_seed(0)
        peer = torch.nn.GRU(input_size, hidden).to(DEVICE)
        weights = [peer.weight_ih_l0, peer.weight_hh_l0, peer.bias_ih_l0, peer.bias_hh_l0]
        x = torch.randn(seq_len, batch, input_size, device=DEVICE, requires_grad=True)
        h0 = torch.zeros(batch, hidden, device=DEVICE)
        for mode in ("inference", "training"):
            leaves = [x, *weights]
            t_torch = try_time(runner(lambda: peer(x), leaves, mode))
            t = {(backend, lbr): try_time(runner(
                lambda b=backend, l=lbr: functional.gru(x, h0, *weights, linear_before_reset=l, backend=b),
                leaves, mode)) for backend, lbr in (("fused", True), ("reference", False), ("fused", False))}
            print(f"| {name} | {mode} | {fmt(t_torch)} | {fmt(t['fused', True])} | "
                  f"{ratio(t_torch, t['fused', True])} | {fmt(t['reference', False])} | "
                  f"{fmt(t['fused', False])} | {ratio(t['reference', False], t['fused', False])} |")


def layer_norm_rows():
    print("\n### Layer-norm LSTM (haste's formulation: separate norms of W_ih x and W_hh h; ms, median ±spread)")
    print("| config | mode | plain torch ops | plain torch, step under torch.compile | fused | fused vs plain | "
          "fused vs compiled |")
    print("|---|---|---|---|---|---|---|")
    compiled_cell = torch.compile(reference.layer_norm_lstm_cell, fullgraph=True, dynamic=False)

    def compiled_sequence(x, h0, c0, w_ih, w_hh, bias, ln_ih, ln_hh, ln_cell_w, ln_cell_b):
        steps, h, c, outputs = x @ w_ih.t(), h0, c0, []
        for t in range(x.shape[0]):
            h, c = compiled_cell(None, h, c, w_ih, w_hh, bias, ln_ih, ln_hh, ln_cell_w, ln_cell_b,
                                 projected_x=steps[t])
            outputs.append(h)
        return torch.stack(outputs), h, c

    for name in ("C1", "C2"):
        seq_len, batch, input_size, hidden = LSTM_CONFIGS[name]
        torch.manual_seed(0)
        module = fastlstm.LayerNormLSTM(input_size, hidden, backend="fused").to(DEVICE)
        p = dict(module.named_parameters())
        weights = [p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"] + p["bias_hh_l0"]]
        ln = [p[k] for k in ("ln_ih_weight_l0", "ln_hh_weight_l0", "ln_cell_weight_l0", "ln_cell_bias_l0")] \
            if "ln_ih_weight_l0" in p else None
        if ln is None:
            print(f"(layer-norm parameter names: {sorted(p)}: bench needs updating)")
            return
        x = torch.randn(seq_len, batch, input_size, device=DEVICE, requires_grad=True)
        h0 = torch.zeros(batch, hidden, device=DEVICE)
        args = (x, h0, h0, *weights, *ln)
        leaves = [x, *module.parameters()]
        for mode in ("inference", "training"):
            t_plain = try_time(runner(lambda: reference.layer_norm_lstm_sequence(*args), leaves, mode))
            t_compiled = try_time(runner(lambda: compiled_sequence(*args), leaves, mode))
            t_fused = try_time(runner(lambda: module(x), leaves, mode))
            print(f"| {name} | {mode} | {fmt(t_plain)} | {fmt(t_compiled)} | {fmt(t_fused)} | "
                  f"{ratio(t_plain, t_fused)} | {ratio(t_compiled, t_fused)} |")


def bf16_rows():
    print("\n### bfloat16 (ms, median ±spread; fastlstm on CUDA computes bf16 in float32 between casts)")
    print("| config | mode | torch.nn.LSTM f32 | torch.nn.LSTM bf16 | torch under autocast | fastlstm bf16 (auto) | "
          "fastlstm bf16 (fused) | fastlstm under autocast |")
    print("|---|---|---|---|---|---|---|---|")
    for name in ("C1", "C2"):
        seq_len, batch, input_size, hidden = LSTM_CONFIGS[name]
        torch.manual_seed(0)
        peer = torch.nn.LSTM(input_size, hidden).to(DEVICE)
        ours = fastlstm.LSTM(input_size, hidden).to(DEVICE)
        ours.load_state_dict(peer.state_dict())
        ours_fused = fastlstm.LSTM(input_size, hidden, backend="fused").to(DEVICE).bfloat16()
        ours_fused.load_state_dict(peer.state_dict())
        peer16 = torch.nn.LSTM(input_size, hidden).to(DEVICE).bfloat16()
        peer16.load_state_dict(peer.state_dict())
        ours16 = fastlstm.LSTM(input_size, hidden).to(DEVICE).bfloat16()
        ours16.load_state_dict(peer.state_dict())
        x = torch.randn(seq_len, batch, input_size, device=DEVICE, requires_grad=True)
        x16 = x.detach().bfloat16().requires_grad_()

        def autocast(m):
            def call():
                with torch.autocast(DEVICE, dtype=torch.bfloat16):
                    return m(x)
            return call
        for mode in ("inference", "training"):
            row = []
            for call, leaves in ((lambda: peer(x), [x, *peer.parameters()]),
                                 (lambda: peer16(x16), [x16, *peer16.parameters()]),
                                 (autocast(peer), [x, *peer.parameters()]),
                                 (lambda: ours16(x16), [x16, *ours16.parameters()]),
                                 (lambda: ours_fused(x16), [x16, *ours_fused.parameters()]),
                                 (autocast(ours), [x, *ours.parameters()])):
                row.append(fmt(try_time(runner(call, leaves, mode))))
            print(f"| {name} | {mode} | " + " | ".join(row) + " |")


def long_sequence_and_swap_rows():
    print(f"\n### Over 65,535 steps (T={LONG_STEPS}, B=2, I=H=32), forward + backward once")
    x = torch.randn(LONG_STEPS, 2, 32, device=DEVICE, requires_grad=True)
    for label, module in (("torch.nn.LSTM", torch.nn.LSTM(32, 32).to(DEVICE)),
                          ("fastlstm.LSTM backend='auto'", fastlstm.LSTM(32, 32).to(DEVICE))):
        synchronize()
        start = time.perf_counter()
        try:
            out, _ = module(x)
            out.sum().backward()
            synchronize()
            backend = getattr(module, "last_backend", "cuDNN")
            print(f"- {label}: ran ({backend}), {time.perf_counter() - start:.2f} s, finite: "
                  f"{bool(torch.isfinite(out).all())}")
        except RuntimeError as error:
            print(f"- {label}: fails: {str(error).splitlines()[0][:160]}")

    if DEVICE != "cuda":
        return
    print("\n### swap_memory (dynamic_rnn, BasicLSTMCell 64->256, B=16, T=4000): device memory, MB")
    print("| swap_memory | held between forward and backward (less the output) | peak over forward + backward |")
    print("|---|---|---|")
    cell = cells.BasicLSTMCell(64, 256).to(DEVICE)
    x = torch.randn(16, 4000, 64, device=DEVICE, requires_grad=True)
    for swap in (False, True):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        out, _ = rnn.dynamic_rnn(cell, x, swap_memory=swap)
        torch.cuda.synchronize()
        held = torch.cuda.memory_allocated() - base - out.nbytes
        torch.autograd.grad(out.sum(), [x, *cell.parameters()])
        torch.cuda.synchronize()
        print(f"| {swap} | {held / 1e6:.1f} | {(torch.cuda.max_memory_allocated() - base) / 1e6:.1f} |")
        del out


SECTIONS = {"lstm": lstm_rows, "gru": gru_rows, "layer_norm": layer_norm_rows, "bf16": bf16_rows,
            "long": long_sequence_and_swap_rows}


def main():
    global REPEATS, DEVICE, LONG_STEPS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated from {list(SECTIONS)}")
    parser.add_argument("--rehearse", action="store_true", help="every section on the CPU at tiny sizes, 1 repeat")
    args = parser.parse_args()
    REPEATS = args.repeats
    if args.rehearse:
        DEVICE, REPEATS, LONG_STEPS = "cpu", 1, 50
        for name, (seq_len, batch, input_size, hidden) in LSTM_CONFIGS.items():
            LSTM_CONFIGS[name] = (min(seq_len, 6), min(batch, 3), min(input_size, 16), min(hidden, 32))
        print("REHEARSAL on the CPU at tiny sizes: not a measurement")
        print(f"torch {torch.__version__}")
        return run_sections(args.sections)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"cuDNN {torch.backends.cudnn.version()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    run_sections(args.sections)


def run_sections(sections):
    for section in sections.split(","):
        start = time.perf_counter()
        try:
            SECTIONS[section]()
        except Exception as error:  # one broken section must not hide the others' numbers
            print(f"\nsection {section} failed: {type(error).__name__}: {error}")
        print(f"({section}: {time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
