// CPU time loops of the GRU (gru_params.h), compiled once per instruction-set level like lstm_kernel.cpp, on the
// rows-split loops (rows_split_loop.h): the candidate reads r times a recurrent product (torch's: r * (W_hn h);
// TF's: W_hn (r * h), a second product of the step), so a row's step needs its whole rows of products, which the
// thread owning the row computes itself.
#include "gru_kernel.h"

#include <algorithm>
#include <cstring>

#include "../gru_gates.h"
#include "buffer_pool.h"
#include "rows_split_loop.h"
#include "time_loop.h"

namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE {
namespace {

// One row of one step: a = W_ih x, rec = W_hh h_{t-1} (no biases), ws: the row's workspace (r, z, n, W_hn h + b_hn;
// a scratch row in inference), h: where h' goes. Branch-free in j so that the loop vectorises.
template <typename scalar_t>
void forward_row(const GruParams<scalar_t>& p, const scalar_t* __restrict__ a, const scalar_t* __restrict__ rec,
                 const scalar_t* __restrict__ h_prev, scalar_t* __restrict__ ws, scalar_t* __restrict__ h) {
  const int64_t H = p.hidden_size;
  const scalar_t* __restrict__ b_ih = p.b_ih;
  const scalar_t* __restrict__ b_hh = p.b_hh;
  for (int64_t j = 0; j < H; ++j) {
    const scalar_t rec_n = rec[2 * H + j] + b_hh[2 * H + j];
    const auto g = gru_gates_forward<scalar_t>(a[j] + b_ih[j], a[H + j] + b_ih[H + j], a[2 * H + j] + b_ih[2 * H + j],
                                               rec[j] + b_hh[j], rec[H + j] + b_hh[H + j], rec_n, h_prev[j]);
    ws[j] = g.r;
    ws[H + j] = g.z;
    ws[2 * H + j] = g.n;
    ws[3 * H + j] = rec_n;
    h[j] = g.h;
  }
}

// One row of one step backward: dh = the gradient arriving at h' (replaced by h_prev's direct part, d_h * z).
template <typename scalar_t>
void backward_row(const GruParams<scalar_t>& p, const scalar_t* __restrict__ ws, const scalar_t* __restrict__ h_prev,
                  const scalar_t* __restrict__ grad_out, scalar_t* __restrict__ dh, scalar_t* __restrict__ d_in,
                  scalar_t* __restrict__ d_rec) {
  const int64_t H = p.hidden_size;
  for (int64_t j = 0; j < H; ++j) {
    const scalar_t d_h = grad_out != nullptr ? dh[j] + grad_out[j] : dh[j];
    const auto g = gru_gates_backward<scalar_t>(ws[j], ws[H + j], ws[2 * H + j], ws[3 * H + j], h_prev[j], d_h);
    d_in[j] = g.d_r;
    d_in[H + j] = g.d_z;
    d_in[2 * H + j] = g.d_in_n;
    d_rec[j] = g.d_r;
    d_rec[H + j] = g.d_z;
    d_rec[2 * H + j] = g.d_rec_n;
    dh[j] = g.d_h_prev;
  }
}

// TF's convention, forward in two passes around the candidate's product. Pass 1: r and u of one row into ws
// (r, u, -, r * h), r * h also into rh (the product's input) and the candidate's other terms into pre_c.
template <typename scalar_t>
void tf_forward_gates(const GruParams<scalar_t>& p, const scalar_t* __restrict__ a, const scalar_t* __restrict__ rec,
                      const scalar_t* __restrict__ h_prev, scalar_t* __restrict__ ws, scalar_t* __restrict__ rh,
                      scalar_t* __restrict__ pre_c) {
  const int64_t H = p.hidden_size;
  const scalar_t* __restrict__ b_ih = p.b_ih;
  const scalar_t* __restrict__ b_hh = p.b_hh;
  for (int64_t j = 0; j < H; ++j) {
    const scalar_t r = sigmoid(a[j] + b_ih[j] + rec[j] + b_hh[j]);
    const scalar_t u = sigmoid(a[H + j] + b_ih[H + j] + rec[H + j] + b_hh[H + j]);
    ws[j] = r;
    ws[H + j] = u;
    rh[j] = r * h_prev[j];
    ws[3 * H + j] = rh[j];
    pre_c[j] = a[2 * H + j] + b_ih[2 * H + j] + b_hh[2 * H + j];
  }
}

// Pass 2: rec_c = W_hn (r * h) of the row; the candidate and h'.
template <typename scalar_t>
void tf_forward_candidate(const GruParams<scalar_t>& p, const scalar_t* __restrict__ pre_c,
                          const scalar_t* __restrict__ rec_c, const scalar_t* __restrict__ h_prev,
                          scalar_t* __restrict__ ws, scalar_t* __restrict__ h) {
  const int64_t H = p.hidden_size;
  for (int64_t j = 0; j < H; ++j) {
    const scalar_t c = tanh_act(pre_c[j] + rec_c[j]), u = ws[H + j];
    ws[2 * H + j] = c;
    h[j] = u * h_prev[j] + (scalar_t(1) - u) * c;
  }
}

// Backward pass 1 of one row: the gradients of u's and the candidate's pre-activations (d_in, d_rec blocks u and
// n), h_{t-1}'s direct part (dh becomes d_h * u).
template <typename scalar_t>
void tf_backward_gates(const GruParams<scalar_t>& p, const scalar_t* __restrict__ ws,
                       const scalar_t* __restrict__ h_prev, const scalar_t* __restrict__ grad_out,
                       scalar_t* __restrict__ dh, scalar_t* __restrict__ d_in, scalar_t* __restrict__ d_rec) {
  const int64_t H = p.hidden_size;
  for (int64_t j = 0; j < H; ++j) {
    const scalar_t d_h = grad_out != nullptr ? dh[j] + grad_out[j] : dh[j];
    const scalar_t u = ws[H + j], c = ws[2 * H + j];
    const scalar_t d_c = d_h * (scalar_t(1) - u) * (scalar_t(1) - c * c);
    const scalar_t d_u = d_h * (h_prev[j] - c) * u * (scalar_t(1) - u);
    d_in[H + j] = d_u;
    d_in[2 * H + j] = d_c;
    d_rec[H + j] = d_u;
    d_rec[2 * H + j] = d_c;
    dh[j] = d_h * u;
  }
}

// Backward pass 2: d_rh = the gradient of r * h (from the candidate's product); r's pre-activation gradient, and
// r * h's share of h_{t-1}'s.
template <typename scalar_t>
void tf_backward_reset(const GruParams<scalar_t>& p, const scalar_t* __restrict__ ws,
                       const scalar_t* __restrict__ h_prev, const scalar_t* __restrict__ d_rh,
                       scalar_t* __restrict__ dh, scalar_t* __restrict__ d_in, scalar_t* __restrict__ d_rec) {
  const int64_t H = p.hidden_size;
  for (int64_t j = 0; j < H; ++j) {
    const scalar_t r = ws[j];
    const scalar_t d_r = d_rh[j] * h_prev[j] * r * (scalar_t(1) - r);
    d_in[j] = d_r;
    d_rec[j] = d_r;
    dh[j] += d_rh[j] * r;
  }
}

// Column sums of m [rows, G] into out [G], in blocks of columns so that the inner loop runs along rows of memory.
template <typename scalar_t>
void column_sums(const scalar_t* m, int64_t rows, int64_t G, scalar_t* out) {
  at::parallel_for(0, (G + 63) / 64, 1, [&](int64_t begin, int64_t end) {
    const int64_t k0 = begin * 64, k1 = std::min(G, end * 64);
    std::fill(out + k0, out + k1, scalar_t(0));
    for (int64_t r = 0; r < rows; ++r) {
      const scalar_t* row = m + r * G;
      for (int64_t k = k0; k < k1; ++k) out[k] += row[k];
    }
  });
}

template <typename scalar_t>
void forward_loop(const GruParams<scalar_t>& p) {
  const int64_t B = p.batch, H = p.hidden_size, W = kGruWorkspaceWidth * H;
  const bool training = p.workspace != nullptr, tf = !p.linear_before_reset;
  std::memcpy(p.h_n, p.h0, B * H * sizeof(scalar_t));
  // TF's convention: the step's first product covers r and u only (w_hh's first 2H rows); W_hn (r * h) follows.
  const RowsSplitShape<scalar_t> shape{p.seq_len, B, p.input_size, H, 3 * H, tf ? 2 * H : 3 * H, p.active_rows};
  const int64_t threads = rows_team_size(B, H, 3);
  const int64_t rows = (B + threads - 1) / threads;  // per thread, at most
  // Per thread: workspace rows to compute in (inference), then TF's r * h, the candidate's other terms and its
  // product, [rows, H] each.
  const int64_t ws_scratch = training ? 0 : rows * W;
  const int64_t thread_scratch = ws_scratch + (tf ? 3 * rows * H : 0);
  const PooledScratch<scalar_t> scratch(threads * thread_scratch);
  const auto ws_of = [&](int64_t t, int64_t b, int64_t i, int64_t id) {
    return training ? p.workspace + (t * B + b) * W : scratch.data() + id * thread_scratch + i * W;
  };
  const auto h_prev_of = [&](int64_t t, int64_t b) {
    return t == 0 ? p.h0 + b * H : p.output + ((t - 1) * B + b) * H;
  };
  const auto finished = [&](int64_t t, int64_t b) {  // zero output, a defined workspace
    std::fill(p.output + (t * B + b) * H, p.output + (t * B + b + 1) * H, scalar_t(0));
    if (training) std::fill(p.workspace + (t * B + b) * W, p.workspace + (t * B + b + 1) * W, scalar_t(0));
  };
  if (!tf) {
    rows_split_forward(
        shape, threads, p.x, p.h0, p.w_ih, p.w_hh, p.output, static_cast<scalar_t*>(nullptr), 0,
        [&](int64_t t, int64_t b, int64_t i, const scalar_t* a, const scalar_t* rec, int64_t id) {
          forward_row(p, a, rec, h_prev_of(t, b), ws_of(t, b, i, id), p.output + (t * B + b) * H);
        },
        finished);
  } else {
    const auto buffer = [&](int64_t id, int64_t k) {  // k: 0 r * h, 1 the candidate's other terms, 2 its product
      return scratch.data() + id * thread_scratch + ws_scratch + k * rows * H;
    };
    const scalar_t* w_hn = p.w_hh + 2 * H * H;  // [H, H]: the candidate's rows of w_hh
    rows_split_forward(
        shape, threads, p.x, p.h0, p.w_ih, p.w_hh, p.output, static_cast<scalar_t*>(nullptr), 0,
        [&](int64_t t, int64_t b, int64_t i, const scalar_t* a, const scalar_t* rec, int64_t id) {
          tf_forward_gates(p, a, rec, h_prev_of(t, b), ws_of(t, b, i, id), buffer(id, 0) + i * H,
                           buffer(id, 1) + i * H);
        },
        finished,
        [&](int64_t t, int64_t id, int64_t count, int64_t running) {
          if (running == 0) return;
          gemm<scalar_t>(false, true, running, H, H, 1, buffer(id, 0), H, w_hn, H, 0, buffer(id, 2), H);
          for (int64_t i = 0; i < running; ++i) {
            const int64_t b = id + i * count;
            tf_forward_candidate(p, buffer(id, 1) + i * H, buffer(id, 2) + i * H, h_prev_of(t, b),
                                 ws_of(t, b, i, id), p.output + (t * B + b) * H);
          }
        });
  }
  hidden_from_output(p);
}

template <typename scalar_t>
void backward_loop(const GruParams<scalar_t>& p) {
  const int64_t T = p.seq_len, B = p.batch, I = p.input_size, H = p.hidden_size, G = 3 * H;
  const int64_t W = kGruWorkspaceWidth * H;
  const bool tf = !p.linear_before_reset;
  if (p.grad_h_n != nullptr) {
    std::memcpy(p.grad_h0, p.grad_h_n, B * H * sizeof(scalar_t));
  } else {
    std::fill(p.grad_h0, p.grad_h0 + B * H, scalar_t(0));
  }
  const RowsSplitShape<scalar_t> shape{T, B, I, H, G, tf ? 2 * H : G, p.active_rows};
  const int64_t threads = rows_team_size(B, H, 3);
  const int64_t rows = (B + threads - 1) / threads;
  const auto h_prev_of = [&](int64_t t, int64_t b) {
    return t > 0 ? p.saved_output + ((t - 1) * B + b) * H : p.h0 + b * H;
  };
  const auto grad_out_of = [&](int64_t tb) { return p.grad_output ? p.grad_output + tb * H : nullptr; };
  const auto finished = [&](int64_t t, int64_t b) {  // rows not running: no gradient to the weights
    const int64_t tb = t * B + b;
    std::fill(p.grad_input_pre + tb * G, p.grad_input_pre + (tb + 1) * G, scalar_t(0));
    std::fill(p.grad_recurrent_pre + tb * G, p.grad_recurrent_pre + (tb + 1) * G, scalar_t(0));
  };
  if (!tf) {
    rows_split_backward(
        shape, threads, p.w_hh, p.grad_h0, p.grad_recurrent_pre, G,
        [&](int64_t t, int64_t b, int64_t, int64_t) {
          const int64_t tb = t * B + b;
          backward_row(p, p.saved_workspace + tb * W, h_prev_of(t, b), grad_out_of(tb), p.grad_h0 + b * H,
                       p.grad_input_pre + tb * G, p.grad_recurrent_pre + tb * G);
        },
        finished);
    input_and_weight_gradients(T, B, I, H, G, p.x, p.h0, p.saved_output, p.w_ih, p.grad_input_pre,
                               p.grad_recurrent_pre, p.grad_x, p.grad_w_ih, p.grad_w_hh);
  } else {
    const PooledScratch<scalar_t> d_rh(threads * rows * H);  // per thread: the gradient of its rows' r * h
    const scalar_t* w_hn = p.w_hh + 2 * H * H;
    rows_split_backward(
        shape, threads, p.w_hh, p.grad_h0, p.grad_recurrent_pre, G,
        [&](int64_t t, int64_t b, int64_t, int64_t) {
          const int64_t tb = t * B + b;
          tf_backward_gates(p, p.saved_workspace + tb * W, h_prev_of(t, b), grad_out_of(tb), p.grad_h0 + b * H,
                            p.grad_input_pre + tb * G, p.grad_recurrent_pre + tb * G);
        },
        finished,
        [&](int64_t t, int64_t id, int64_t count, int64_t running) {
          if (running == 0) return;
          scalar_t* d = d_rh.data() + id * rows * H;
          // d(r * h) = d_candidate . W_hn for the thread's rows (their candidate gradients: d_rec's block n).
          gemm<scalar_t>(false, false, running, H, H, 1, p.grad_recurrent_pre + (t * B + id) * G + 2 * H, count * G,
                         w_hn, H, 0, d, H);
          for (int64_t i = 0; i < running; ++i) {
            const int64_t b = id + i * count, tb = t * B + b;
            tf_backward_reset(p, p.saved_workspace + tb * W, h_prev_of(t, b), d + i * H, p.grad_h0 + b * H,
                              p.grad_input_pre + tb * G, p.grad_recurrent_pre + tb * G);
          }
        });
    // The inputs' and w_ih's gradients as for torch's convention; w_hh's blocks r, u read h_{t-1}, its block n
    // r * h (kept in the workspace).
    const int64_t rows_total = T * B;
    gemm<scalar_t>(false, false, rows_total, I, G, 1, p.grad_input_pre, G, p.w_ih, I, 0, p.grad_x, I);
    gemm<scalar_t>(true, false, G, I, rows_total, 1, p.grad_input_pre, G, p.x, I, 0, p.grad_w_ih, I);
    gemm<scalar_t>(true, false, 2 * H, H, B, 1, p.grad_recurrent_pre, G, p.h0, H, 0, p.grad_w_hh, H);
    if (T > 1) {
      gemm<scalar_t>(true, false, 2 * H, H, rows_total - B, 1, p.grad_recurrent_pre + B * G, G, p.saved_output, H, 1,
                     p.grad_w_hh, H);
    }
    gemm<scalar_t>(true, false, H, H, rows_total, 1, p.grad_recurrent_pre + 2 * H, G, p.saved_workspace + 3 * H, W,
                   0, p.grad_w_hh + 2 * H * H, H);
  }
  column_sums(p.grad_input_pre, T * B, G, p.grad_b_ih);
  column_sums(p.grad_recurrent_pre, T * B, G, p.grad_b_hh);
}

}  // namespace

extern const GruKernelTable gru_kernel_table = {{&forward_loop<float>, &backward_loop<float>},
                                                {&forward_loop<double>, &backward_loop<double>}};

}  // namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE
