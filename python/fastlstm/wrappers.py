"""TF1's cell wrappers: MultiRNNCell, DropoutWrapper, ResidualWrapper, ZoneoutWrapper. Each is itself an RNNCell."""

import torch
from torch.utils._pytree import tree_map

from .cells.base import LSTMStateTuple, RNNCell, SeededGenerators


class MultiRNNCell(RNNCell):
    """Stacks cells: each one's output is the next one's input; the state is a tuple with one entry per cell."""

    def __init__(self, cells):
        super().__init__()
        self.cells = torch.nn.ModuleList(cells)

    @property
    def state_size(self):
        return tuple(cell.state_size for cell in self.cells)

    @property
    def output_size(self):
        return self.cells[-1].output_size

    def zero_state(self, batch_size, dtype=None, device=None):
        return tuple(cell.zero_state(batch_size, dtype, device) for cell in self.cells)

    def begin_sequence(self, batch_size, dtype, device):
        for cell in self.cells:
            cell.begin_sequence(batch_size, dtype, device)

    def forward(self, inputs, state):
        new_states = []
        for cell, cell_state in zip(self.cells, state):
            inputs, new_state = cell(inputs, cell_state)
            new_states.append(new_state)
        return inputs, tuple(new_states)


class _Wrapper(RNNCell):
    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    @property
    def state_size(self):
        return self.cell.state_size

    @property
    def output_size(self):
        return self.cell.output_size

    def zero_state(self, batch_size, dtype=None, device=None):
        return self.cell.zero_state(batch_size, dtype, device)

    def begin_sequence(self, batch_size, dtype, device):
        self.cell.begin_sequence(batch_size, dtype, device)


def _map_state_except_c(fn, state):
    """Applies fn to every tensor of a state but the c of LSTM states (TF's default dropout_state_filter_visitor)."""
    if isinstance(state, LSTMStateTuple):
        return LSTMStateTuple(state.c, _map_state_except_c(fn, state.h))
    if isinstance(state, tuple):
        return tuple(_map_state_except_c(fn, s) for s in state)
    return fn(state)


class DropoutWrapper(_Wrapper):
    """tf.nn.rnn_cell.DropoutWrapper: dropout on the cell's input, on its output and on the outgoing state (never on
    an LSTM's c), each with its keep probability (1.0: nothing is added). variational_recurrent: one mask per
    sequence, the same at every step, drawn at begin_sequence (the drivers call it) or at the first step after it.
    Off in eval mode. seed: the masks come from a generator of their own."""

    def __init__(self, cell, input_keep_prob=1.0, output_keep_prob=1.0, state_keep_prob=1.0,
                 variational_recurrent=False, seed=None):
        super().__init__(cell)
        for name, value in (("input", input_keep_prob), ("output", output_keep_prob), ("state", state_keep_prob)):
            if not 0 < value <= 1:
                raise ValueError(f"DropoutWrapper: {name}_keep_prob must be in (0, 1], got {value}")
        self.input_keep_prob, self.output_keep_prob = input_keep_prob, output_keep_prob
        self.state_keep_prob, self.variational_recurrent = state_keep_prob, variational_recurrent
        self._generator = SeededGenerators(seed)
        self._masks = {}

    def begin_sequence(self, batch_size, dtype, device):
        self._masks = {}
        super().begin_sequence(batch_size, dtype, device)

    def _dropout(self, x, keep_prob, key):
        if not self.training or keep_prob >= 1:
            return x
        mask = self._masks.get(key) if self.variational_recurrent else None
        if mask is None or mask.shape != x.shape:
            mask = torch.empty_like(x).bernoulli_(keep_prob, generator=self._generator(x.device)) / keep_prob
            if self.variational_recurrent:
                self._masks[key] = mask
        return x * mask

    def forward(self, inputs, state):
        inputs = self._dropout(inputs, self.input_keep_prob, "input")
        output, new_state = self.cell(inputs, state)
        counter = iter(range(1 << 30))
        new_state = _map_state_except_c(
            lambda s: self._dropout(s, self.state_keep_prob, f"state{next(counter)}"), new_state)
        return self._dropout(output, self.output_keep_prob, "output"), new_state


class ResidualWrapper(_Wrapper):
    """tf.nn.rnn_cell.ResidualWrapper: output = residual_fn(inputs, cell_output), by default inputs + cell_output."""

    def __init__(self, cell, residual_fn=None):
        super().__init__(cell)
        self.residual_fn = residual_fn or (lambda inputs, output: inputs + output)

    def forward(self, inputs, state):
        output, new_state = self.cell(inputs, state)
        return self.residual_fn(inputs, output), new_state


class ZoneoutWrapper(_Wrapper):
    """Zoneout (Krueger et al. 2016): each unit of the state keeps its previous value with probability zoneout_prob
    (a float, or one per state tensor, e.g. (c_prob, h_prob) for an LSTM) in training; in eval mode the state is
    the expectation, p * previous + (1 - p) * new. The output is the cell's output."""

    def __init__(self, cell, zoneout_prob, seed=None):
        super().__init__(cell)
        self.zoneout_prob = zoneout_prob
        self._generator = SeededGenerators(seed)

    def forward(self, inputs, state):
        output, new_state = self.cell(inputs, state)
        previous, new = _flatten(state), _flatten(new_state)
        probs = self.zoneout_prob if isinstance(self.zoneout_prob, (tuple, list)) else [self.zoneout_prob] * len(new)
        if len(probs) != len(new):
            raise ValueError(f"ZoneoutWrapper: {len(probs)} zoneout probabilities for {len(new)} state tensors")
        zoned = []
        for p, prev, nxt in zip(probs, previous, new):
            if self.training:
                keep_previous = torch.empty_like(nxt).bernoulli_(p, generator=self._generator(nxt.device))
                zoned.append(torch.where(keep_previous.bool(), prev, nxt))
            else:
                zoned.append(p * prev + (1 - p) * nxt)
        return output, _unflatten(new_state, zoned)


def _flatten(state):
    leaves = []
    tree_map(leaves.append, state)
    return leaves


def _unflatten(structure, leaves):
    values = iter(leaves)
    return tree_map(lambda _: next(values), structure)


__all__ = ["MultiRNNCell", "DropoutWrapper", "ResidualWrapper", "ZoneoutWrapper"]
