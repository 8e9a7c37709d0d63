"""TF1's RNN drivers: static_rnn, dynamic_rnn, bidirectional_dynamic_rnn, for any fastlstm.cells.RNNCell.

Cells that fastlstm's fused ops implement (BasicLSTMCell, LSTMCell without proj_clip, LSTMBlockCell,
LayerNormBasicLSTMCell with layer norm, GRUCell, GRUBlockCell(V2), with tanh) run the whole sequence in one fused op
(a chunk of steps per op under swap_memory); every other cell runs a step loop. Past a row's sequence length the
output is zero and the state is carried through unchanged."""

import contextlib

import torch
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten

from . import functional
from ._ops import WORKSPACE_WIDTH
from .cells.base import LSTMStateTuple
from .cells.gru import GRUBlockCellV2, GRUCell
from .cells.lstm import BasicLSTMCell, LayerNormBasicLSTMCell, LSTMBlockCell, LSTMCell
from .sequence import reverse_within_lengths

# A subclass that overrides forward is no longer the math the fused op implements.
_FUSED_FORWARDS = {BasicLSTMCell.forward, LSTMCell.forward, LSTMBlockCell.forward, LayerNormBasicLSTMCell.forward,
                   GRUCell.forward, GRUBlockCellV2.forward}

# Under swap_memory the fused op runs the sequence in chunks of steps whose workspace and output take at most this
# much device memory; each chunk's saved tensors go to the host as soon as its op returns, and backward brings them
# back one chunk at a time. (One fused op over the whole sequence would need all of it on the device at once.)
SWAP_CHUNK_BYTES = 64 << 20


def _lengths(sequence_length, seq_len, batch):
    if sequence_length is None:
        return None
    lengths = torch.as_tensor(sequence_length).to("cpu", torch.int64)
    if lengths.shape != (batch,):
        raise ValueError(f"sequence_length must have shape [{batch}] (the batch), got {list(lengths.shape)}")
    checkable = not (torch.jit.is_tracing() or torch.compiler.is_compiling())  # (values unknown while exporting)
    if checkable and (bool((lengths < 0).any()) or bool((lengths > seq_len).any())):
        raise ValueError(f"sequence_length values must be in [0, {seq_len}], got {lengths.tolist()}")
    return lengths


def uses_fused_op(cell):
    """Whether the drivers run this cell's whole sequence in one fused op (cell.fused_sequence)."""
    return type(cell).forward in _FUSED_FORWARDS and cell.fuses()


def _running_mask(running, like):
    return running.view(-1, *([1] * (like.dim() - 1)))


def _first(inputs):
    return torch.utils._pytree.tree_leaves(inputs)[0]


def _run_fused(cell, inputs, state, lengths, chunk_steps):
    """The whole sequence on the cell's fused op, in calls of at most chunk_steps steps, each continuing from the
    state the previous one ended in (a row's chunk length is what is left of its length, clamped to the chunk)."""
    if chunk_steps >= inputs.shape[0]:  # (no split: an exported graph keeps the length dynamic)
        return cell.fused_sequence(inputs, state, lengths)
    outputs = []
    for x in inputs.split(chunk_steps):
        t0 = chunk_steps * len(outputs)
        chunk_lengths = None if lengths is None else (lengths - t0).clamp(0, x.shape[0])
        output, state = cell.fused_sequence(x, state, chunk_lengths)
        outputs.append(output)
    return (outputs[0] if len(outputs) == 1 else torch.cat(outputs)), state


