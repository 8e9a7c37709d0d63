"""Every CUDA op once, forward and backward, at tiny shapes (odd sizes, zero-length rows, peepholes, cell_clip, both
layer-norm formulations, both GRU conventions, float32 / float64 / bfloat16), for compute-sanitizer:
    compute-sanitizer --tool memcheck --error-exitcode 9 python tests/cuda_memcheck.py
(bench/gpu_run.sh runs it). Not a pytest file: under the sanitizer each CUDA call is slow, so it does no comparisons
(tests/test_cuda.py does those) and only has to touch every kernel path."""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from fastlstm import ops  # noqa: E402
from test_ops import make_inputs, fused_sequence, fused_cell  # noqa: E402
from test_gru import make_inputs as gru_inputs, run_op as run_gru  # noqa: E402
from test_layer_norm_ops import HASTE, TF, make_inputs as ln_inputs, run_op as run_ln  # noqa: E402


def cuda(tensors):
    return {k: (v.detach().cuda().requires_grad_() if v is not None else None) for k, v in tensors.items()}


def backward(outputs, inputs):
    leaves = [v for v in inputs.values() if v is not None]
    torch.autograd.grad([o.float().sum() for o in outputs], leaves, allow_unused=True)


def main():
    lengths = torch.tensor([5, 2, 0])
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        for peephole in (False, True):
            inputs = cuda({k: (v.to(dtype) if v is not None else None)
                           for k, v in make_inputs(5, 3, 4, 7, peephole=peephole).items()})
            options = dict(forget_bias=0.5, cell_clip=0.7 if peephole else 0.0)
            for seq_lengths in (None, lengths):
                backward(fused_sequence(inputs, seq_lengths, **options), inputs)
            backward(fused_cell(inputs, **options), inputs)
        print(f"lstm {dtype}: ok", flush=True)
    for separate, options in ((True, HASTE), (False, TF)):
        tensors, extras = ln_inputs(5, 3, 4, 9, separate=separate, mask=not separate, lengths=True)
        extras = dict(extras, g_mask=extras["g_mask"].cuda() if extras["g_mask"] is not None else None)
        tensors = cuda(tensors)
        backward(run_ln(tensors, extras, options), tensors)
    print("layer_norm_lstm: ok", flush=True)
    for linear_before_reset in (True, False):
        inputs = cuda(gru_inputs(5, 3, 4, 9))
        for seq_lengths in (None, lengths):
            backward(run_gru(inputs, seq_lengths, linear_before_reset=linear_before_reset), inputs)
    print("gru: ok", flush=True)
    torch.cuda.synchronize()
    print("every CUDA op ran under", os.environ.get("FASTLSTM_UNDER", "no sanitizer"))


if __name__ == "__main__":
    main()
