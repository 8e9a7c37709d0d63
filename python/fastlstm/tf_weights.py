"""TF1 LSTM weights <-> torch.nn.LSTM / fastlstm.LSTM state_dicts.

TF1's BasicLSTMCell, LSTMCell and LSTMBlockCell keep one kernel [input_size + R, 4H] acting on concat[x, h] with gate
blocks (i, j, f, o), one bias [4H], and add a constant forget_bias to f; LSTMCell(num_proj=P) also keeps a projection
kernel [H, P] (h = (o * tanh(c)) . projection_kernel, R = P; else R = H). torch keeps w_ih [4H, I] and w_hh [4H, R]
with blocks (i, f, g=j, o), two biases, and w_hr [P, H] for proj_size=P. (TF's proj_clip has no torch counterpart.)"""

import torch

from .layout import tf_gates_to_torch, torch_gates_to_tf


def _name(kind, layer, reverse):
    return f"{kind}_l{layer}{'_reverse' if reverse else ''}"


def lstm_state_dict_from_tf(kernel, bias, input_size, forget_bias=0.0, layer=0, reverse=False,
                            projection_kernel=None):
    """The state_dict entries of one layer (and direction) of torch.nn.LSTM / fastlstm.LSTM that compute what the
    TF cell computes. The constant forget_bias goes into the f block of bias_ih; bias_hh is zero. With a
    projection_kernel [H, P] (LSTMCell's num_proj) the module needs proj_size=P."""
    kernel, bias = torch.as_tensor(kernel), torch.as_tensor(bias)
    hidden_size = kernel.shape[1] // 4
    recurrent = hidden_size
    if projection_kernel is not None:
        projection_kernel = torch.as_tensor(projection_kernel)
        recurrent = projection_kernel.shape[-1]
        if projection_kernel.shape != (hidden_size, recurrent):
            raise ValueError(f"expected a TF projection kernel of shape [H, num_proj] = [{hidden_size}, num_proj], "
                             f"got {list(projection_kernel.shape)}")
    if kernel.shape != (input_size + recurrent, 4 * hidden_size):
        what = "num_proj" if projection_kernel is not None else "H"
        raise ValueError(f"expected a TF kernel of shape [input_size + {what}, 4H] = "
                         f"[{input_size + recurrent}, {4 * hidden_size}], got {list(kernel.shape)}")
    weights = tf_gates_to_torch(kernel, hidden_size).t().contiguous()
    bias_ih = tf_gates_to_torch(bias, hidden_size).clone()
    bias_ih[hidden_size:2 * hidden_size] += forget_bias
    state_dict = {
        _name("weight_ih", layer, reverse): weights[:, :input_size].contiguous(),
        _name("weight_hh", layer, reverse): weights[:, input_size:].contiguous(),
        _name("bias_ih", layer, reverse): bias_ih,
        _name("bias_hh", layer, reverse): torch.zeros_like(bias_ih),
    }
    if projection_kernel is not None:
        state_dict[_name("weight_hr", layer, reverse)] = projection_kernel.t().contiguous()
    return state_dict


def tf_from_lstm_state_dict(state_dict, layer=0, reverse=False, forget_bias=0.0):
    """(kernel [I + R, 4H], bias [4H]) of a TF cell with this forget_bias that computes what one layer (and
    direction) of the torch LSTM computes: forget_bias is taken back out of the f block of the summed biases. With
    proj_size (a weight_hr entry), (kernel, bias, projection_kernel [H, P]) for LSTMCell(num_proj=P)."""
    w_ih = state_dict[_name("weight_ih", layer, reverse)]
    w_hh = state_dict[_name("weight_hh", layer, reverse)]
    hidden_size = w_hh.shape[0] // 4
    kernel = torch_gates_to_tf(torch.cat([w_ih, w_hh], 1).t(), hidden_size).contiguous()
    bias = torch.zeros(4 * hidden_size, dtype=w_ih.dtype, device=w_ih.device)
    for kind in ("bias_ih", "bias_hh"):
        if _name(kind, layer, reverse) in state_dict:
            bias = bias + state_dict[_name(kind, layer, reverse)]
    bias = bias.clone()
    bias[hidden_size:2 * hidden_size] -= forget_bias
    bias = torch_gates_to_tf(bias, hidden_size).contiguous()
    w_hr = state_dict.get(_name("weight_hr", layer, reverse))
    if w_hr is not None:
        return kernel, bias, w_hr.t().contiguous()
    return kernel, bias


__all__ = ["lstm_state_dict_from_tf", "tf_from_lstm_state_dict"]
