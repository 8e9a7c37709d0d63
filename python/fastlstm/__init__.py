"""fastlstm: fast and complete LSTMs for PyTorch."""

import torch  # (torch's libraries must be loaded before fastlstm._C)

from ._build_info import TORCH_VERSION as _BUILT_AGAINST


def _check_torch_version():
    """A torch extension loads only in the torch it was compiled against (C++ ABI, symbols): say so before loading."""
    built, running = _BUILT_AGAINST.split(".")[:2], torch.__version__.split("+")[0].split(".")[:2]
    if built != running:
        raise ImportError(f"fastlstm was built against torch {_BUILT_AGAINST} but torch {torch.__version__} is "
                          f"installed; rebuild fastlstm against this torch (pip install --no-build-isolation .) or "
                          f"install torch {'.'.join(built)}.x")


_check_torch_version()

from . import functional, reference
from ._ops import ops
from . import double_backward  # noqa: F401  (registers the fused ops' second derivatives)
from ._C import build_info, cpu_capability, cpu_memory_stats, empty_cache
from .nn import LSTM, LSTMCell
from .gru import GRU, GRUCell
from .layer_norm import LayerNormLSTM, load_haste_weights
from . import cells, rnn, tf_weights, wrappers  # noqa: E402  (cells import nn)
from . import onnx_export
from . import quantized
from .quantized import quantize_dynamic

onnx_export.register_legacy()  # torch.onnx.export of fastlstm's ops, with no translation for users to write


def ops_library():
    """The path of libfastlstm_ops.so: every fastlstm op, registered with torch when it loads, with no Python in it.
    A C++ program (an AOTInductor package's runner, a TorchScript or libtorch deployment) dlopens it, or calls
    torch.ops.load_library on it, before running a model that calls the ops."""
    import os

    return os.path.join(os.path.dirname(__file__), "libfastlstm_ops.so")

__all__ = ["LSTM", "LSTMCell", "GRU", "GRUCell", "LayerNormLSTM", "load_haste_weights", "functional", "reference", "ops",
           "cells", "rnn", "wrappers", "tf_weights", "onnx_export", "empty_cache", "cpu_memory_stats", "cpu_capability",
           "build_info", "ops_library", "quantized", "quantize_dynamic"]
__version__ = "0.1.0"
