"""The measurements behind the CPU goal table (issues 3, 11, 12, 13 and 20): FLOP rate, single steps, variable lengths,
TF's fused kernel, memory saved for backward, the GRU's, the layer-norm LSTM's and the low-precision rows (gru_rows.py,
layer_norm_rows.py, low_precision_rows.py); and rows with no goal set (step-loop training, projections). Each function returns
rows (what, measured, goal, met) for the table."""

import warnings

import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import fastlstm
from gru_rows import gru_rows
from layer_norm_rows import layer_norm_rows
from low_precision_rows import low_precision_rows
from timing import cell, measure

RATIO_GOALS = {  # config: fwd+bwd and no_grad fwd ratio goals against torch.nn.LSTM (issue 11)
    "C1": 1.2, "C2": 1.2, "C3": 3.0, "C4": 1.2,
}
ONNXRUNTIME_GOAL = 1.0  # inference, every config


def module_ratio_rows(results, configs):
    rows = []
    for config, shape in configs.items():
        for mode in ("inference", "training"):
            r = results.get(config, {}).get(mode)
            if r is None:
                continue
            ratio = r["torch.nn.LSTM"]["median_ms"] / r["fastlstm"]["median_ms"]
            goal = RATIO_GOALS[config]
            rows.append((f"fastlstm.LSTM vs torch.nn.LSTM, {config} {shape} {mode}", f"{ratio:.2f}x", f">= {goal}x",
                         ratio >= goal))
            if "onnxruntime" in r:
                ratio = r["onnxruntime"]["median_ms"] / r["fastlstm"]["median_ms"]
                rows.append((f"fastlstm.LSTM vs ONNX Runtime, {config} {shape} {mode}", f"{ratio:.2f}x",
                             f">= {ONNXRUNTIME_GOAL}x", ratio >= ONNXRUNTIME_GOAL))
    return rows


def flop_rate_rows(repeats):
    seq_len, batch, input_size, hidden = 100, 64, 512, 512
    lstm = fastlstm.LSTM(input_size, hidden)
    x = torch.randn(seq_len, batch, input_size)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)

    def lstm_forward():
        with torch.no_grad():
            lstm(x)

    r = measure({"lstm": lstm_forward, "sgemm": lambda: torch.mm(a, b)}, repeats)
    lstm_rate = 2 * seq_len * batch * 4 * hidden * (input_size + hidden) / (r["lstm"]["median_ms"] * 1e-3) / 1e9
    sgemm_rate = 2 * 2048**3 / (r["sgemm"]["median_ms"] * 1e-3) / 1e9
    share = lstm_rate / sgemm_rate
    return [(f"FLOP rate, C1 no_grad fwd ({lstm_rate:.0f} GFLOP/s) vs torch.mm sgemm 2048^3 ({sgemm_rate:.0f} GFLOP/s)",
             f"{100 * share:.0f}%", ">= 85%", share >= 0.85)]


def single_step_rows(repeats):
    rows = []
    for batch, hidden, goal in [(1, 128, 5.0), (8, 256, 2.0)]:
        ours = fastlstm.LSTMCell(hidden, hidden)
        theirs = torch.nn.LSTMCell(hidden, hidden)
        theirs.load_state_dict(ours.state_dict())
        x = torch.randn(batch, hidden)
        state = (torch.zeros(batch, hidden), torch.zeros(batch, hidden))

        def step(module):
            def run():
                with torch.no_grad():
                    module(x, state)
            return run

        r = measure({"torch": step(theirs), "fastlstm": step(ours)}, repeats)
        ratio = r["torch"]["median_ms"] / r["fastlstm"]["median_ms"]
        rows.append((f"single step LSTMCell, no_grad, B={batch} H={hidden}: torch {1e3 * r['torch']['median_ms']:.1f} us, "
                     f"fastlstm {1e3 * r['fastlstm']['median_ms']:.1f} us", f"{ratio:.2f}x", f">= {goal}x",
                     ratio >= goal))
    return rows


def step_loop_training_rows(repeats, steps=50):
    """BPTT through a loop of single steps (an RL policy trained step by step): no goal set, shown for the record."""
    rows = []
    for batch, hidden in [(1, 128), (8, 256)]:
        ours = fastlstm.LSTMCell(hidden, hidden)
        theirs = torch.nn.LSTMCell(hidden, hidden)
        theirs.load_state_dict(ours.state_dict())
        xs = torch.randn(steps, batch, hidden)

        def loop(module):
            def run():
                h = c = torch.zeros(batch, hidden)
                total = 0
                for x in xs:
                    h, c = module(x, (h, c))
                    total = total + h.sum()
                total.backward()
            return run

        r = measure({"torch": loop(theirs), "fastlstm": loop(ours)}, repeats)
        ratio = r["torch"]["median_ms"] / r["fastlstm"]["median_ms"]
        rows.append((f"{steps}-step LSTMCell loop, forward + backward, B={batch} H={hidden}: torch "
                     f"{r['torch']['median_ms']:.2f} ms, fastlstm {r['fastlstm']['median_ms']:.2f} ms", f"{ratio:.2f}x",
                     "(none set)", None))
    return rows


def projection_rows(repeats):
    """proj_size (LSTMP, speech models): no goal set, shown for the record. torch.nn.LSTM with projections leaves
    oneDNN for its default implementation."""
    seq_len, batch, input_size, hidden, proj = 100, 16, 256, 256, 128
    ours = fastlstm.LSTM(input_size, hidden, proj_size=proj)
    theirs = torch.nn.LSTM(input_size, hidden, proj_size=proj)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(seq_len, batch, input_size, requires_grad=True)

    def inference(module):
        def run():
            with torch.no_grad():
                module(x)
        return run

    def training(module):
        def run():
            module(x)[0].sum().backward()
        return run

    rows = []
    for mode, make in (("inference", inference), ("training", training)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch: "LSTM with projections is not supported with oneDNN"
            r = measure({"torch": make(theirs), "fastlstm": make(ours)}, repeats)
        ratio = r["torch"]["median_ms"] / r["fastlstm"]["median_ms"]
        rows.append((f"proj_size={proj}, C2 shape, {mode}: torch {r['torch']['median_ms']:.2f} ms, fastlstm "
                     f"{r['fastlstm']['median_ms']:.2f} ms", f"{ratio:.2f}x", "(none set)", None))
    return rows


def variable_length_rows(repeats):
    seq_len, batch, input_size, hidden = 200, 32, 128, 128
    ours = fastlstm.LSTM(input_size, hidden)
    theirs = torch.nn.LSTM(input_size, hidden)
    theirs.load_state_dict(ours.state_dict())
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(seq_len // 2, seq_len + 1, (batch,), generator=generator)
    x = torch.randn(seq_len, batch, input_size, requires_grad=True)
    # The PackedSequence is built once, its data a leaf: the rows time the LSTMs, not torch's pack_padded_sequence
    # (its forward and backward, ~4 ms here, are the same for every LSTM and would count against the packed row).
    packed = pack_padded_sequence(x.detach(), lengths, enforce_sorted=False)
    packed = PackedSequence(packed.data.requires_grad_(), packed.batch_sizes, packed.sorted_indices,
                            packed.unsorted_indices)

    def packed_step(module):
        def run():
            output, (h_n, c_n) = module(packed)
            (output.data.sum() + h_n.sum()).backward()
        return run

    def fixed_step():
        output, (h_n, c_n) = ours(x)
        (output.sum() + h_n.sum()).backward()

    r = measure({"torch packed": packed_step(theirs), "fastlstm packed": packed_step(ours),
                 "fastlstm fixed": fixed_step}, repeats)
    vs_torch = r["torch packed"]["median_ms"] / r["fastlstm packed"]["median_ms"]
    vs_fixed = r["fastlstm packed"]["median_ms"] / r["fastlstm fixed"]["median_ms"]
    what = (f"lengths U[{seq_len // 2}, {seq_len}], C4 shape, fwd+bwd (packing excluded): torch packed {cell(r['torch packed'])} ms, "
            f"fastlstm packed {cell(r['fastlstm packed'])} ms, fastlstm fixed-length {cell(r['fastlstm fixed'])} ms")
    return [(what + " — vs torch.nn.LSTM on the PackedSequence", f"{vs_torch:.2f}x", ">= 4x", vs_torch >= 4),
            ("same — fastlstm packed time / its own fixed-length time", f"{vs_fixed:.2f}x", "<= 1.1x",
             vs_fixed <= 1.1)]


def tensorflow_rows(results, configs, repeats):
    try:
        import tensorflow as tf
    except ImportError:
        return [("TF BlockLSTMV2 (+ gradient) vs fastlstm fwd+bwd", "tensorflow not installed", ">= 3x", None)]
    tf.config.threading.set_intra_op_parallelism_threads(torch.get_num_threads())
    rows = []
    for config, (seq_len, batch, input_size, hidden) in configs.items():
        x = tf.random.normal((seq_len, batch, input_size))
        w = tf.Variable(tf.random.normal((input_size + hidden, 4 * hidden)) * 0.05)
        b = tf.Variable(tf.zeros((4 * hidden,)))
        zeros = tf.zeros((batch, hidden))
        peephole = tf.zeros((hidden,))

        @tf.function
        def train_step():
            with tf.GradientTape() as tape:
                tape.watch(x)
                outputs = tf.raw_ops.BlockLSTMV2(seq_len_max=tf.constant(seq_len, tf.int64), x=x, cs_prev=zeros,
                                                 h_prev=zeros, w=w, wci=peephole, wcf=peephole, wco=peephole, b=b,
                                                 cell_clip=0.0, use_peephole=False)
                loss = tf.reduce_sum(outputs[6])
            return tape.gradient(loss, [x, w, b])

        def tf_run():
            [g.numpy() for g in train_step()]

        r = measure({"tf": tf_run}, repeats)
        ours = results[config]["training"]["fastlstm"]["median_ms"]
        ratio = r["tf"]["median_ms"] / ours
        rows.append((f"TF BlockLSTMV2 + grad, {config}: {cell(r['tf'])} ms vs fastlstm {ours:.3f} ms",
                     f"{ratio:.2f}x", ">= 3x", ratio >= 3))
    return rows


def saved_bytes(module, x):
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        output, _ = module(x)
    return sum(storages.values()), output


def memory_rows():
    ours = fastlstm.LSTM(512, 512)
    theirs = torch.nn.LSTM(512, 512)
    x = torch.randn(100, 64, 512, requires_grad=True)
    ours_bytes, _ = saved_bytes(ours, x)
    theirs_bytes, _ = saved_bytes(theirs, x)
    share = ours_bytes / theirs_bytes
    return [(f"bytes saved for backward, C1: fastlstm {ours_bytes / 2**20:.1f} MiB, torch.nn.LSTM "
             f"{theirs_bytes / 2**20:.1f} MiB", f"{share:.2f}x", "<= 0.5x", share <= 0.5)]


def print_goal_table(rows):
    print()
    print("| what | measured | goal | met |")
    print("|---|---|---|---|")
    for what, measured, goal, met in rows:
        verdict = "n/a" if met is None else ("yes" if met else "**no**")
        print(f"| {what} | {measured} | {goal} | {verdict} |")


def all_rows(results, configs, repeats, progress=None):
    rows = module_ratio_rows(results, configs)
    steps = [lambda: flop_rate_rows(repeats), lambda: single_step_rows(repeats),
             lambda: step_loop_training_rows(repeats), lambda: projection_rows(repeats),
             lambda: variable_length_rows(repeats), lambda: tensorflow_rows(results, configs, repeats), memory_rows,
             lambda: layer_norm_rows(repeats), lambda: gru_rows(configs, repeats),
             lambda: low_precision_rows(configs, repeats)]
    for step in steps:
        rows += step()
        if progress is not None:
            progress.update(1)
    return rows


__all__ = ["all_rows", "print_goal_table"]
