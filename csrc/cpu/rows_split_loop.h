// The time loops of cells whose step needs whole rows at once (a layer norm over all gates of a row; a GRU, whose
// candidate reads the reset gate times its recurrent product): a team that splits the batch rows instead of the
// hidden units. Each thread runs its own rows through every step -- their input projection, all G = gates * H columns
// of their recurrent product and the cell's row function -- so no step waits for another thread and no row's
// values cross between cores. (ONNX Runtime's CPU LSTM threads this way too.) A cell brings its gate count and its
// row functions; compiled per instruction-set level like time_loop.h.
//
// Weights in torch's layout: w_ih [G, I], w_hh [G, H]. Rows sorted longest first (the running rows of step t are
// the prefix [0, rows_at(t))); thread id of count owns rows id, id + count, ... (interleaved: with lengths, a block
// split would leave the threads of the short rows idle).
#pragma once

#include <ATen/Parallel.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "buffer_pool.h"
#include "gemm.h"
#include "packed_gemm.h"
#include "time_loop.h"

namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE {

// Team size: at least kMinRowsPerThread rows a thread, and a step worth a team (time_loop.h).
inline int64_t rows_team_size(int64_t batch, int64_t hidden_size, int64_t gates) {
  const int64_t step_flops = 2 * batch * gates * hidden_size * hidden_size;
  if (step_flops < kMinStepFlopsForTeam || at::in_parallel_region()) return 1;
  return std::clamp<int64_t>(batch / kMinRowsPerThread, 1, at::get_num_threads());
}

// Of the first `rows` rows, how many thread id of count owns.
inline int64_t own_rows(int64_t rows, int64_t id, int64_t count) {
  return rows > id ? (rows - id + count - 1) / count : 0;
}

// Thread id of count packs its share of the panels of B's `width` columns (each panel k * kPanelColumns floats).
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
struct RowsSplitShape {
  int64_t seq_len, batch, input_size, hidden_size;
  int64_t input_columns;      // of the input projection: gates * H
  int64_t recurrent_columns;  // of the recurrent product, the first rows of w_hh: gates * H, or fewer where a cell
                              // multiplies the rest later in its step (TF's GRU: (r * h) . W_hc, see after_rows)
  const int64_t* active_rows;  // [T] or nullptr
  int64_t rows_at(int64_t t) const { return active_rows ? active_rows[t] : batch; }
};

// The default after_rows: nothing between a step's rows and the next step.
struct NoStepEnd {
  void operator()(int64_t, int64_t, int64_t, int64_t) const {}
};

// The forward loop. x [T, B, I]; h0 [B, H]; output [T, B, H] (the row function writes h there; h_{t-1} is read from
// it). projection: where the input projection of every step goes (row (t, b) at projection + (t * B + b) * ld, e.g.
// a workspace slot when training), or nullptr: a pooled scratch of a chunk of ~1024 rows' steps at a time.
//   row(t, b, i, a, rec, id): b = the row, i = its index among the thread's rows, a = its projection [input_columns]
//                             (x . w_ih^T, no bias), rec = its recurrent product [recurrent_columns] (h_{t-1} .
//                             w_hh^T, no bias; the row function may overwrite both), id = the thread;
//   finished(t, b): a row past its length;
//   after_rows(t, id, count, running): after thread id's running rows of step t (a second product of the step).
// threads = rows_team_size(...) (the caller sizes per-thread scratch by it).
template <typename scalar_t, typename Row, typename Finished, typename AfterRows = NoStepEnd>
void rows_split_forward(const RowsSplitShape<scalar_t>& s, int64_t threads, const scalar_t* x, const scalar_t* h0,
                        const scalar_t* w_ih, const scalar_t* w_hh, scalar_t* output, scalar_t* projection,
                        int64_t projection_ld, const Row& row, const Finished& finished,
                        const AfterRows& after_rows = {}) {
  const int64_t T = s.seq_len, B = s.batch, I = s.input_size, H = s.hidden_size;
  const int64_t G = s.input_columns, R = s.recurrent_columns;
  const int64_t chunk_steps = projection != nullptr ? T : std::clamp<int64_t>(1024 / B, 1, T);
  const PooledScratch<scalar_t> chunk(projection != nullptr ? 0 : chunk_steps * B * G);
  scalar_t* proj = projection != nullptr ? projection : chunk.data();
  const int64_t proj_ld = projection != nullptr ? projection_ld : G;
  const int64_t rows_per_thread = (B + threads - 1) / threads;
  const PooledScratch<scalar_t> products(threads * rows_per_thread * R);
  const GemmWeight<scalar_t> w_in = gemm_weight(w_ih, false, G, I, T * B, chunk_steps * rows_per_thread, true);
  // float: the recurrent product on w_hh^T packed in panels once per call (every thread reads all of them); double
  // and calls of a few steps: the GEMM engines.
  const bool packed = std::is_same_v<scalar_t, float> && T >= kMinStepsForPacking;
  const PooledScratch<float> panels(packed ? panel_count(R) * H * kPanelColumns : 0);
  const GemmWeight<scalar_t> w_rec =
      packed ? GemmWeight<scalar_t>{} : gemm_weight(w_hh, false, R, H, T * B, rows_per_thread, true);
  run_team(threads, H, [&](int64_t, int64_t, const auto& sync) {
    const int64_t id = omp_get_thread_num(), count = omp_get_num_threads();
    scalar_t* rec = products.data() + id * rows_per_thread * R;
    if constexpr (std::is_same_v<scalar_t, float>) {
      if (packed) pack_share(nullptr, w_hh, H, H, R, panels.data(), id, count);
    }
    sync();  // each thread packed a share; every thread reads them all
    for (int64_t t = 0; t < T; ++t) {
      const int64_t chunk_step = t % chunk_steps;
      if (chunk_step == 0) {
        project_own_rows(x, B, I, G, w_in, t, std::min(T, t + chunk_steps), id, count, proj, proj_ld);
      }
      const int64_t running = own_rows(s.rows_at(t), id, count), all = own_rows(B, id, count);
      const scalar_t* h_prev = (t == 0 ? h0 : output + (t - 1) * B * H) + id * H;
      if (running > 0) {
        if constexpr (std::is_same_v<scalar_t, float>) {
          if (packed) packed_gemm(running, H, h_prev, count * H, panels.data(), R, /*accumulate=*/false, rec, R);
        }
        if (!packed) gemm_columns<scalar_t>(running, R, H, 0, R, h_prev, w_rec, 0, rec, R, count * H);
      }
      for (int64_t i = 0; i < running; ++i) {
        const int64_t b = id + i * count;
        row(t, b, i, proj + (chunk_step * B + b) * proj_ld, rec + i * R, id);
      }
      after_rows(t, id, count, running);
      for (int64_t i = running; i < all; ++i) finished(t, id + i * count);
    }
  });
}

// The backward loop, steps T-1 .. 0. grad_h [B, H]: the running gradient of h (in: the final state's). d_rec:
// [T, B, ld] rows whose first recurrent_columns values are the gradient of the recurrent product.
//   row(t, b, i, id): reads grad_h[b] (and whatever the cell keeps), writes the row's gradient of its recurrent
//                     product into d_rec (row (t, b) at d_rec + (t * B + b) * ld) and leaves in grad_h[b] the part
//                     of h_{t-1}'s gradient that does not pass through w_hh (0 for the LSTMs, dh * z for the GRU);
//   finished(t, b): a row past its length at t (its d_rec row must be zero for the weight gradients);
//   after_rows(t, id, count, running): after thread id's running rows, before the product below.
// After each step grad_h[b] += d_rec[t, b] . w_hh for the running rows.
template <typename scalar_t, typename Row, typename Finished, typename AfterRows = NoStepEnd>
void rows_split_backward(const RowsSplitShape<scalar_t>& s, int64_t threads, const scalar_t* w_hh, scalar_t* grad_h,
                         const scalar_t* d_rec, int64_t ld, const Row& row, const Finished& finished,
                         const AfterRows& after_rows = {}) {
  const int64_t T = s.seq_len, B = s.batch, H = s.hidden_size, R = s.recurrent_columns;
  // float: w_hh [R, H] packed in panels of its H columns; double, few steps or rows: the engines.
  const bool packed = std::is_same_v<scalar_t, float> && T >= kMinStepsForPacking && B >= kMinRowsForPackedBackward;
  const PooledScratch<float> panels(packed ? panel_count(H) * R * kPanelColumns : 0);
  run_team(threads, H, [&](int64_t, int64_t, const auto& sync) {
    const int64_t id = omp_get_thread_num(), count = omp_get_num_threads();
    if constexpr (std::is_same_v<scalar_t, float>) {
      if (packed) pack_share(w_hh, nullptr, H, R, H, panels.data(), id, count);
    }
    sync();
    for (int64_t t = T - 1; t >= 0; --t) {
      const int64_t running = own_rows(s.rows_at(t), id, count), all = own_rows(B, id, count);
      for (int64_t i = 0; i < running; ++i) row(t, id + i * count, i, id);
      after_rows(t, id, count, running);
      for (int64_t i = running; i < all; ++i) finished(t, id + i * count);
      if (running == 0) continue;
      const scalar_t* d = d_rec + (t * B + id) * ld;
      if constexpr (std::is_same_v<scalar_t, float>) {
        if (packed) packed_gemm(running, R, d, count * ld, panels.data(), H, /*accumulate=*/true, grad_h + id * H,
                                count * H);
      }
      if (!packed) {
        gemm<scalar_t>(false, false, running, H, R, 1, d, count * ld, w_hh, H, 1, grad_h + id * H, count * H);
      }
    }
  });
}

// The weight and input gradients after a rows-split backward, as GEMMs over all steps: grad_x [T*B, I] = d_in .
// w_ih; grad_w_ih [G, I] = d_in^T . x; grad_w_hh [G, H] = d_rec^T . [h0; output[0 .. T-2]]. (d_in, d_rec: [T*B, G].)
template <typename scalar_t>
void input_and_weight_gradients(int64_t T, int64_t B, int64_t I, int64_t H, int64_t G, const scalar_t* x,
                                const scalar_t* h0, const scalar_t* output, const scalar_t* w_ih,
                                const scalar_t* d_in, const scalar_t* d_rec, scalar_t* grad_x, scalar_t* grad_w_ih,
                                scalar_t* grad_w_hh) {
  const int64_t rows_total = T * B;
  gemm<scalar_t>(false, false, rows_total, I, G, 1, d_in, G, w_ih, I, 0, grad_x, I);
  gemm<scalar_t>(true, false, G, I, rows_total, 1, d_in, G, x, I, 0, grad_w_ih, I);
  gemm<scalar_t>(true, false, G, H, B, 1, d_rec, G, h0, H, 0, grad_w_hh, H);
  if (T > 1) gemm<scalar_t>(true, false, G, H, rows_total - B, 1, d_rec + B * G, G, output, H, 1, grad_w_hh, H);
}

}  // namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE
