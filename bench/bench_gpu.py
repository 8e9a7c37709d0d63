"""GPU benchmark: fastlstm's CUDA kernels ("fused") and its cuDNN backend against torch.nn.LSTM (cuDNN) on C1-C4,
batch 4 and H=1024; inference and training, CUDA-event timing, median of repeats. Run by bench/gpu_run.sh."""

import argparse
import statistics

import torch

import fastlstm

CONFIGS = {
    "C1": (100, 64, 512, 512), "C2": (100, 16, 256, 256), "C3": (50, 1, 128, 128), "C4": (200, 32, 128, 128),
    "B4": (100, 4, 512, 512), "H1024": (100, 64, 1024, 1024),
}


def time_ms(run, repeats, inner=5):
    for _ in range(3):
        run()
    samples = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(inner):
            run()
        end.record()
        torch.cuda.synchronize()
        samples.append(start.elapsed_time(end) / inner)
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=11)
    args = parser.parse_args()
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"cuDNN {torch.backends.cudnn.version()}")
    print("| config (T,B,I,H) | mode | torch.nn.LSTM ms | fastlstm cudnn ms | fastlstm fused ms | fused / cuDNN speed |")
    print("|---|---|---|---|---|---|")
    for name, (seq_len, batch, input_size, hidden) in CONFIGS.items():
        torch_lstm = torch.nn.LSTM(input_size, hidden).cuda()
        modules = {"torch": torch_lstm}
        for backend in ("cudnn", "fused"):
            modules[backend] = fastlstm.LSTM(input_size, hidden, backend=backend).cuda()
            modules[backend].load_state_dict(torch_lstm.state_dict())
        x = torch.randn(seq_len, batch, input_size, device="cuda", requires_grad=True)
        for mode in ("inference", "training"):
            def run_of(module):
                def run():
                    if mode == "inference":
                        with torch.no_grad():
                            module(x)
                    else:
                        output, _ = module(x)
                        output.sum().backward()
                return run
            t = {key: time_ms(run_of(m), args.repeats) for key, m in modules.items()}
            print(f"| {name} {(seq_len, batch, input_size, hidden)} | {mode} | {t['torch']:.3f} | {t['cudnn']:.3f} | "
                  f"{t['fused']:.3f} | {t['torch'] / t['fused']:.2f}x |")


if __name__ == "__main__":
    main()
