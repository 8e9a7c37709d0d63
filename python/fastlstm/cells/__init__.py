"""TF1's RNN cells for PyTorch (see base.RNNCell for the contract); the wrappers are re-exported here as in TF."""

from ..wrappers import DropoutWrapper, MultiRNNCell, ResidualWrapper, ZoneoutWrapper
from .base import LSTMStateTuple, RNNCell
from .contrib import GLSTMCell, NASCell, PhasedLSTMCell
from .conv import Conv1DLSTMCell, Conv2DLSTMCell, Conv3DLSTMCell, ConvLSTMCell
from .gru import GRUBlockCell, GRUBlockCellV2, GRUCell, UGRNNCell
from .lstm import (BasicLSTMCell, CoupledInputForgetGateLSTMCell, LayerNormBasicLSTMCell, LSTMBlockCell,
                   LSTMBlockFusedCell, LSTMCell)

__all__ = ["RNNCell", "LSTMStateTuple", "BasicLSTMCell", "LSTMCell", "LSTMBlockCell", "LSTMBlockFusedCell",
           "LayerNormBasicLSTMCell", "CoupledInputForgetGateLSTMCell", "GRUCell", "GRUBlockCell", "GRUBlockCellV2",
           "UGRNNCell", "NASCell",
           "PhasedLSTMCell", "GLSTMCell", "ConvLSTMCell", "Conv1DLSTMCell", "Conv2DLSTMCell", "Conv3DLSTMCell",
           "MultiRNNCell",
           "DropoutWrapper", "ResidualWrapper", "ZoneoutWrapper"]
