"""TF1 LSTM weights <-> torch.nn.LSTM / fastlstm.LSTM state_dicts.

TF1's BasicLSTMCell, LSTMCell (without projection) and LSTMBlockCell keep one kernel [input_size + H, 4H] acting on
concat[x, h] with gate blocks (i, j, f, o), one bias [4H], and add a constant forget_bias to f. torch keeps w_ih
[4H, I] and w_hh [4H, H] with blocks (i, f, g=j, o) and two biases."""

import torch

from .layout import tf_gates_to_torch, torch_gates_to_tf


def _name(kind, layer, reverse):
    return f"{kind}_l{layer}{'_reverse' if reverse else ''}"


def lstm_state_dict_from_tf(kernel, bias, input_size, forget_bias=0.0, layer=0, reverse=False):
    """The state_dict entries of one layer (and direction) of torch.nn.LSTM / fastlstm.LSTM that compute what the
    TF cell computes. The constant forget_bias goes into the f block of bias_ih; bias_hh is zero."""
    kernel, bias = torch.as_tensor(kernel), torch.as_tensor(bias)
    hidden_size = kernel.shape[1] // 4
    if kernel.shape != (input_size + hidden_size, 4 * hidden_size):
        raise ValueError(f"expected a TF kernel of shape [input_size + H, 4H] = "
                         f"[{input_size + hidden_size}, {4 * hidden_size}], got {list(kernel.shape)}")
    weights = tf_gates_to_torch(kernel, hidden_size).t().contiguous()
    bias_ih = tf_gates_to_torch(bias, hidden_size).clone()
    bias_ih[hidden_size:2 * hidden_size] += forget_bias
    return {
        _name("weight_ih", layer, reverse): weights[:, :input_size].contiguous(),
        _name("weight_hh", layer, reverse): weights[:, input_size:].contiguous(),
        _name("bias_ih", layer, reverse): bias_ih,
        _name("bias_hh", layer, reverse): torch.zeros_like(bias_ih),
    }


def tf_from_lstm_state_dict(state_dict, layer=0, reverse=False, forget_bias=0.0):
    """(kernel [I + H, 4H], bias [4H]) of a TF cell with this forget_bias that computes what one layer (and
    direction) of the torch LSTM computes: forget_bias is taken back out of the f block of the summed biases."""
    w_ih = state_dict[_name("weight_ih", layer, reverse)]
    w_hh = state_dict[_name("weight_hh", layer, reverse)]
    hidden_size = w_hh.shape[1]
    kernel = torch_gates_to_tf(torch.cat([w_ih, w_hh], 1).t(), hidden_size).contiguous()
    bias = torch.zeros(4 * hidden_size, dtype=w_ih.dtype, device=w_ih.device)
    for kind in ("bias_ih", "bias_hh"):
        if _name(kind, layer, reverse) in state_dict:
            bias = bias + state_dict[_name(kind, layer, reverse)]
    bias = bias.clone()
    bias[hidden_size:2 * hidden_size] -= forget_bias
    return kernel, torch_gates_to_tf(bias, hidden_size).contiguous()


__all__ = ["lstm_state_dict_from_tf", "tf_from_lstm_state_dict"]
