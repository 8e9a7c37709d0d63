"""What the benchmark ran on: the CPU, its instruction-set level (fastlstm's and torch's dispatch levels), its
sgemm rate, and the GEMM engines fastlstm measured fastest. Printed with every run: the speed of every row depends
on it, and the CPU model changes from machine to machine."""

import platform

import torch

import fastlstm
from timing import measure


def cpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    wanted = ["avx2", "fma", "avx512f", "avx512_bf16", "amx_tile"]
                    return " ".join(flag for flag in wanted if flag in flags)
    except OSError:
        pass
    return "?"


def sgemm_rate(repeats=7):
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    r = measure({"sgemm": lambda: torch.mm(a, b)}, repeats)
    return 2 * 2048**3 / (r["sgemm"]["median_ms"] * 1e-3) / 1e9


def capability():
    """fastlstm.cpu_capability(), or what a build from before the ISA dispatch can say."""
    if hasattr(fastlstm, "cpu_capability"):
        return fastlstm.cpu_capability()
    return {"level": "native (no dispatch)", "supported": ["native"], "gemm": fastlstm._C.gemm_engine(),
            "gemm_choices": []}


def describe():
    info = capability()
    return {
        "cpu": cpu_model(),
        "flags": cpu_flags(),
        "fastlstm_level": info["level"],
        "fastlstm_levels": info["supported"],
        "torch_level": torch.backends.cpu.get_cpu_capability(),
        "gemm": info["gemm"],
        "sgemm_gflops": sgemm_rate(),
        "threads": torch.get_num_threads(),
    }


def print_host(host):
    print(f"host: {host['cpu']} [{host['flags']}], {host['threads']} threads; fastlstm ISA level {host['fastlstm_level']}"
          f" (of {', '.join(host['fastlstm_levels'])}), torch's {host['torch_level']}; GEMM engine {host['gemm']}; "
          f"torch.mm sgemm 2048^3: {host['sgemm_gflops']:.0f} GFLOP/s")


def gemm_choices():
    return dict(capability()["gemm_choices"])
