"""Loads the compiled ops (torch.ops.fastlstm.*) and registers their fake kernels. (Their autograd is C++:
csrc/autograd.cpp.)"""

import torch

from . import _C  # importing the library registers the ops with torch

ops = torch.ops.fastlstm

WORKSPACE_WIDTH = _C.WORKSPACE_WIDTH  # workspace per step and row, in units of H (csrc/lstm_params.h)
GRU_WORKSPACE_WIDTH = _C.GRU_WORKSPACE_WIDTH  # the GRU's (csrc/gru_params.h)


def layer_norm_workspace_width(hidden_size, separate):
    """The layer-normalised LSTM's workspace per step and row (csrc/layer_norm_lstm_params.h)."""
    units = _C.LAYER_NORM_WORKSPACE_UNITS_SEPARATE if separate else _C.LAYER_NORM_WORKSPACE_UNITS_JOINT
    return units * hidden_size + _C.LAYER_NORM_WORKSPACE_STATS


def _check_devices(op, x, sequence_lengths=None, **tensors):
    """The fake kernels also run when any one input is on the meta device (the dispatcher picks the Meta kernel
    then), so they repeat the C++ kernels' device checks: a stray meta tensor is an error, not uninitialised output.
    sequence_lengths may be on the CPU whatever x's device is."""
    for name, t in tensors.items():
        if t is not None and t.device != x.device:
            raise RuntimeError(f"{op}: expected {name} on x's device {x.device}, got {t.device}")
    if sequence_lengths is not None and sequence_lengths.device not in (x.device, torch.device("cpu")):
        raise RuntimeError(f"{op}: expected sequence_lengths on the CPU or on x's device {x.device}, "
                           f"got {sequence_lengths.device}")


LOW_PRECISION_DTYPES = (torch.bfloat16, torch.float16)


def _workspace(x, shape, training):
    """The forward ops' workspace: float32 for bfloat16 / float16 inputs (the gates and c are computed in float32,
    csrc/low_precision.h), else x's dtype."""
    dtype = torch.float32 if x.dtype in LOW_PRECISION_DTYPES else x.dtype
    return x.new_empty(shape if training else (0,), dtype=dtype)


# Widths: h0 / the output are R wide (proj_size with a projection w_hr, else hidden_size), c0 and the workspace H.
@torch.library.register_fake("fastlstm::forward")
def _forward_fake(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peephole=None, sequence_lengths=None, forget_bias=0.0,
                  cell_clip=0.0, training=True, tf_layout=False, w_hr=None):
    _check_devices("fastlstm::forward", x, sequence_lengths, h0=h0, c0=c0, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih,
                   b_hh=b_hh, w_peephole=w_peephole, w_hr=w_hr)
    seq_len, batch, recurrent, hidden = x.shape[0], x.shape[1], h0.shape[1], c0.shape[1]
    output = x.new_empty((seq_len, batch, recurrent))
    return output, x.new_empty((batch, recurrent)), x.new_empty((batch, hidden)), _workspace(
        x, (seq_len, batch, WORKSPACE_WIDTH * hidden), training
    )


def _backward_fake_grads(x, h0, c0, w_ih, w_hh, w_peephole, w_hr):
    hidden = c0.shape[-1]
    peephole_shape = (3, hidden) if w_peephole is not None else (0, 0)
    return (
        torch.empty_like(x, memory_format=torch.contiguous_format),
        h0.new_empty(h0.shape),
        c0.new_empty(c0.shape),
        w_ih.new_empty(w_ih.shape),
        w_ih.new_empty(w_hh.shape if w_hh is not None else (0,)),
        w_ih.new_empty((4 * hidden,)),
        w_ih.new_empty(peephole_shape),
        w_ih.new_empty(w_hr.shape if w_hr is not None else (0,)),
    )


@torch.library.register_fake("fastlstm::backward")
def _backward_fake(grad_output, grad_h_n, grad_c_n, x, h0, c0, w_ih, w_hh, w_peephole, sequence_lengths, output,
                   workspace, cell_clip, tf_layout=False, w_hr=None):
    _check_devices("fastlstm::backward", x, sequence_lengths, grad_output=grad_output, grad_h_n=grad_h_n,
                   grad_c_n=grad_c_n, h0=h0, c0=c0, w_ih=w_ih, w_hh=w_hh, w_peephole=w_peephole, output=output,
                   workspace=workspace, w_hr=w_hr)
    return _backward_fake_grads(x, h0, c0, w_ih, w_hh, w_peephole, w_hr)


@torch.library.register_fake("fastlstm::cell_forward")
def _cell_forward_fake(x, h, c, w_ih, w_hh, b_ih, b_hh, w_peephole=None, forget_bias=0.0, cell_clip=0.0,
                       training=True, tf_layout=False, w_hr=None):
    _check_devices("fastlstm::cell_forward", x, h=h, c=c, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh,
                   w_peephole=w_peephole, w_hr=w_hr)
    batch, recurrent, hidden = x.shape[0], h.shape[1], c.shape[1]
    return x.new_empty((batch, recurrent)), x.new_empty((batch, hidden)), _workspace(
        x, (batch, WORKSPACE_WIDTH * hidden), training
    )


