// CUDA time loops of the LSTM (lstm_params.h): the input projection of all steps and the recurrent product per step
// by cuBLAS (through ATen), the gate math in a pointwise kernel over (row, unit) per step (lstm_gates.h).
#include "../lstm_gates.h"
#include "lstm_kernel.h"
#include "kernel_helpers.h"

namespace fastlstm::cuda {
namespace {

// pre[b, :] = bias for the rows of a [rows, 4H] block with row stride ws_width (the input projection adds on it).
template <typename scalar_t>
__global__ void fill_bias_kernel(const scalar_t* b_ih, const scalar_t* b_hh, int64_t rows, int64_t gates,
                                 int64_t ws_width, scalar_t* pre) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= rows * gates) return;
  const int64_t row = index / gates, k = index % gates;
  pre[row * ws_width + k] = (b_ih ? b_ih[k] : scalar_t(0)) + (b_hh ? b_hh[k] : scalar_t(0));
}

// One step forward for the running rows: gate math of every (row, unit), state update, output.
template <typename scalar_t, bool kPeephole>
__global__ void forward_step_kernel(LstmParams<scalar_t> p, int64_t rows, scalar_t* pre_t, scalar_t* out_t,
                                    bool keep_workspace) {
  const int64_t H = p.hidden_size, G = 4 * H, ws_width = kWorkspaceWidth * H;
  const int64_t F = p.layout.f_block * H, Gg = p.layout.g_block * H;
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= rows * H) return;
  const int64_t b = index / H, j = index % H;
  scalar_t* pre = pre_t + b * ws_width;
  const auto r = gates_forward<scalar_t, kPeephole>(pre[j], pre[F + j], pre[Gg + j], pre[3 * H + j],
                                                    p.c_n[index], peephole_at<scalar_t, kPeephole>(p.w_peephole, H, j),
                                                    p.forget_bias, p.cell_clip);
  if (keep_workspace) {
    pre[j] = r.i;
    pre[F + j] = r.f;
    pre[Gg + j] = r.g;
    pre[3 * H + j] = r.o;
    pre[G + j] = r.c;
  }
  p.c_n[index] = r.c;
  p.h_n[index] = r.h;
  if (out_t != nullptr) out_t[index] = r.h;
}

// One step backward for the running rows: gradients of the pre-activations, and of c_prev in place in grad_c0.
template <typename scalar_t, bool kPeephole>
__global__ void backward_step_kernel(LstmParams<scalar_t> p, int64_t t, int64_t rows, scalar_t* grad_pre_t) {
  const int64_t B = p.batch, H = p.hidden_size, G = 4 * H, ws_width = kWorkspaceWidth * H;
  const int64_t F = p.layout.f_block * H, Gg = p.layout.g_block * H;
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= rows * H) return;
  const int64_t b = index / H, j = index % H;
  const scalar_t* gates = p.saved_workspace + (t * B + b) * ws_width;
  const scalar_t c_prev = t > 0 ? p.saved_workspace[((t - 1) * B + b) * ws_width + G + j] : p.c0[index];
  const scalar_t d_h = p.grad_h0[index] + (p.grad_output ? p.grad_output[t * B * H + index] : scalar_t(0));
  const auto r = gates_backward<scalar_t, kPeephole>(gates[j], gates[F + j], gates[Gg + j], gates[3 * H + j],
                                                     gates[G + j], c_prev, d_h, p.grad_c0[index],
                                                     peephole_at<scalar_t, kPeephole>(p.w_peephole, H, j),
                                                     p.cell_clip);
  scalar_t* d_pre = grad_pre_t + b * G;
  d_pre[j] = r.d_pre_i;
  d_pre[F + j] = r.d_pre_f;
  d_pre[Gg + j] = r.d_pre_g;
  d_pre[3 * H + j] = r.d_pre_o;
  p.grad_c0[index] = r.d_c_prev;
}

}  // namespace

