"""tf.contrib.rnn.Conv{1,2,3}DLSTMCell: the LSTM's matmul replaced by a stride-1 SAME convolution over
concat[x, h] along channels. Channels-last, as TF: inputs [B, *spatial, in_channels], states [B, *spatial, out]."""

import torch
import torch.nn.functional as F

from .base import LSTMStateTuple, RNNCell, tf_bias

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class ConvLSTMCell(RNNCell):
    """i, j, f, o = split(conv_SAME(concat[x, h], kernel) + biases); c' = sigmoid(f + forget_bias) * c +
    sigmoid(i) * tanh(j); h' = tanh(c') * sigmoid(o). skip_connection: the output is concat[h', x] (the state
    keeps h'). TF variables: kernel [*kernel_shape, in_channels + output_channels, 4 * output_channels], biases."""

    def __init__(self, conv_ndims, input_shape, output_channels, kernel_shape, use_bias=True, skip_connection=False,
                 forget_bias=1.0, dtype=None, device=None):
        super().__init__()
        if conv_ndims not in _CONV or len(input_shape) != conv_ndims + 1 or len(kernel_shape) != conv_ndims:
            raise ValueError(f"ConvLSTMCell: conv_ndims {conv_ndims} needs input_shape [*{conv_ndims} spatial, "
                             f"channels] and kernel_shape of {conv_ndims} sizes, got {input_shape}, {kernel_shape}")
        self.conv_ndims, self.input_shape = conv_ndims, list(input_shape)
        self.output_channels, self.kernel_shape = output_channels, list(kernel_shape)
        self.skip_connection, self.forget_bias = skip_connection, float(forget_bias)
        in_channels = input_shape[-1] + output_channels
        # TF's glorot fans for a conv kernel: receptive field * in, receptive field * out.
        receptive = 1
        for size in kernel_shape:
            receptive *= size
        bound = (6.0 / (receptive * (in_channels + 4 * output_channels))) ** 0.5
        self.kernel = torch.nn.Parameter(torch.empty(*kernel_shape, in_channels, 4 * output_channels, dtype=dtype,
                                                     device=device).uniform_(-bound, bound))
        self.biases = tf_bias(4 * output_channels, dtype=dtype, device=device) if use_bias else None

    @property
    def state_size(self):
        shape = torch.Size(self.input_shape[:-1] + [self.output_channels])
        return LSTMStateTuple(shape, shape)

    @property
    def output_size(self):
        extra = self.input_shape[-1] if self.skip_connection else 0
        return torch.Size(self.input_shape[:-1] + [self.output_channels + extra])

    def _conv_same(self, x):
        # channels-last -> channels-first for torch's conv; TF's SAME at stride 1 pads (k-1)//2 before, the rest after.
        x = x.movedim(-1, 1)
        padding = []
        for size in reversed(self.kernel_shape):
            padding += [(size - 1) // 2, size - 1 - (size - 1) // 2]
        weight = self.kernel.movedim(-1, 0).movedim(-1, 1)  # [out, in, *kernel]
        return _CONV[self.conv_ndims](F.pad(x, padding), weight, self.biases).movedim(1, -1)

    def forward(self, inputs, state):
        c, h = state
        i, j, f, o = self._conv_same(torch.cat([inputs, h], -1)).chunk(4, -1)
        new_c = torch.sigmoid(f + self.forget_bias) * c + torch.sigmoid(i) * torch.tanh(j)
        new_h = torch.tanh(new_c) * torch.sigmoid(o)
        output = torch.cat([new_h, inputs], -1) if self.skip_connection else new_h
        return output, LSTMStateTuple(new_c, new_h)


class Conv1DLSTMCell(ConvLSTMCell):
    def __init__(self, input_shape, output_channels, kernel_shape, **kwargs):
        super().__init__(1, input_shape, output_channels, kernel_shape, **kwargs)


class Conv2DLSTMCell(ConvLSTMCell):
    def __init__(self, input_shape, output_channels, kernel_shape, **kwargs):
        super().__init__(2, input_shape, output_channels, kernel_shape, **kwargs)


class Conv3DLSTMCell(ConvLSTMCell):
    def __init__(self, input_shape, output_channels, kernel_shape, **kwargs):
        super().__init__(3, input_shape, output_channels, kernel_shape, **kwargs)


__all__ = ["ConvLSTMCell", "Conv1DLSTMCell", "Conv2DLSTMCell", "Conv3DLSTMCell"]
