"""The GPU path. The registration test runs wherever torch has CUDA (CI builds that variant on a GPU-less machine);
the others need a GPU and skip cleanly without one."""

import pytest
import torch

import fastlstm
from fastlstm import functional, ops
from conftest import assert_close
from test_ops import compare_with_grads, fused_sequence, make_inputs, reference_sequence

OPS = ("forward", "backward", "cell_forward", "cell_backward", "layer_norm_lstm", "layer_norm_lstm_backward", "gru",
       "gru_backward")
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")


@pytest.mark.skipif(torch.version.cuda is None, reason="this torch is a CPU build: the CUDA kernels are not built")
def test_cuda_kernels_registered_for_every_op():
    for op in OPS:
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"fastlstm::{op}", "CUDA"), op
    assert "cuda" in functional.FUSED_DEVICES


def test_cudnn_backend_refuses_what_it_cannot_serve():
    x = torch.randn(3, 2, 4)
    with pytest.raises(ValueError, match="backend='cudnn' cannot serve device cpu"):
        fastlstm.LSTM(4, 5, backend="cudnn")(x)
    with pytest.raises(ValueError, match="cuDNN runs whole sequences"):
        fastlstm.LSTMCell(4, 5, backend="cudnn")(x[0])


def to_cuda(inputs):
    return {k: (v.detach().cuda().requires_grad_() if v is not None else None) for k, v in inputs.items()}


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("lengths", [None, [5, 2, 0, 4]], ids=str)
@pytest.mark.parametrize("peephole", [False, True])
def test_cuda_fused_matches_reference(dtype, lengths, peephole):
    inputs = to_cuda(make_inputs(5, 4, 3, 7, dtype, peephole=peephole))
    lengths = None if lengths is None else torch.tensor(lengths)
    options = dict(forget_bias=0.5, cell_clip=0.7 if peephole else 0.0)
    compare_with_grads(fused_sequence(inputs, lengths, **options), reference_sequence(inputs, lengths, **options),
                       inputs, dtype)


@needs_gpu
def test_projection_on_cuda_takes_cudnn_and_the_kernels_refuse_it():
    ours = fastlstm.LSTM(5, 6, proj_size=3).cuda()
    theirs = torch.nn.LSTM(5, 6, proj_size=3).cuda()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(4, 2, 5, device="cuda")
    assert_close(ours(x)[0], theirs(x)[0])
    assert ours.last_backend == "cudnn"
    with pytest.raises(ValueError, match=r"projections \(proj_size > 0\) off the CPU"):
        fastlstm.LSTM(5, 6, proj_size=3, backend="fused").cuda()(x)
    inputs = to_cuda(make_inputs(4, 2, 5, 6, proj_size=3))
    with pytest.raises(RuntimeError, match=r"projections \(w_hr\) run on the CPU kernels only"):
        fused_sequence(inputs)


@needs_gpu
def test_cuda_gradcheck_and_opcheck():
    inputs = to_cuda(make_inputs(3, 2, 2, 3, torch.float64, peephole=True))
    names = [k for k, v in inputs.items() if v is not None]
    lengths = torch.tensor([3, 1])

    def run(*tensors):
        return fused_sequence(dict(inputs, **dict(zip(names, tensors))), lengths, forget_bias=0.5, cell_clip=0.9)

    assert torch.autograd.gradcheck(run, [inputs[k] for k in names])
    torch.library.opcheck(ops.forward.default, (*inputs.values(), lengths, 0.5, 0.9, True))
    cell_inputs = dict(inputs, x=inputs["x"][0].detach().requires_grad_())
    torch.library.opcheck(ops.cell_forward.default, (*cell_inputs.values(), 0.5, 0.9, True))


