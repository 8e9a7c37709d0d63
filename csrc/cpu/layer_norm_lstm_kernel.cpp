// CPU time loops of the layer-normalised LSTM (formulation and workspace: layer_norm_lstm_params.h), compiled once
// per instruction-set level like lstm_kernel.cpp.
//
// The norms need statistics over all gates of a row, which a team that splits the hidden units would have to
// reduce across threads at every step (a second barrier per step). The loops split the batch rows instead
// (rows_split_loop.h), so that a row's statistics are one thread's.
#include "layer_norm_lstm_kernel.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "../activations.h"
#include "bf16_tiles.h"
#include "buffer_pool.h"
#include "rows_split_loop.h"
#include "time_loop.h"

namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE {
namespace {

template <typename scalar_t>
using Params = LayerNormLstmParams<scalar_t>;

// Reductions over a row in kLanes partial sums: a loop the compiler vectorises without reassociating the sum
// (which it may not do for floating point on its own).
constexpr int64_t kLanes = 16;

template <typename scalar_t>
inline scalar_t lane_sum(const scalar_t* __restrict__ v, int64_t n) {
  scalar_t partial[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) partial[l] += v[j + l];
  }
  scalar_t sum = 0;
  for (; j < n; ++j) sum += v[j];
  for (int64_t l = 0; l < kLanes; ++l) sum += partial[l];
  return sum;
}

template <typename scalar_t>
inline scalar_t lane_dot(const scalar_t* __restrict__ a, const scalar_t* __restrict__ b, int64_t n) {
  scalar_t partial[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) partial[l] += a[j + l] * b[j + l];
  }
  scalar_t sum = 0;
  for (; j < n; ++j) sum += a[j] * b[j];
  for (int64_t l = 0; l < kLanes; ++l) sum += partial[l];
  return sum;
}

// v[0, n) -> (v - mean) / sqrt(var + eps) into out (may be v); returns 1 / sqrt(var + eps). Two passes (mean, then
// the centred squares): the one-pass E[v^2] - E[v]^2 cancels when the mean is large against the spread.
template <typename scalar_t>
inline scalar_t normalize(const scalar_t* v, int64_t n, scalar_t eps, scalar_t* out) {
  const scalar_t mean = lane_sum(v, n) / scalar_t(n);
  scalar_t partial[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) {
      const scalar_t d = v[j + l] - mean;
      partial[l] += d * d;
    }
  }
  scalar_t squares = 0;
  for (; j < n; ++j) squares += (v[j] - mean) * (v[j] - mean);
  for (int64_t l = 0; l < kLanes; ++l) squares += partial[l];
  const scalar_t rstd = scalar_t(1) / std::sqrt(squares / scalar_t(n) + eps);
  for (j = 0; j < n; ++j) out[j] = (v[j] - mean) * rstd;
  return rstd;
}

// The backward of y = v_hat * gain (+ shift), v_hat = normalize(v): d_v from d_y, adding d_y * v_hat to grad_gain.
// d_v = rstd * (dz - mean(dz) - v_hat * mean(dz * v_hat)), dz = d_y * gain. d_v may not alias d_y.
template <typename scalar_t>
inline void normalize_backward(int64_t n, const scalar_t* __restrict__ d_y, const scalar_t* __restrict__ gain,
                               const scalar_t* __restrict__ v_hat, scalar_t rstd, scalar_t* __restrict__ grad_gain,
                               scalar_t* __restrict__ d_v) {
  for (int64_t j = 0; j < n; ++j) {
    d_v[j] = d_y[j] * gain[j];
    grad_gain[j] += d_y[j] * v_hat[j];
  }
  const scalar_t mean_dz = lane_sum(d_v, n) / scalar_t(n);
  const scalar_t mean_dz_v = lane_dot(d_v, v_hat, n) / scalar_t(n);
  for (int64_t j = 0; j < n; ++j) d_v[j] = rstd * (d_v[j] - mean_dz - v_hat[j] * mean_dz_v);
}

// Offsets in a workspace row (layer_norm_lstm_params.h).
struct Slots {
  int64_t cell, cell_hat, input_hat, recurrent_hat, stats;
  explicit Slots(int64_t H, bool separate)
      : cell(4 * H), cell_hat(5 * H), input_hat(6 * H), recurrent_hat(10 * H),
        stats((separate ? kLayerNormUnitsSeparate : kLayerNormUnitsJoint) * H) {}
};

// One row of one step. a: the row's input projection W_ih x [4H] (replaced by its normalised values: LN(a), or
// LN(a + r) when joint); r: its recurrent product [4H] (then scratch); ws: its workspace row (a scratch row in
// inference); c: the carried cell (read, then written); h: where the new h goes.
template <typename scalar_t, bool kSeparate, bool kMask>
void forward_row(const Params<scalar_t>& p, const Slots& slots, scalar_t* __restrict__ a,
                 scalar_t* __restrict__ r, scalar_t* __restrict__ ws, const scalar_t* __restrict__ mask,
                 scalar_t* __restrict__ c, scalar_t* __restrict__ h) {
  const int64_t H = p.hidden_size, G = 4 * H, groups = p.groups, group = G / groups;
  const scalar_t eps = p.eps, forget_bias = p.forget_bias;
  scalar_t* __restrict__ r_hat = ws + slots.recurrent_hat;
  scalar_t* __restrict__ stats = ws + slots.stats;
  std::fill(stats, stats + kLayerNormStats, scalar_t(0));  // the unused slots too: the workspace is an op output
  if constexpr (kSeparate) {
    for (int64_t k = 0; k < groups; ++k) {
      stats[k] = normalize(a + k * group, group, eps, a + k * group);
      stats[groups + k] = normalize(r + k * group, group, eps, r_hat + k * group);
    }
  } else {
    for (int64_t j = 0; j < G; ++j) a[j] += r[j];
    for (int64_t k = 0; k < groups; ++k) stats[k] = normalize(a + k * group, group, eps, a + k * group);
  }
  // The pre-activations replace r (no longer needed): one pass over the norms' streams, so that the gate loop below
  // reads one stream (with all of them in it, GCC's alias checks gave up and the loop stayed scalar).
  const scalar_t* __restrict__ gain_a = p.ln_ih_weight;
  const scalar_t* __restrict__ gain_r = p.ln_hh_weight;
  const scalar_t* __restrict__ bias = p.bias;
  scalar_t* __restrict__ pre = r;
  for (int64_t k = 0; k < G; ++k) {
    if constexpr (kSeparate) {
      pre[k] = a[k] * gain_a[k] + r_hat[k] * gain_r[k] + bias[k];
    } else {
      pre[k] = a[k] * gain_a[k] + bias[k];
    }
  }
  scalar_t* __restrict__ cell_hat = ws + slots.cell_hat;
  for (int64_t j = 0; j < H; ++j) {
    const scalar_t i = sigmoid(pre[j]), f = sigmoid(pre[H + j] + forget_bias), g = tanh_act(pre[2 * H + j]),
                   o = sigmoid(pre[3 * H + j]);
    ws[j] = i;
    ws[H + j] = f;
    ws[2 * H + j] = g;
    ws[3 * H + j] = o;
    cell_hat[j] = f * c[j] + i * (kMask ? g * mask[j] : g);  // c_raw, normalised below
  }
  const scalar_t* __restrict__ cell_gain = p.ln_cell_weight;
  const scalar_t* __restrict__ cell_shift = p.ln_cell_bias;
  const bool carry_normalized = p.carry_normalized_cell;
  scalar_t* __restrict__ cell = ws + slots.cell;
  for (int64_t j = 0; j < H; ++j) c[j] = cell_hat[j];
  stats[2 * groups] = normalize(c, H, eps, cell_hat);
  for (int64_t j = 0; j < H; ++j) {
    const scalar_t n = cell_hat[j] * cell_gain[j] + cell_shift[j];
    h[j] = ws[3 * H + j] * tanh_act(n);
    c[j] = carry_normalized ? n : c[j];
    cell[j] = c[j];
  }
}

// Per-thread sums of the backward over its rows: the gradients of bias, ln_ih_weight, ln_hh_weight [4H each],
// ln_cell_weight and ln_cell_bias [H each].
constexpr int64_t kAccumulatorUnits = 14;

// One row of one step backward. dh: the gradient arriving at h from the next step (grad_out: from the output, or
// null); dc: at the carried c from the next step, replaced by that of c_prev. Writes d_a and d_r (the gradients of
// the row's W_ih x and W_hh h; the same buffer when joint). scratch: 5H.
template <typename scalar_t, bool kSeparate, bool kMask>
void backward_row(const Params<scalar_t>& p, const Slots& slots, const scalar_t* __restrict__ ws,
                  const scalar_t* __restrict__ c_prev, const scalar_t* __restrict__ mask,
                  const scalar_t* __restrict__ grad_out, const scalar_t* __restrict__ dh, scalar_t* __restrict__ dc,
                  scalar_t* __restrict__ d_a, scalar_t* __restrict__ d_r, scalar_t* __restrict__ scratch,
                  scalar_t* __restrict__ acc) {
  const int64_t H = p.hidden_size, G = 4 * H, groups = p.groups, group = G / groups;
  const scalar_t* __restrict__ cell_hat = ws + slots.cell_hat;
  const scalar_t* __restrict__ stats = ws + slots.stats;
  const scalar_t* __restrict__ cell_gain = p.ln_cell_weight;
  const scalar_t* __restrict__ cell_shift = p.ln_cell_bias;
  const bool carry_normalized = p.carry_normalized_cell;
  scalar_t* __restrict__ d_pre = scratch;   // [4H]
  scalar_t* __restrict__ d_n = scratch + G;  // [H]
  scalar_t* __restrict__ acc_bias = acc;
  scalar_t* __restrict__ acc_ih = acc + G;
  scalar_t* __restrict__ acc_hh = acc + 2 * G;
  scalar_t* __restrict__ acc_cell_weight = acc + 3 * G;
  scalar_t* __restrict__ acc_cell_bias = acc + 3 * G + H;
  for (int64_t j = 0; j < H; ++j) {
    const scalar_t o = ws[3 * H + j];
    const scalar_t tanh_n = tanh_act(cell_hat[j] * cell_gain[j] + cell_shift[j]);
    const scalar_t d_h = grad_out != nullptr ? dh[j] + grad_out[j] : dh[j];
    d_pre[3 * H + j] = d_h * tanh_n * o * (scalar_t(1) - o);
    const scalar_t dn = d_h * o * (scalar_t(1) - tanh_n * tanh_n) + (carry_normalized ? dc[j] : scalar_t(0));
    d_n[j] = dn;
    acc_cell_bias[j] += dn;
  }
  // The gradient of c_raw through the cell's norm, in d_pre's first H values until the loop below replaces each
  // with the input gate's.
  normalize_backward(H, d_n, cell_gain, cell_hat, stats[2 * groups], acc_cell_weight, d_pre);
  for (int64_t j = 0; j < H; ++j) {
    const scalar_t d_c = d_pre[j] + (carry_normalized ? scalar_t(0) : dc[j]);
    const scalar_t i = ws[j], f = ws[H + j], g = ws[2 * H + j];
    const scalar_t m = kMask ? mask[j] : scalar_t(1);
    d_pre[j] = d_c * g * m * i * (scalar_t(1) - i);
    d_pre[H + j] = d_c * c_prev[j] * f * (scalar_t(1) - f);
    d_pre[2 * H + j] = d_c * i * m * (scalar_t(1) - g * g);
    dc[j] = d_c * f;
  }
  for (int64_t k = 0; k < G; ++k) acc_bias[k] += d_pre[k];
  const scalar_t* __restrict__ input_hat = ws + slots.input_hat;
  for (int64_t k = 0; k < groups; ++k) {
    const int64_t o = k * group;
    normalize_backward(group, d_pre + o, p.ln_ih_weight + o, input_hat + o, stats[k], acc_ih + o, d_a + o);
    if constexpr (kSeparate) {
      normalize_backward(group, d_pre + o, p.ln_hh_weight + o, ws + slots.recurrent_hat + o, stats[groups + k],
                         acc_hh + o, d_r + o);
    }
  }
}

template <typename scalar_t>
using ForwardRow = void (*)(const Params<scalar_t>&, const Slots&, scalar_t*, scalar_t*, scalar_t*,
                            const scalar_t*, scalar_t*, scalar_t*);

template <typename scalar_t>
ForwardRow<scalar_t> forward_row_for(const Params<scalar_t>& p) {
  if (p.separate()) {
    return p.g_mask ? forward_row<scalar_t, true, true> : forward_row<scalar_t, true, false>;
  }
  return p.g_mask ? forward_row<scalar_t, false, true> : forward_row<scalar_t, false, false>;
}

template <typename scalar_t>
void forward_loop(const Params<scalar_t>& p) {
  const int64_t B = p.batch, H = p.hidden_size, W = p.workspace_width();
  const bool training = p.workspace != nullptr;
  const Slots slots(H, p.separate());
  std::memcpy(p.h_n, p.h0, B * H * sizeof(scalar_t));
  std::memcpy(p.c_n, p.c0, B * H * sizeof(scalar_t));
  const RowsSplitShape<scalar_t> shape{p.seq_len, B, p.input_size, H, 4 * H, 4 * H, p.active_rows};
  const int64_t threads = rows_team_size(B, H, 4);
  // Training projects the inputs into the workspace rows' LN(a) slots, where they are normalised in place; inference
  // computes each row in a scratch workspace row of its thread.
  const PooledScratch<scalar_t> scratch_rows(training ? 0 : threads * W);
  const ForwardRow<scalar_t> row = forward_row_for(p);
  rows_split_forward(
      shape, threads, p.x, p.h0, p.w_ih, p.w_hh, p.output, training ? p.workspace + slots.input_hat : nullptr, W,
      [&](int64_t t, int64_t b, int64_t, scalar_t* a, scalar_t* rec, int64_t id) {
        scalar_t* ws = training ? p.workspace + (t * B + b) * W : scratch_rows.data() + id * W;
        row(p, slots, a, rec, ws, p.g_mask ? p.g_mask + (t * B + b) * H : nullptr, p.c_n + b * H,
            p.output + (t * B + b) * H);
      },
      [&](int64_t t, int64_t b) {  // finished rows: zero output, a defined workspace
        std::fill(p.output + (t * B + b) * H, p.output + (t * B + b + 1) * H, scalar_t(0));
        if (training) std::fill(p.workspace + (t * B + b) * W, p.workspace + (t * B + b + 1) * W, scalar_t(0));
      });
  hidden_from_output(p);
}

template <typename scalar_t>
using BackwardRow = void (*)(const Params<scalar_t>&, const Slots&, const scalar_t*, const scalar_t*,
                             const scalar_t*, const scalar_t*, const scalar_t*, scalar_t*, scalar_t*, scalar_t*,
                             scalar_t*, scalar_t*);

template <typename scalar_t>
BackwardRow<scalar_t> backward_row_for(const Params<scalar_t>& p) {
  if (p.separate()) {
    return p.g_mask ? backward_row<scalar_t, true, true> : backward_row<scalar_t, true, false>;
  }
  return p.g_mask ? backward_row<scalar_t, false, true> : backward_row<scalar_t, false, false>;
}

template <typename scalar_t>
void backward_loop(const Params<scalar_t>& p) {
  const int64_t T = p.seq_len, B = p.batch, H = p.hidden_size, G = 4 * H;
  const int64_t W = p.workspace_width();
  const Slots slots(H, p.separate());
  // grad_h0 / grad_c0 carry the running gradients of h and c; rows not yet started hold the final state's.
  for (auto [out, in] : {std::pair{p.grad_h0, p.grad_h_n}, std::pair{p.grad_c0, p.grad_c_n}}) {
    if (in != nullptr) {
      std::memcpy(out, in, B * H * sizeof(scalar_t));
    } else {
      std::fill(out, out + B * H, scalar_t(0));
    }
  }
  const RowsSplitShape<scalar_t> shape{T, B, p.input_size, H, G, G, p.active_rows};
  const int64_t threads = rows_team_size(B, H, 4);
  // Per thread: 5H of row scratch, then its sums of the gains' and shifts' gradients.
  const int64_t thread_scratch = 5 * H + kAccumulatorUnits * H;
  PooledScratch<scalar_t> scratch(threads * thread_scratch);
  std::fill(scratch.data(), scratch.data() + threads * thread_scratch, scalar_t(0));
  const BackwardRow<scalar_t> row = backward_row_for(p);
  scalar_t* const d_input = p.grad_input_pre;
  scalar_t* const d_recurrent = p.grad_recurrent_pre;
  rows_split_backward(
      shape, threads, p.w_hh, p.grad_h0, d_recurrent, G,
      [&](int64_t t, int64_t b, int64_t, int64_t id) {
        const int64_t tb = t * B + b;
        scalar_t* own_scratch = scratch.data() + id * thread_scratch;
        const scalar_t* c_prev = t > 0 ? p.saved_workspace + ((t - 1) * B + b) * W + slots.cell : p.c0 + b * H;
        row(p, slots, p.saved_workspace + tb * W, c_prev, p.g_mask ? p.g_mask + tb * H : nullptr,
            p.grad_output ? p.grad_output + tb * H : nullptr, p.grad_h0 + b * H, p.grad_c0 + b * H,
            d_input + tb * G, d_recurrent + tb * G, own_scratch, own_scratch + 5 * H);
        std::fill(p.grad_h0 + b * H, p.grad_h0 + (b + 1) * H, scalar_t(0));  // h_{t-1} reaches h only via W_hh
      },
      [&](int64_t t, int64_t b) {  // rows not running: no gradient to the weights
        const int64_t tb = t * B + b;
        std::fill(d_input + tb * G, d_input + (tb + 1) * G, scalar_t(0));
        std::fill(d_recurrent + tb * G, d_recurrent + (tb + 1) * G, scalar_t(0));
      });

  // The per-thread sums, and the input and weight gradients as GEMMs over all steps.
  const int64_t sums[][2] = {{0, G}, {G, G}, {2 * G, G}, {3 * G, H}, {3 * G + H, H}};
  scalar_t* targets[] = {p.grad_bias, p.grad_ln_ih_weight, p.grad_ln_hh_weight, p.grad_ln_cell_weight,
                         p.grad_ln_cell_bias};
  for (int k = 0; k < 5; ++k) {
    if (targets[k] == nullptr) continue;
    std::fill(targets[k], targets[k] + sums[k][1], scalar_t(0));
    for (int64_t thread = 0; thread < threads; ++thread) {
      const scalar_t* acc = scratch.data() + thread * thread_scratch + 5 * H + sums[k][0];
      for (int64_t j = 0; j < sums[k][1]; ++j) targets[k][j] += acc[j];
    }
  }
  input_and_weight_gradients(T, B, p.input_size, H, G, p.x, p.h0, p.saved_output, p.w_ih, d_input, d_recurrent,
                             p.grad_x, p.grad_w_ih, p.grad_w_hh);
}

void forward_bf16(const LayerNormBf16Params& p) {
  const Params<float>& q = p.cell;
  const int64_t T = q.seq_len, B = q.batch, I = q.input_size, H = q.hidden_size, G = 4 * H;
  const Slots slots(H, q.separate());
  const ForwardRow<float> row = forward_row_for(q);
  const int64_t threads = rows_team_size(B, H, 4), rows_per_thread = (B + threads - 1) / threads;
  run_team(threads, H, [&](int64_t, int64_t, const auto&) {
    const int64_t b0 = std::min(B, omp_get_thread_num() * rows_per_thread);
    const int64_t rows = std::min(B, b0 + rows_per_thread) - b0;
    if (rows == 0) return;
    PooledScratch<float> a(rows * G), r(rows * G), ws(q.workspace_width()), h(H);
    for (int64_t t = 0; t < T; ++t) {
      const c10::BFloat16* h_prev = t == 0 ? p.h0 : p.output + (t - 1) * B * H;
      bf16_gemm_tiles(rows, G, I, p.x + (t * B + b0) * I, I, p.w_ih_packed, 0, a.data(), G, false);
      bf16_gemm_tiles(rows, G, H, h_prev + b0 * H, H, p.w_hh_packed, 0, r.data(), G, false);
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t b = b0 + i;
        row(q, slots, a.data() + i * G, r.data() + i * G, ws.data(), nullptr, p.c + b * H, h.data());
        auto* out = reinterpret_cast<uint16_t*>(p.output + (t * B + b) * H);
        for (int64_t j = 0; j < H; ++j) out[j] = bfloat16_bits(h.data()[j]);
      }
    }
    at::native::cpublas::brgemm_release();
  });
}

}  // namespace

extern const LayerNormKernelTable layer_norm_kernel_table = {{&forward_loop<float>, &backward_loop<float>},
                                                             {&forward_loop<double>, &backward_loop<double>},
                                                             &forward_bf16};

}  // namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE
