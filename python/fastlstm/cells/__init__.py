"""TF1's RNN cells for PyTorch (see base.RNNCell for the contract); the wrappers are re-exported here as in TF."""

from ..wrappers import DropoutWrapper, MultiRNNCell, ResidualWrapper, ZoneoutWrapper
from .base import LSTMStateTuple, RNNCell
from .gru import GRUCell, UGRNNCell
from .lstm import (BasicLSTMCell, CoupledInputForgetGateLSTMCell, LayerNormBasicLSTMCell, LSTMBlockCell,
                   LSTMBlockFusedCell, LSTMCell)

__all__ = ["RNNCell", "LSTMStateTuple", "BasicLSTMCell", "LSTMCell", "LSTMBlockCell", "LSTMBlockFusedCell",
           "LayerNormBasicLSTMCell", "CoupledInputForgetGateLSTMCell", "GRUCell", "UGRNNCell", "MultiRNNCell",
           "DropoutWrapper", "ResidualWrapper", "ZoneoutWrapper"]
