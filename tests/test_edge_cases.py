"""What a careful user tries: zero and one sizes, NaN and inf in every input, tensors on the wrong device, bad
sequence lengths, index arithmetic past 2**31, memory over time. Each case runs in a subprocess, so that a crash is
a failed test and not a dead test run."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def run_python(body, env=None, timeout=600, prelude=True):
    """Runs PRELUDE + body in a fresh interpreter; returns its stdout. A crash (signal) or an exception fails the
    test."""
    code = (PRELUDE if prelude else "") + textwrap.dedent(body)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=timeout, env={**os.environ, **(env or {})})
    assert result.returncode == 0, (
        f"exit status {result.returncode} (a negative one is the signal that killed it)\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-4000:]}")
    return result.stdout


PRELUDE = """
import torch, fastlstm
from fastlstm import ops, reference
torch.manual_seed(0)

def params(I, H, dtype=torch.float32, requires_grad=False):
    make = lambda *shape: (torch.randn(*shape, dtype=dtype) * 0.3).requires_grad_(requires_grad)
    return make(4 * H, I), make(4 * H, H), make(4 * H), make(4 * H)

"""


def test_zero_length_sequence_module_raises_torchs_error():
    run_python("""
    for cls in (torch.nn.LSTM, fastlstm.LSTM):
        for batch_first in (False, True):
            m = cls(5, 8, batch_first=batch_first)
            x = torch.randn((3, 0, 5) if batch_first else (0, 3, 5), requires_grad=True)
            try:
                m(x)
            except RuntimeError as e:
                assert "Expected sequence length to be larger than 0 in RNN" in str(e), e
            else:
                raise AssertionError(f"{cls} accepted T = 0")
    """)


def test_zero_length_sequence_ops_and_drivers_pass_the_state_through():
    run_python("""
    for dtype in (torch.float32, torch.float64):
        w_ih, w_hh, b_ih, b_hh = params(5, 8, dtype, requires_grad=True)
        x = torch.randn(0, 3, 5, dtype=dtype, requires_grad=True)
        h0 = torch.randn(3, 8, dtype=dtype, requires_grad=True)
        c0 = torch.randn(3, 8, dtype=dtype, requires_grad=True)
        out, h, c, _ = ops.forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
        assert out.shape == (0, 3, 8)
        assert torch.equal(h, h0) and torch.equal(c, c0)
        (h * 2 + c * 3).sum().backward()
        assert torch.equal(h0.grad, torch.full_like(h0, 2)) and torch.equal(c0.grad, torch.full_like(c0, 3))
        assert x.grad.shape == x.shape
        for w in (w_ih, w_hh, b_ih, b_hh):
            assert torch.equal(w.grad, torch.zeros_like(w))
        # The graph-composed reference agrees.
        ref_out, ref_h, ref_c = reference.lstm_sequence(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
        assert ref_out.shape == out.shape and torch.equal(ref_h, h) and torch.equal(ref_c, c)

    from fastlstm import cells, rnn
    cell = cells.BasicLSTMCell(5, 8)
    x = torch.randn(2, 0, 5, requires_grad=True)  # batch-major, as TF's dynamic_rnn
    outputs, state = rnn.dynamic_rnn(cell, x)
    assert outputs.shape == (2, 0, 8)
    (state.c.sum() + state.h.sum() + outputs.sum()).backward()
    for p in cell.parameters():
        assert p.grad is None or torch.equal(p.grad, torch.zeros_like(p))
    print("ok")
    """)


def test_zero_batch_and_unit_hidden_size():
    run_python("""
    for seq_len, batch, hidden in ((4, 0, 8), (3, 2, 1), (1, 1, 1)):
        m, t = fastlstm.LSTM(3, hidden), torch.nn.LSTM(3, hidden)
        m.load_state_dict(t.state_dict())
        x = torch.randn(seq_len, batch, 3, requires_grad=True)
        ours, theirs = m(x), t(x)
        torch.testing.assert_close(ours, theirs)
        g_ours = torch.autograd.grad(ours[0].sum() + ours[1][1].sum(), [x] + list(m.parameters()))
        g_theirs = torch.autograd.grad(theirs[0].sum() + theirs[1][1].sum(), [x] + list(t.parameters()))
        torch.testing.assert_close(g_ours, g_theirs)
    """)


NON_FINITE_CASES = [(name, value) for name in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")
                    for value in ("nan", "inf", "-inf")]


@pytest.mark.parametrize("name,value", NON_FINITE_CASES, ids=[f"{n}={v}" for n, v in NON_FINITE_CASES])
def test_non_finite_values_propagate_as_in_torch(name, value):
    """A NaN or inf in any input reaches the outputs, the state and every gradient exactly where torch's own
    graph-composed math puts it (fastlstm.reference: plain torch ops), in every kernel and both dtypes."""
    out = run_python(f"""
    from fastlstm import functional

    def poisoned(dtype):
        torch.manual_seed(1)  # the same values for each backend
        T, B, I, H = 3, 4, 5, 7
        w_ih, w_hh, b_ih, b_hh = params(I, H, dtype)
        tensors = dict(x=torch.randn(T, B, I, dtype=dtype), h0=torch.randn(B, H, dtype=dtype),
                       c0=torch.randn(B, H, dtype=dtype), w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh)
        target = tensors["{name}"]
        target.view(-1)[1] = float("{value}")  # one element: other rows must stay finite where torch's do
        return {{k: v.requires_grad_() for k, v in tensors.items()}}

    def compare(ours, theirs, what):
        for o, t in zip(ours, theirs):
            assert torch.equal(o.isnan(), t.isnan()), (what, "NaN pattern", o, t)
            assert torch.equal(o.isposinf(), t.isposinf()) and torch.equal(o.isneginf(), t.isneginf()), (what, o, t)
            finite = o.isfinite()
            torch.testing.assert_close(o[finite], t[finite], rtol=1e-4, atol=1e-5)

    for dtype in (torch.float32, torch.float64):
        # Whole sequence.
        for backend in ("fused", "reference"):
            t = poisoned(dtype)
            out, h, c = functional.lstm(t["x"], t["h0"], t["c0"], t["w_ih"], t["w_hh"], t["b_ih"], t["b_hh"],
                                        backend=backend)
            grads = torch.autograd.grad(out.sum() + h.sum() + c.sum(), list(t.values()))
            if backend == "fused":
                fused = (out, h, c) + grads
            else:
                compare(fused, (out, h, c) + grads, f"sequence {{dtype}}")
        # Single step.
        for backend in ("fused", "reference"):
            t = poisoned(dtype)
            h, c = functional.lstm_cell(t["x"][0], t["h0"], t["c0"], t["w_ih"], t["w_hh"], t["b_ih"], t["b_hh"],
                                        backend=backend)
            grads = torch.autograd.grad(h.sum() + c.sum(), list(t.values()), allow_unused=True)
            grads = tuple(g for g in grads if g is not None)
            if backend == "fused":
                fused = (h, c) + grads
            else:
                compare(fused, (h, c) + grads, f"step {{dtype}}")
        # No-grad inference (its own kernel path: chunked projection, no workspace).
        with torch.no_grad():
            t = poisoned(dtype)
            ours = functional.lstm(t["x"], t["h0"], t["c0"], t["w_ih"], t["w_hh"], t["b_ih"], t["b_hh"],
                                   backend="fused")
            theirs = functional.lstm(t["x"], t["h0"], t["c0"], t["w_ih"], t["w_hh"], t["b_ih"], t["b_hh"],
                                     backend="reference")
            compare(ours, theirs, f"inference {{dtype}}")
    print("nan" if "{value}" == "nan" else "inf")
    """)
    assert out.strip() in ("nan", "inf")


def test_nan_reaches_module_outputs_and_gradients_like_torch():
    run_python("""
    m, t = fastlstm.LSTM(5, 8), torch.nn.LSTM(5, 8)
    m.load_state_dict(t.state_dict())
    x = torch.randn(4, 2, 5)
    x[1, 0, 2] = float("nan")
    x.requires_grad_()
    (o1, (h1, c1)), (o2, (h2, c2)) = m(x), t(x)
    for a, b in ((o1, o2), (h1, h2), (c1, c2)):
        assert torch.equal(a.isnan(), b.isnan()), (a, b)
    g1 = torch.autograd.grad(o1.sum(), [x] + list(m.parameters()))
    g2 = torch.autograd.grad(o2.sum(), [x] + list(t.parameters()))
    for a, b in zip(g1, g2):
        assert a.isnan().any() and b.isnan().any()
    cell = fastlstm.LSTMCell(5, 8)
    h, c = cell(x[1])
    assert h[0].isnan().all() and c[0].isnan().all() and h[1].isfinite().all()
    """)


def test_tensors_on_another_device_are_refused():
    run_python("""
    T, B, I, H = 3, 2, 4, 5
    w_ih, w_hh, b_ih, b_hh = params(I, H)
    x, h0, c0 = torch.randn(T, B, I), torch.zeros(B, H), torch.zeros(B, H)

    def refused(fn, *names):
        try:
            fn()
        except RuntimeError as e:
            for name in names:
                assert name in str(e), (name, str(e))
        else:
            raise AssertionError(f"accepted a tensor on another device: {names}")

    meta = torch.device("meta")
    refused(lambda: ops.forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, None, torch.full((B,), 3).to(meta)),
            "sequence_lengths", "meta", "cpu")
    refused(lambda: ops.forward(x, h0.to(meta), c0, w_ih, w_hh, b_ih, b_hh), "h0", "meta", "cpu")
    refused(lambda: ops.forward(x, h0, c0, w_ih, w_hh.to(meta), b_ih, b_hh), "w_hh", "meta", "cpu")
    refused(lambda: ops.cell_forward(x[0], h0, c0, w_ih, w_hh, b_ih.to(meta), b_hh), "b_ih", "meta", "cpu")
    out, h, c, ws = ops.forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    refused(lambda: ops.backward(out.to(meta), None, None, x, h0, c0, w_ih, w_hh, None, None, out, ws, 0.0),
            "grad_output", "meta", "cpu")
    refused(lambda: ops.backward(None, None, None, x, h0, c0, w_ih, w_hh, None, None, out, ws.to(meta), 0.0),
            "workspace", "meta", "cpu")
    h, c, ws = ops.cell_forward(x[0], h0, c0, w_ih, w_hh, b_ih, b_hh)
    refused(lambda: ops.cell_backward(h.to(meta), None, x[0], h0, c0, w_ih, w_hh, None, ws, 0.0),
            "grad_h_new", "meta", "cpu")
    # All on meta is shape propagation, not an error.
    out, h, c, ws = ops.forward(*(t.to(meta) for t in (x, h0, c0, w_ih, w_hh, b_ih, b_hh)))
    assert out.device == meta and out.shape == (T, B, H)
    """)


def test_bad_sequence_lengths_are_refused():
    run_python("""
    T, B, I, H = 3, 2, 4, 5
    w_ih, w_hh, b_ih, b_hh = params(I, H)
    x, h0, c0 = torch.randn(T, B, I), torch.zeros(B, H), torch.zeros(B, H)
    cases = [
        (torch.tensor([3.0, 2.0]), "integer sequence_lengths"),
        (torch.tensor([True, False]), "integer sequence_lengths"),
        (torch.tensor([3, 2, 1]), "sequence_lengths of shape [2]"),
        (torch.tensor([[3, 2]]), "sequence_lengths of shape [2]"),
        (torch.tensor([3, -1]), "every sequence length in [0, 3]"),
        (torch.tensor([4, 2]), "every sequence length in [0, 3]"),
    ]
    for lengths, message in cases:
        try:
            ops.forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, None, lengths)
        except RuntimeError as e:
            assert message in str(e), (message, str(e))
        else:
            raise AssertionError(f"accepted sequence_lengths {lengths}")
    # int32 lengths, zero lengths and unsorted lengths are fine.
    out, h, c, _ = ops.forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, None, torch.tensor([0, 2], dtype=torch.int32))
    assert torch.equal(h[0], h0[0]) and torch.equal(out[:, 0], torch.zeros(T, H))
    """)


def test_seven_argument_calls_of_the_ops():
    run_python("""
    w_ih, w_hh, b_ih, b_hh = params(4, 5, requires_grad=True)
    x = torch.randn(3, 2, 4, requires_grad=True)
    h0, c0 = torch.zeros(2, 5), torch.zeros(2, 5)
    out, h, c, ws = ops.forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    torch.testing.assert_close(out, reference.lstm_sequence(x, h0, c0, w_ih, w_hh, b_ih, b_hh)[0])
    out.sum().backward()  # training defaults to True: the plain call is differentiable
    assert x.grad is not None and w_hh.grad is not None
    h, c, ws = ops.cell_forward(x[0], h0, c0, w_ih, w_hh, b_ih, b_hh)
    torch.testing.assert_close(h, reference.lstm_cell(x[0], h0, c0, w_ih, w_hh, b_ih, b_hh)[0])
    """)


BIG_BYTES = 9 * 2**30


def _available_bytes():
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


@pytest.mark.skipif(_available_bytes() < 2 * BIG_BYTES, reason="needs ~18 GiB of free memory")
def test_index_arithmetic_past_two_to_the_31():
    """x holds more than 2**31 elements: every offset into it must be 64-bit (the CPU kernels index with int64_t;
    the BLAS path refuses sizes past LP64 and falls back)."""
    run_python("""
    T, B, I, H = 2, 32768, 32769, 2   # T * B * I = 2_147_549_184 > 2**31
    x = torch.empty(T, B, I)
    x.fill_(0.001)
    x[-1, -1].normal_()
    w_ih, w_hh, b_ih, b_hh = params(I, H)
    h0, c0 = torch.zeros(B, H), torch.zeros(B, H)
    with torch.no_grad():
        out, h, c, _ = ops.forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, training=False)
        last = ops.forward(x[:, -1:].clone(), h0[-1:], c0[-1:], w_ih, w_hh, b_ih, b_hh, training=False)[0]
    torch.testing.assert_close(out[:, -1:], last)
    print("ok")
    """, timeout=900)


def _memory_growth(kind, scenario):
    return float(run_python(f"import runpy, sys; sys.argv = ['', '{kind}', '{scenario}']; "
                            f"runpy.run_path('{HERE / 'memory_scenarios.py'}', run_name='__main__')",
                            prelude=False).split()[-1])


@pytest.mark.parametrize("scenario", ["big_then_small", "random_shapes", "huge_batch_inference"])
def test_memory_returns_to_steady_footprint(scenario):
    """RSS growth after the scenario stays within 2x torch.nn.LSTM's (+ 8 MB for allocator noise)."""
    ours, theirs = _memory_growth("fastlstm", scenario), _memory_growth("torch", scenario)
    assert ours <= 2 * theirs + 8, f"fastlstm grew {ours:.1f} MB, torch.nn.LSTM {theirs:.1f} MB"


@pytest.mark.skipif(os.environ.get("FASTLSTM_SANITIZE") == "1", reason="the sanitizer build caches nothing")
def test_empty_cache_releases_idle_blocks():
    run_python("""
    m = fastlstm.LSTM(64, 128)
    x = torch.randn(200, 32, 64, requires_grad=True)
    m(x)[0].sum().backward()
    stats = fastlstm.cpu_memory_stats()
    assert stats["in_use_bytes"] == 0 and stats["idle_bytes"] > 0, stats
    fastlstm.empty_cache()
    assert fastlstm.cpu_memory_stats()["idle_bytes"] == 0
    """)


def test_cache_can_be_turned_off():
    run_python("""
    m = fastlstm.LSTM(64, 128)
    m(torch.randn(200, 32, 64, requires_grad=True))[0].sum().backward()
    stats = fastlstm.cpu_memory_stats()
    assert stats["idle_bytes"] == 0 and stats["cap_bytes"] == 0, stats
    """, env={"FASTLSTM_CPU_CACHE_MB": "0"})
