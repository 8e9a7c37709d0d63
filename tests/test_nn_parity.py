"""fastlstm.LSTM / LSTMCell against torch.nn.LSTM / LSTMCell with the same weights (moved by state_dict)."""

import itertools
import re
import warnings

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import fastlstm
from conftest import assert_close

INPUT_SIZE, HIDDEN_SIZE = 5, 7  # odd on purpose


def make_pair(dtype, **kwargs):
    kwargs.setdefault("dtype", dtype)
    ours = fastlstm.LSTM(INPUT_SIZE, HIDDEN_SIZE, **kwargs)
    theirs = torch.nn.LSTM(INPUT_SIZE, HIDDEN_SIZE, **kwargs)
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def make_input(form, seq_len, batch, dtype, batch_first):
    """A leaf tensor to differentiate against, and a function making the module input from it (a fresh graph for
    each module)."""
    if form == "unbatched":
        leaf = torch.randn(seq_len, INPUT_SIZE, dtype=dtype, requires_grad=True)
        return leaf, lambda: leaf
    if form in ("packed_sorted", "packed_unsorted"):
        leaf = torch.randn(batch, seq_len, INPUT_SIZE, dtype=dtype, requires_grad=True)
        lengths = torch.randint(1, seq_len + 1, (batch,))
        lengths[torch.randint(0, batch, ())] = seq_len
        if form == "packed_sorted":
            lengths = lengths.sort(descending=True).values
        return leaf, lambda: pack_padded_sequence(leaf, lengths, batch_first=True,
                                                  enforce_sorted=form == "packed_sorted")
    leaf = torch.randn(batch, seq_len, INPUT_SIZE, dtype=dtype, requires_grad=True)
    return leaf, lambda: leaf if batch_first else leaf.transpose(0, 1)


def make_state(num_states, batch, size, dtype, unbatched):
    shape = (num_states, size) if unbatched else (num_states, batch, size)
    return (torch.randn(shape, dtype=dtype) * 0.5).requires_grad_()


def run_and_grad(module, x, hx, leaves):
    output, (h_n, c_n) = module(x, hx)
    data = output.data if isinstance(output, PackedSequence) else output
    torch.manual_seed(99)
    loss = sum((torch.randn_like(t) * t).sum() for t in (data, h_n, c_n))
    grads = torch.autograd.grad(loss, leaves + list(module.parameters()), allow_unused=True)
    return output, h_n, c_n, grads


FORMS = ["batched", "unbatched", "packed_sorted", "packed_unsorted"]
CONFIGS = list(itertools.product([1, 2], [True, False], [False, True], [False, True], [0, 3]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("num_layers,bias,batch_first,bidirectional,proj_size", CONFIGS,
                         ids=lambda v: str(v))
@pytest.mark.parametrize("with_hx", [True, False], ids=["hx", "no_hx"])
def test_lstm_matches_torch(dtype, form, num_layers, bias, batch_first, bidirectional, proj_size, with_hx):
    ours, theirs = make_pair(dtype, num_layers=num_layers, bias=bias, batch_first=batch_first,
                             bidirectional=bidirectional, proj_size=proj_size)
    seq_len, batch = 6, 4
    leaf, make_x = make_input(form, seq_len, batch, dtype, batch_first)
    num_states = num_layers * (2 if bidirectional else 1)
    hx, leaves = None, [leaf]
    if with_hx:
        out_size = proj_size or HIDDEN_SIZE
        hx = (make_state(num_states, batch, out_size, dtype, form == "unbatched"),
              make_state(num_states, batch, HIDDEN_SIZE, dtype, form == "unbatched"))
        leaves += list(hx)
    ours_result = run_and_grad(ours, make_x(), hx, leaves)
    theirs_result = run_and_grad(theirs, make_x(), hx, leaves)
    assert ours.last_backend == "fused"
    if isinstance(theirs_result[0], PackedSequence):
        for name in ("batch_sizes", "sorted_indices", "unsorted_indices"):
            a, b = getattr(ours_result[0], name), getattr(theirs_result[0], name)
            assert (a is None and b is None) or torch.equal(a, b)
    for actual, expected in zip(ours_result[:3], theirs_result[:3]):
        actual = actual.data if isinstance(actual, PackedSequence) else actual
        expected = expected.data if isinstance(expected, PackedSequence) else expected
        assert actual.shape == expected.shape
        assert_close(actual, expected, dtype)
    for actual, expected in zip(ours_result[3], theirs_result[3]):
        assert_close(actual, expected, dtype)


@pytest.mark.parametrize("seq_len,batch,hidden", [(1, 1, 1), (1, 3, 5), (9, 1, 13), (3, 2, 33)])
def test_lstm_edge_sizes(seq_len, batch, hidden):
    ours = fastlstm.LSTM(INPUT_SIZE, hidden, num_layers=2, bidirectional=True, dtype=torch.float64)
    theirs = torch.nn.LSTM(INPUT_SIZE, hidden, num_layers=2, bidirectional=True, dtype=torch.float64)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(seq_len, batch, INPUT_SIZE, dtype=torch.float64, requires_grad=True)
    a, b = run_and_grad(ours, x, None, [x]), run_and_grad(theirs, x, None, [x])
    for actual, expected in zip(a[:3] + a[3], b[:3] + b[3]):
        assert_close(actual, expected)


def test_dropout_between_layers_matches_torch_in_training():
    """Same seed, same masks: dropout is applied where torch applies it, drawing the same random numbers."""
    ours, theirs = make_pair(torch.float64, num_layers=3, dropout=0.5)
    ours.train()
    theirs.train()
    x = torch.randn(5, 3, INPUT_SIZE, dtype=torch.float64)
    torch.manual_seed(7)
    a = ours(x)[0]
    torch.manual_seed(7)
    b = theirs(x)[0]
    assert_close(a, b)
    ours.eval()
    assert torch.equal(ours(x)[0], ours(x)[0])


def test_same_seed_same_initialisation():
    for kwargs in [dict(), dict(num_layers=2, bidirectional=True, proj_size=3, bias=False)]:
        torch.manual_seed(3)
        ours = fastlstm.LSTM(INPUT_SIZE, HIDDEN_SIZE, **kwargs)
        torch.manual_seed(3)
        theirs = torch.nn.LSTM(INPUT_SIZE, HIDDEN_SIZE, **kwargs)
        ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
        assert list(ours_state) == list(theirs_state)
        for name in theirs_state:
            assert torch.equal(ours_state[name], theirs_state[name]), name


def test_state_dict_moves_both_ways():
    kwargs = dict(num_layers=2, bidirectional=True, proj_size=4)
    theirs = torch.nn.LSTM(INPUT_SIZE, HIDDEN_SIZE, **kwargs)
    ours = fastlstm.LSTM(INPUT_SIZE, HIDDEN_SIZE, **kwargs)
    ours.load_state_dict(theirs.state_dict())  # strict
    again = torch.nn.LSTM(INPUT_SIZE, HIDDEN_SIZE, **kwargs)
    again.load_state_dict(ours.state_dict())
    x = torch.randn(4, 2, INPUT_SIZE)
    assert_close(again(x)[0], theirs(x)[0])
    assert [(n, p.shape) for n, p in ours.named_parameters()] == [(n, p.shape) for n, p in theirs.named_parameters()]


def test_module_surface_matches_torch():
    ours, theirs = make_pair(torch.float32, num_layers=2, bidirectional=True)
    assert repr(ours) == repr(theirs)
    assert [[p.shape for p in layer] for layer in ours.all_weights] == \
        [[p.shape for p in layer] for layer in theirs.all_weights]
    ours.flatten_parameters()


def test_constructor_errors_and_warnings_match_torch():
    for kwargs in [dict(proj_size=-1), dict(proj_size=HIDDEN_SIZE), dict(dropout=1.5), dict(dropout=True)]:
        with pytest.raises(ValueError) as ours_error:
            fastlstm.LSTM(INPUT_SIZE, HIDDEN_SIZE, **kwargs)
        with pytest.raises(ValueError) as theirs_error:
            torch.nn.LSTM(INPUT_SIZE, HIDDEN_SIZE, **kwargs)
        assert str(ours_error.value) == str(theirs_error.value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fastlstm.LSTM(INPUT_SIZE, HIDDEN_SIZE, dropout=0.3)
        torch.nn.LSTM(INPUT_SIZE, HIDDEN_SIZE, dropout=0.3)
    assert len(caught) == 2 and str(caught[0].message) == str(caught[1].message)


def test_backend_is_selectable_and_reported():
    x = torch.randn(4, 2, INPUT_SIZE)
    fused = fastlstm.LSTM(INPUT_SIZE, HIDDEN_SIZE, backend="fused")
    ref = fastlstm.LSTM(INPUT_SIZE, HIDDEN_SIZE, backend="reference")
    ref.load_state_dict(fused.state_dict())
    assert_close(fused(x)[0], ref(x)[0])
    assert (fused.last_backend, ref.last_backend) == ("fused", "reference")
    with pytest.raises(ValueError, match="does not support dtype torch.complex64"):
        fastlstm.LSTM(INPUT_SIZE, HIDDEN_SIZE, backend="fused", dtype=torch.complex64)(x.to(torch.complex64))
    with pytest.raises(ValueError, match="backend must be one of"):
        fastlstm.LSTM(INPUT_SIZE, HIDDEN_SIZE, backend="cudnn-please")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_hx", [True, False])
def test_lstm_cell_matches_torch(dtype, bias, batched, with_hx):
    ours = fastlstm.LSTMCell(INPUT_SIZE, HIDDEN_SIZE, bias=bias, dtype=dtype)
    theirs = torch.nn.LSTMCell(INPUT_SIZE, HIDDEN_SIZE, bias=bias, dtype=dtype)
    theirs.load_state_dict(ours.state_dict())
    shape = (3, INPUT_SIZE) if batched else (INPUT_SIZE,)
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    leaves, hx = [x], None
    if with_hx:
        state_shape = (3, HIDDEN_SIZE) if batched else (HIDDEN_SIZE,)
        hx = (torch.randn(state_shape, dtype=dtype, requires_grad=True),
              torch.randn(state_shape, dtype=dtype, requires_grad=True))
        leaves += list(hx)
    results = []
    for module in (ours, theirs):
        h, c = module(x, hx)
        loss = (h * torch.arange(h.numel(), dtype=dtype).view_as(h)).sum() + (c * 0.3).sum()
        results.append((h, c, torch.autograd.grad(loss, leaves + list(module.parameters()))))
    assert ours.last_backend == "fused"
    assert_close(results[0][0], results[1][0])
    assert_close(results[0][1], results[1][1])
    for actual, expected in zip(results[0][2], results[1][2]):
        assert_close(actual, expected)


@pytest.mark.parametrize("kwargs", [dict(), dict(num_layers=2, bidirectional=True, batch_first=True),
                                    dict(proj_size=3)])
def test_torch_lstm_public_methods(kwargs):
    """check_input, get_expected_hidden_size / cell_size, check_hidden_size, check_forward_args and permute_hidden
    behave as torch.nn.LSTM's (users subclass the module and call them), and forward goes through them."""
    ours, theirs = fastlstm.LSTM(4, 5, **kwargs), torch.nn.LSTM(4, 5, **kwargs)
    x = torch.randn(6, 2, 4)
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.randn(6, 3, 4), torch.tensor([6, 2, 4]),
                                                     enforce_sorted=False)
    for args in ((x, None), (packed.data, packed.batch_sizes)):
        assert ours.get_expected_hidden_size(*args) == theirs.get_expected_hidden_size(*args)
        assert ours.get_expected_cell_size(*args) == theirs.get_expected_cell_size(*args)
    good = (torch.zeros(theirs.get_expected_hidden_size(x, None)), torch.zeros(theirs.get_expected_cell_size(x, None)))
    ours.check_forward_args(x, good, None)
    bad_cases = [(x, (good[0][:, :1], good[1]), None), (x, (good[0], good[1][..., :2]), None),
                 (x[..., :3], good, None), (x.double(), good, None), (x[0], good, None)]
    for bad in bad_cases:
        with pytest.raises((RuntimeError, ValueError)) as expected:
            theirs.check_forward_args(*bad)
        with pytest.raises(type(expected.value), match=re.escape(str(expected.value))):
            ours.check_forward_args(*bad)
    permutation = torch.tensor([1, 0])
    for a, b in zip(ours.permute_hidden(good, permutation), theirs.permute_hidden(good, permutation)):
        assert torch.equal(a, b)
    assert ours.permute_hidden(good, None) is good

    class Checked(fastlstm.LSTM):
        calls = 0

        def check_forward_args(self, input, hidden, batch_sizes):
            Checked.calls += 1
            super().check_forward_args(input, hidden, batch_sizes)

    Checked(4, 5, **kwargs)(x.transpose(0, 1) if kwargs.get("batch_first") else x)
    assert Checked.calls == 1


def test_to_torch_for_what_matches_by_class():
    """quantize_dynamic matches modules by class and leaves fastlstm's in float; to_torch() hands it torch's."""
    ours = fastlstm.LSTM(4, 6, num_layers=2, bidirectional=True, batch_first=True).eval()
    theirs = ours.to_torch()
    assert type(theirs) is torch.nn.LSTM and not theirs.training
    x = torch.randn(3, 5, 4)
    assert_close(theirs(x)[0], ours(x)[0])
    quantized = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(theirs), {torch.nn.LSTM},
                                                       dtype=torch.qint8)
    assert type(quantized[0]) is torch.ao.nn.quantized.dynamic.LSTM
    assert_close(quantized[0](x)[0], ours(x)[0], rtol=0.1, atol=0.05)
    cell = fastlstm.LSTMCell(4, 6)
    assert_close(cell.to_torch()(x[:, 0])[0], cell(x[:, 0])[0])
