"""One entry point per LSTM granularity; each picks a backend and runs it.

Backends: "fused" (fastlstm's kernels, torch.ops.fastlstm.*), "cudnn" (cuDNN through ATen's RNN binding, CUDA
tensors only), "reference" (plain torch ops, see reference.py), or "auto": cuDNN on CUDA tensors when no option needs
fastlstm's own kernels (the seeds' advice: cuDNN is the fastest GPU LSTM but has no peepholes, cell_clip,
forget_bias), else the fused kernels whenever they cover the request, else the reference.
"""

import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from . import _direct, layout, reference
from ._ops import ops

BACKENDS = ("auto", "fused", "cudnn", "reference")
# Resolved once: each attribute step through torch.ops costs about a microsecond, as much as a small step's math.
_FORWARD = ops.forward.default
_CELL_FORWARD = ops.cell_forward.default
# The same ops called without torch.ops' argument boxing (csrc/python/direct_calls.cpp), for eager calls.
_LAYER_NORM_FORWARD = ops.layer_norm_lstm.default
_GRU = ops.gru.default
_DIRECT = {_FORWARD: _direct.forward, _CELL_FORWARD: _direct.cell_forward,
           _LAYER_NORM_FORWARD: _direct.layer_norm_lstm, _GRU: _direct.gru}
# bfloat16 and float16 run on the float32 kernels (computing the gates and c in float32, csrc/low_precision.h).
FUSED_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
CUDNN_DTYPES = (torch.float16, torch.float32, torch.float64)
# cuDNN's RNN fails on longer sequences (pytorch/pytorch#133751); "auto" runs the fused kernels there.
CUDNN_MAX_STEPS = 65535


# Device types with fastlstm kernels: the CPU always, CUDA when this build compiled its kernels.
FUSED_DEVICES = ("cpu", "cuda") if torch._C._dispatch_has_kernel_for_dispatch_key("fastlstm::forward", "CUDA") \
    else ("cpu",)


def exporting_onnx():
    """Whether torch.onnx.export is running. An export always traces (the legacy exporter with torch.jit, the dynamo
    one with torch.export), so torch.onnx.is_in_onnx_export (~4 us a call: it imports two modules) is asked only then;
    the two cheap checks cost ~0.7 us."""
    return (torch.jit.is_tracing() or torch.compiler.is_compiling()) and torch.onnx.is_in_onnx_export()


def forget_cached_rnn_kernels():
    """Called before ATen's RNN binding runs under an ONNX export. The dynamo exporter's RNN rewrite
    (torch.export._patches, torch 2.13) installs a while_loop kernel for aten::lstm / gru for the export's duration
    but leaves the ops' dispatch caches as they are: from the second export in a process on, the cached unrolled
    decomposition wins and the exported length is a constant (torch.nn.LSTM exported twice alike). Emptying the
    caches makes every export take the rewrite; they refill on the next call."""
    for packet in (torch.ops.aten.lstm, torch.ops.aten.gru):
        for name in packet.overloads():
            cache = getattr(getattr(packet, name), "_dispatch_cache", None)
            if cache is not None:
                cache.clear()


def _fused_unsupported(x, w_hr):
    """Why the fused kernels cannot serve this request, or None when they can."""
    if w_hr is not None and x.device.type != "cpu":
        return "projections (proj_size > 0) off the CPU (the CUDA kernels have none; cuDNN has)"
    if x.dtype not in FUSED_DTYPES:
        return f"dtype {x.dtype} (fused kernels run float32, float64, bfloat16 and float16)"
    if x.device.type not in FUSED_DEVICES:
        return f"device {x.device.type} (fused kernels run on {', '.join(FUSED_DEVICES)} in this build)"
    return None


def _cudnn_unsupported(x, tf_options=None, sequence_lengths=None, steps=None):
    """Why cuDNN cannot serve this request, or None when it can. steps: the sequence's length (x.shape[0] when x is
    [T, B, I]; modules pass a PackedSequence's)."""
    if x.device.type != "cuda":
        return f"device {x.device.type} (cuDNN runs on CUDA tensors)"
    steps = x.shape[0] if steps is None and x.dim() == 3 else steps
    if steps is not None and steps > CUDNN_MAX_STEPS:
        return f"sequences over {CUDNN_MAX_STEPS} steps (cuDNN fails there: pytorch/pytorch#133751)"
    if not (torch.backends.cudnn.is_available() and torch.backends.cudnn.enabled):
        return "this torch (cuDNN unavailable or torch.backends.cudnn.enabled is False)"
    if tf_options:
        return f"{tf_options} (cuDNN has no peepholes, cell_clip or forget_bias)"
    if x.dtype not in CUDNN_DTYPES:
        return f"dtype {x.dtype}"
    if sequence_lengths is not None and bool((sequence_lengths == 0).any()):
        return "zero-length rows (cuDNN's packed sequences need every length >= 1)"
    return None


