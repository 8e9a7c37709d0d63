#include "lstm_kernel.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "../gates.h"
#include "gemm.h"

namespace fastlstm::cpu {
namespace {

// A weight is laid out transposed for the brgemm micro-kernel only when the copy (4H * K) is small against the work
// that reads it (T * B rows) and each GEMM has rows enough for the micro-kernel to beat Eigen's transposed read.
constexpr int64_t kMinTotalRowsForPacking = 64;
constexpr int64_t kMinGemmRowsForPacking = 8;

// Rows per parallel chunk: a chunk should carry enough gate math (~4k units) to pay for waking a thread.
int64_t row_grain(int64_t hidden_size) { return std::max<int64_t>(1, 4096 / std::max<int64_t>(1, hidden_size)); }

template <typename scalar_t, bool kPeephole>
Peephole<scalar_t> peephole_at(const scalar_t* w_peephole, int64_t hidden_size, int64_t j) {
  if constexpr (!kPeephole) return {scalar_t(0), scalar_t(0), scalar_t(0)};
  return {w_peephole[j], w_peephole[hidden_size + j], w_peephole[2 * hidden_size + j]};
}

// One row of one step. pre: the row's workspace (pre-activations in, activated gates and c out); h, c: the state.
// Branch-free in j, with peepholes a compile-time choice, so that the loop vectorises.
template <typename scalar_t, bool kPeephole>
void forward_row(const LstmParams<scalar_t>& p, scalar_t* __restrict__ pre, scalar_t* __restrict__ h,
                 scalar_t* __restrict__ c) {
  // Locals, not p's fields: stores through pre/h/c could otherwise alias p and force reloads in the loop.
  const int64_t H = p.hidden_size, G = 4 * H;
  const scalar_t forget_bias = p.forget_bias, cell_clip = p.cell_clip;
  const scalar_t* __restrict__ w_peephole = p.w_peephole;
  for (int64_t j = 0; j < H; ++j) {
    const auto r = gates_forward<scalar_t>(pre[j], pre[H + j], pre[2 * H + j], pre[3 * H + j], c[j],
                                           peephole_at<scalar_t, kPeephole>(w_peephole, H, j), forget_bias,
                                           cell_clip);
    pre[j] = r.i;
    pre[H + j] = r.f;
    pre[2 * H + j] = r.g;
    pre[3 * H + j] = r.o;
    pre[G + j] = r.c;
    c[j] = r.c;
    h[j] = r.h;
  }
}

// One row of one step backward. d_h arrives as dh[j] + grad_out[j]; dc is updated in place to the gradient of c_prev.
template <typename scalar_t, bool kPeephole>
void backward_row(const LstmParams<scalar_t>& p, const scalar_t* __restrict__ gates,
                  const scalar_t* __restrict__ c_prev, const scalar_t* __restrict__ grad_out,
                  const scalar_t* __restrict__ dh, scalar_t* __restrict__ dc, scalar_t* __restrict__ d_pre) {
  const int64_t H = p.hidden_size, G = 4 * H;
  const scalar_t cell_clip = p.cell_clip;
  const scalar_t* __restrict__ w_peephole = p.w_peephole;
  for (int64_t j = 0; j < H; ++j) {
    const auto r = gates_backward<scalar_t>(gates[j], gates[H + j], gates[2 * H + j], gates[3 * H + j],
                                            gates[G + j], c_prev[j], dh[j] + grad_out[j], dc[j],
                                            peephole_at<scalar_t, kPeephole>(w_peephole, H, j), cell_clip);
    d_pre[j] = r.d_pre_i;
    d_pre[H + j] = r.d_pre_f;
    d_pre[2 * H + j] = r.d_pre_g;
    d_pre[3 * H + j] = r.d_pre_o;
    dc[j] = r.d_c_prev;
  }
}

}  // namespace

// A weight [4H, K] as its transpose [K, 4H] (what the brgemm micro-kernel wants) when packing pays (see above);
// else empty, and the GEMMs read the weight transposed in place.
template <typename scalar_t>
std::vector<scalar_t> transposed_weight(const scalar_t* weight, int64_t gates, int64_t k, int64_t total_rows,
                                        int64_t gemm_rows) {
  std::vector<scalar_t> result;
  if (total_rows >= kMinTotalRowsForPacking && gemm_rows >= kMinGemmRowsForPacking) {
    result.resize(static_cast<size_t>(gates * k));
    transpose(weight, gates, k, k, result.data());
  }
  return result;
}

// C[rows, 4H] += A[rows, K] . W^T with W [4H, K], or its transpose w_t [K, 4H] if it was laid out.
template <typename scalar_t>
void gemm_weight_t(int64_t rows, int64_t gates, int64_t k, const scalar_t* a, const scalar_t* weight,
                   const std::vector<scalar_t>& w_t, scalar_t* c, int64_t ldc) {
  if (w_t.empty()) {
    gemm<scalar_t>(false, true, rows, gates, k, 1, a, k, weight, k, 1, c, ldc);
  } else {
    gemm<scalar_t>(false, false, rows, gates, k, 1, a, k, w_t.data(), gates, 1, c, ldc);
  }
}

// Input projection of steps [t0, t1): pre[t, b, :4H] = x[t, b] . w_ih^T + bias, rows ws_width apart.
template <typename scalar_t>
void project_inputs(const LstmParams<scalar_t>& p, const std::vector<scalar_t>& w_ih_t, int64_t t0, int64_t t1,
                    scalar_t* pre, int64_t ws_width) {
  const int64_t B = p.batch, I = p.input_size, G = 4 * p.hidden_size;
  const int64_t rows = (t1 - t0) * B;
  for (int64_t row = 0; row < rows; ++row) {
    scalar_t* out = pre + row * ws_width;
    for (int64_t k = 0; k < G; ++k) {
      out[k] = (p.b_ih ? p.b_ih[k] : scalar_t(0)) + (p.b_hh ? p.b_hh[k] : scalar_t(0));
    }
  }
  gemm_weight_t(rows, G, I, p.x + t0 * B * I, p.w_ih, w_ih_t, pre, ws_width);
}

template <typename scalar_t>
void lstm_forward(const LstmParams<scalar_t>& p) {
  const int64_t T = p.seq_len, B = p.batch, H = p.hidden_size, G = 4 * H;
  const int64_t ws_width = kWorkspaceWidth * H;

  // Training keeps every step's workspace (it is returned for backward). Inference needs only the steps being
  // worked on: it projects the inputs a chunk of ~1024 rows at a time into a per-thread scratch kept between calls,
  // which bounds its memory and spares the page faults of a fresh [T, B, 5H] buffer per call.
  const int64_t chunk_steps = p.workspace != nullptr ? std::max<int64_t>(T, 1)
                                                     : std::clamp<int64_t>(1024 / std::max<int64_t>(B, 1), 1, T);
  thread_local std::vector<scalar_t> scratch;
  scalar_t* workspace = p.workspace;
  if (workspace == nullptr) {
    scratch.resize(static_cast<size_t>(chunk_steps * B * ws_width));
    workspace = scratch.data();
  }

  std::memcpy(p.h_n, p.h0, B * H * sizeof(scalar_t));
  std::memcpy(p.c_n, p.c0, B * H * sizeof(scalar_t));
  const auto row_step = p.w_peephole ? forward_row<scalar_t, true> : forward_row<scalar_t, false>;

  const std::vector<scalar_t> w_ih_t = transposed_weight(p.w_ih, G, p.input_size, T * B, chunk_steps * B);
  const std::vector<scalar_t> w_hh_t = transposed_weight(p.w_hh, G, H, T * B, B);

  for (int64_t t = 0; t < T; ++t) {
    const int64_t chunk_step = t % chunk_steps;
    if (chunk_step == 0) project_inputs(p, w_ih_t, t, std::min(T, t + chunk_steps), workspace, ws_width);
    const int64_t rows = p.rows_at(t);
    scalar_t* pre_t = workspace + chunk_step * B * ws_width;
    // Recurrent projection of the rows still running; h_n holds h_{t-1}.
    gemm_weight_t(rows, G, H, p.h_n, p.w_hh, w_hh_t, pre_t, ws_width);
    at::parallel_for(0, rows, row_grain(H), [&](int64_t row_begin, int64_t row_end) {
      for (int64_t b = row_begin; b < row_end; ++b) {
        row_step(p, pre_t + b * ws_width, p.h_n + b * H, p.c_n + b * H);
      }
    });
    if (p.output != nullptr) {
      scalar_t* out_t = p.output + t * B * H;
      std::memcpy(out_t, p.h_n, rows * H * sizeof(scalar_t));
      std::fill(out_t + rows * H, out_t + B * H, scalar_t(0));  // finished rows
    }
    // Finished rows keep a defined workspace: backward never reads it, but it is a returned tensor.
    if (p.workspace != nullptr) std::fill(pre_t + rows * ws_width, pre_t + B * ws_width, scalar_t(0));
  }
}

template <typename scalar_t>
void lstm_backward(const LstmParams<scalar_t>& p) {
  const int64_t T = p.seq_len, B = p.batch, I = p.input_size, H = p.hidden_size, G = 4 * H;
  const int64_t ws_width = kWorkspaceWidth * H;

  // grad_h0 / grad_c0 carry the running gradient of h and c; rows not yet started hold the final-state gradient.
  if (p.grad_h_n != nullptr) {
    std::memcpy(p.grad_h0, p.grad_h_n, B * H * sizeof(scalar_t));
  } else {
    std::fill(p.grad_h0, p.grad_h0 + B * H, scalar_t(0));
  }
  if (p.grad_c_n != nullptr) {
    std::memcpy(p.grad_c0, p.grad_c_n, B * H * sizeof(scalar_t));
  } else {
    std::fill(p.grad_c0, p.grad_c0 + B * H, scalar_t(0));
  }
  const std::vector<scalar_t> no_grad_output(p.grad_output ? 0 : H, scalar_t(0));
  const auto row_step = p.w_peephole ? backward_row<scalar_t, true> : backward_row<scalar_t, false>;

  for (int64_t t = T - 1; t >= 0; --t) {
    const int64_t rows = p.rows_at(t);
    const scalar_t* ws_t = p.saved_workspace + t * B * ws_width;
    scalar_t* grad_pre_t = p.grad_pre + t * B * G;
    at::parallel_for(0, rows, row_grain(H), [&](int64_t row_begin, int64_t row_end) {
      for (int64_t b = row_begin; b < row_end; ++b) {
        const scalar_t* c_prev = t > 0 ? p.saved_workspace + ((t - 1) * B + b) * ws_width + G : p.c0 + b * H;
        const scalar_t* grad_out = p.grad_output ? p.grad_output + (t * B + b) * H : no_grad_output.data();
        row_step(p, ws_t + b * ws_width, c_prev, grad_out, p.grad_h0 + b * H, p.grad_c0 + b * H,
                 grad_pre_t + b * G);
      }
    });
    std::fill(grad_pre_t + rows * G, grad_pre_t + B * G, scalar_t(0));
    // dh_{t-1} = d_pre_t . w_hh for the running rows (the output gradient of t-1 is added when t-1 is processed).
    gemm<scalar_t>(false, false, rows, H, G, 1, grad_pre_t, G, p.w_hh, H, 0, p.grad_h0, H);
  }

  // Input and weight gradients as big GEMMs over all steps. The weight gradients reduce over the T*B rows: with
  // grad_pre transposed once to [4H, T*B] they (and the bias gradient, a row sum) read it untransposed.
  const int64_t rows_total = T * B;
  gemm<scalar_t>(false, false, rows_total, I, G, 1, p.grad_pre, G, p.w_ih, I, 0, p.grad_x, I);
  std::vector<scalar_t> grad_pre_t(static_cast<size_t>(G * rows_total));
  transpose(p.grad_pre, rows_total, G, G, grad_pre_t.data());
  gemm<scalar_t>(false, false, G, I, rows_total, 1, grad_pre_t.data(), rows_total, p.x, I, 0, p.grad_w_ih, I);
  gemm<scalar_t>(false, false, G, H, B, 1, grad_pre_t.data(), rows_total, p.h0, H, 0, p.grad_w_hh, H);
  gemm<scalar_t>(false, false, G, H, rows_total - B, 1, grad_pre_t.data() + B, rows_total, p.saved_output, H, 1,
                 p.grad_w_hh, H);
  at::parallel_for(0, G, 64, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const scalar_t* row = grad_pre_t.data() + k * rows_total;
      scalar_t sum = 0;
      for (int64_t r = 0; r < rows_total; ++r) sum += row[r];
      p.grad_bias[k] = sum;
    }
  });

  if (p.grad_w_peephole == nullptr) return;
  // Peephole gradients: w_ci and w_cf multiply c_prev, w_co the new c (finished rows have zero grad_pre).
  std::fill(p.grad_w_peephole, p.grad_w_peephole + 3 * H, scalar_t(0));
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t b = 0; b < p.rows_at(t); ++b) {
      const scalar_t* d_pre = p.grad_pre + (t * B + b) * G;
      const scalar_t* c_prev = t > 0 ? p.saved_workspace + ((t - 1) * B + b) * ws_width + G : p.c0 + b * H;
      const scalar_t* c = p.saved_workspace + (t * B + b) * ws_width + G;
      for (int64_t j = 0; j < H; ++j) {
        p.grad_w_peephole[j] += d_pre[j] * c_prev[j];
        p.grad_w_peephole[H + j] += d_pre[H + j] * c_prev[j];
        p.grad_w_peephole[2 * H + j] += d_pre[3 * H + j] * c[j];
      }
    }
  }
}

template void lstm_forward<float>(const LstmParams<float>&);
template void lstm_forward<double>(const LstmParams<double>&);
template void lstm_backward<float>(const LstmParams<float>&);
template void lstm_backward<double>(const LstmParams<double>&);

}  // namespace fastlstm::cpu
