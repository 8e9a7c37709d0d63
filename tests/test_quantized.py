"""int8 dynamic quantization: torch.ops.fastlstm.quantized_lstm / quantized_gru against the graph-composed
reference (reference.quantized_*_sequence: the same quantization, composed), at every dispatch level; the error
against float32 next to torch's quantize_dynamic on the same weights and inputs; the modules, quantize_dynamic
(fastlstm's and torch's entry), state_dict, opcheck, bad input."""

import io
import json
import os
import subprocess
import sys
import warnings

import pytest
import torch

import fastlstm
from fastlstm import reference
from fastlstm.quantized import quantize_weight

ops = torch.ops.fastlstm
warnings.filterwarnings("ignore", message="torch.ao.quantization is deprecated")

# (T, B, I, H): H a multiple of 32 runs brgemm where the CPU has int8 dot products; odd sizes the float32 products;
# 70 rows: more than one row tile; B=1, T=1.
SHAPES = [(5, 3, 7, 5), (6, 4, 64, 64), (4, 70, 32, 96), (1, 1, 12, 32), (7, 2, 33, 64)]


def quantized_inputs(gates, T, B, I, H, seed=0, lengths=False):
    g = torch.Generator().manual_seed(seed)
    w_ih, s_ih = quantize_weight(torch.randn(gates * H, I, generator=g) * 0.3)
    w_hh, s_hh = quantize_weight(torch.randn(gates * H, H, generator=g) * 0.3)
    args = dict(x=torch.randn(T, B, I, generator=g), h0=torch.randn(B, H, generator=g) * 0.5, w_ih=w_ih,
                w_ih_scale=s_ih, w_hh=w_hh, w_hh_scale=s_hh, b_ih=torch.randn(gates * H, generator=g),
                b_hh=torch.randn(gates * H, generator=g),
                sequence_lengths=torch.randint(0, T + 1, (B,), generator=g) if lengths else None)
    if gates == 4:
        args = dict(list(args.items())[:2] + [("c0", torch.randn(B, H, generator=g))] + list(args.items())[2:])
    return args


def run_op(gates, args):
    return ops.quantized_lstm(**args) if gates == 4 else ops.quantized_gru(**args)


def run_reference(gates, args):
    args = dict(args)
    lengths = args.pop("sequence_lengths")
    fn = reference.quantized_lstm_sequence if gates == 4 else reference.quantized_gru_sequence
    return fn(*args.values(), sequence_lengths=lengths)


@pytest.mark.parametrize("lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("gates", [4, 3], ids=["lstm", "gru"])
def test_op_matches_the_composed_reference(gates, shape, lengths):
    args = quantized_inputs(gates, *shape, lengths=lengths)
    for got, expected in zip(run_op(gates, args), run_reference(gates, args)):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=2e-6)


LEVEL_SCRIPT = """
import json, sys, torch, fastlstm
sys.path.insert(0, {tests!r})
from test_quantized import SHAPES, quantized_inputs, run_op, run_reference
worst = 0.0
for gates in (4, 3):
    for shape in SHAPES:
        args = quantized_inputs(gates, *shape, lengths=True)
        for got, expected in zip(run_op(gates, args), run_reference(gates, args)):
            worst = max(worst, (got - expected).abs().max().item())
print(json.dumps({{"level": fastlstm.cpu_capability()["level"], "worst": worst}}))
"""