def choose_backend(backend, x, w_hr=None, tf_options=None, sequence_lengths=None, single_step=False, steps=None):
    """The backend that runs `x` with these options: "cudnn", "fused" or "reference". tf_options names the TF
    options in use (peepholes, cell_clip, forget_bias), which only fastlstm's kernels and the reference have.
    cuDNN has no single-step call, so single steps choose between the other two."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "reference":
        return "reference"
    cudnn_missing = "single steps (cuDNN runs whole sequences)" if single_step else _cudnn_unsupported(
        x, tf_options, sequence_lengths, steps)
    if backend == "cudnn":
        if cudnn_missing is not None:
            raise ValueError(f"backend='cudnn' cannot serve {cudnn_missing}; use backend='auto', 'fused' or "
                             "'reference'")
        return "cudnn"
    if backend == "auto" and cudnn_missing is None:
        return "cudnn"
    missing = _fused_unsupported(x, w_hr)
    if missing is None:
        return "fused"
    if backend == "fused":
        raise ValueError(f"backend='fused' does not support {missing}; use backend='auto' or 'reference'")
    return "reference"


def tf_options_in_use(w_peephole=None, forget_bias=0.0, cell_clip=0.0):
    used = [name for name, on in (("peepholes", w_peephole is not None), ("forget_bias", forget_bias != 0),
                                  ("cell_clip", cell_clip > 0)) if on]
    return ", ".join(used) or None


def cudnn_weights(w_ih, w_hh, b_ih, b_hh, w_hr=None):
    """The flat weight list of one layer and direction as ATen's RNN binding takes it (cuDNN wants both biases)."""
    weights = [w_ih, w_hh]
    if b_ih is not None or b_hh is not None:
        weights += [b_ih if b_ih is not None else torch.zeros_like(b_hh),
                    b_hh if b_hh is not None else torch.zeros_like(b_ih)]
    if w_hr is not None:
        weights.append(w_hr)
    return weights


def _cudnn_rnn(mode, x, states, weights, has_biases, sequence_lengths):
    """One layer on cuDNN through ATen's RNN binding (torch._VF.lstm / gru, what torch.nn.LSTM / GRU call). Chosen
    over calling cuDNN's API directly: it takes torch.nn's weight layout as it is, handles packed sequences,
    projections and the descriptor/workspace bookkeeping, and gives torch.nn's own numerics. states: (h0, c0) for
    "LSTM", (h0,) for "GRU". Returns (output, *final states)."""
    run = torch._VF.lstm if mode == "LSTM" else torch._VF.gru
    train = torch.is_grad_enabled()
    hx = tuple(state.unsqueeze(0) for state in states)

    def as_hx(hx):
        return hx if mode == "LSTM" else hx[0]

    if sequence_lengths is None:
        output, *finals = run(x, as_hx(hx), weights, has_biases, 1, 0.0, train, False, False)
        return (output, *(final[0] for final in finals))
    packed = pack_padded_sequence(x, sequence_lengths.cpu(), enforce_sorted=False)
    hx = tuple(state.index_select(1, packed.sorted_indices) for state in hx)
    data, *finals = run(packed.data, packed.batch_sizes, as_hx(hx), weights, has_biases, 1, 0.0, train, False)
    output, _ = pad_packed_sequence(PackedSequence(data, packed.batch_sizes, packed.sorted_indices,
                                                   packed.unsorted_indices), total_length=x.shape[0])
    return (output, *(final[0].index_select(0, packed.unsorted_indices) for final in finals))


def _needs_workspace(*tensors):
    """Whether the forward must keep the workspace for a backward. Under torch.jit.trace always: the flag becomes a
    constant of the traced graph, which must hold for every later run (with or without gradients; the trace's own
    check reruns it under no_grad) -- a traced graph trades the workspace's memory for that."""
    if torch.jit.is_tracing():
        return True
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _call_fused(op, training, x, *args):
    """Calls a fused op. In eager mode on plain tensors it calls the op directly (fastlstm._direct: ~8 us less a
    call than torch.ops, most of a single step at batch 1, H=128); torch.compile, tracing and tensor subclasses get
    torch.ops. With no gradient to track the call goes below the autograd layer: the autograd kernel
    (csrc/autograd.cpp) costs ~1 us a call even with nothing to record."""
    if torch.compiler.is_compiling() or torch.jit.is_tracing() or type(x) is not torch.Tensor:
        if training or torch.compiler.is_compiling():
            return op(x, *args)
        with torch._C._AutoDispatchBelowAutograd():
            return op(x, *args)
    return _DIRECT[op](x, *args, not training)


