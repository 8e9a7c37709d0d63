"""fastlstm: fast and complete LSTMs for PyTorch."""

import torch  # noqa: F401  (torch's libraries must be loaded before fastlstm._C)

from . import functional, reference
from ._ops import ops
from ._C import cpu_capability, cpu_memory_stats, empty_cache
from .nn import LSTM, LSTMCell
from .layer_norm import LayerNormLSTM, load_haste_weights
from . import cells, rnn, tf_weights, wrappers  # noqa: E402  (cells import nn)

__all__ = ["LSTM", "LSTMCell", "LayerNormLSTM", "load_haste_weights", "functional", "reference", "ops", "cells", "rnn", "wrappers", "tf_weights",
           "empty_cache", "cpu_memory_stats", "cpu_capability"]
__version__ = "0.1.0"