@pytest.mark.parametrize("level", ["baseline", "avx2"])
def test_every_dispatch_level_matches_the_reference(level):
    """Below the avx512 level the products run as float32 GEMMs of the same integers (in a subprocess: the level is
    chosen once per process)."""
    env = dict(os.environ, FASTLSTM_CPU_CAPABILITY=level)
    done = subprocess.run([sys.executable, "-c", LEVEL_SCRIPT.format(tests=os.path.dirname(__file__))], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["level"] == level
    assert result["worst"] < 5e-6


def test_zero_steps_and_empty_batch_return_the_initial_state():
    args = quantized_inputs(4, 0, 3, 8, 32)
    output, h_n, c_n = ops.quantized_lstm(**args)
    assert output.shape == (0, 3, 32)
    assert torch.equal(h_n, args["h0"]) and torch.equal(c_n, args["c0"])
    args = quantized_inputs(3, 4, 0, 8, 32)
    output, h_n = ops.quantized_gru(**args)
    assert output.shape == (4, 0, 32) and h_n.shape == (0, 32)


def test_nan_in_a_row_stays_in_that_row():
    args = quantized_inputs(4, 3, 4, 8, 32)
    args["x"][1, 2, 5] = float("nan")
    output, h_n, c_n = ops.quantized_lstm(**args)
    assert torch.isnan(output[1:, 2]).all() and torch.isnan(h_n[2]).all()
    assert not torch.isnan(output[:, [0, 1, 3]]).any()


def test_results_do_not_depend_on_the_thread_count():
    args = quantized_inputs(4, 6, 16, 64, 128)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = ops.quantized_lstm(**args)
        torch.set_num_threads(2)
        two = ops.quantized_lstm(**args)
    finally:
        torch.set_num_threads(before)
    for a, b in zip(one, two):
        assert torch.equal(a, b)


@pytest.mark.parametrize("gates", [4, 3], ids=["lstm", "gru"])
def test_opcheck(gates):
    for lengths in (False, True):
        args = quantized_inputs(gates, 4, 3, 8, 32, lengths=lengths)
        op = ops.quantized_lstm if gates == 4 else ops.quantized_gru
        torch.library.opcheck(op, tuple(args.values()))


def test_bad_inputs_say_what_was_expected():
    args = quantized_inputs(4, 3, 2, 8, 32)
    with pytest.raises(RuntimeError, match="expected w_ih to be an int8 CPU tensor"):
        ops.quantized_lstm(**{**args, "w_ih": args["w_ih"].float()})
    with pytest.raises(RuntimeError, match=r"expected w_hh of shape \[128, 32\]"):
        ops.quantized_lstm(**{**args, "w_hh": args["w_hh"][:, :16]})
    with pytest.raises(RuntimeError, match="expected x to be a float32 CPU tensor"):
        ops.quantized_lstm(**{**args, "x": args["x"].double()})
    with pytest.raises(RuntimeError, match="expected w_ih_scale of shape"):
        ops.quantized_lstm(**{**args, "w_ih_scale": args["w_ih_scale"][:5]})
    with pytest.raises(RuntimeError, match="sequence length"):
        ops.quantized_lstm(**{**args, "sequence_lengths": torch.tensor([4, 1])})


def torch_quantized(module):
    """torch's quantize_dynamic of a torch.nn module (its entry converts children, not the root)."""
    return torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(module), {type(module)},
                                                  dtype=torch.qint8)[0]


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_error_against_float32_no_worse_than_torch_quantize_dynamic(kind):
    torch.manual_seed(0)
    float_module = getattr(torch.nn, kind)(64, 64, num_layers=2).eval()
    x = torch.randn(20, 8, 64)
    ours = fastlstm.quantized.__dict__[kind].from_float(float_module)
    theirs = torch_quantized(float_module)
    assert "quantized" in type(theirs).__module__
    with torch.no_grad():
        expected = float_module(x)[0]
        our_error = (ours(x)[0] - expected).abs().max().item()
        their_error = (theirs(x)[0] - expected).abs().max().item()
    assert our_error <= their_error, (our_error, their_error)
    assert our_error < 0.05


def layer_reference(module, x, h0, c0=None):
    args = [module.weight_ih_l0, module.weight_ih_l0_scale, module.weight_hh_l0, module.weight_hh_l0_scale,
            module.bias_ih_l0, module.bias_hh_l0]
    if c0 is not None:
        return reference.quantized_lstm_sequence(x, h0, c0, *args)
    return reference.quantized_gru_sequence(x, h0, *args)


def test_one_layer_module_is_the_reference_on_its_buffers():
    lstm = fastlstm.quantize_dynamic(fastlstm.LSTM(8, 32).eval())
    x, h0, c0 = torch.randn(5, 3, 8), torch.randn(1, 3, 32), torch.randn(1, 3, 32)
    output, (h_n, c_n) = lstm(x, (h0, c0))
    expected = layer_reference(lstm, x, h0[0], c0[0])
    torch.testing.assert_close(output, expected[0], rtol=1e-5, atol=2e-6)
    torch.testing.assert_close(c_n[0], expected[2], rtol=1e-5, atol=2e-6)
    gru = fastlstm.quantize_dynamic(fastlstm.GRU(8, 32).eval())
    output, h_n = gru(x, h0)
    torch.testing.assert_close(output, layer_reference(gru, x, h0[0])[0], rtol=1e-5, atol=2e-6)


FORMS = {
    "batch_first-bidirectional-2-layers": dict(num_layers=2, bidirectional=True, batch_first=True),
    "no-bias": dict(bias=False),
    "plain": dict(),
}


@pytest.mark.parametrize("kwargs", FORMS.values(), ids=FORMS.keys())
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_modules_take_torch_nn_input_forms(kind, kwargs):
    torch.manual_seed(1)
    float_module = getattr(fastlstm, kind)(8, 32, **kwargs).eval()
    quantized = fastlstm.quantize_dynamic(float_module)
    assert type(quantized) is getattr(fastlstm.quantized, kind)
    batch_first = kwargs.get("batch_first", False)
    x = torch.randn(3, 6, 8) if batch_first else torch.randn(6, 3, 8)
    with torch.no_grad():
        for inputs in [(x,), (x[0] if batch_first else x[:, 0],)]:  # batched, unbatched
            expected, got = float_module(*inputs), quantized(*inputs)
            torch.testing.assert_close(got[0], expected[0], atol=0.05, rtol=0)
        packed = torch.nn.utils.rnn.pack_padded_sequence(torch.randn(6, 3, 8), [6, 2, 4], enforce_sorted=False)
        got, state = quantized(packed)
        expected, expected_state = float_module(packed)
        torch.testing.assert_close(got.data, expected.data, atol=0.05, rtol=0)
        for a, b in zip(state if kind == "LSTM" else [state], expected_state if kind == "LSTM" else [expected_state]):
            torch.testing.assert_close(a, b, atol=0.05, rtol=0)


