"""Interleaved timing: every candidate runs once per round, so that background load on these noisy 2-core machines
hits all of them alike. Each sample is the mean of enough back-to-back calls to last >= 20 ms; the result is the
median sample and the interquartile range in percent of it."""

import statistics
import time


def _timed(run, reps):
    start = time.perf_counter()
    for _ in range(reps):
        run()
    return (time.perf_counter() - start) / reps


def measure(runs, repeats, on_round=None, min_sample_s=0.02):
    """runs: {label: zero-argument callable}. Returns {label: {"median_ms", "iqr_pct", "samples"}}."""
    for run in runs.values():
        run()  # warm-up: allocations, JIT kernels, caches
    inner = {label: max(1, int(min_sample_s / max(_timed(run, 1), 1e-7))) for label, run in runs.items()}
    samples = {label: [] for label in runs}
    for _ in range(repeats):
        for label, run in runs.items():
            samples[label].append(_timed(run, inner[label]))
        if on_round is not None:
            on_round()
    return {label: summary(values) for label, values in samples.items()}


def summary(samples):
    median = statistics.median(samples)
    if len(samples) > 1:
        q1, _, q3 = statistics.quantiles(samples, n=4)
    else:
        q1 = q3 = median
    return {"median_ms": median * 1e3, "iqr_pct": 100 * (q3 - q1) / median, "samples": len(samples)}


def cell(result):
    return f"{result['median_ms']:.3f} ±{result['iqr_pct']:.0f}%"
