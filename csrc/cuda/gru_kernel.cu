// CUDA time loops of the GRU (gru_params.h), both conventions: cuBLAS GEMMs (through ATen, as lstm_kernel.cu) and
// pointwise kernels over (row, unit) per step; TF's convention adds the candidate's product W_hn (r * h) between
// two pointwise kernels.
#include "../gru_gates.h"
#include "gru_kernel.h"
#include "kernel_helpers.h"

namespace fastlstm::cuda {
namespace {

// torch's convention, one step forward over (row, unit): proj_t [B, 3H] (x . w_ih^T), rec [B, 3H] (h . w_hh^T).
template <typename scalar_t>
__global__ void forward_step_kernel(GruParams<scalar_t> p, int64_t t, int64_t rows, const scalar_t* proj_t,
                                    const scalar_t* rec, scalar_t* ws_t) {
  const int64_t H = p.hidden_size, B = p.batch;
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= rows * H) return;
  const int64_t b = index / H, j = index % H;
  const scalar_t* a = proj_t + b * 3 * H;
  const scalar_t* r_in = rec + b * 3 * H;
  const scalar_t h_prev = t == 0 ? p.h0[index] : p.output[((t - 1) * B) * H + index];
  const scalar_t rec_n = r_in[2 * H + j] + p.b_hh[2 * H + j];
  const auto g = gru_gates_forward<scalar_t>(a[j] + p.b_ih[j], a[H + j] + p.b_ih[H + j],
                                             a[2 * H + j] + p.b_ih[2 * H + j], r_in[j] + p.b_hh[j],
                                             r_in[H + j] + p.b_hh[H + j], rec_n, h_prev);
  scalar_t* ws = ws_t + b * kGruWorkspaceWidth * H;
  ws[j] = g.r;
  ws[H + j] = g.z;
  ws[2 * H + j] = g.n;
  ws[3 * H + j] = rec_n;
  p.output[(t * B) * H + index] = g.h;
}

// TF's convention, forward pass 1: r, u; r * h into rh [B, H] and the workspace.
template <typename scalar_t>
__global__ void tf_forward_gates_kernel(GruParams<scalar_t> p, int64_t t, int64_t rows, const scalar_t* proj_t,
                                        const scalar_t* rec, scalar_t* ws_t, scalar_t* rh) {
  const int64_t H = p.hidden_size, B = p.batch;
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= rows * H) return;
  const int64_t b = index / H, j = index % H;
  const scalar_t* a = proj_t + b * 3 * H;
  const scalar_t* r_in = rec + b * 2 * H;
  const scalar_t h_prev = t == 0 ? p.h0[index] : p.output[((t - 1) * B) * H + index];
  const scalar_t r = sigmoid(a[j] + p.b_ih[j] + r_in[j] + p.b_hh[j]);
  const scalar_t u = sigmoid(a[H + j] + p.b_ih[H + j] + r_in[H + j] + p.b_hh[H + j]);
  scalar_t* ws = ws_t + b * kGruWorkspaceWidth * H;
  ws[j] = r;
  ws[H + j] = u;
  ws[3 * H + j] = r * h_prev;
  rh[index] = r * h_prev;
}

// TF's convention, forward pass 2: rec_c [B, H] = W_hn (r * h); the candidate and h'.
template <typename scalar_t>
__global__ void tf_forward_candidate_kernel(GruParams<scalar_t> p, int64_t t, int64_t rows, const scalar_t* proj_t,
                                            const scalar_t* rec_c, scalar_t* ws_t) {
  const int64_t H = p.hidden_size, B = p.batch;
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= rows * H) return;
  const int64_t b = index / H, j = index % H;
  const scalar_t h_prev = t == 0 ? p.h0[index] : p.output[((t - 1) * B) * H + index];
  scalar_t* ws = ws_t + b * kGruWorkspaceWidth * H;
  const scalar_t c = tanh_act(proj_t[b * 3 * H + 2 * H + j] + p.b_ih[2 * H + j] + p.b_hh[2 * H + j] + rec_c[index]);
  const scalar_t u = ws[H + j];
  ws[2 * H + j] = c;
  p.output[(t * B) * H + index] = u * h_prev + (scalar_t(1) - u) * c;
}

// torch's convention, one step backward: d_in, d_rec [B, 3H] of step t; grad_h0 becomes h_prev's direct part.
template <typename scalar_t>
__global__ void backward_step_kernel(GruParams<scalar_t> p, int64_t t, int64_t rows) {
  const int64_t H = p.hidden_size, B = p.batch, G = 3 * H;
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= rows * H) return;
  const int64_t b = index / H, j = index % H, tb = t * B + b;
  const scalar_t* ws = p.saved_workspace + tb * kGruWorkspaceWidth * H;
  const scalar_t h_prev = t > 0 ? p.saved_output[((t - 1) * B) * H + index] : p.h0[index];
  const scalar_t d_h = p.grad_h0[index] + (p.grad_output ? p.grad_output[tb * H + j] : scalar_t(0));
  const auto g = gru_gates_backward<scalar_t>(ws[j], ws[H + j], ws[2 * H + j], ws[3 * H + j], h_prev, d_h);
  scalar_t* d_in = p.grad_input_pre + tb * G;
  scalar_t* d_rec = p.grad_recurrent_pre + tb * G;
  d_in[j] = g.d_r;
  d_in[H + j] = g.d_z;
  d_in[2 * H + j] = g.d_in_n;
  d_rec[j] = g.d_r;
  d_rec[H + j] = g.d_z;
  d_rec[2 * H + j] = g.d_rec_n;
  p.grad_h0[index] = g.d_h_prev;
}

