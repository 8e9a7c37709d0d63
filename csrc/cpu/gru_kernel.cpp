// CPU time loops of the GRU (gru_params.h), compiled once per instruction-set level like lstm_kernel.cpp, on the
// rows-split loops (rows_split_loop.h): the candidate reads r times its own recurrent product, so each row's step
// needs all 3H columns of that row's product, which a thread owning the row computes itself.
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
  const bool training = p.workspace != nullptr;
  std::memcpy(p.h_n, p.h0, B * H * sizeof(scalar_t));
  const RowsSplitShape<scalar_t> shape{p.seq_len, B, p.input_size, H, 3, p.active_rows};
  const int64_t threads = rows_team_size(B, H, 3);
  const PooledScratch<scalar_t> scratch_rows(training ? 0 : threads * W);
  rows_split_forward(
      shape, threads, p.x, p.h0, p.w_ih, p.w_hh, p.output, static_cast<scalar_t*>(nullptr), 0,
      [&](int64_t t, int64_t b, const scalar_t* a, const scalar_t* rec, int64_t id) {
        scalar_t* ws = training ? p.workspace + (t * B + b) * W : scratch_rows.data() + id * W;
        const scalar_t* h_prev = t == 0 ? p.h0 + b * H : p.output + ((t - 1) * B + b) * H;
        forward_row(p, a, rec, h_prev, ws, p.output + (t * B + b) * H);
      },
      [&](int64_t t, int64_t b) {  // finished rows: zero output, a defined workspace
        std::fill(p.output + (t * B + b) * H, p.output + (t * B + b + 1) * H, scalar_t(0));
        if (training) std::fill(p.workspace + (t * B + b) * W, p.workspace + (t * B + b + 1) * W, scalar_t(0));
      });
  hidden_from_output(p);
}

template <typename scalar_t>
void backward_loop(const GruParams<scalar_t>& p) {
  const int64_t T = p.seq_len, B = p.batch, H = p.hidden_size, G = 3 * H, W = kGruWorkspaceWidth * H;
  if (p.grad_h_n != nullptr) {
    std::memcpy(p.grad_h0, p.grad_h_n, B * H * sizeof(scalar_t));
  } else {
    std::fill(p.grad_h0, p.grad_h0 + B * H, scalar_t(0));
  }
  const RowsSplitShape<scalar_t> shape{T, B, p.input_size, H, 3, p.active_rows};
  rows_split_backward(
      shape, rows_team_size(B, H, 3), p.w_hh, p.grad_h0, p.grad_recurrent_pre,
      [&](int64_t t, int64_t b, int64_t) {
        const int64_t tb = t * B + b;
        const scalar_t* h_prev = t > 0 ? p.saved_output + ((t - 1) * B + b) * H : p.h0 + b * H;
        backward_row(p, p.saved_workspace + tb * W, h_prev, p.grad_output ? p.grad_output + tb * H : nullptr,
                     p.grad_h0 + b * H, p.grad_input_pre + tb * G, p.grad_recurrent_pre + tb * G);
      },
      [&](int64_t t, int64_t b) {  // rows not running: no gradient to the weights
        const int64_t tb = t * B + b;
        std::fill(p.grad_input_pre + tb * G, p.grad_input_pre + (tb + 1) * G, scalar_t(0));
        std::fill(p.grad_recurrent_pre + tb * G, p.grad_recurrent_pre + (tb + 1) * G, scalar_t(0));
      });
  input_and_weight_gradients(T, B, p.input_size, H, G, p.x, p.h0, p.saved_output, p.w_ih, p.grad_input_pre,
                             p.grad_recurrent_pre, p.grad_x, p.grad_w_ih, p.grad_w_hh);
  column_sums(p.grad_input_pre, T * B, G, p.grad_b_ih);
  column_sums(p.grad_recurrent_pre, T * B, G, p.grad_b_hh);
}

}  // namespace

extern const GruKernelTable gru_kernel_table = {{&forward_loop<float>, &backward_loop<float>},
                                                {&forward_loop<double>, &backward_loop<double>}};

}  // namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE
