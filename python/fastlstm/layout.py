"""Weight layouts. torch's: w_ih [4H, I], w_hh [4H, H], gate blocks (i, f, g, o). TF1's: one kernel [I + H, 4H]
on concat[x, h], gate blocks (i, j=g, f, o); the fused ops take it as it is (``tf_layout=True``)."""

import torch

# The block permutation between the two gate orders; it is its own inverse.
TF_TO_TORCH_GATES = (0, 2, 1, 3)


def tf_gates_to_torch(matrix, hidden_size):
    """Reorders the 4 gate blocks of the last dimension from TF's (i, j, f, o) to torch's (i, f, g, o)."""
    blocks = matrix.split(hidden_size, dim=-1)
    return torch.cat([blocks[k] for k in TF_TO_TORCH_GATES], dim=-1)


def torch_gates_to_tf(matrix, hidden_size):
    """The inverse of tf_gates_to_torch (the same permutation)."""
    return tf_gates_to_torch(matrix, hidden_size)


def torch_layout(kernel, b_ih, b_hh, projection_kernel, input_size):
    """TF's kernel [I + R, 4H], biases in TF gate order and projection kernel [H, P] (or None) -> torch's w_ih [4H, I],
    w_hh [4H, R], b_ih, b_hh, w_hr [P, H] (or None), differentiably."""
    hidden_size = kernel.shape[1] // 4
    torch_kernel = tf_gates_to_torch(kernel, hidden_size).t()

    def bias(b):
        return None if b is None else tf_gates_to_torch(b, hidden_size)

    w_hr = None if projection_kernel is None else projection_kernel.t()
    return torch_kernel[:, :input_size], torch_kernel[:, input_size:], bias(b_ih), bias(b_hh), w_hr