def _swap_chunk_steps(inputs, hidden_size):
    step_bytes = inputs.shape[1] * (WORKSPACE_WIDTH + 1) * hidden_size * inputs.element_size()
    return max(1, SWAP_CHUNK_BYTES // max(1, step_bytes))


def _run(cell, inputs, state, lengths, swap_memory=False):
    """inputs [T, B, ...] time-major (a tensor, or a tuple of them for cells such as PhasedLSTMCell that take
    (time, x)) -> (outputs [T, B, ...], final state)."""
    if isinstance(inputs, torch.Tensor) and uses_fused_op(cell):
        seq_len = max(1, inputs.shape[0])
        chunk_steps = min(seq_len, _swap_chunk_steps(inputs, state[0].shape[-1])) if swap_memory else seq_len
        return _run_fused(cell, inputs, state, lengths, chunk_steps)
    first = _first(inputs)
    cell.begin_sequence(first.shape[1], first.dtype, first.device)
    # unbind once: its backward stacks the T step gradients in one pass, where x[t] per step would fill a zero
    # tensor the size of the whole input for each step's gradient.
    leaves, structure = tree_flatten(inputs)
    steps = zip(*(leaf.unbind(0) for leaf in leaves))
    outputs = []
    for t, step in enumerate(steps):
        output, new_state = cell(tree_unflatten(list(step), structure), state)
        if lengths is None:
            state = new_state
        else:
            running = (lengths > t).to(first.device)
            state = tree_map(lambda new, old: torch.where(_running_mask(running, new), new, old), new_state, state)
            output = torch.where(_running_mask(running, output), output, torch.zeros_like(output))
        outputs.append(output)
    if not outputs:
        return first.new_zeros((0, first.shape[1], *_as_tuple(cell.output_size))), state
    return torch.stack(outputs), state


def _as_tuple(size):
    return tuple(size) if isinstance(size, (tuple, list, torch.Size)) else (size,)


def _swap_context(swap_memory, inputs):
    if not swap_memory:
        return contextlib.nullcontext()
    # What autograd saves for backward goes to host memory (pinned when the inputs are on a GPU) and comes back for
    # backward: TF's swap_memory.
    return torch.autograd.graph.save_on_cpu(pin_memory=inputs.device.type == "cuda")


def dynamic_rnn(cell, inputs, sequence_length=None, initial_state=None, time_major=False, swap_memory=False):
    """inputs [B, T, in] ([T, B, in] if time_major), or a tuple of such tensors -> (outputs in the same layout,
    final state).

    For t >= sequence_length[b]: output(b, t) = 0 and the state stays the state at the row's length."""
    x = inputs if time_major else tree_map(lambda t: t.transpose(0, 1), inputs)
    first = _first(x)
    seq_len, batch = first.shape[0], first.shape[1]
    state = initial_state if initial_state is not None else cell.zero_state(batch, first.dtype, first.device)
    lengths = _lengths(sequence_length, seq_len, batch)
    with _swap_context(swap_memory, first):
        outputs, state = _run(cell, x, state, lengths, swap_memory)
    return (outputs if time_major else outputs.transpose(0, 1)), state


def static_rnn(cell, inputs, initial_state=None, sequence_length=None):
    """inputs: a list of T tensors [B, in] -> (list of T outputs [B, out], final state)."""
    if not inputs:
        raise ValueError("static_rnn: inputs must be a non-empty list of [batch, input_size] tensors")
    outputs, state = dynamic_rnn(cell, torch.stack(list(inputs)), sequence_length, initial_state, time_major=True)
    return list(outputs.unbind(0)), state


def bidirectional_dynamic_rnn(cell_fw, cell_bw, inputs, sequence_length=None, initial_state_fw=None,
                              initial_state_bw=None, time_major=False, swap_memory=False):
    """-> ((outputs_fw, outputs_bw), (state_fw, state_bw)). The backward cell reads each row reversed within its own
    length (not the padded length), and its outputs are reversed back."""
    x = inputs if time_major else inputs.transpose(0, 1)
    lengths = _lengths(sequence_length, x.shape[0], x.shape[1])
    outputs_fw, state_fw = dynamic_rnn(cell_fw, x, lengths, initial_state_fw, True, swap_memory)
    reversed_outputs, state_bw = dynamic_rnn(cell_bw, reverse_within_lengths(x, lengths), lengths, initial_state_bw,
                                             True, swap_memory)
    outputs_bw = reverse_within_lengths(reversed_outputs, lengths)
    if not time_major:
        outputs_fw, outputs_bw = outputs_fw.transpose(0, 1), outputs_bw.transpose(0, 1)
    return (outputs_fw, outputs_bw), (state_fw, state_bw)


__all__ = ["static_rnn", "dynamic_rnn", "bidirectional_dynamic_rnn", "uses_fused_op"]
