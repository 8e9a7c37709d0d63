"""fastlstm.LayerNormLSTM against a written-out formula, haste's formulation (weights loaded from haste's layout),
every input form, gradcheck, torch.compile and the module conventions."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import fastlstm
from conftest import assert_close


def normalise(v, gain, shift=None, eps=1e-5):
    """Layer norm written out: biased variance over the last dimension, eps inside the root."""
    mean = v.mean(-1, keepdim=True)
    var = ((v - mean) ** 2).mean(-1, keepdim=True)
    out = (v - mean) / torch.sqrt(var + eps) * gain
    return out if shift is None else out + shift


def formula(x, h, c, weights, gate_order="ifgo"):
    """Ba et al.'s layer-normalised LSTM over x [T, B, I], one layer; weights in torch's layout unless
    gate_order="igfo" (haste's blocks)."""
    w_ih, w_hh, b_ih, b_hh, g_ih, g_hh, g_c, s_c = weights
    outputs = []
    for t in range(x.shape[0]):
        v = normalise(x[t] @ w_ih.t(), g_ih) + normalise(h @ w_hh.t(), g_hh) + b_ih + b_hh
        blocks = dict(zip(gate_order, v.chunk(4, dim=-1)))
        c = torch.sigmoid(blocks["f"]) * c + torch.sigmoid(blocks["i"]) * torch.tanh(blocks["g"])
        h = torch.sigmoid(blocks["o"]) * torch.tanh(normalise(c, g_c, s_c))
        outputs.append(h)
    return torch.stack(outputs), h, c


def randomise(module):
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.5)
    return module


@pytest.mark.parametrize("backend", ["fused", "reference"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_the_written_out_formula(dtype, backend):
    module = randomise(fastlstm.LayerNormLSTM(5, 6, dtype=dtype, backend=backend))
    x = torch.randn(7, 3, 5, dtype=dtype)
    h0, c0 = torch.randn(1, 3, 6, dtype=dtype), torch.randn(1, 3, 6, dtype=dtype)
    output, (h_n, c_n) = module(x, (h0, c0))
    expected, h, c = formula(x, h0[0], c0[0], module.all_weights[0])
    assert_close(output, expected)
    assert_close(h_n[0], h)
    assert_close(c_n[0], c)
    assert module.last_backend == backend


def test_parameters_names_and_initialisation():
    torch.manual_seed(0)
    module = fastlstm.LayerNormLSTM(4, 5, num_layers=2, bidirectional=True)
    torch.manual_seed(0)
    plain = torch.nn.LSTM(4, 5, num_layers=2, bidirectional=True)
    state = module.state_dict()
    for name, value in plain.state_dict().items():  # the same seed gives torch.nn.LSTM's weights
        assert torch.equal(state[name], value), name
    for layer in ("l0", "l0_reverse", "l1", "l1_reverse"):
        assert torch.equal(state[f"ln_ih_weight_{layer}"], torch.ones(20))
        assert torch.equal(state[f"ln_hh_weight_{layer}"], torch.ones(20))
        assert torch.equal(state[f"ln_cell_weight_{layer}"], torch.ones(5))
        assert torch.equal(state[f"ln_cell_bias_{layer}"], torch.zeros(5))
    copy = fastlstm.LayerNormLSTM(4, 5, num_layers=2, bidirectional=True)
    copy.load_state_dict(state)
    x = torch.randn(3, 2, 4)
    assert torch.equal(copy(x)[0], module(x)[0])


@pytest.mark.parametrize("backend", ["fused", "reference"])
def test_input_forms_and_lengths(backend):
    module = randomise(fastlstm.LayerNormLSTM(3, 4, num_layers=2, bidirectional=True, dtype=torch.float64,
                                              backend=backend))
    x = torch.randn(6, 5, 3, dtype=torch.float64)
    lengths = torch.tensor([6, 2, 5, 1, 3])
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    output, (h_n, c_n) = module(packed)
    padded, _ = pad_packed_sequence(output, total_length=6)
    for row in range(5):  # each row alone, at its own length
        out_row, (h_row, c_row) = module(x[: lengths[row], row])
        assert_close(padded[: lengths[row], row], out_row)
        assert_close(padded[lengths[row]:, row], torch.zeros_like(padded[lengths[row]:, row]))
        assert_close(h_n[:, row], h_row)
        assert_close(c_n[:, row], c_row)
    batch_first = fastlstm.LayerNormLSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True,
                                         dtype=torch.float64)
    batch_first.load_state_dict(module.state_dict())
    assert_close(batch_first(x.transpose(0, 1))[0], module(x)[0].transpose(0, 1))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("backend", ["fused", "reference"])
def test_gradcheck(backend, bias):
    module = randomise(fastlstm.LayerNormLSTM(3, 2, bias=bias, bidirectional=True, dtype=torch.float64,
                                              backend=backend))
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 2, 2, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(2, 2, 2, dtype=torch.float64, requires_grad=True)
    params = dict(module.named_parameters())
    names = list(params)

    def run(x, h0, c0, *values):
        output, (h_n, c_n) = torch.func.functional_call(module, dict(zip(names, values)), (x, (h0, c0)))
        return output, h_n, c_n

    assert torch.autograd.gradcheck(run, (x, h0, c0, *params.values()))


def test_torch_compile_fullgraph():
    module = randomise(fastlstm.LayerNormLSTM(3, 4, batch_first=True))
    x = torch.randn(2, 5, 3)
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager")
    assert_close(compiled(x)[0], module(x)[0])
    assert module.last_backend == "fused"


def test_haste_weights_load_into_haste_formulation():
    hidden, inputs = 4, 3
    haste = {
        "kernel": torch.randn(inputs, 4 * hidden, dtype=torch.float64),
        "recurrent_kernel": torch.randn(hidden, 4 * hidden, dtype=torch.float64),
        "bias": torch.randn(4 * hidden, dtype=torch.float64),
        "gamma": torch.rand(2, 4 * hidden, dtype=torch.float64) + 0.5,
        "gamma_h": torch.rand(hidden, dtype=torch.float64) + 0.5,
        "beta_h": torch.randn(hidden, dtype=torch.float64),
    }
    module = fastlstm.LayerNormLSTM(inputs, hidden, dtype=torch.float64)
    fastlstm.load_haste_weights(module, haste)
    x = torch.randn(5, 2, inputs, dtype=torch.float64)
    zeros = torch.zeros(2, hidden, dtype=torch.float64)
    # haste: x @ kernel [I, 4H], blocks (i, g, f, o), one bias, gamma[0] / gamma[1] on the two norms.
    haste_weights = (haste["kernel"].t(), haste["recurrent_kernel"].t(), haste["bias"], 0.0, haste["gamma"][0],
                     haste["gamma"][1], haste["gamma_h"], haste["beta_h"])
    expected, h, c = formula(x, zeros, zeros, haste_weights, gate_order="igfo")
    output, (h_n, c_n) = module(x)
    assert_close(output, expected)
    assert_close(c_n[0], c)
    with pytest.raises(ValueError, match="expected kernel of shape"):
        fastlstm.load_haste_weights(fastlstm.LayerNormLSTM(inputs + 1, hidden, dtype=torch.float64), haste)


def test_errors_are_torch_nn_lstm_s():
    module = fastlstm.LayerNormLSTM(3, 4)
    with pytest.raises(ValueError, match="Expected input to be 2D or 3D"):
        module(torch.randn(2, 2, 2, 3))
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size"):
        module(torch.randn(2, 2, 5))
    with pytest.raises(RuntimeError, match="Expected hidden\\[0\\] size"):
        module(torch.randn(2, 2, 3), (torch.zeros(1, 3, 4), torch.zeros(1, 3, 4)))
    with pytest.raises(RuntimeError, match="Expected sequence length to be larger than 0"):
        module(torch.randn(0, 2, 3))
    with pytest.raises(ValueError, match="backend must be one of"):
        fastlstm.LayerNormLSTM(3, 4, backend="cudnn")
    with pytest.raises(TypeError, match="bias should be of type bool"):
        fastlstm.LayerNormLSTM(3, 4, bias=1)
