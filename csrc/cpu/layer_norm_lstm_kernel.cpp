// CPU time loops of the layer-normalised LSTM (formulation and workspace: layer_norm_lstm_params.h), compiled once
// per instruction-set level like lstm_kernel.cpp.
//
// The norms need statistics over all gates of a row, which a team that splits the hidden units would have to
// reduce across threads at every step (a second barrier per step). The team splits the batch rows instead: each
// thread runs its own rows through every step -- their input projection, all 4H columns of their recurrent product,
// the norms and the gate math -- so that a row's statistics are one thread's, and no step waits for another thread.
#include "layer_norm_lstm_kernel.h"

#include <ATen/Parallel.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>

#include "../activations.h"
#include "buffer_pool.h"
#include "gemm.h"
#include "packed_gemm.h"
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
// LN(a + r) when joint); r: its recurrent product [4H] (then scratch); ws: its workspace row (a scratch row in inference); c: the
// carried cell (read, then written); h: where the new h goes.
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

// Team size: rows split, at least kMinRowsPerThread rows a thread, and a step worth a team (see time_loop.h).
inline int64_t row_team_size(int64_t batch, int64_t hidden_size) {
  const int64_t step_flops = 2 * batch * 4 * hidden_size * hidden_size;
  if (step_flops < kMinStepFlopsForTeam || at::in_parallel_region()) return 1;
  return std::clamp<int64_t>(batch / kMinRowsPerThread, 1, at::get_num_threads());
}

// Rows id, id + count, ... of the first `rows`: how many belong to thread id of count.
inline int64_t own_rows(int64_t rows, int64_t id, int64_t count) {
  return rows > id ? (rows - id + count - 1) / count : 0;
}

