"""Several Python threads calling fastlstm at once: the ops run without the GIL (fastlstm._direct releases it, as
torch.ops does), so kernels, their thread teams and the CPU buffer pool run concurrently. Each thread's results must
match the same calls made one after another. In a subprocess: a crash is a failed test, not a dead run."""

import subprocess
import sys
import textwrap


def test_concurrent_calls_from_python_threads_match_sequential_ones():
    code = textwrap.dedent("""
        import threading, torch, fastlstm
        torch.manual_seed(0)
        lstm = fastlstm.LSTM(16, 32, num_layers=2, bidirectional=True)
        gru = fastlstm.GRU(16, 32)
        cell = fastlstm.LSTMCell(16, 32)
        inputs = [torch.randn(20, 3 + k, 16) for k in range(4)]

        def work(x):
            with torch.no_grad():
                out = lstm(x)[0] + gru(x)[0].repeat(1, 1, 2)
                h, c = cell(x[0])
            x = x.clone().requires_grad_()
            lstm(x)[0].sum().backward()
            return out, h, c, x.grad

        expected = [work(x) for x in inputs]
        results = [None] * len(inputs)

        def run(k):
            for _ in range(10):
                got = work(inputs[k])
                for a, b in zip(got, expected[k]):  # (a team the runtime granted smaller would sum in another order)
                    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=f"thread {k} differs")
            results[k] = True

        threads = [threading.Thread(target=run, args=(k,)) for k in range(len(inputs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(results), results
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
