"""One entry point per LSTM granularity; each picks a backend and runs it.

Backends: "fused" (fastlstm's kernels, torch.ops.fastlstm.*), "reference" (plain torch ops, see reference.py), or
"auto": the fused kernels whenever they cover the request.
"""

import torch

from . import reference
from ._ops import ops

BACKENDS = ("auto", "fused", "reference")
FUSED_DTYPES = (torch.float32, torch.float64)
FUSED_DEVICES = ("cpu",)


def _fused_unsupported(x, w_hr):
    """Why the fused kernels cannot serve this request, or None when they can."""
    if w_hr is not None:
        return "projections (proj_size > 0)"
    if x.dtype not in FUSED_DTYPES:
        return f"dtype {x.dtype} (fused kernels run float32 and float64)"
    if x.device.type not in FUSED_DEVICES:
        return f"device {x.device.type} (fused kernels run on {', '.join(FUSED_DEVICES)})"
    return None


def choose_backend(backend, x, w_hr=None):
    """The backend that runs `x` with these options: "fused" or "reference"."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "reference":
        return "reference"
    missing = _fused_unsupported(x, w_hr)
    if missing is None:
        return "fused"
    if backend == "fused":
        raise ValueError(f"backend='fused' does not support {missing}; use backend='auto' or 'reference'")
    return "reference"


def _needs_workspace(*tensors):
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _call_fused(op, training, *args):
    """Calls a fused op. With no gradient to track it goes below the autograd layer: torch.library's autograd kernel
    is Python and costs ~3.5 us a call (measured), as much as a whole single step at batch 1, H=128."""
    if training or torch.compiler.is_compiling():
        return op(*args)
    with torch._C._AutoDispatchBelowAutograd():
        return op(*args)


def lstm(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, *, w_hr=None, w_peephole=None, sequence_lengths=None,
         forget_bias=0.0, cell_clip=0.0, backend="auto"):
    """One layer, one direction, the whole sequence.

    x [T, B, I] (time-major), h0 [B, H_out], c0 [B, H], torch.nn.LSTM's weights of one layer and direction,
    w_peephole [3, H], sequence_lengths [B] int64. Returns (output [T, B, H_out], h_n [B, H_out], c_n [B, H]).
    """
    if choose_backend(backend, x, w_hr) == "reference":
        return reference.lstm_sequence(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr=w_hr, w_peephole=w_peephole,
                                       sequence_lengths=sequence_lengths, forget_bias=forget_bias,
                                       cell_clip=cell_clip)
    training = _needs_workspace(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peephole)
    output, h_n, c_n, _ = _call_fused(ops.forward.default, training, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peephole,
                                      sequence_lengths, float(forget_bias), float(cell_clip), training)
    return output, h_n, c_n


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, *, w_peephole=None, forget_bias=0.0, cell_clip=0.0,
              backend="auto"):
    """One step (TF's LSTMBlockCell). x [B, I], h/c [B, H] -> (h_new, c_new)."""
    if choose_backend(backend, x) == "reference":
        return reference.lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh, w_peephole=w_peephole,
                                   forget_bias=forget_bias, cell_clip=cell_clip)
    training = _needs_workspace(x, h, c, w_ih, w_hh, b_ih, b_hh, w_peephole)
    h_new, c_new, _ = _call_fused(ops.cell_forward.default, training, x, h, c, w_ih, w_hh, b_ih, b_hh, w_peephole,
                                  float(forget_bias), float(cell_clip), training)
    return h_new, c_new