@torch.library.register_fake("fastlstm::cell_backward")
def _cell_backward_fake(grad_h_new, grad_c_new, x, h, c, w_ih, w_hh, w_peephole, workspace, cell_clip,
                        tf_layout=False, w_hr=None):
    _check_devices("fastlstm::cell_backward", x, grad_h_new=grad_h_new, grad_c_new=grad_c_new, h=h, c=c, w_ih=w_ih,
                   w_hh=w_hh, w_peephole=w_peephole, workspace=workspace, w_hr=w_hr)
    return _backward_fake_grads(x, h, c, w_ih, w_hh, w_peephole, w_hr)


@torch.library.register_fake("fastlstm::layer_norm_lstm")
def _layer_norm_lstm_fake(x, h0, c0, w_ih, w_hh, bias, ln_ih_weight, ln_hh_weight, ln_cell_weight, ln_cell_bias,
                          sequence_lengths=None, g_mask=None, groups=1, eps=1e-5, forget_bias=0.0,
                          carry_normalized_cell=False, training=True):
    _check_devices("fastlstm::layer_norm_lstm", x, sequence_lengths, h0=h0, c0=c0, w_ih=w_ih, w_hh=w_hh, bias=bias,
                   ln_ih_weight=ln_ih_weight, ln_hh_weight=ln_hh_weight, ln_cell_weight=ln_cell_weight,
                   ln_cell_bias=ln_cell_bias, g_mask=g_mask)
    seq_len, batch, hidden = x.shape[0], x.shape[1], h0.shape[1]
    width = layer_norm_workspace_width(hidden, ln_hh_weight is not None)
    return (x.new_empty((seq_len, batch, hidden)), x.new_empty((batch, hidden)), x.new_empty((batch, hidden)),
            _workspace(x, (seq_len, batch, width), training))


@torch.library.register_fake("fastlstm::layer_norm_lstm_backward")
def _layer_norm_lstm_backward_fake(grad_output, grad_h_n, grad_c_n, x, h0, c0, w_ih, w_hh, ln_ih_weight, ln_hh_weight,
                                   ln_cell_weight, ln_cell_bias, sequence_lengths, g_mask, output, workspace, groups,
                                   carry_normalized_cell):
    _check_devices("fastlstm::layer_norm_lstm_backward", x, sequence_lengths, grad_output=grad_output,
                   grad_h_n=grad_h_n, grad_c_n=grad_c_n, h0=h0, c0=c0, w_ih=w_ih, w_hh=w_hh,
                   ln_ih_weight=ln_ih_weight, ln_hh_weight=ln_hh_weight, ln_cell_weight=ln_cell_weight,
                   ln_cell_bias=ln_cell_bias, g_mask=g_mask, output=output, workspace=workspace)
    gates = w_hh.shape[0]
    return (torch.empty_like(x, memory_format=torch.contiguous_format), h0.new_empty(h0.shape),
            c0.new_empty(c0.shape), w_ih.new_empty(w_ih.shape), w_hh.new_empty(w_hh.shape), w_ih.new_empty((gates,)),
            w_ih.new_empty((gates,)), w_ih.new_empty((gates if ln_hh_weight is not None else 0,)),
            w_ih.new_empty(ln_cell_weight.shape), w_ih.new_empty(ln_cell_bias.shape))


@torch.library.register_fake("fastlstm::gru")
def _gru_fake(x, h0, w_ih, w_hh, b_ih, b_hh, sequence_lengths=None, training=True, linear_before_reset=True):
    _check_devices("fastlstm::gru", x, sequence_lengths, h0=h0, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh)
    seq_len, batch, hidden = x.shape[0], x.shape[1], h0.shape[1]
    return (x.new_empty((seq_len, batch, hidden)), x.new_empty((batch, hidden)),
            _workspace(x, (seq_len, batch, GRU_WORKSPACE_WIDTH * hidden), training))


@torch.library.register_fake("fastlstm::gru_backward")
def _gru_backward_fake(grad_output, grad_h_n, x, h0, w_ih, w_hh, sequence_lengths, output, workspace,
                       linear_before_reset=True):
    _check_devices("fastlstm::gru_backward", x, sequence_lengths, grad_output=grad_output, grad_h_n=grad_h_n, h0=h0,
                   w_ih=w_ih, w_hh=w_hh, output=output, workspace=workspace)
    gates = w_hh.shape[0]
    return (torch.empty_like(x, memory_format=torch.contiguous_format), h0.new_empty(h0.shape),
            w_ih.new_empty(w_ih.shape), w_hh.new_empty(w_hh.shape), w_ih.new_empty((gates,)),
            w_ih.new_empty((gates,)))


@torch.library.register_fake("fastlstm::quantized_lstm")
def _quantized_lstm_fake(x, h0, c0, w_ih, w_ih_scale, w_hh, w_hh_scale, b_ih=None, b_hh=None, sequence_lengths=None):
    seq_len, batch, hidden = x.shape[0], x.shape[1], w_hh.shape[1]
    return x.new_empty((seq_len, batch, hidden)), x.new_empty((batch, hidden)), x.new_empty((batch, hidden))


@torch.library.register_fake("fastlstm::quantized_gru")
def _quantized_gru_fake(x, h0, w_ih, w_ih_scale, w_hh, w_hh_scale, b_ih=None, b_hh=None, sequence_lengths=None):
    seq_len, batch, hidden = x.shape[0], x.shape[1], w_hh.shape[1]
    return x.new_empty((seq_len, batch, hidden)), x.new_empty((batch, hidden))