// TF's convention, backward pass 1: u's and the candidate's pre-activation gradients; grad_h0 becomes d_h * u.
template <typename scalar_t>
__global__ void tf_backward_gates_kernel(GruParams<scalar_t> p, int64_t t, int64_t rows) {
  const int64_t H = p.hidden_size, B = p.batch, G = 3 * H;
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= rows * H) return;
  const int64_t b = index / H, j = index % H, tb = t * B + b;
  const scalar_t* ws = p.saved_workspace + tb * kGruWorkspaceWidth * H;
  const scalar_t h_prev = t > 0 ? p.saved_output[((t - 1) * B) * H + index] : p.h0[index];
  const scalar_t d_h = p.grad_h0[index] + (p.grad_output ? p.grad_output[tb * H + j] : scalar_t(0));
  const scalar_t u = ws[H + j], c = ws[2 * H + j];
  const scalar_t d_c = d_h * (scalar_t(1) - u) * (scalar_t(1) - c * c);
  const scalar_t d_u = d_h * (h_prev - c) * u * (scalar_t(1) - u);
  p.grad_input_pre[tb * G + H + j] = d_u;
  p.grad_input_pre[tb * G + 2 * H + j] = d_c;
  p.grad_recurrent_pre[tb * G + H + j] = d_u;
  p.grad_recurrent_pre[tb * G + 2 * H + j] = d_c;
  p.grad_h0[index] = d_h * u;
}

// TF's convention, backward pass 2: d_rh [B, H] = d_candidate . W_hn; r's gradient and r * h's share of h_prev's.
template <typename scalar_t>
__global__ void tf_backward_reset_kernel(GruParams<scalar_t> p, int64_t t, int64_t rows, const scalar_t* d_rh) {
  const int64_t H = p.hidden_size, B = p.batch, G = 3 * H;
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= rows * H) return;
  const int64_t b = index / H, j = index % H, tb = t * B + b;
  const scalar_t r = p.saved_workspace[tb * kGruWorkspaceWidth * H + j];
  const scalar_t h_prev = t > 0 ? p.saved_output[((t - 1) * B) * H + index] : p.h0[index];
  const scalar_t d_r = d_rh[index] * h_prev * r * (scalar_t(1) - r);
  p.grad_input_pre[tb * G + j] = d_r;
  p.grad_recurrent_pre[tb * G + j] = d_r;
  p.grad_h0[index] += d_rh[index] * r;
}

}  // namespace

template <typename scalar_t>
void gru_forward(const GruParams<scalar_t>& p) {
  const int64_t T = p.seq_len, B = p.batch, I = p.input_size, H = p.hidden_size, G = 3 * H;
  const int64_t W = kGruWorkspaceWidth * H;
  const bool tf = !p.linear_before_reset;
  const int64_t R = tf ? 2 * H : G;  // columns of the step's first recurrent product
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const auto options = options_of<scalar_t>();
  const at::Tensor projection = at::empty({T * B * G}, options);
  const at::Tensor recurrent = at::empty({B * R}, options);
  const at::Tensor rh = at::empty({tf ? B * H : 0}, options), rec_c = at::empty({tf ? B * H : 0}, options);
  // Inference keeps no workspace: a scratch one of a step serves the call.
  const at::Tensor scratch = at::empty({p.workspace ? 0 : B * W}, options);
  copy_or_zero(p.h_n, p.h0, B * H, stream);
  gemm<scalar_t>(false, true, T * B, G, I, 1, p.x, I, p.w_ih, I, 0, projection.mutable_data_ptr<scalar_t>(), G);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t rows = p.rows_at(t);
    const scalar_t* h_prev = t == 0 ? p.h0 : p.output + (t - 1) * B * H;
    const scalar_t* proj_t = projection.const_data_ptr<scalar_t>() + t * B * G;
    scalar_t* ws_t = p.workspace ? p.workspace + t * B * W : scratch.mutable_data_ptr<scalar_t>();
    if (rows > 0) {
      gemm<scalar_t>(false, true, rows, R, H, 1, h_prev, H, p.w_hh, H, 0, recurrent.mutable_data_ptr<scalar_t>(), R);
      if (!tf) {
        forward_step_kernel<scalar_t><<<blocks_for(rows * H), kThreads, 0, stream>>>(
            p, t, rows, proj_t, recurrent.const_data_ptr<scalar_t>(), ws_t);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      } else {
        tf_forward_gates_kernel<scalar_t><<<blocks_for(rows * H), kThreads, 0, stream>>>(
            p, t, rows, proj_t, recurrent.const_data_ptr<scalar_t>(), ws_t, rh.mutable_data_ptr<scalar_t>());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        gemm<scalar_t>(false, true, rows, H, H, 1, rh.const_data_ptr<scalar_t>(), H, p.w_hh + 2 * H * H, H, 0,
                       rec_c.mutable_data_ptr<scalar_t>(), H);
        tf_forward_candidate_kernel<scalar_t><<<blocks_for(rows * H), kThreads, 0, stream>>>(
            p, t, rows, proj_t, rec_c.const_data_ptr<scalar_t>(), ws_t);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }
    }
    if (rows < B) {  // finished rows: zero output, a defined workspace
      C10_CUDA_CHECK(cudaMemsetAsync(p.output + (t * B + rows) * H, 0, (B - rows) * H * sizeof(scalar_t), stream));
      if (p.workspace) {
        C10_CUDA_CHECK(cudaMemsetAsync(ws_t + rows * W, 0, (B - rows) * W * sizeof(scalar_t), stream));
      }
    }
  }
  copy_last_outputs(p, stream);
}

