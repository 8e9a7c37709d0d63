"""Second derivatives of the fused ops: the kernels of their differentiable backwards (csrc/registration.cpp).

Under create_graph=True the fused ops' autograd (csrc/autograd.cpp) calls these instead of the fused backward ops.
Each recomputes its forward with reference.py's composed math from the saved original inputs (which keep their
graph) and differentiates that recompute with create_graph=True, so the gradient it returns is itself a graph: the
standard recompute for double backward. The first derivative (create_graph=False) stays on the fused kernels and
pays nothing for this. Registered at CompositeImplicitAutograd: the recompute is plain torch ops on any device.
"""

import torch

from . import layout, reference

_LIBRARY = torch.library.Library("fastlstm", "IMPL")


def _aliases(*tensors):
    """The inputs to differentiate with respect to: a view of each one that needs a gradient, so that its gradient
    counts only the paths through this op (not, say, h0's own dependence on x), the others as they are."""
    return [t.view_as(t) if t is not None and t.requires_grad else t for t in tensors]


def _gradients(outputs, output_grads, inputs):
    """The gradients of the given (not None) inputs, in order, as graphs: autograd.grad of outputs with the output
    gradients (None: zero) under create_graph=True. Zeros where an input had no effect or needs no gradient (autograd
    drops the latter)."""
    pairs = [(o, g) for o, g in zip(outputs, output_grads) if g is not None and o.requires_grad]
    wanted = [t for t in inputs if t is not None and t.requires_grad]
    found = [None] * len(wanted)
    if pairs and wanted:
        found = torch.autograd.grad([o for o, _ in pairs], wanted, [g for _, g in pairs], create_graph=True,
                                    allow_unused=True)
    found = iter(found)
    gradients = []
    for t in inputs:
        if t is not None:
            gradient = next(found) if t.requires_grad else None
            gradients.append(torch.zeros_like(t) if gradient is None else gradient)
    return gradients


def _lstm(grad_output, grad_h_n, grad_c_n, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peephole, sequence_lengths,
          forget_bias, cell_clip, tf_layout, w_hr):
    inputs = _aliases(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peephole, w_hr)
    x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peephole, w_hr = inputs
    if tf_layout:
        w_ih, w_hh, b_ih, b_hh, w_hr = layout.torch_layout(w_ih, b_ih, b_hh, w_hr, x.shape[-1])
    outputs = reference.lstm_sequence(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr=w_hr, w_peephole=w_peephole,
                                      sequence_lengths=sequence_lengths, forget_bias=forget_bias,
                                      cell_clip=cell_clip)
    return _gradients(outputs, (grad_output, grad_h_n, grad_c_n), inputs)


def _lstm_cell(grad_h_new, grad_c_new, x, h, c, w_ih, w_hh, b_ih, b_hh, w_peephole, forget_bias, cell_clip,
               tf_layout, w_hr):
    inputs = _aliases(x, h, c, w_ih, w_hh, b_ih, b_hh, w_peephole, w_hr)
    x, h, c, w_ih, w_hh, b_ih, b_hh, w_peephole, w_hr = inputs
    if tf_layout:
        w_ih, w_hh, b_ih, b_hh, w_hr = layout.torch_layout(w_ih, b_ih, b_hh, w_hr, x.shape[-1])
    outputs = reference.lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh, w_hr=w_hr, w_peephole=w_peephole,
                                  forget_bias=forget_bias, cell_clip=cell_clip)
    return _gradients(outputs, (grad_h_new, grad_c_new), inputs)


def _layer_norm_lstm(grad_output, grad_h_n, grad_c_n, x, h0, c0, w_ih, w_hh, bias, ln_ih_weight, ln_hh_weight,
                     ln_cell_weight, ln_cell_bias, sequence_lengths, g_mask, groups, eps, forget_bias,
                     carry_normalized_cell):
    inputs = _aliases(x, h0, c0, w_ih, w_hh, bias, ln_ih_weight, ln_hh_weight, ln_cell_weight, ln_cell_bias)
    outputs = reference.layer_norm_lstm_sequence(*inputs, sequence_lengths=sequence_lengths, g_mask=g_mask,
                                                 groups=groups, eps=eps, forget_bias=forget_bias,
                                                 carry_normalized_cell=carry_normalized_cell)
    return _gradients(outputs, (grad_output, grad_h_n, grad_c_n), inputs)


def _gru(grad_output, grad_h_n, x, h0, w_ih, w_hh, b_ih, b_hh, sequence_lengths, linear_before_reset):
    inputs = _aliases(x, h0, w_ih, w_hh, b_ih, b_hh)
    outputs = reference.gru_sequence(*inputs, sequence_lengths=sequence_lengths,
                                     linear_before_reset=linear_before_reset)
    return _gradients(outputs, (grad_output, grad_h_n), inputs)


_LIBRARY.impl("forward_differentiable_backward", _lstm, "CompositeImplicitAutograd")
_LIBRARY.impl("cell_forward_differentiable_backward", _lstm_cell, "CompositeImplicitAutograd")
_LIBRARY.impl("layer_norm_lstm_differentiable_backward", _layer_norm_lstm, "CompositeImplicitAutograd")
_LIBRARY.impl("gru_differentiable_backward", _gru, "CompositeImplicitAutograd")