@needs_gpu
@pytest.mark.parametrize("backend", ["fused", "cudnn"])
@pytest.mark.parametrize("packed", [False, True])
def test_cuda_lstm_backends_match_torch(backend, packed):
    torch.manual_seed(0)
    kwargs = dict(num_layers=2, bidirectional=True, batch_first=True)
    ours = fastlstm.LSTM(5, 7, backend=backend, **kwargs).cuda()
    theirs = torch.nn.LSTM(5, 7, **kwargs).cuda()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(4, 6, 5, device="cuda", requires_grad=True)
    lengths = torch.tensor([6, 3, 5, 1])
    results = []
    for module in (ours, theirs):
        inputs = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False) \
            if packed else x
        output, (h_n, c_n) = module(inputs)
        data = output.data if packed else output
        results.append([data, h_n, c_n, *torch.autograd.grad(data.sum() + h_n.sum(), [x, *module.parameters()])])
    assert ours.last_backend == backend
    for actual, expected in zip(*results):
        assert_close(actual, expected, torch.float32, rtol=1e-4, atol=1e-4)


@needs_gpu
def test_cuda_compile_reduce_overhead_matches_eager():
    torch._dynamo.reset()
    module = fastlstm.LSTM(4, 6, backend="fused").cuda()
    compiled = torch.compile(module, mode="reduce-overhead", fullgraph=True)
    x = torch.randn(5, 3, 4, device="cuda")
    with torch.no_grad():
        expected = module(x)[0]
        for _ in range(3):  # warm-up, record, replay the CUDA graph
            actual = compiled(x)[0]
    assert_close(actual, expected)


@needs_gpu
@pytest.mark.parametrize("cell_name", ["fused", "loop"])
def test_swap_memory_bounds_device_memory(cell_name):
    """dynamic_rnn(swap_memory=True) keeps what backward needs in host memory: the device memory held between
    forward and backward is (almost) only the output, the peak over forward and backward falls well below the
    unswapped run's (the fused path runs chunks of steps, see rnn.SWAP_CHUNK_BYTES), and results and gradients are
    unchanged. Sizes: T=4000, B=16, H=256: the whole-sequence workspace is 328 MB, a swapped chunk's 56 MB."""
    from fastlstm import cells, rnn

    torch.manual_seed(0)
    cell = (cells.BasicLSTMCell(64, 256) if cell_name == "fused" else cells.GRUCell(64, 256)).cuda()
    x = torch.randn(16, 4000, 64, device="cuda", requires_grad=True)
    held, peak, results = [], [], []
    for swap in (False, True):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        out, _ = rnn.dynamic_rnn(cell, x, swap_memory=swap)
        torch.cuda.synchronize()
        held.append(torch.cuda.memory_allocated() - base - out.nbytes)
        grads = torch.autograd.grad(out.sum(), [x, *cell.parameters()])
        torch.cuda.synchronize()
        peak.append(torch.cuda.max_memory_allocated() - base)
        results.append((out.detach(), grads))
        del out, grads
    assert held[1] < 0.1 * held[0], held
    assert peak[1] < 0.6 * peak[0], peak
    assert_close(results[1][0], results[0][0])
    for a, b in zip(results[0][1], results[1][1]):
        assert_close(b, a)


@needs_gpu
@pytest.mark.parametrize("formulation", ["haste", "tf"])
@pytest.mark.parametrize("lengths", [False, True])
def test_cuda_layer_norm_kernels_match_the_cpu_kernels(formulation, lengths):
    from test_layer_norm_ops import HASTE, TF, make_inputs as ln_inputs, run_op
    separate = formulation == "haste"
    options = HASTE if separate else TF
    tensors, extras = ln_inputs(6, 5, 4, 40, separate=separate, mask=not separate, lengths=lengths)
    on_gpu = {k: (v.detach().cuda().requires_grad_() if v is not None else None) for k, v in tensors.items()}
    gpu_extras = dict(extras, g_mask=extras["g_mask"].cuda() if extras["g_mask"] is not None else None)
    expected, got = run_op(tensors, extras, options), run_op(on_gpu, gpu_extras, options)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-9, atol=1e-9)
    grads = [torch.randn_like(t) for t in expected]
    inputs = [t for t in tensors.values() if t is not None]
    gpu_inputs = [t for t in on_gpu.values() if t is not None]
    for a, b in zip(torch.autograd.grad(got, gpu_inputs, [g.cuda() for g in grads]),
                    torch.autograd.grad(expected, inputs, grads)):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-8, atol=1e-9)
    torch.library.opcheck(ops.layer_norm_lstm.default, (*on_gpu.values(), extras["sequence_lengths"],
                                                        gpu_extras["g_mask"]), dict(options))