template <typename scalar_t>
void gru_backward(const GruParams<scalar_t>& p) {
  const int64_t T = p.seq_len, B = p.batch, I = p.input_size, H = p.hidden_size, G = 3 * H;
  const int64_t W = kGruWorkspaceWidth * H;
  const bool tf = !p.linear_before_reset;
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const at::Tensor d_rh = at::empty({tf ? B * H : 0}, options_of<scalar_t>());
  copy_or_zero(p.grad_h0, p.grad_h_n, B * H, stream);
  for (int64_t t = T - 1; t >= 0; --t) {
    const int64_t rows = p.rows_at(t);
    if (rows < B) {
      scalar_t* const gradients[2] = {p.grad_input_pre, p.grad_recurrent_pre};
      for (scalar_t* d : gradients) {
        C10_CUDA_CHECK(cudaMemsetAsync(d + (t * B + rows) * G, 0, (B - rows) * G * sizeof(scalar_t), stream));
      }
    }
    if (rows == 0) continue;
    scalar_t* d_rec_t = p.grad_recurrent_pre + t * B * G;
    if (!tf) {
      backward_step_kernel<scalar_t><<<blocks_for(rows * H), kThreads, 0, stream>>>(p, t, rows);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      gemm<scalar_t>(false, false, rows, H, G, 1, d_rec_t, G, p.w_hh, H, 1, p.grad_h0, H);
    } else {
      tf_backward_gates_kernel<scalar_t><<<blocks_for(rows * H), kThreads, 0, stream>>>(p, t, rows);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      gemm<scalar_t>(false, false, rows, H, H, 1, d_rec_t + 2 * H, G, p.w_hh + 2 * H * H, H, 0,
                     d_rh.mutable_data_ptr<scalar_t>(), H);
      tf_backward_reset_kernel<scalar_t><<<blocks_for(rows * H), kThreads, 0, stream>>>(
          p, t, rows, d_rh.const_data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      gemm<scalar_t>(false, false, rows, H, 2 * H, 1, d_rec_t, G, p.w_hh, H, 1, p.grad_h0, H);
    }
  }
  const int64_t rows_total = T * B;
  const int64_t R = tf ? 2 * H : G;  // w_hh's rows that multiply h_{t-1}
  gemm<scalar_t>(false, false, rows_total, I, G, 1, p.grad_input_pre, G, p.w_ih, I, 0, p.grad_x, I);
  gemm<scalar_t>(true, false, G, I, rows_total, 1, p.grad_input_pre, G, p.x, I, 0, p.grad_w_ih, I);
  gemm<scalar_t>(true, false, R, H, B, 1, p.grad_recurrent_pre, G, p.h0, H, 0, p.grad_w_hh, H);
  gemm<scalar_t>(true, false, R, H, rows_total - B, 1, p.grad_recurrent_pre + B * G, G, p.saved_output, H, 1,
                 p.grad_w_hh, H);
  if (tf) {  // the candidate's rows multiply r * h, kept in the workspace
    gemm<scalar_t>(true, false, H, H, rows_total, 1, p.grad_recurrent_pre + 2 * H, G, p.saved_workspace + 3 * H, W,
                   0, p.grad_w_hh + 2 * H * H, H);
  }
  const auto options = options_of<scalar_t>();
  at::Tensor grad_b_ih = at::from_blob(p.grad_b_ih, {G}, options), grad_b_hh = at::from_blob(p.grad_b_hh, {G}, options);
  at::sum_out(grad_b_ih, at::from_blob(p.grad_input_pre, {rows_total, G}, options), {0});
  at::sum_out(grad_b_hh, at::from_blob(p.grad_recurrent_pre, {rows_total, G}, options), {0});
}

template void gru_forward<float>(const GruParams<float>&);
template void gru_forward<double>(const GruParams<double>&);
template void gru_backward<float>(const GruParams<float>&);
template void gru_backward<double>(const GruParams<double>&);

}  // namespace fastlstm::cuda