def lstm(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, *, w_hr=None, w_peephole=None, sequence_lengths=None,
         forget_bias=0.0, cell_clip=0.0, backend="auto", tf_layout=False):
    """One layer, one direction, the whole sequence.

    x [T, B, I] (time-major), h0 [B, H_out], c0 [B, H], torch.nn.LSTM's weights of one layer and direction,
    w_peephole [3, H], sequence_lengths [B] int64. Returns (output [T, B, H_out], h_n [B, H_out], c_n [B, H]).
    w_hr [H_out, H] projects h (torch.nn.LSTM's proj_size; H_out = proj_size, else H).
    tf_layout: the weights are TF's instead: w_ih is TF's kernel [I + H_out, 4H] (gate blocks i, j, f, o; see
    layout.py), w_hh is None, the biases are in TF's gate order, w_hr is TF's projection kernel [H, H_out].
    """
    chosen = choose_backend(backend, x, w_hr, tf_options_in_use(w_peephole, forget_bias, cell_clip),
                            sequence_lengths)
    return lstm_on(chosen, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr=w_hr, w_peephole=w_peephole,
                   sequence_lengths=sequence_lengths, forget_bias=forget_bias, cell_clip=cell_clip,
                   tf_layout=tf_layout)


def lstm_on(chosen, x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, *, w_hr=None, w_peephole=None,
            sequence_lengths=None, forget_bias=0.0, cell_clip=0.0, tf_layout=False):
    """lstm on a backend already chosen by choose_backend (modules choose once per call)."""
    if tf_layout and chosen != "fused":
        w_ih, w_hh, b_ih, b_hh, w_hr = layout.torch_layout(w_ih, b_ih, b_hh, w_hr, x.shape[-1])
        tf_layout = False
    if chosen == "reference":
        return reference.lstm_sequence(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr=w_hr, w_peephole=w_peephole,
                                       sequence_lengths=sequence_lengths, forget_bias=forget_bias,
                                       cell_clip=cell_clip)
    if chosen == "cudnn":
        return _cudnn_rnn("LSTM", x, (h0, c0), cudnn_weights(w_ih, w_hh, b_ih, b_hh, w_hr),
                          b_ih is not None or b_hh is not None, sequence_lengths)
    training = _needs_workspace(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peephole, w_hr)
    output, h_n, c_n, _ = _call_fused(_FORWARD, training, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peephole,
                                      sequence_lengths, float(forget_bias), float(cell_clip), training, tf_layout,
                                      w_hr)
    return output, h_n, c_n


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, *, w_hr=None, w_peephole=None, forget_bias=0.0,
              cell_clip=0.0, backend="auto", tf_layout=False):
    """One step (TF's LSTMBlockCell). x [B, I], h [B, H_out], c [B, H] -> (h_new, c_new). w_hr and tf_layout as in
    lstm()."""
    chosen = choose_backend(backend, x, w_hr, tf_options_in_use(w_peephole, forget_bias, cell_clip),
                            single_step=True)
    return lstm_cell_on(chosen, x, h, c, w_ih, w_hh, b_ih, b_hh, w_hr=w_hr, w_peephole=w_peephole,
                        forget_bias=forget_bias, cell_clip=cell_clip, tf_layout=tf_layout)


def lstm_cell_on(chosen, x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, *, w_hr=None, w_peephole=None, forget_bias=0.0,
                 cell_clip=0.0, tf_layout=False):
    """lstm_cell on a backend already chosen by choose_backend (modules choose once per call)."""
    if tf_layout and chosen != "fused":
        w_ih, w_hh, b_ih, b_hh, w_hr = layout.torch_layout(w_ih, b_ih, b_hh, w_hr, x.shape[-1])
        tf_layout = False
    if chosen == "reference":
        return reference.lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh, w_hr=w_hr, w_peephole=w_peephole,
                                   forget_bias=forget_bias, cell_clip=cell_clip)
    training = _needs_workspace(x, h, c, w_ih, w_hh, b_ih, b_hh, w_peephole, w_hr)
    h_new, c_new, _ = _call_fused(_CELL_FORWARD, training, x, h, c, w_ih, w_hh, b_ih, b_hh, w_peephole,
                                  float(forget_bias), float(cell_clip), training, tf_layout, w_hr)
    return h_new, c_new


