// CUDA time loops of the layer-normalised LSTM (formulation and workspace: layer_norm_lstm_params.h). Per step: the
// recurrent product by cuBLAS (through ATen, as lstm_kernel.cu), then one kernel with a thread block per batch row:
// the row's norms need sums over all its gates, which a block reduces in shared memory. The weight gradients of the
// gains and shifts are reductions over all steps and rows after the loop (ATen's reduction kernels, no atomics).
#include "../activations.h"
#include "layer_norm_lstm_kernel.h"
#include "kernel_helpers.h"

namespace fastlstm::cuda {
namespace {

constexpr int kRowThreads = 256;  // a multiple of the warp size
constexpr int kWarps = kRowThreads / 32;

// The sum of v over the block (every thread gets it). shared: kWarps values.
template <typename scalar_t>
__device__ scalar_t block_sum(scalar_t v, scalar_t* shared) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();  // shared may still be read by the previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  scalar_t total = 0;
  for (int w = 0; w < kWarps; ++w) total += shared[w];
  return total;
}

// v[0, n) -> (v - mean) / sqrt(var + eps) into out (may be v); returns 1 / sqrt(var + eps). Two passes, as on the CPU.
template <typename scalar_t>
__device__ scalar_t normalize(const scalar_t* v, int64_t n, scalar_t eps, scalar_t* out, scalar_t* shared) {
  scalar_t sum = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) sum += v[j];
  const scalar_t mean = block_sum(sum, shared) / scalar_t(n);
  scalar_t squares = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) squares += (v[j] - mean) * (v[j] - mean);
  const scalar_t rstd = scalar_t(1) / sqrt(block_sum(squares, shared) / scalar_t(n) + eps);
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) out[j] = (v[j] - mean) * rstd;
  __syncthreads();
  return rstd;
}

// d_v = rstd * (dz - mean(dz) - v_hat * mean(dz * v_hat)), dz = d_y * gain (see the CPU kernel).
template <typename scalar_t>
__device__ void normalize_backward(int64_t n, const scalar_t* d_y, const scalar_t* gain, const scalar_t* v_hat,
                                   scalar_t rstd, scalar_t* d_v, scalar_t* shared) {
  scalar_t sum = 0, dot = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const scalar_t dz = d_y[j] * gain[j];
    sum += dz;
    dot += dz * v_hat[j];
  }
  const scalar_t mean_dz = block_sum(sum, shared) / scalar_t(n);
  const scalar_t mean_dz_v = block_sum(dot, shared) / scalar_t(n);
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    d_v[j] = rstd * (d_y[j] * gain[j] - mean_dz - v_hat[j] * mean_dz_v);
  }
  __syncthreads();
}

struct Slots {
  int64_t cell, cell_hat, input_hat, recurrent_hat, stats;
};

__host__ __device__ inline Slots slots_for(int64_t H, bool separate) {
  return {4 * H, 5 * H, 6 * H, 10 * H, (separate ? kLayerNormUnitsSeparate : kLayerNormUnitsJoint) * H};
}

// One step forward, block b = row b: a [rows, ld_a] the input projections (normalised in place), r [rows, 4H] the
// recurrent products (then the pre-activations), ws [rows, ld_ws] the rows' workspace (a scratch in inference).
template <typename scalar_t>
__global__ void forward_rows_kernel(LayerNormLstmParams<scalar_t> p, int64_t t, scalar_t* a_t, int64_t ld_a,
                                    scalar_t* r_t, scalar_t* ws_t, int64_t ld_ws) {
  __shared__ scalar_t shared[kWarps];
  const int64_t b = blockIdx.x, B = p.batch, H = p.hidden_size, G = 4 * H, groups = p.groups, group = G / groups;
  const bool separate = p.ln_hh_weight != nullptr;
  const Slots s = slots_for(H, separate);
  scalar_t* a = a_t + b * ld_a;
  scalar_t* r = r_t + b * G;
  scalar_t* ws = ws_t + b * ld_ws;
  scalar_t* stats = ws + s.stats;
  for (int64_t k = threadIdx.x; k < kLayerNormStats; k += blockDim.x) stats[k] = 0;
  if (!separate) {
    for (int64_t k = threadIdx.x; k < G; k += blockDim.x) a[k] += r[k];
  }
  __syncthreads();
  for (int64_t k = 0; k < groups; ++k) {
    const scalar_t rstd = normalize(a + k * group, group, p.eps, a + k * group, shared);
    if (threadIdx.x == 0) stats[k] = rstd;
    if (separate) {
      const scalar_t rstd_r = normalize(r + k * group, group, p.eps, ws + s.recurrent_hat + k * group, shared);
      if (threadIdx.x == 0) stats[groups + k] = rstd_r;
    }
  }
  for (int64_t k = threadIdx.x; k < G; k += blockDim.x) {
    scalar_t v = a[k] * p.ln_ih_weight[k] + p.bias[k];
    if (separate) v += ws[s.recurrent_hat + k] * p.ln_hh_weight[k];
    r[k] = v;
  }
  __syncthreads();
  scalar_t* c = p.c_n + b * H;
  const scalar_t* mask = p.g_mask ? p.g_mask + (t * B + b) * H : nullptr;
  for (int64_t j = threadIdx.x; j < H; j += blockDim.x) {
    const scalar_t i = sigmoid(r[j]), f = sigmoid(r[H + j] + p.forget_bias), g = tanh_act(r[2 * H + j]),
                   o = sigmoid(r[3 * H + j]);
    ws[j] = i;
    ws[H + j] = f;
    ws[2 * H + j] = g;
    ws[3 * H + j] = o;
    c[j] = f * c[j] + i * (mask ? g * mask[j] : g);
  }
  __syncthreads();
  const scalar_t rstd_c = normalize(c, H, p.eps, ws + s.cell_hat, shared);
  if (threadIdx.x == 0) stats[2 * groups] = rstd_c;
  scalar_t* h = p.output + (t * B + b) * H;
  for (int64_t j = threadIdx.x; j < H; j += blockDim.x) {
    const scalar_t n = ws[s.cell_hat + j] * p.ln_cell_weight[j] + p.ln_cell_bias[j];
    h[j] = ws[3 * H + j] * tanh_act(n);
    if (p.carry_normalized_cell) c[j] = n;
    ws[s.cell + j] = c[j];
  }
}

// One step backward, block b = row b: writes d_pre [rows, 4H] (the pre-activations' gradient, kept for the bias and
// gain gradients), d_n [rows, H] (the cell norm output's), d_a and d_r; updates grad_c0 to c_prev's gradient.
template <typename scalar_t>
__global__ void backward_rows_kernel(LayerNormLstmParams<scalar_t> p, int64_t t, int64_t W, scalar_t* d_pre_t,
                                     scalar_t* d_n_t, scalar_t* scratch_t) {
  __shared__ scalar_t shared[kWarps];
  const int64_t b = blockIdx.x, B = p.batch, H = p.hidden_size, G = 4 * H, groups = p.groups, group = G / groups;
  const bool separate = p.ln_hh_weight != nullptr;
  const Slots s = slots_for(H, separate);
  const int64_t tb = t * B + b;
  const scalar_t* ws = p.saved_workspace + tb * W;
  const scalar_t* stats = ws + s.stats;
  const scalar_t* c_prev = t > 0 ? p.saved_workspace + ((t - 1) * B + b) * W + s.cell : p.c0 + b * H;
  const scalar_t* mask = p.g_mask ? p.g_mask + tb * H : nullptr;
  scalar_t* dh = p.grad_h0 + b * H;
  scalar_t* dc = p.grad_c0 + b * H;
  scalar_t* d_pre = d_pre_t + b * G;
  scalar_t* d_n = d_n_t + b * H;
  scalar_t* d_c_raw = scratch_t + b * H;
  for (int64_t j = threadIdx.x; j < H; j += blockDim.x) {
    const scalar_t o = ws[3 * H + j];
    const scalar_t tanh_n = tanh_act(ws[s.cell_hat + j] * p.ln_cell_weight[j] + p.ln_cell_bias[j]);
    const scalar_t d_h = dh[j] + (p.grad_output ? p.grad_output[tb * H + j] : scalar_t(0));
    d_pre[3 * H + j] = d_h * tanh_n * o * (scalar_t(1) - o);
    d_n[j] = d_h * o * (scalar_t(1) - tanh_n * tanh_n) + (p.carry_normalized_cell ? dc[j] : scalar_t(0));
  }
  __syncthreads();
  normalize_backward(H, d_n, p.ln_cell_weight, ws + s.cell_hat, stats[2 * groups], d_c_raw, shared);
  for (int64_t j = threadIdx.x; j < H; j += blockDim.x) {
    const scalar_t d_c = d_c_raw[j] + (p.carry_normalized_cell ? scalar_t(0) : dc[j]);
    const scalar_t i = ws[j], f = ws[H + j], g = ws[2 * H + j];
    const scalar_t m = mask ? mask[j] : scalar_t(1);
    d_pre[j] = d_c * g * m * i * (scalar_t(1) - i);
    d_pre[H + j] = d_c * c_prev[j] * f * (scalar_t(1) - f);
    d_pre[2 * H + j] = d_c * i * m * (scalar_t(1) - g * g);
    dc[j] = d_c * f;
  }
  __syncthreads();
  scalar_t* d_a = p.grad_input_pre + tb * G;
  scalar_t* d_r = p.grad_recurrent_pre + tb * G;
  for (int64_t k = 0; k < groups; ++k) {
    const int64_t o = k * group;
    normalize_backward(group, d_pre + o, p.ln_ih_weight + o, ws + s.input_hat + o, stats[k], d_a + o, shared);
    if (separate) {
      normalize_backward(group, d_pre + o, p.ln_hh_weight + o, ws + s.recurrent_hat + o, stats[groups + k],
                         d_r + o, shared);
    }
  }
}

}  // namespace

template <typename scalar_t>
void layer_norm_lstm_forward(const LayerNormLstmParams<scalar_t>& p) {
  const int64_t T = p.seq_len, B = p.batch, I = p.input_size, H = p.hidden_size, G = 4 * H;
  const int64_t W = p.workspace_width();
  const bool training = p.workspace != nullptr;
  const Slots s = slots_for(H, p.separate());
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  copy_or_zero(p.h_n, p.h0, B * H, stream);
  copy_or_zero(p.c_n, p.c0, B * H, stream);
  // Training projects into the workspace rows' LN(a) slots; inference into a scratch, with one scratch workspace
  // row per batch row.
  const at::Tensor projection = at::empty({training ? 0 : T * B * G}, options_of<scalar_t>());
  const at::Tensor scratch_rows = at::empty({training ? 0 : B * W}, options_of<scalar_t>());
  const at::Tensor recurrent = at::empty({B * G}, options_of<scalar_t>());
  scalar_t* proj = training ? p.workspace + s.input_hat : projection.mutable_data_ptr<scalar_t>();
  const int64_t ld_proj = training ? W : G;
  gemm<scalar_t>(false, true, T * B, G, I, 1, p.x, I, p.w_ih, I, 0, proj, ld_proj);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t rows = p.rows_at(t);
    const scalar_t* h_prev = t == 0 ? p.h0 : p.output + (t - 1) * B * H;
    scalar_t* ws_t = training ? p.workspace + t * B * W : scratch_rows.mutable_data_ptr<scalar_t>();
    if (rows > 0) {
      gemm<scalar_t>(false, true, rows, G, H, 1, h_prev, H, p.w_hh, H, 0, recurrent.mutable_data_ptr<scalar_t>(), G);
      forward_rows_kernel<scalar_t><<<rows, kRowThreads, 0, stream>>>(
          p, t, proj + t * B * ld_proj, ld_proj, recurrent.mutable_data_ptr<scalar_t>(), ws_t, W);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    if (rows < B) {  // finished rows: zero output, a defined workspace
      scalar_t* out_t = p.output + t * B * H;
      C10_CUDA_CHECK(cudaMemsetAsync(out_t + rows * H, 0, (B - rows) * H * sizeof(scalar_t), stream));
      if (training) {
        C10_CUDA_CHECK(cudaMemsetAsync(ws_t + rows * W, 0, (B - rows) * W * sizeof(scalar_t), stream));
      }
    }
  }
  copy_last_outputs(p, stream);
}

template <typename scalar_t>
void layer_norm_lstm_backward(const LayerNormLstmParams<scalar_t>& p) {
  const int64_t T = p.seq_len, B = p.batch, I = p.input_size, H = p.hidden_size, G = 4 * H;
  const bool separate = p.separate();
  const Slots s = slots_for(H, separate);
  const int64_t W = p.workspace_width();
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  copy_or_zero(p.grad_h0, p.grad_h_n, B * H, stream);
  copy_or_zero(p.grad_c0, p.grad_c_n, B * H, stream);
  const at::Tensor d_pre = at::zeros({T, B, G}, options_of<scalar_t>());
  const at::Tensor d_n = at::zeros({T, B, H}, options_of<scalar_t>());
  const at::Tensor d_c_raw = at::empty({B, H}, options_of<scalar_t>());
  for (int64_t t = T - 1; t >= 0; --t) {
    const int64_t rows = p.rows_at(t);
    if (rows > 0) {
      backward_rows_kernel<scalar_t><<<rows, kRowThreads, 0, stream>>>(
          p, t, W, d_pre.mutable_data_ptr<scalar_t>() + t * B * G, d_n.mutable_data_ptr<scalar_t>() + t * B * H,
          d_c_raw.mutable_data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    if (rows < B) {
      scalar_t* const gradients[2] = {p.grad_input_pre, p.grad_recurrent_pre};
      for (scalar_t* d : gradients) {
        C10_CUDA_CHECK(cudaMemsetAsync(d + (t * B + rows) * G, 0, (B - rows) * G * sizeof(scalar_t), stream));
      }
    }
    gemm<scalar_t>(false, false, rows, H, G, 1, p.grad_recurrent_pre + t * B * G, G, p.w_hh, H, 0, p.grad_h0, H);
  }
  const int64_t rows_total = T * B;
  gemm<scalar_t>(false, false, rows_total, I, G, 1, p.grad_input_pre, G, p.w_ih, I, 0, p.grad_x, I);
  gemm<scalar_t>(true, false, G, I, rows_total, 1, p.grad_input_pre, G, p.x, I, 0, p.grad_w_ih, I);
  gemm<scalar_t>(true, false, G, H, B, 1, p.grad_recurrent_pre, G, p.h0, H, 0, p.grad_w_hh, H);
  gemm<scalar_t>(true, false, G, H, rows_total - B, 1, p.grad_recurrent_pre + B * G, G, p.saved_output, H, 1,
                 p.grad_w_hh, H);
  // Gains and shifts: reductions over the T*B rows (finished rows have zero gradients).
  const auto options = options_of<scalar_t>();
  const at::Tensor ws = at::from_blob(const_cast<scalar_t*>(p.saved_workspace), {rows_total, W}, options);
  const at::Tensor d_pre_rows = d_pre.view({rows_total, G}), d_n_rows = d_n.view({rows_total, H});
  auto out = [&](scalar_t* data, int64_t size) { return at::from_blob(data, {size}, options); };
  at::Tensor grad_bias = out(p.grad_bias, G), grad_ln_ih = out(p.grad_ln_ih_weight, G),
             grad_ln_cw = out(p.grad_ln_cell_weight, H), grad_ln_cb = out(p.grad_ln_cell_bias, H);
  at::sum_out(grad_bias, d_pre_rows, {0});
  at::sum_out(grad_ln_ih, d_pre_rows * ws.narrow(1, s.input_hat, G), {0});
  at::sum_out(grad_ln_cw, d_n_rows * ws.narrow(1, s.cell_hat, H), {0});
  at::sum_out(grad_ln_cb, d_n_rows, {0});
  if (separate) {
    at::Tensor grad_ln_hh = out(p.grad_ln_hh_weight, G);
    at::sum_out(grad_ln_hh, d_pre_rows * ws.narrow(1, s.recurrent_hat, G), {0});
  }
}

template void layer_norm_lstm_forward<float>(const LayerNormLstmParams<float>&);
template void layer_norm_lstm_forward<double>(const LayerNormLstmParams<double>&);
template void layer_norm_lstm_backward<float>(const LayerNormLstmParams<float>&);
template void layer_norm_lstm_backward<double>(const LayerNormLstmParams<double>&);

}  // namespace fastlstm::cuda