@needs_gpu
@pytest.mark.parametrize("linear_before_reset", [True, False])
@pytest.mark.parametrize("lengths", [None, [5, 2, 0, 4]], ids=str)
def test_cuda_gru_kernels_match_the_cpu_kernels(linear_before_reset, lengths):
    from test_gru import make_inputs as gru_inputs, run_op as run_gru
    inputs = gru_inputs(5, 4, 3, 40)
    on_gpu = {k: v.detach().cuda().requires_grad_() for k, v in inputs.items()}
    lengths = None if lengths is None else torch.tensor(lengths)
    expected = run_gru(inputs, lengths, linear_before_reset=linear_before_reset)
    got = run_gru(on_gpu, lengths, linear_before_reset=linear_before_reset)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-9, atol=1e-9)
    grads = [torch.randn_like(t) for t in expected]
    for a, b in zip(torch.autograd.grad(got, list(on_gpu.values()), [g.cuda() for g in grads]),
                    torch.autograd.grad(expected, list(inputs.values()), grads)):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-8, atol=1e-9)
    torch.library.opcheck(ops.gru.default, (*on_gpu.values(), lengths),
                          dict(linear_before_reset=linear_before_reset))


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("backend", ["auto", "fused"])
def test_cuda_low_precision_modules_match_torch(dtype, backend):
    """bf16 / fp16 modules on CUDA (the fused kernels compute them in float32 between casts; "auto" takes cuDNN
    where it has the dtype) against torch.nn.LSTM in the same dtype: output, states and gradients within the
    dtype's rounding, same dtypes."""
    torch.manual_seed(0)
    ours = fastlstm.LSTM(16, 32, num_layers=2, backend=backend).cuda().to(dtype)
    theirs = torch.nn.LSTM(16, 32, num_layers=2).cuda().to(dtype)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(9, 3, 16, device="cuda", dtype=dtype, requires_grad=True)
    results = []
    for module in (ours, theirs):
        output, (h_n, c_n) = module(x)
        results.append([output, h_n, c_n, *torch.autograd.grad(output.float().sum(), [x, *module.parameters()])])
    for actual, expected in zip(*results):
        assert actual.dtype == expected.dtype
        torch.testing.assert_close(actual.float(), expected.float(), rtol=3e-2, atol=3e-2)


@needs_gpu
def test_cuda_autocast_dtypes_and_gradients_as_torch():
    torch.manual_seed(0)
    for ours, theirs in ((fastlstm.LSTM(16, 32), torch.nn.LSTM(16, 32)), (fastlstm.GRU(16, 32), torch.nn.GRU(16, 32)),
                         (fastlstm.LSTM(16, 32, backend="fused"), torch.nn.LSTM(16, 32))):
        ours, theirs = ours.cuda(), theirs.cuda()
        theirs.load_state_dict(ours.state_dict())
        x = torch.randn(7, 3, 16, device="cuda")
        results = []
        for module in (ours, theirs):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                output, state = module(x)
            states = list(state) if isinstance(state, tuple) else [state]
            grads = torch.autograd.grad(output.float().sum(), list(module.parameters()))
            results.append([output, *states, *grads])
        for actual, expected in zip(*results):
            assert actual.dtype == expected.dtype, (type(ours).__name__, ours.backend)
            torch.testing.assert_close(actual.float(), expected.float(), rtol=3e-2, atol=3e-2)


@needs_gpu
def test_cuda_sequence_longer_than_cudnn_serves_runs_fused():
    """Over functional.CUDNN_MAX_STEPS steps "auto" leaves cuDNN (pytorch/pytorch#133751) for the fused kernels,
    which match the CPU kernels there."""
    torch.manual_seed(0)
    module = fastlstm.LSTM(4, 8)
    x = torch.randn(functional.CUDNN_MAX_STEPS + 100, 2, 4)
    expected, _ = module(x)
    module.cuda()
    actual, _ = module(x.cuda())
    assert module.last_backend == "fused"
    assert_close(actual.cpu(), expected, torch.float32, rtol=1e-4, atol=1e-4)
