"""What every TF1-style cell shares: the RNNCell contract, LSTMStateTuple, TF's initialisers and layer norm, and the
conversion of TF's fused LSTM kernel to the layout of fastlstm's ops."""

import collections

import torch
from torch import nn

# TF1's LSTM state: c first, then h.
LSTMStateTuple = collections.namedtuple("LSTMStateTuple", ("c", "h"))

TF_LAYER_NORM_EPSILON = 1e-12  # tf.contrib.layers.layer_norm's variance epsilon


class RNNCell(nn.Module):
    """TF1's RNNCell as a torch module: ``output, new_state = cell(inputs, state)``.

    Subclasses implement ``forward(inputs, state)`` and the ``state_size`` / ``output_size`` properties (an int, or a
    (named) tuple of them for tuple states); every driver (fastlstm.rnn) and wrapper (fastlstm.wrappers) then works
    with them. ``begin_sequence`` is called by the drivers before the first step of a sequence (variational dropout
    draws its masks there).
    """

    @property
    def state_size(self):
        raise NotImplementedError

    @property
    def output_size(self):
        raise NotImplementedError

    def zero_state(self, batch_size, dtype=None, device=None):
        """Zeros shaped like the state: [batch_size, size] for each size in state_size."""
        parameter = next(self.parameters(), None)
        dtype = dtype or (parameter.dtype if parameter is not None else torch.get_default_dtype())
        device = device or (parameter.device if parameter is not None else None)
        return _map_sizes(lambda size: torch.zeros(batch_size, *_as_shape(size), dtype=dtype, device=device),
                          self.state_size)

    def begin_sequence(self, batch_size, dtype, device):
        """Called by the drivers before the first step of every sequence. Default: nothing."""

    def load_tf_weights(self, arrays):
        """Copies TF1 variables into the parameters. arrays: {name inside the cell's scope: array}, e.g. "kernel"."""
        own = dict(self.tf_variables())
        unknown = sorted(set(arrays) - set(own))
        if unknown:
            raise KeyError(f"{type(self).__name__}: unexpected TF variables {unknown}; expected {sorted(own)}")
        missing = sorted(set(own) - set(arrays))
        if missing:
            raise KeyError(f"{type(self).__name__}: missing TF variables {missing}")
        with torch.no_grad():
            for name, parameter in own.items():
                value = torch.as_tensor(arrays[name])
                if tuple(value.shape) != tuple(parameter.shape):
                    raise ValueError(f"{type(self).__name__}: TF variable {name!r} has shape {tuple(value.shape)}, "
                                     f"expected {tuple(parameter.shape)}")
                parameter.copy_(value)

    def tf_variables(self):
        """(TF variable name, parameter) pairs, in TF's names. Default: the parameters' own names."""
        return [(name.replace(".", "/"), parameter) for name, parameter in self.named_parameters()]


class LSTMStateCell(RNNCell):
    """A cell whose state is LSTMStateTuple(c [num_units], h [num_proj or num_units]) and whose output is h."""

    num_proj = None

    @property
    def state_size(self):
        return LSTMStateTuple(self.num_units, self.num_proj or self.num_units)

    @property
    def output_size(self):
        return self.num_proj or self.num_units


class VectorStateCell(RNNCell):
    """A cell whose state and output are one vector of num_units (GRU-like)."""

    @property
    def state_size(self):
        return self.num_units

    @property
    def output_size(self):
        return self.num_units


class SeededGenerators:
    """Random masks from a seed of their own: one torch.Generator per device, all seeded alike (so a module moved to
    another device keeps working). Without a seed: None, i.e. torch's global generator."""

    def __init__(self, seed):
        self.seed = seed
        self._by_device = {}

    def __call__(self, device):
        if self.seed is None:
            return None
        key = str(device)
        if key not in self._by_device:
            self._by_device[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._by_device[key]


def _as_shape(size):
    return tuple(size) if isinstance(size, (tuple, list, torch.Size)) else (size,)


def _map_sizes(fn, sizes):
    if isinstance(sizes, LSTMStateTuple):
        return LSTMStateTuple(*(fn(s) for s in sizes))
    if isinstance(sizes, tuple) and sizes and not isinstance(sizes[0], int):
        return tuple(_map_sizes(fn, s) for s in sizes)
    return fn(sizes)


def tf_kernel(rows, columns, dtype=None, device=None):
    """A TF1 kernel [rows, columns], initialised as tf.compat.v1.get_variable does by default (glorot uniform)."""
    weight = nn.Parameter(torch.empty(rows, columns, dtype=dtype, device=device))
    nn.init.xavier_uniform_(weight)
    return weight


def tf_bias(size, value=0.0, dtype=None, device=None):
    return nn.Parameter(torch.full((size,), float(value), dtype=dtype, device=device))


def tf_layer_norm(x, gamma=None, beta=None):
    """tf.contrib.layers.layer_norm over the last dimension (biased variance, epsilon 1e-12): torch's layer_norm is
    the same formula, in one kernel."""
    return torch.nn.functional.layer_norm(x, x.shape[-1:], gamma, beta, TF_LAYER_NORM_EPSILON)