LAYER_NORM_BACKENDS = ("auto", "fused", "reference")
# Where the layer-normalised LSTM's fused kernels run: the CPU, and CUDA when this build compiled its kernels.
LAYER_NORM_FUSED_DEVICES = ("cpu", "cuda") if torch._C._dispatch_has_kernel_for_dispatch_key(
    "fastlstm::layer_norm_lstm", "CUDA") else ("cpu",)
# What "auto" picks them for. Not CUDA yet: those kernels are built and linked but have not run on a GPU (no GPU has
# been lent to this project's sessions); backend="fused" runs them, "auto" keeps the reference there until they have
# been checked on one (tests/test_cuda.py).
LAYER_NORM_AUTO_DEVICES = ("cpu",)


def choose_layer_norm_backend(backend, x):
    """"fused" or "reference" for the layer-normalised LSTM ("auto": fused on LAYER_NORM_AUTO_DEVICES)."""
    if backend not in LAYER_NORM_BACKENDS:
        raise ValueError(f"backend must be one of {LAYER_NORM_BACKENDS}, got {backend!r}")
    if backend == "reference":
        return "reference"
    missing = None
    if x.dtype not in FUSED_DTYPES:
        missing = f"dtype {x.dtype} (fused kernels run float32, float64, bfloat16 and float16)"
    elif x.device.type not in LAYER_NORM_FUSED_DEVICES:
        missing = (f"device {x.device.type} (the layer-norm LSTM's fused kernels run on "
                   f"{', '.join(LAYER_NORM_FUSED_DEVICES)} in this build)")
    if missing is None and (backend == "fused" or x.device.type in LAYER_NORM_AUTO_DEVICES):
        return "fused"
    if backend == "fused":
        raise ValueError(f"backend='fused' does not support {missing}; use backend='auto' or 'reference'")
    return "reference"


def layer_norm_lstm(x, h0, c0, w_ih, w_hh, bias, ln_ih_weight, ln_hh_weight, ln_cell_weight, ln_cell_bias, *,
                    sequence_lengths=None, g_mask=None, groups=1, eps=1e-5, forget_bias=0.0,
                    carry_normalized_cell=False, backend="auto"):
    """The layer-normalised LSTM, one layer and direction, the whole sequence (formulation: reference.py and
    csrc/layer_norm_lstm_params.h). x [T, B, I], h0/c0 [B, H], w_ih [4H, I], w_hh [4H, H], bias [4H] or None,
    ln_ih_weight [4H], ln_hh_weight [4H] or None (one norm of the sum), ln_cell_weight/ln_cell_bias [H], g_mask
    [T, B, H] or None, sequence_lengths [B]. Returns (output [T, B, H], h_n, c_n)."""
    chosen = choose_layer_norm_backend(backend, x)
    return layer_norm_lstm_on(chosen, x, h0, c0, w_ih, w_hh, bias, ln_ih_weight, ln_hh_weight, ln_cell_weight,
                              ln_cell_bias, sequence_lengths=sequence_lengths, g_mask=g_mask, groups=groups, eps=eps,
                              forget_bias=forget_bias, carry_normalized_cell=carry_normalized_cell)


def layer_norm_lstm_on(chosen, x, h0, c0, w_ih, w_hh, bias, ln_ih_weight, ln_hh_weight, ln_cell_weight,
                       ln_cell_bias, *, sequence_lengths=None, g_mask=None, groups=1, eps=1e-5, forget_bias=0.0,
                       carry_normalized_cell=False):
    """layer_norm_lstm on a backend already chosen by choose_layer_norm_backend."""
    options = dict(groups=groups, eps=eps, forget_bias=forget_bias, carry_normalized_cell=carry_normalized_cell)
    if chosen == "reference":
        return reference.layer_norm_lstm_sequence(x, h0, c0, w_ih, w_hh, bias, ln_ih_weight, ln_hh_weight,
                                                  ln_cell_weight, ln_cell_bias, sequence_lengths=sequence_lengths,
                                                  g_mask=g_mask, **options)
    weights = (w_ih, w_hh, bias, ln_ih_weight, ln_hh_weight, ln_cell_weight, ln_cell_bias)
    training = _needs_workspace(x, h0, c0, *weights)
    output, h_n, c_n, _ = _call_fused(_LAYER_NORM_FORWARD, training, x, h0, c0, *weights, sequence_lengths, g_mask,
                                      int(groups), float(eps), float(forget_bias), bool(carry_normalized_cell),
                                      training)
    return output, h_n, c_n


