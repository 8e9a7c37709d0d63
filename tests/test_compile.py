"""torch.compile(fullgraph=True) traces through fastlstm.LSTM (torch.nn.LSTM cannot be compiled at all)."""

import pytest
import torch
import torch._dynamo

import fastlstm
from conftest import assert_close


def test_torch_lstm_is_refused_by_dynamo():
    """Why fastlstm.LSTM is not a subclass of torch.nn.LSTM: Dynamo refuses every instance of it."""
    torch._dynamo.reset()
    module = torch.nn.LSTM(4, 6)
    with pytest.raises(Exception, match="RNN, GRU, or LSTM"):
        torch.compile(module, fullgraph=True, backend="eager")(torch.randn(3, 2, 4))


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
@pytest.mark.parametrize("kwargs", [dict(), dict(num_layers=2, bidirectional=True, batch_first=True),
                                    dict(proj_size=3)], ids=["plain", "stacked", "proj"])
def test_compiled_lstm_matches_eager(backend, kwargs):
    torch._dynamo.reset()
    module = fastlstm.LSTM(4, 6, **kwargs)
    compiled = torch.compile(module, fullgraph=True, backend=backend)
    x = torch.randn(3, 5, 4, requires_grad=True)
    results = []
    for run in (module, compiled):
        output, (h_n, c_n) = run(x)
        loss = output.pow(2).sum() + h_n.sum() + c_n.sum()
        results.append([output, h_n, c_n, *torch.autograd.grad(loss, [x, *module.parameters()])])
    for actual, expected in zip(results[1], results[0]):
        assert_close(actual, expected)


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compiled_cell_loop_matches_eager(backend):
    torch._dynamo.reset()
    cell = fastlstm.LSTMCell(4, 6)

    def unroll(x):
        h = c = x.new_zeros(x.shape[1], 6)
        for t in range(x.shape[0]):
            h, c = cell(x[t], (h, c))
        return h

    x = torch.randn(3, 2, 4, requires_grad=True)
    eager_h = unroll(x)
    compiled_h = torch.compile(unroll, fullgraph=True, backend=backend)(x)
    assert_close(compiled_h, eager_h)
    assert_close(torch.autograd.grad(compiled_h.sum(), x)[0], torch.autograd.grad(eager_h.sum(), x)[0])


def test_compiled_inference_with_sequence_lengths():
    torch._dynamo.reset()

    def run(x, lengths, w_ih, w_hh):
        h0 = x.new_zeros(x.shape[1], w_hh.shape[1])
        return fastlstm.functional.lstm(x, h0, h0, w_ih, w_hh, sequence_lengths=lengths, cell_clip=0.5)

    args = (torch.randn(5, 3, 4), torch.tensor([5, 2, 0]), torch.randn(24, 4), torch.randn(24, 6))
    with torch.no_grad():
        for actual, expected in zip(torch.compile(run, fullgraph=True)(*args), run(*args)):
            assert_close(actual, expected)


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("make", [lambda: (fastlstm.LSTM(4, 5, num_layers=2), (3, 2, 4)),
                                  lambda: (fastlstm.LSTMCell(4, 5), (2, 4))], ids=["LSTM", "LSTMCell"])
def test_torch_jit_trace_passes_its_check_saves_loads_and_runs(mode, make):
    """torch.jit.trace reruns the trace under no_grad to check it: the ops' training flag must not depend on the grad
    mode while tracing (functional._needs_workspace). The traced module saves, loads, runs and differentiates."""
    import io
    import warnings

    module, shape = make()
    getattr(module, mode)()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks become constants, as torch.nn.LSTM's
        traced = torch.jit.trace(module, (torch.randn(*shape),))  # check_trace=True: raises if graphs differ
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    x = torch.randn(*shape)
    expected = module(x)
    got = loaded(x)
    assert_close(got[0], expected[0])
    got[0].sum().backward()
    assert all(p.grad is not None for p in loaded.parameters())