template <typename scalar_t>
void lstm_forward(const LstmParams<scalar_t>& p) {
  const int64_t T = p.seq_len, B = p.batch, I = p.input_size, H = p.hidden_size, G = 4 * H;
  const int64_t ws_width = kWorkspaceWidth * H;
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  // Inference keeps no workspace: a scratch one from torch's caching allocator serves the call.
  at::Tensor scratch;
  scalar_t* workspace = p.workspace;
  if (workspace == nullptr) {
    scratch = at::empty({T * B * ws_width}, options_of<scalar_t>());
    workspace = scratch.mutable_data_ptr<scalar_t>();
  }
  copy_or_zero(p.h_n, p.h0, B * H, stream);
  copy_or_zero(p.c_n, p.c0, B * H, stream);
  if (T * B > 0) {
    fill_bias_kernel<<<blocks_for(T * B * G), kThreads, 0, stream>>>(p.b_ih, p.b_hh, T * B, G, ws_width, workspace);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  // torch layout: W [4H, K], read transposed; TF layout: W^T [K, 4H] as it is.
  gemm<scalar_t>(false, !p.layout.tf, T * B, G, I, 1, p.x, I, p.w_ih, p.layout.tf ? G : I, 1, workspace, ws_width);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t rows = p.rows_at(t);
    scalar_t* pre_t = workspace + t * B * ws_width;
    const scalar_t* h_prev = t == 0 ? p.h0 : p.output + (t - 1) * B * H;
    gemm<scalar_t>(false, !p.layout.tf, rows, G, H, 1, h_prev, H, p.w_hh, p.layout.tf ? G : H, 1, pre_t, ws_width);
    scalar_t* out_t = p.output ? p.output + t * B * H : nullptr;
    if (rows > 0) {
      const auto kernel = p.w_peephole ? forward_step_kernel<scalar_t, true> : forward_step_kernel<scalar_t, false>;
      kernel<<<blocks_for(rows * H), kThreads, 0, stream>>>(p, rows, pre_t, out_t, p.workspace != nullptr);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    if (rows < B) {  // finished rows: zero output, a defined workspace
      if (out_t) C10_CUDA_CHECK(cudaMemsetAsync(out_t + rows * H, 0, (B - rows) * H * sizeof(scalar_t), stream));
      C10_CUDA_CHECK(cudaMemsetAsync(pre_t + rows * ws_width, 0, (B - rows) * ws_width * sizeof(scalar_t), stream));
    }
  }
}

template <typename scalar_t>
void lstm_backward(const LstmParams<scalar_t>& p) {
  const int64_t T = p.seq_len, B = p.batch, I = p.input_size, H = p.hidden_size, G = 4 * H;
  const int64_t ws_width = kWorkspaceWidth * H;
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  copy_or_zero(p.grad_h0, p.grad_h_n, B * H, stream);
  copy_or_zero(p.grad_c0, p.grad_c_n, B * H, stream);
  for (int64_t t = T - 1; t >= 0; --t) {
    const int64_t rows = p.rows_at(t);
    scalar_t* grad_pre_t = p.grad_pre + t * B * G;
    if (rows > 0) {
      const auto kernel = p.w_peephole ? backward_step_kernel<scalar_t, true> : backward_step_kernel<scalar_t, false>;
      kernel<<<blocks_for(rows * H), kThreads, 0, stream>>>(p, t, rows, grad_pre_t);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    if (rows < B) {
      C10_CUDA_CHECK(cudaMemsetAsync(grad_pre_t + rows * G, 0, (B - rows) * G * sizeof(scalar_t), stream));
    }
    gemm<scalar_t>(false, p.layout.tf, rows, H, G, 1, grad_pre_t, G, p.w_hh, p.layout.tf ? G : H, 0, p.grad_h0, H);
  }
  const int64_t rows_total = T * B;
  gemm<scalar_t>(false, p.layout.tf, rows_total, I, G, 1, p.grad_pre, G, p.w_ih, p.layout.tf ? G : I, 0, p.grad_x,
                 I);
  if (p.layout.tf) {  // gradients of W^T [K, 4H]: in^T . grad_pre
    gemm<scalar_t>(true, false, I, G, rows_total, 1, p.x, I, p.grad_pre, G, 0, p.grad_w_ih, G);
    gemm<scalar_t>(true, false, H, G, B, 1, p.h0, H, p.grad_pre, G, 0, p.grad_w_hh, G);
    gemm<scalar_t>(true, false, H, G, rows_total - B, 1, p.saved_output, H, p.grad_pre + B * G, G, 1, p.grad_w_hh, G);
  } else {  // gradients of W [4H, K]: grad_pre^T . in
    gemm<scalar_t>(true, false, G, I, rows_total, 1, p.grad_pre, G, p.x, I, 0, p.grad_w_ih, I);
    gemm<scalar_t>(true, false, G, H, B, 1, p.grad_pre, G, p.h0, H, 0, p.grad_w_hh, H);
    gemm<scalar_t>(true, false, G, H, rows_total - B, 1, p.grad_pre + B * G, G, p.saved_output, H, 1, p.grad_w_hh,
                   H);
  }
  // Bias and peephole gradients: reductions over the T*B rows by ATen's reduction kernels (no atomics per element).
  const at::Tensor grad_pre = view_of(p.grad_pre, {T, B, 4, H});
  at::Tensor grad_bias = view_of(p.grad_bias, {G});
  at::sum_out(grad_bias, grad_pre.view({T * B, G}), {0});
  if (p.grad_w_peephole == nullptr) return;
  const at::Tensor c = view_of(p.saved_workspace, {T, B, kWorkspaceWidth, H}).select(2, 4);
  const at::Tensor c_prev = at::cat({view_of(p.c0, {1, B, H}), c.narrow(0, 0, T - 1)});
  const at::Tensor grad_w_peephole = view_of(p.grad_w_peephole, {3, H});
  const at::Tensor peephole_inputs[3] = {c_prev, c_prev, c};  // w_ci, w_cf read c_prev; w_co the new c
  const int64_t gate_of_row[3] = {0, p.layout.f_block, 3};            // gates i, f, o
  for (int64_t row = 0; row < 3; ++row) {
    at::Tensor out = grad_w_peephole[row];
    at::sum_out(out, grad_pre.select(2, gate_of_row[row]) * peephole_inputs[row], {0, 1});
  }
}

template void lstm_forward<float>(const LstmParams<float>&);
template void lstm_forward<double>(const LstmParams<double>&);
template void lstm_backward<float>(const LstmParams<float>&);
template void lstm_backward<double>(const LstmParams<double>&);

}  // namespace fastlstm::cuda