# The GRU. Its fused kernels: the CPU's, and CUDA's where this build compiled them; "auto" picks the CUDA ones for
# nothing yet (built and linked, not yet run on a GPU): CUDA tensors take cuDNN, or the reference where cuDNN cannot
# serve (TF's convention); backend="fused" runs them.
GRU_FUSED_DEVICES = ("cpu", "cuda") if torch._C._dispatch_has_kernel_for_dispatch_key("fastlstm::gru", "CUDA") \
    else ("cpu",)
GRU_AUTO_DEVICES = ("cpu",)


def choose_gru_backend(backend, x, sequence_lengths=None, single_step=False, linear_before_reset=True, steps=None):
    """"cudnn", "fused" or "reference" for the GRU, as choose_backend for the LSTM."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "reference":
        return "reference"
    if single_step:
        cudnn_missing = "single steps (cuDNN runs whole sequences)"
    elif not linear_before_reset:
        cudnn_missing = "TF's GRU (linear_before_reset=False: cuDNN applies the reset after the matmul)"
    else:
        cudnn_missing = _cudnn_unsupported(x, None, sequence_lengths, steps)
    if backend == "cudnn":
        if cudnn_missing is not None:
            raise ValueError(f"backend='cudnn' cannot serve {cudnn_missing}; use backend='auto', 'fused' or "
                             "'reference'")
        return "cudnn"
    if backend == "auto" and cudnn_missing is None:
        return "cudnn"
    missing = None
    if x.dtype not in FUSED_DTYPES:
        missing = f"dtype {x.dtype} (fused kernels run float32, float64, bfloat16 and float16)"
    elif x.device.type not in GRU_FUSED_DEVICES:
        missing = f"device {x.device.type} (the GRU's fused kernels run on {', '.join(GRU_FUSED_DEVICES)} here)"
    if missing is None and (backend == "fused" or x.device.type in GRU_AUTO_DEVICES):
        return "fused"
    if backend == "fused":
        raise ValueError(f"backend='fused' does not support {missing}; use backend='auto' or 'reference'")
    return "reference"


def gru(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, sequence_lengths=None, linear_before_reset=True,
        backend="auto"):
    """One GRU layer, one direction, the whole sequence: x [T, B, I], h0 [B, H], torch.nn.GRU's weights of one layer
    and direction (w_ih [3H, I], w_hh [3H, H], b_ih/b_hh [3H]), sequence_lengths [B]. linear_before_reset=False:
    TF's candidate (reference.gru_cell). Returns (output [T, B, H], h_n [B, H])."""
    chosen = choose_gru_backend(backend, x, sequence_lengths, linear_before_reset=linear_before_reset)
    return gru_on(chosen, x, h0, w_ih, w_hh, b_ih, b_hh, sequence_lengths=sequence_lengths,
                  linear_before_reset=linear_before_reset)


def gru_on(chosen, x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, sequence_lengths=None, linear_before_reset=True):
    """gru on a backend already chosen by choose_gru_backend."""
    if chosen == "reference":
        return reference.gru_sequence(x, h0, w_ih, w_hh, b_ih, b_hh, sequence_lengths=sequence_lengths,
                                      linear_before_reset=linear_before_reset)
    if chosen == "cudnn":
        return _cudnn_rnn("GRU", x, (h0,), cudnn_weights(w_ih, w_hh, b_ih, b_hh),
                          b_ih is not None or b_hh is not None, sequence_lengths)
    training = _needs_workspace(x, h0, w_ih, w_hh, b_ih, b_hh)
    output, h_n, _ = _call_fused(_GRU, training, x, h0, w_ih, w_hh, b_ih, b_hh, sequence_lengths, training,
                                 bool(linear_before_reset))
    return output, h_n


def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, *, linear_before_reset=True, backend="auto"):
    """One GRU step: x [B, I], h [B, H] -> h_new [B, H] (the sequence kernel over one step)."""
    chosen = choose_gru_backend(backend, x, single_step=True)
    return gru_cell_on(chosen, x, h, w_ih, w_hh, b_ih, b_hh, linear_before_reset=linear_before_reset)


def gru_cell_on(chosen, x, h, w_ih, w_hh, b_ih=None, b_hh=None, *, linear_before_reset=True):
    """gru_cell on a backend already chosen by choose_gru_backend."""
    if chosen == "reference":
        return reference.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh, linear_before_reset=linear_before_reset)
    return gru_on(chosen, x.unsqueeze(0), h, w_ih, w_hh, b_ih, b_hh, linear_before_reset=linear_before_reset)[1]