// Packs panels [q0, q1) of the columns of B into `panels` (each of k * kPanelColumns floats): thread id of count
// packs its share.
inline void pack_share(const float* b_kn, const float* b_nk, int64_t ldb, int64_t k, int64_t width, float* panels,
                       int64_t id, int64_t count) {
  const int64_t total = panel_count(width), per = (total + count - 1) / count;
  const int64_t q0 = std::min(total, id * per), q1 = std::min(total, q0 + per);
  if (q1 > q0) {
    pack_panels(b_kn, b_nk, ldb, k, q0 * kPanelColumns, std::min(width, q1 * kPanelColumns) - q0 * kPanelColumns,
                panels + q0 * k * kPanelColumns);
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
  const int64_t T = p.seq_len, B = p.batch, I = p.input_size, H = p.hidden_size, G = 4 * H;
  const int64_t W = p.workspace_width();
  const bool training = p.workspace != nullptr;
  const Slots slots(H, p.separate());
  std::memcpy(p.h_n, p.h0, B * H * sizeof(scalar_t));
  std::memcpy(p.c_n, p.c0, B * H * sizeof(scalar_t));

  // Training projects the inputs of all steps into the workspace rows' LN(a) slots, where they are normalised in
  // place; inference a chunk of ~1024 rows at a time into a scratch (see lstm_kernel.cpp's forward_loop).
  const int64_t chunk_steps = training ? T : std::clamp<int64_t>(1024 / B, 1, T);
  const PooledScratch<scalar_t> projection(training ? 0 : chunk_steps * B * G);
  scalar_t* proj = training ? p.workspace + slots.input_hat : projection.data();
  const int64_t proj_ld = training ? W : G;

  const int64_t threads = row_team_size(B, H);
  const int64_t rows_per_thread = (B + threads - 1) / threads;
  // Per thread: its rows' recurrent products [rows, 4H] and, in inference, one workspace row to compute in.
  const int64_t thread_scratch = rows_per_thread * G + (training ? 0 : W);
  const PooledScratch<scalar_t> scratch(threads * thread_scratch);
  const GemmWeight<scalar_t> w_ih =
      gemm_weight(p.w_ih, false, G, I, T * B, chunk_steps * rows_per_thread, /*want_w_t=*/true);
  // float: the recurrent product on W_hh^T packed in panels once per call (every thread reads all of them);
  // double and calls of a few steps: the GEMM engines.
  const bool packed = std::is_same_v<scalar_t, float> && T >= kMinStepsForPacking;
  const PooledScratch<float> panels(packed ? panel_count(G) * H * kPanelColumns : 0);
  const GemmWeight<scalar_t> w_hh = packed ? GemmWeight<scalar_t>{}
                                           : gemm_weight(p.w_hh, false, G, H, T * B, rows_per_thread, true);
  const ForwardRow<scalar_t> row = forward_row_for(p);

  run_team(threads, H, [&](int64_t, int64_t, const auto& sync) {
    const int64_t id = omp_get_thread_num(), count = omp_get_num_threads();
    scalar_t* rec = scratch.data() + id * thread_scratch;
    scalar_t* ws_scratch = rec + rows_per_thread * G;
    if constexpr (std::is_same_v<scalar_t, float>) {
      if (packed) pack_share(nullptr, p.w_hh, H, H, G, panels.data(), id, count);
    }
    sync();  // each thread packed a share; every thread reads them all
    for (int64_t t = 0; t < T; ++t) {
      const int64_t chunk_step = t % chunk_steps;
      if (chunk_step == 0) {
        project_own_rows(p.x, B, I, G, w_ih, t, std::min(T, t + chunk_steps), id, count, proj, proj_ld);
      }
      const int64_t running = own_rows(p.rows_at(t), id, count), all = own_rows(B, id, count);
      const scalar_t* h_prev = (t == 0 ? p.h0 : p.output + (t - 1) * B * H) + id * H;
      if (running > 0) {
        if constexpr (std::is_same_v<scalar_t, float>) {
          if (packed) packed_gemm(running, H, h_prev, count * H, panels.data(), G, /*accumulate=*/false, rec, G);
        }
        if (!packed) gemm_columns<scalar_t>(running, G, H, 0, G, h_prev, w_hh, 0, rec, G, count * H);
      }
      for (int64_t i = 0; i < running; ++i) {
        const int64_t b = id + i * count;
        scalar_t* ws = training ? p.workspace + (t * B + b) * W : ws_scratch;
        row(p, slots, proj + (chunk_step * B + b) * proj_ld, rec + i * G, ws,
            p.g_mask ? p.g_mask + (t * B + b) * H : nullptr, p.c_n + b * H, p.output + (t * B + b) * H);
      }
      for (int64_t i = running; i < all; ++i) {  // finished rows: zero output, a defined workspace
        const int64_t b = id + i * count;
        std::fill(p.output + (t * B + b) * H, p.output + (t * B + b + 1) * H, scalar_t(0));
        if (training) std::fill(p.workspace + (t * B + b) * W, p.workspace + (t * B + b + 1) * W, scalar_t(0));
      }
    }
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
  const int64_t T = p.seq_len, B = p.batch, I = p.input_size, H = p.hidden_size, G = 4 * H;
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
  const int64_t threads = row_team_size(B, H);
  const int64_t thread_scratch = 5 * H + kAccumulatorUnits * H;
  PooledScratch<scalar_t> scratch(threads * thread_scratch);
  std::fill(scratch.data(), scratch.data() + threads * thread_scratch, scalar_t(0));
  // float: dh on W_hh [4H, H] packed in panels of its H columns; double, few steps or rows: the engines.
  const bool packed = std::is_same_v<scalar_t, float> && T >= kMinStepsForPacking && B >= kMinRowsForPackedBackward;
  const PooledScratch<float> panels(packed ? panel_count(H) * G * kPanelColumns : 0);
  const BackwardRow<scalar_t> row = backward_row_for(p);
  scalar_t* const d_input = p.grad_input_pre;
  scalar_t* const d_recurrent = p.grad_recurrent_pre;

  run_team(threads, H, [&](int64_t, int64_t, const auto& sync) {
    const int64_t id = omp_get_thread_num(), count = omp_get_num_threads();
    scalar_t* own_scratch = scratch.data() + id * thread_scratch;
    scalar_t* acc = own_scratch + 5 * H;
    if constexpr (std::is_same_v<scalar_t, float>) {
      if (packed) pack_share(p.w_hh, nullptr, H, G, H, panels.data(), id, count);
    }
    sync();
    for (int64_t t = T - 1; t >= 0; --t) {
      const int64_t running = own_rows(p.rows_at(t), id, count), all = own_rows(B, id, count);
      for (int64_t i = 0; i < running; ++i) {
        const int64_t b = id + i * count, tb = t * B + b;
        const scalar_t* c_prev = t > 0 ? p.saved_workspace + ((t - 1) * B + b) * W + slots.cell : p.c0 + b * H;
        row(p, slots, p.saved_workspace + tb * W, c_prev, p.g_mask ? p.g_mask + tb * H : nullptr,
            p.grad_output ? p.grad_output + tb * H : nullptr, p.grad_h0 + b * H, p.grad_c0 + b * H,
            d_input + tb * G, d_recurrent + tb * G, own_scratch, acc);
      }
      for (int64_t i = running; i < all; ++i) {  // rows not running: no gradient to the weights
        const int64_t tb = t * B + id + i * count;
        std::fill(d_input + tb * G, d_input + (tb + 1) * G, scalar_t(0));
        std::fill(d_recurrent + tb * G, d_recurrent + (tb + 1) * G, scalar_t(0));
      }
      if (running == 0) continue;
      // dh_{t-1} of the running rows = d_r . W_hh (the output gradient of t-1 is added when t-1 is processed).
      const scalar_t* d_r = d_recurrent + (t * B + id) * G;
      if constexpr (std::is_same_v<scalar_t, float>) {
        if (packed) packed_gemm(running, G, d_r, count * G, panels.data(), H, false, p.grad_h0 + id * H, count * H);
      }
      if (!packed) {
        gemm<scalar_t>(false, false, running, H, G, 1, d_r, count * G, p.w_hh, H, 0, p.grad_h0 + id * H, count * H);
      }
    }
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
  const int64_t rows_total = T * B;
  gemm<scalar_t>(false, false, rows_total, I, G, 1, d_input, G, p.w_ih, I, 0, p.grad_x, I);
  gemm<scalar_t>(true, false, G, I, rows_total, 1, d_input, G, p.x, I, 0, p.grad_w_ih, I);
  gemm<scalar_t>(true, false, G, H, B, 1, d_recurrent, G, p.h0, H, 0, p.grad_w_hh, H);
  if (T > 1) {
    gemm<scalar_t>(true, false, G, H, rows_total - B, 1, d_recurrent + B * G, G, p.saved_output, H, 1, p.grad_w_hh,
                   H);
  }
}

}  // namespace

extern const LayerNormKernelTable layer_norm_kernel_table = {{&forward_loop<float>, &backward_loop<float>},
                                                             {&forward_loop<double>, &backward_loop<double>}};

}  // namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE
