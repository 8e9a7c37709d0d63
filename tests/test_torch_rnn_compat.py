"""Where fastlstm's drop-ins must behave as torch.nn's recurrent modules (issue 22): second derivatives through the
fused ops, hidden_size 0 in the cells, GRU's proj_size error, a parameter deleted and assigned again."""

import subprocess
import sys
import textwrap

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

import fastlstm
from conftest import assert_close
from fastlstm import functional

F64 = dict(dtype=torch.float64)


def run_isolated(code):
    """Runs `code` (its own asserts) in a fresh interpreter: a crash there fails this test instead of the run."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


# --- second derivatives through the fused ops --------------------------------------------------------------------

MODULES = {
    "LSTM": lambda bias: fastlstm.LSTM(2, 3, bias=bias, **F64),
    "LSTM-2-layers-bidirectional-proj": lambda bias: fastlstm.LSTM(2, 3, num_layers=2, bidirectional=True,
                                                                   proj_size=2, bias=bias, **F64),
    "GRU": lambda bias: fastlstm.GRU(2, 3, bias=bias, **F64),
    "LSTMCell": lambda bias: fastlstm.LSTMCell(2, 3, bias=bias, **F64),
    "GRUCell": lambda bias: fastlstm.GRUCell(2, 3, bias=bias, **F64),
    "LayerNormLSTM": lambda bias: fastlstm.LayerNormLSTM(2, 3, bias=bias, **F64),
}
CELLS = ("LSTMCell", "GRUCell")


def module_outputs(module, x):
    """Every differentiable output of a module call, flat."""
    return tuple(torch.utils._pytree.tree_leaves(module(x)))


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("name", MODULES)
def test_gradgradcheck_of_modules_on_the_fused_path(name, bias):
    module = MODULES[name](bias)
    x = torch.randn((2, 2) if name in CELLS else (3, 2, 2), requires_grad=True, **F64)
    params = tuple(module.parameters())
    assert gradgradcheck(lambda x, *_: module_outputs(module, x), (x, *params))
    assert module.last_backend == "fused"


def randn(*shape):
    return (torch.randn(*shape, **F64) / 2).requires_grad_()


def lstm_case(tf_layout=False, projection=False, cell=False):
    """functional.lstm (or lstm_cell) on the fused path with every TF option: peepholes, forget_bias, cell_clip,
    sequence lengths (sequences), a projection w_hr, TF's weight layout. Returns (function, inputs)."""
    T, B, I, H = 3, 3, 2, 3
    R = 2 if projection else H
    w_ih, w_hh = (randn(I + R, 4 * H), None) if tf_layout else (randn(4 * H, I), randn(4 * H, R))
    w_hr = (randn(H, R) if tf_layout else randn(R, H)) if projection else None
    weights = (w_ih, w_hh, randn(4 * H), randn(4 * H), randn(3, H), w_hr)
    options = dict(forget_bias=0.7, cell_clip=0.4, backend="fused", tf_layout=tf_layout)
    if cell:
        def run(x, h, c, w_ih, w_hh, b_ih, b_hh, w_peephole, w_hr):
            return functional.lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh, w_peephole=w_peephole, w_hr=w_hr, **options)
        return run, (randn(B, I), randn(B, R), randn(B, H), *weights)
    lengths = torch.tensor([3, 0, 2])

    def run(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peephole, w_hr):
        return functional.lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peephole=w_peephole, w_hr=w_hr,
                               sequence_lengths=lengths, **options)
    return run, (randn(T, B, I), randn(B, R), randn(B, H), *weights)


def layer_norm_case(separate, carry_normalized_cell):
    """functional.layer_norm_lstm on the fused path: haste's separate norms or TF's joint per-gate norms, lengths,
    recurrent dropout's g_mask, forget_bias, the carried cell normalised or not."""
    T, B, I, H = 3, 3, 2, 3
    lengths = torch.tensor([3, 1, 0])
    g_mask = torch.bernoulli(torch.full((T, B, H), 0.7, **F64)) / 0.7
    groups = 1 if separate else 4

    def run(x, h0, c0, w_ih, w_hh, bias, ln_ih, ln_hh, ln_cell_weight, ln_cell_bias):
        return functional.layer_norm_lstm(x, h0, c0, w_ih, w_hh, bias, ln_ih, ln_hh, ln_cell_weight, ln_cell_bias,
                                          sequence_lengths=lengths, g_mask=g_mask, groups=groups, forget_bias=0.5,
                                          carry_normalized_cell=carry_normalized_cell, backend="fused")
    return run, (randn(T, B, I), randn(B, H), randn(B, H), randn(4 * H, I), randn(4 * H, H), randn(4 * H),
                 randn(4 * H), randn(4 * H) if separate else None, randn(H), randn(H))


def gru_case(linear_before_reset):
    lengths = torch.tensor([3, 0, 2])

    def run(x, h0, w_ih, w_hh, b_ih, b_hh):
        return functional.gru(x, h0, w_ih, w_hh, b_ih, b_hh, sequence_lengths=lengths,
                              linear_before_reset=linear_before_reset, backend="fused")
    return run, (randn(3, 3, 2), randn(3, 3), randn(9, 2), randn(9, 3), randn(9), randn(9))


OP_CASES = {
    "lstm": lambda: lstm_case(),
    "lstm-projection": lambda: lstm_case(projection=True),
    "lstm-tf-layout": lambda: lstm_case(tf_layout=True),
    "lstm-tf-layout-projection": lambda: lstm_case(tf_layout=True, projection=True),
    "lstm-cell": lambda: lstm_case(cell=True),
    "lstm-cell-tf-layout-projection": lambda: lstm_case(tf_layout=True, projection=True, cell=True),
    "layer-norm-separate": lambda: layer_norm_case(separate=True, carry_normalized_cell=False),
    "layer-norm-joint-tf": lambda: layer_norm_case(separate=False, carry_normalized_cell=True),
    "gru": lambda: gru_case(linear_before_reset=True),
    "gru-tf": lambda: gru_case(linear_before_reset=False),
}


def present(inputs):
    return tuple(t for t in inputs if t is not None)


def with_present(run, inputs):
    """run as a function of the inputs that are not None (gradcheck takes tensors only)."""
    def call(*tensors):
        it = iter(tensors)
        return run(*(None if t is None else next(it) for t in inputs))
    return call


@pytest.mark.parametrize("case", OP_CASES)
def test_gradgradcheck_of_the_fused_ops_with_their_options(case):
    run, inputs = OP_CASES[case]()
    assert gradgradcheck(with_present(run, inputs), present(inputs))


@pytest.mark.parametrize("case", OP_CASES)
def test_gradients_under_create_graph_equal_the_fused_first_order_ones(case):
    """create_graph=True takes the recompute; its first derivative is the fused backward's."""
    run, inputs = OP_CASES[case]()
    tensors = present(inputs)
    outputs = run(*inputs)
    grad_outputs = [torch.randn_like(o) for o in outputs]
    fused = torch.autograd.grad(outputs, tensors, grad_outputs, retain_graph=True)
    recomputed = torch.autograd.grad(outputs, tensors, grad_outputs, create_graph=True)
    assert all(g.requires_grad for g in recomputed)
    assert_close(recomputed, fused)


def test_first_order_gradcheck_still_passes_with_a_projection():
    run, inputs = lstm_case(projection=True)
    assert gradcheck(with_present(run, inputs), present(inputs))


class Critic(torch.nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn
        self.head = torch.nn.Linear(rnn.hidden_size, 1, **F64)

    def forward(self, x):
        return self.head(self.rnn(x)[0][-1]).sum()


@pytest.mark.parametrize("make_rnn", [torch.nn.LSTM, torch.nn.GRU], ids=["LSTM", "GRU"])
def test_wgan_gp_gradient_penalty_trains_as_with_torch_nn(make_rnn):
    """A WGAN-GP critic step (Gulrajani et al. 2017): the penalty ((|d critic / d x| - 1)^2) needs the gradient's own
    gradient. fastlstm's critic follows torch.nn's step for step."""
    reference = Critic(make_rnn(3, 4, **F64))
    ours = Critic(getattr(fastlstm, make_rnn.__name__)(3, 4, **F64))
    ours.load_state_dict(reference.state_dict())
    optimizers = [torch.optim.SGD(critic.parameters(), lr=0.1) for critic in (reference, ours)]
    real, fake = torch.randn(5, 4, 3, **F64), torch.randn(5, 4, 3, **F64)
    for _ in range(3):
        mix = torch.rand(1, 4, 1, **F64)
        interpolated = (mix * real + (1 - mix) * fake).requires_grad_()
        for critic, optimizer in zip((reference, ours), optimizers):
            optimizer.zero_grad()
            (grad,) = torch.autograd.grad(critic(interpolated), interpolated, create_graph=True)
            penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
            (critic(fake) - critic(real) + 10 * penalty).backward()
            optimizer.step()
        assert ours.rnn.last_backend == "fused"
        assert_close(dict(ours.named_parameters()), dict(reference.named_parameters()))


def test_the_backward_op_called_directly_still_has_no_derivative():
    run, inputs = lstm_case()
    x, h0, c0, w_ih, w_hh, b_ih, b_hh, _, _ = inputs
    output, h_n, c_n, workspace = fastlstm.ops.forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    grads = fastlstm.ops.backward(torch.ones_like(output), None, None, x, h0, c0, w_ih, w_hh, None, None, output,
                                  workspace, 0.0)
    with pytest.raises(RuntimeError, match="no derivative of their own.*differentiate the forward op"):
        grads[0].sum().backward()


def test_without_python_the_second_derivative_is_a_clear_error():
    """The ops library alone (a C++ deployment) has no recompute to call: create_graph=True says so."""
    run_isolated(f"""
        import torch
        torch.ops.load_library({fastlstm.ops_library()!r})
        x = torch.randn(2, 1, 2, requires_grad=True)
        h0, c0 = torch.zeros(1, 3), torch.zeros(1, 3)
        output = torch.ops.fastlstm.forward(x, h0, c0, torch.randn(12, 2), torch.randn(12, 3), None, None)[0]
        torch.autograd.grad(output.sum(), x, retain_graph=True)  # the first derivative works
        try:
            torch.autograd.grad(output.sum(), x, create_graph=True)
        except RuntimeError as error:
            assert "first derivatives only" in str(error), error
        else:
            raise AssertionError("expected an error")
    """)


# --- hidden_size 0 ---------------------------------------------------------------------------------------------

def test_cells_with_hidden_size_0_return_empty_states_as_torch_nn():
    """torch.nn's cells accept hidden_size 0 ([N, 0] states, zero input gradients); fastlstm's kernels run no step
    then (in a subprocess: a kernel reading past an empty state would crash)."""
    run_isolated("""
        import torch, fastlstm
        for name in ("LSTMCell", "GRUCell"):
            for state in (True, False):
                torch.manual_seed(0)
                theirs, ours = getattr(torch.nn, name)(10, 0), getattr(fastlstm, name)(10, 0)
                ours.load_state_dict(theirs.state_dict())
                x = torch.randn(3, 10, requires_grad=True)
                hx = None
                if state:
                    hx = torch.randn(3, 0) if name == "GRUCell" else (torch.randn(3, 0), torch.randn(3, 0))
                expected, got = theirs(x, hx), ours(x, hx)
                torch.testing.assert_close(got, expected)
                assert ours.last_backend == "fused", ours.last_backend
                leaves = lambda out: [t.sum() for t in (out if isinstance(out, tuple) else (out,))]
                inputs = [x, *theirs.parameters()]
                expected_grads = torch.autograd.grad(sum(leaves(expected)), inputs, materialize_grads=True)
                got_grads = torch.autograd.grad(sum(leaves(got)), [x, *ours.parameters()], materialize_grads=True)
                torch.testing.assert_close(got_grads, expected_grads)
    """)


def test_the_fused_ops_at_hidden_size_0():
    run_isolated("""
        import torch
        from fastlstm import functional
        x = torch.randn(4, 3, 5, requires_grad=True)
        empty = torch.zeros(3, 0)
        w = lambda gates, width: torch.zeros(0, width)
        lstm = functional.lstm(x, empty, empty, w(4, 5), w(4, 0), torch.zeros(0), torch.zeros(0), backend="fused")
        gru = functional.gru(x, empty, w(3, 5), w(3, 0), backend="fused")
        layer_norm = functional.layer_norm_lstm(x, empty, empty, w(4, 5), w(4, 0), None, torch.zeros(0), None,
                                                torch.zeros(0), torch.zeros(0), backend="fused")
        for output, *_ in (lstm, gru, layer_norm):
            assert output.shape == (4, 3, 0), output.shape
            (grad,) = torch.autograd.grad(output.sum(), x, materialize_grads=True)
            assert torch.equal(grad, torch.zeros_like(x))
        tf = functional.lstm(x, empty, empty, torch.zeros(5, 0), None, None, None, backend="fused", tf_layout=True)
        assert tf[0].shape == (4, 3, 0)
    """)


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_sequence_modules_refuse_hidden_size_0_as_torch_nn(name):
    with pytest.raises(ValueError) as theirs:
        getattr(torch.nn, name)(10, 0)
    with pytest.raises(ValueError, match=f"^{theirs.value}$"):
        getattr(fastlstm, name)(10, 0)


def test_layer_norm_lstm_refuses_hidden_size_0_as_torch_nn_lstm():
    with pytest.raises(ValueError, match="^hidden_size must be greater than zero$"):
        fastlstm.LayerNormLSTM(10, 0)


# --- GRU's proj_size -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("proj_size", [2, 0])
def test_gru_refuses_proj_size_as_torch_nn(proj_size):
    """torch.nn.GRU raises ValueError for any proj_size argument, 0 included."""
    with pytest.raises(ValueError) as theirs:
        torch.nn.GRU(10, 4, proj_size=proj_size)
    with pytest.raises(ValueError, match=f"^{theirs.value}$"):
        fastlstm.GRU(10, 4, proj_size=proj_size)


# --- a parameter deleted and assigned again (torch's test_partial_flat_weights) ------------------------------------

STACKS = {"LSTM": (torch.nn.LSTM, fastlstm.LSTM), "GRU": (torch.nn.GRU, fastlstm.GRU),
          "LayerNormLSTM": (torch.nn.LSTM, fastlstm.LayerNormLSTM)}


@pytest.mark.parametrize("name", STACKS)
def test_a_deleted_parameter_assigned_again(name):
    """As torch.nn.RNNBase: with weight_hh_l0 deleted the module still moves (.double(), which flattens the LSTM's
    parameters again; torch's test moves it to CUDA) and lists None in its place in _flat_weights; assigned again, it
    runs as before."""
    make_torch, make_ours = STACKS[name]
    theirs, ours = make_torch(10, 6, 2), make_ours(10, 6, 2)
    x = torch.randn(3, 2, 10)
    expected = ours(x)[0]
    for module in (theirs, ours):
        weight = module.weight_hh_l0
        del module.weight_hh_l0
        assert not hasattr(module, "weight_hh_l0")
        module.double()
        assert module._flat_weights[1] is None
        module.weight_hh_l0 = torch.nn.Parameter(weight.double())
    assert_close(ours(x.double())[0], expected.double(), dtype=torch.float32)


def test_calling_with_a_deleted_parameter_says_which():
    module = fastlstm.GRU(4, 5)
    del module.weight_hh_l0
    with pytest.raises(AttributeError, match="expected parameter 'weight_hh_l0', got none"):
        module(torch.randn(3, 2, 4))