def test_wrong_input_dtype_and_hidden_size_raise_torch_nn_errors():
    quantized = fastlstm.quantize_dynamic(fastlstm.LSTM(8, 32).eval())
    with pytest.raises(ValueError, match="input dtype"):
        quantized(torch.randn(4, 2, 8, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="Expected hidden\\[0\\] size"):
        quantized(torch.randn(4, 2, 8), (torch.zeros(1, 3, 32), torch.zeros(1, 3, 32)))


@pytest.mark.parametrize("kind", ["LSTMCell", "GRUCell"])
def test_cells(kind):
    torch.manual_seed(2)
    float_cell = getattr(fastlstm, kind)(8, 32)
    quantized = fastlstm.quantize_dynamic(float_cell)
    assert type(quantized) is getattr(fastlstm.quantized, kind)
    x = torch.randn(4, 8)
    hx = torch.randn(4, 32) if kind == "GRUCell" else (torch.randn(4, 32), torch.randn(4, 32))
    with torch.no_grad():
        for inputs in [(x,), (x, hx), (x[0],)]:
            expected, got = float_cell(*inputs), quantized(*inputs)
            for a, b in zip(got if kind == "LSTMCell" else [got], expected if kind == "LSTMCell" else [expected]):
                torch.testing.assert_close(a, b, atol=0.05, rtol=0)


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = fastlstm.GRU(16, 32)
        self.cell = fastlstm.LSTMCell(32, 32)
        self.head = torch.nn.Linear(32, 4)

    def forward(self, x):
        y, _ = self.rnn(x)
        h, _ = self.cell(y[-1])
        return self.head(h)


def test_quantize_dynamic_through_torch_and_fastlstm_entries_and_state_dict():
    torch.manual_seed(3)
    model = Model().eval()
    x = torch.randn(5, 3, 16)
    mapping = {**torch.ao.quantization.quantization_mappings.get_default_dynamic_quant_module_mappings(),
               **fastlstm.quantized.DYNAMIC_MAPPING}
    through_torch = torch.ao.quantization.quantize_dynamic(
        model, {fastlstm.GRU, fastlstm.LSTMCell, torch.nn.Linear}, dtype=torch.qint8, mapping=mapping)
    ours = fastlstm.quantize_dynamic(model)
    assert type(ours.rnn) is fastlstm.quantized.GRU and type(ours.cell) is fastlstm.quantized.LSTMCell
    assert "quantized" in type(ours.head).__module__
    assert type(model.rnn) is fastlstm.GRU  # not in place
    with torch.no_grad():
        torch.testing.assert_close(ours(x), through_torch(x))
        torch.testing.assert_close(ours(x), model(x), atol=0.05, rtol=0)
    buffer = io.BytesIO()
    torch.save(ours.state_dict(), buffer)
    buffer.seek(0)
    fresh = fastlstm.quantize_dynamic(Model().eval())
    fresh.load_state_dict(torch.load(buffer))
    with torch.no_grad():
        assert torch.equal(fresh(x), ours(x))


def test_what_is_not_served_says_so():
    with pytest.raises(ValueError, match="proj_size"):
        fastlstm.quantized.LSTM.from_float(torch.nn.LSTM(8, 16, proj_size=4))
    with pytest.raises(TypeError, match="expected a"):
        fastlstm.quantized.GRU.from_float(torch.nn.LSTM(8, 16))
    with pytest.raises(ValueError, match="torch.qint8"):
        fastlstm.quantize_dynamic(Model(), dtype=torch.float16)
    model = torch.nn.Sequential(fastlstm.LSTM(8, 16))
    with pytest.raises(ValueError, match="qint8 weights"):
        torch.ao.quantization.quantize_dynamic(model, {fastlstm.LSTM: torch.ao.quantization.float_qparams_weight_only_qconfig},
                                               mapping=fastlstm.quantized.DYNAMIC_MAPPING)


def test_torch_nn_lstm_runs_on_the_int8_kernel_through_the_mapping():
    model = torch.nn.Sequential(torch.nn.LSTM(8, 32))
    quantized = fastlstm.quantize_dynamic(model, mapping={torch.nn.LSTM: fastlstm.quantized.LSTM})
    assert type(quantized[0]) is fastlstm.quantized.LSTM
