#include "lstm_kernel.h"

#include <ATen/Parallel.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "../lstm_gates.h"
#include "buffer_pool.h"
#include "gemm.h"
#include "packed_gemm.h"
#include "time_loop.h"

namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE {
namespace {

// Units [j0, j1) of one row of one step. bias [4H]: b_ih + b_hh; pre: the row's workspace (pre-activations less
// the bias in; with kKeepGates, the activated gates and c out); rec: null, or the row's recurrent product of the
// units, gate block k at rec[k * rec_stride + (j - j0)] (then pre holds only the input projection); c: the cell
// state (read and written); h: where the new h goes (the step's output row where there is one: h_n is filled
// from the output after the loop, see hidden_from_output). Branch-free in j, with the options a compile-time choice,
// so that the loop vectorises.
template <typename scalar_t, bool kPeephole, bool kKeepGates, bool kRecurrentTile>
void forward_units(const LstmParams<scalar_t>& p, int64_t j0, int64_t j1, const scalar_t* __restrict__ bias,
                   const scalar_t* __restrict__ rec, int64_t rec_stride, scalar_t* __restrict__ pre,
                   scalar_t* __restrict__ c, scalar_t* __restrict__ h) {
  // Locals, not p's fields: stores through the pointers could otherwise alias p and force reloads in the loop.
  const int64_t H = p.hidden_size, G = 4 * H, F = p.layout.f_block * H, Gg = p.layout.g_block * H;
  const int64_t rec_f = p.layout.f_block * rec_stride, rec_g = p.layout.g_block * rec_stride, rec_o = 3 * rec_stride;
  const scalar_t forget_bias = p.forget_bias, cell_clip = p.cell_clip;
  const scalar_t* __restrict__ w_peephole = p.w_peephole;
  // Without a tile, rec is read as zeros at a fixed place (the compiler folds the additions away).
  const scalar_t* __restrict__ r = kRecurrentTile ? rec - j0 : nullptr;
  const auto recurrent = [&](int64_t offset, int64_t j) {
    if constexpr (kRecurrentTile) return r[offset + j];
    return scalar_t(0);
  };
  for (int64_t j = j0; j < j1; ++j) {
    const auto g = gates_forward<scalar_t, kPeephole>(
        pre[j] + bias[j] + recurrent(0, j), pre[F + j] + bias[F + j] + recurrent(rec_f, j),
        pre[Gg + j] + bias[Gg + j] + recurrent(rec_g, j), pre[3 * H + j] + bias[3 * H + j] + recurrent(rec_o, j),
        c[j], peephole_at<scalar_t, kPeephole>(w_peephole, H, j), forget_bias, cell_clip);
    if constexpr (kKeepGates) {
      pre[j] = g.i;
      pre[F + j] = g.f;
      pre[Gg + j] = g.g;
      pre[3 * H + j] = g.o;
      pre[G + j] = g.c;
    }
    c[j] = g.c;
    h[j] = g.h;
  }
}

template <typename scalar_t>
using ForwardUnits = void (*)(const LstmParams<scalar_t>&, int64_t, int64_t, const scalar_t*, const scalar_t*, int64_t,
                              scalar_t*, scalar_t*, scalar_t*);

// forward_units for the options of p (peepholes; gates kept for backward when training), with or without a
// recurrent tile.
template <typename scalar_t, bool kRecurrentTile>
ForwardUnits<scalar_t> forward_units_for(const LstmParams<scalar_t>& p) {
  const bool keep = p.workspace != nullptr;
  if (p.w_peephole != nullptr) {
    return keep ? forward_units<scalar_t, true, true, kRecurrentTile>
                : forward_units<scalar_t, true, false, kRecurrentTile>;
  }
  return keep ? forward_units<scalar_t, false, true, kRecurrentTile>
              : forward_units<scalar_t, false, false, kRecurrentTile>;
}

// Units [j0, j1) of one row of one step backward. d_h arrives as dh[j] + grad_out[j]; dc is updated in place to the
// gradient of c_prev.
template <typename scalar_t, bool kPeephole>
void backward_units(const LstmParams<scalar_t>& p, int64_t j0, int64_t j1, const scalar_t* __restrict__ gates,
                    const scalar_t* __restrict__ c_prev, const scalar_t* __restrict__ grad_out,
                    const scalar_t* __restrict__ dh, scalar_t* __restrict__ dc, scalar_t* __restrict__ d_pre) {
  const int64_t H = p.hidden_size, G = 4 * H, F = p.layout.f_block * H, Gg = p.layout.g_block * H;
  const scalar_t cell_clip = p.cell_clip;
  const scalar_t* __restrict__ w_peephole = p.w_peephole;
  // Two loops, not a test of grad_out per unit: a conditional load keeps the loop from vectorising.
  auto loop = [&](auto with_grad_out) {
    for (int64_t j = j0; j < j1; ++j) {
      scalar_t d_h = dh[j];
      if constexpr (decltype(with_grad_out)::value) d_h += grad_out[j];
      const auto r = gates_backward<scalar_t, kPeephole>(gates[j], gates[F + j], gates[Gg + j], gates[3 * H + j],
                                                         gates[G + j], c_prev[j], d_h, dc[j],
                                                         peephole_at<scalar_t, kPeephole>(w_peephole, H, j),
                                                         cell_clip);
      d_pre[j] = r.d_pre_i;
      d_pre[F + j] = r.d_pre_f;
      d_pre[Gg + j] = r.d_pre_g;
      d_pre[3 * H + j] = r.d_pre_o;
      dc[j] = r.d_c_prev;
    }
  };
  if (grad_out != nullptr) {
    loop(std::true_type{});
  } else {
    loop(std::false_type{});
  }
}

// Input projection of steps [t0, t1), columns of units [j0, j1): pre[t, b] = x[t, b] . w_ih^T (the biases are
// added in the gate pass, which reads every value anyway: a separate pass to fill them in cost ~5% at C4).
template <typename scalar_t>
void project_inputs(const LstmParams<scalar_t>& p, const GemmWeight<scalar_t>& w_ih, int64_t t0, int64_t t1,
                    int64_t j0, int64_t j1, scalar_t* pre, int64_t ws_width) {
  const int64_t rows = (t1 - t0) * p.batch;
  gemm_gate_columns(rows, p.hidden_size, p.input_size, j0, j1, p.x + t0 * p.batch * p.input_size, w_ih, pre,
                    ws_width, scalar_t(0));
}

// The float forward without projection, rows split over the team instead of units: each thread runs its own batch
// rows through every step, the input projection of those rows, all 4H columns of the recurrent product and all H
// units of the gate math, so that no step waits for another thread (h_{t-1} of a row is the same thread's) and no
// value crosses between cores (when the projection was split by units, reading the other core's half of it cost
// ~40% of C4's step). ONNX Runtime's CPU LSTM threads this way. Taken when every thread has rows enough for the
// micro-kernel's tiles and the whole packed weight, which every thread reads each step, stays in a core's L2.
void forward_rows_split(const LstmParams<float>& p, int64_t threads, int64_t chunk_steps, float* workspace,
                        const float* bias, const GemmWeight<float>& w_ih, const RecurrentPanels& panels) {
  const int64_t T = p.seq_len, B = p.batch, H = p.hidden_size, R = p.recurrent_size;
  const int64_t ws_width = kWorkspaceWidth * H;
  const ForwardUnits<float> units = forward_units_for<float, true>(p);
  run_team(threads, H, [&](int64_t j0, int64_t j1, const auto& sync) {
    // This thread's rows: id, id + count, id + 2 * count, ... Interleaved, not a block: with sequence lengths the
    // rows are sorted longest first, and a block split would leave the threads of the short rows idle.
    const int64_t id = omp_get_thread_num(), count = omp_get_num_threads();
    const auto own_rows = [&](int64_t rows) { return rows > id ? (rows - id + count - 1) / count : int64_t{0}; };
    panels.pack(p.w_hh, p.layout.tf, j0, j1);
    sync();  // each thread packed a slice; every thread reads them all
    for (int64_t t = 0; t < T; ++t) {
      const int64_t chunk_step = t % chunk_steps;
      if (chunk_step == 0) {
        project_own_rows(p.x, B, p.input_size, 4 * H, w_ih, t, std::min(T, t + chunk_steps), id, count, workspace,
                         ws_width);
      }
      const int64_t running = own_rows(p.rows_at(t)), all = own_rows(B);
      float* pre_t = workspace + chunk_step * B * ws_width;
      const float* h_prev = t == 0 ? p.h0 : p.output + (t - 1) * B * R;
      float* out_t = p.output ? p.output + t * B * R : nullptr;
      panels.step(running, h_prev + id * R, count * R, 0, H, [&](int64_t i, int64_t u0, int64_t u1, const float* rec) {
        const int64_t b = id + i * count;
        units(p, u0, u1, bias, rec, RecurrentPanels::kStepUnits, pre_t + b * ws_width, p.c_n + b * H,
              (out_t ? out_t : p.h_n) + b * H);
      });
      for (int64_t i = running; i < all; ++i) {  // finished rows: zero output, a defined workspace
        const int64_t b = id + i * count;
        if (out_t) std::fill(out_t + b * R, out_t + (b + 1) * R, 0.0f);
        if (p.workspace != nullptr) std::fill(pre_t + b * ws_width, pre_t + (b + 1) * ws_width, 0.0f);
      }
    }
  });
}

template <typename scalar_t>
void forward_loop(const LstmParams<scalar_t>& p) {
  const int64_t T = p.seq_len, B = p.batch, H = p.hidden_size, R = p.recurrent_size, G = 4 * H;
  const int64_t ws_width = kWorkspaceWidth * H;

  // Training keeps every step's workspace (it is returned for backward). Inference needs only the steps being
  // worked on: it projects the inputs a chunk of ~1024 rows at a time into a pooled scratch, which bounds its memory
  // and spares the page faults of a fresh [T, B, 5H] buffer per call.
  const int64_t chunk_steps = p.workspace != nullptr ? std::max<int64_t>(T, 1)
                                                     : std::clamp<int64_t>(1024 / std::max<int64_t>(B, 1), 1, T);
  const PooledScratch<scalar_t> scratch(p.workspace == nullptr ? chunk_steps * B * ws_width : 0);
  scalar_t* workspace = p.workspace != nullptr ? p.workspace : scratch.data();

  std::memcpy(p.h_n, p.h0, B * R * sizeof(scalar_t));
  std::memcpy(p.c_n, p.c0, B * H * sizeof(scalar_t));
  const ForwardUnits<scalar_t> units = forward_units_for<scalar_t, false>(p);
  const ForwardUnits<scalar_t> tile_units = forward_units_for<scalar_t, true>(p);
  std::vector<scalar_t> bias(G);
  for (int64_t k = 0; k < G; ++k) {
    bias[k] = (p.b_ih ? p.b_ih[k] : scalar_t(0)) + (p.b_hh ? p.b_hh[k] : scalar_t(0));
  }
  const GemmWeight<scalar_t> w_ih = gemm_weight(p.w_ih, p.layout.tf, G, p.input_size, T * B, chunk_steps * B, true);
  // float: the recurrent product on panels packed once per call; double, and calls of a few steps (single steps:
  // packing would read and write the weight once more than the product reads it): the GEMM engines.
  const bool packed = std::is_same_v<scalar_t, float> && T >= kMinStepsForPacking;
  const GemmWeight<scalar_t> w_hh =
      packed ? GemmWeight<scalar_t>{} : gemm_weight(p.w_hh, p.layout.tf, G, R, T * B, B, true);
  const RecurrentPanels panels(packed ? H : 0, packed ? R : 0);
  // With a projection each step's o * tanh(c) [B, H] goes to cell_out first; h = cell_out . w_hr^T [B, P].
  const bool projected = p.w_hr != nullptr;
  const GemmWeight<scalar_t> w_hr =
      projected ? gemm_weight(p.w_hr, p.layout.tf, R, H, T * B, B, true) : GemmWeight<scalar_t>{};
  const PooledScratch<scalar_t> cell_out(projected ? B * H : 0);

  const int64_t threads = team_size(T, B, H);
  if constexpr (std::is_same_v<scalar_t, float>) {
    if (packed && !projected && threads > 1 && B >= kMinRowsPerThread * threads &&
        4 * H * R * static_cast<int64_t>(sizeof(float)) <= l2_cache_bytes()) {
      forward_rows_split(p, threads, chunk_steps, workspace, bias.data(), w_ih, panels);
      if (p.output != nullptr) hidden_from_output(p);
      return;
    }
  }

  run_team(threads, H, [&](int64_t j0, int64_t j1, const auto& sync) {
    const auto [r0, r1] = recurrent_slice(j0, j1, H, R);
    if constexpr (std::is_same_v<scalar_t, float>) {
      if (packed) panels.pack(p.w_hh, p.layout.tf, j0, j1);
    }
    for (int64_t t = 0; t < T; ++t) {
      const int64_t chunk_step = t % chunk_steps;
      if (chunk_step == 0) project_inputs(p, w_ih, t, std::min(T, t + chunk_steps), j0, j1, workspace, ws_width);
      const int64_t rows = p.rows_at(t);
      scalar_t* pre_t = workspace + chunk_step * B * ws_width;
      // h_{t-1} of the running rows: the previous step's output (each step writes its own output rows, so a fast
      // thread never overwrites what a slow one still reads).
      const scalar_t* h_prev = t == 0 ? p.h0 : p.output + (t - 1) * B * R;
      scalar_t* out_t = p.output ? p.output + t * B * R : nullptr;
      // Without a projection the gate math writes the output (h_n where there is none); with one, cell_out,
      // projected below.
      const auto h_of = [&](int64_t b) { return (projected ? cell_out.data() : out_t ? out_t : p.h_n) + b * H; };
      if (packed) {
        if constexpr (std::is_same_v<scalar_t, float>) {
          panels.step(rows, h_prev, R, j0, j1, [&](int64_t b, int64_t u0, int64_t u1, const float* rec) {
            tile_units(p, u0, u1, bias.data(), rec, RecurrentPanels::kStepUnits, pre_t + b * ws_width,
                       p.c_n + b * H, h_of(b));
          });
        }
      } else {
        gemm_gate_columns(rows, H, R, j0, j1, h_prev, w_hh, pre_t, ws_width);
        for (int64_t b = 0; b < rows; ++b) {
          units(p, j0, j1, bias.data(), nullptr, 0, pre_t + b * ws_width, p.c_n + b * H, h_of(b));
        }
      }
      if (projected) {
        sync();  // the projection reads every thread's units
        gemm_columns<scalar_t>(rows, R, H, r0, r1, cell_out.data(), w_hr, 0, p.h_n, R);
        for (int64_t b = 0; out_t && b < rows; ++b) {
          std::memcpy(out_t + b * R + r0, p.h_n + b * R + r0, (r1 - r0) * sizeof(scalar_t));
        }
      }
      for (int64_t b = rows; b < B; ++b) {  // finished rows: zero output, a defined workspace
        if (out_t) std::fill(out_t + b * R + r0, out_t + b * R + r1, scalar_t(0));
        if (p.workspace == nullptr) continue;
        for (int64_t slot = 0; slot < kWorkspaceWidth; ++slot) {
          std::fill(pre_t + b * ws_width + slot * H + j0, pre_t + b * ws_width + slot * H + j1, scalar_t(0));
        }
      }
      sync();
    }
  });
  if (!projected && p.output != nullptr) hidden_from_output(p);
}

template <typename scalar_t>
void backward_loop(const LstmParams<scalar_t>& p) {
  const int64_t T = p.seq_len, B = p.batch, I = p.input_size, H = p.hidden_size, R = p.recurrent_size, G = 4 * H;
  const int64_t ws_width = kWorkspaceWidth * H;

  // grad_h0 / grad_c0 carry the running gradient of h and c; rows not yet started hold the final-state gradient.
  if (p.grad_h_n != nullptr) {
    std::memcpy(p.grad_h0, p.grad_h_n, B * R * sizeof(scalar_t));
  } else {
    std::fill(p.grad_h0, p.grad_h0 + B * R, scalar_t(0));
  }
  if (p.grad_c_n != nullptr) {
    std::memcpy(p.grad_c0, p.grad_c_n, B * H * sizeof(scalar_t));
  } else {
    std::fill(p.grad_c0, p.grad_c0 + B * H, scalar_t(0));
  }
  const auto units = p.w_peephole ? backward_units<scalar_t, true> : backward_units<scalar_t, false>;
  const GemmWeight<scalar_t> w_ih = gemm_weight(p.w_ih, p.layout.tf, G, I, T * B, T * B, false);
  // float: dh on panels of w_hh packed once per call (each thread packs its columns [r0, r1)); double, calls of a
  // few steps and batches of a few rows: the engines (measured at batch 1, C3: 0.75 ms with the engines' GEMV
  // against 1.16 ms packed; at C4 packing wins, 27.7 -> 25.7 ms).
  const bool packed = std::is_same_v<scalar_t, float> && T >= kMinStepsForPacking && B >= kMinRowsForPackedBackward;
  const GemmWeight<scalar_t> w_hh =
      packed ? GemmWeight<scalar_t>{} : gemm_weight(p.w_hh, p.layout.tf, G, R, T * B, B, false);
  // A thread's panels start at panel panel_count(r0) + j0 / kSliceAlign: past every earlier thread's (each earlier
  // slice is at least kSliceAlign units and adds at most one partial panel), whatever the widths.
  const PooledScratch<float> dh_panels(packed ? (panel_count(R) + H / kSliceAlign + 1) * G * kPanelColumns : 0);
  // With a projection: grad_proj [T, B, P] keeps each step's gradient of h (for grad_w_hr after the loop), and
  // grad_cell [B, H] that of the step's o * tanh(c), grad_proj . w_hr.
  const bool projected = p.w_hr != nullptr;
  const GemmWeight<scalar_t> w_hr =
      projected ? gemm_weight(p.w_hr, p.layout.tf, R, H, T * B, B, false) : GemmWeight<scalar_t>{};
  const PooledScratch<scalar_t> grad_proj(projected ? T * B * R : 0);
  const PooledScratch<scalar_t> grad_cell(projected ? B * H : 0);

  run_team(team_size(T, B, H), H, [&](int64_t j0, int64_t j1, const auto& sync) {
    const auto [r0, r1] = recurrent_slice(j0, j1, H, R);
    float* thread_panels = nullptr;
    if constexpr (std::is_same_v<scalar_t, float>) {
      if (packed) {
        thread_panels = dh_panels.data() + (panel_count(r0) + j0 / kSliceAlign) * G * kPanelColumns;
        pack_panels(p.layout.tf ? nullptr : p.w_hh, p.layout.tf ? p.w_hh : nullptr, p.layout.tf ? G : R, G, r0,
                    r1 - r0, thread_panels);
      }
    }
    for (int64_t t = T - 1; t >= 0; --t) {
      const int64_t rows = p.rows_at(t);
      const scalar_t* ws_t = p.saved_workspace + t * B * ws_width;
      scalar_t* grad_pre_t = p.grad_pre + t * B * G;
      if (projected) {
        scalar_t* grad_proj_t = grad_proj.data() + t * B * R;
        for (int64_t b = 0; b < B; ++b) {
          for (int64_t r = r0; r < r1; ++r) {
            grad_proj_t[b * R + r] = b >= rows ? scalar_t(0)
                                               : p.grad_h0[b * R + r] +
                                                     (p.grad_output ? p.grad_output[(t * B + b) * R + r] : scalar_t(0));
          }
        }
        sync();  // the GEMM below reads every thread's grad_proj_t
        gemm_by_weight(rows, R, H, j0, j1, grad_proj_t, w_hr, grad_cell.data(), H);
      }
      for (int64_t b = 0; b < rows; ++b) {
        const scalar_t* c_prev = t > 0 ? p.saved_workspace + ((t - 1) * B + b) * ws_width + G : p.c0 + b * H;
        if (projected) {
          units(p, j0, j1, ws_t + b * ws_width, c_prev, nullptr, grad_cell.data() + b * H, p.grad_c0 + b * H,
                grad_pre_t + b * G);
        } else {
          const scalar_t* grad_out = p.grad_output ? p.grad_output + (t * B + b) * H : nullptr;
          units(p, j0, j1, ws_t + b * ws_width, c_prev, grad_out, p.grad_h0 + b * H, p.grad_c0 + b * H,
                grad_pre_t + b * G);
        }
      }
      for (int64_t b = rows; b < B; ++b) {
        for (int64_t gate = 0; gate < 4; ++gate) {
          std::fill(grad_pre_t + b * G + gate * H + j0, grad_pre_t + b * G + gate * H + j1, scalar_t(0));
        }
      }
      sync();  // the GEMM below reads every thread's grad_pre_t
      // dh_{t-1}[:, r0:r1] = d_pre_t . w_hh[:, r0:r1] for the running rows (the output gradient of t-1 is added when
      // t-1 is processed).
      if constexpr (std::is_same_v<scalar_t, float>) {
        if (packed) {
          packed_gemm(rows, G, grad_pre_t, G, thread_panels, r1 - r0, /*accumulate=*/false, p.grad_h0 + r0, R);
        }
      }
      if (!packed) gemm_by_weight(rows, G, R, r0, r1, grad_pre_t, w_hh, p.grad_h0, R);
    }
  });

  // Input and weight gradients as big GEMMs over all steps. The weight gradients reduce over the T*B rows, which
  // the brgemm micro-kernel wants as the inner dimension of an untransposed A: grad_w^T [K, 4H] = in^T . grad_pre,
  // with in = x [TB, I] or h_prev = [h0; output[0 .. T-2]] [TB, R]. Transposing those moves (I + R) * TB values
  // instead of the 4H * TB of grad_pre; the [K, 4H] results are small.
  const int64_t rows_total = T * B;
  gemm_by_weight(rows_total, G, I, 0, I, p.grad_pre, w_ih, p.grad_x, I);
  if (!p.layout.tf && rows_total < std::min(I, R)) {
    // Few rows (single steps): torch's grad_w [4H, K] = grad_pre^T . in directly. Transposing grad_pre (4H * TB
    // values, inside gemm) costs less than transposing the [K, 4H] products into place below.
    gemm<scalar_t>(true, false, G, I, rows_total, 1, p.grad_pre, G, p.x, I, 0, p.grad_w_ih, I);
    gemm<scalar_t>(true, false, G, R, B, 1, p.grad_pre, G, p.h0, R, 0, p.grad_w_hh, R);
    if (T > 1) {
      gemm<scalar_t>(true, false, G, R, rows_total - B, 1, p.grad_pre + B * G, G, p.saved_output, R, 1, p.grad_w_hh,
                     R);
    }
  } else {
    const PooledScratch<scalar_t> inputs_t(std::max(I, R) * rows_total);
    // In TF's layout the [K, 4H] products are the gradients themselves; in torch's they are transposed into place.
    const PooledScratch<scalar_t> grad_w_t(p.layout.tf ? 0 : std::max(I, R) * G);
    transpose(p.x, rows_total, I, I, inputs_t.data());
    scalar_t* grad_w_ih_t = p.layout.tf ? p.grad_w_ih : grad_w_t.data();
    gemm<scalar_t>(false, false, I, G, rows_total, 1, inputs_t.data(), rows_total, p.grad_pre, G, 0, grad_w_ih_t, G);
    if (!p.layout.tf) transpose(grad_w_t.data(), I, G, G, p.grad_w_ih);
    transpose(p.h0, B, R, R, inputs_t.data(), rows_total);
    transpose(p.saved_output, rows_total - B, R, R, inputs_t.data() + B, rows_total);
    scalar_t* grad_w_hh_t = p.layout.tf ? p.grad_w_hh : grad_w_t.data();
    gemm<scalar_t>(false, false, R, G, rows_total, 1, inputs_t.data(), rows_total, p.grad_pre, G, 0, grad_w_hh_t, G);
    if (!p.layout.tf) transpose(grad_w_t.data(), R, G, G, p.grad_w_hh);
  }
  if (projected) {
    // grad_w_hr = grad_proj^T . cell_out over all steps, cell_out = o * tanh(c) recomputed from the workspace (zero
    // for finished rows, whose workspace is zero).
    const PooledScratch<scalar_t> cell_out(rows_total * H);
    at::parallel_for(0, rows_total, 16, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const scalar_t* ws = p.saved_workspace + row * ws_width;
        for (int64_t j = 0; j < H; ++j) cell_out.data()[row * H + j] = ws[3 * H + j] * tanh_act(ws[G + j]);
      }
    });
    if (p.layout.tf) {  // TF's projection kernel [H, P]
      gemm<scalar_t>(true, false, H, R, rows_total, 1, cell_out.data(), H, grad_proj.data(), R, 0, p.grad_w_hr, R);
    } else {
      gemm<scalar_t>(true, false, R, H, rows_total, 1, grad_proj.data(), R, cell_out.data(), H, 0, p.grad_w_hr, H);
    }
  }
  // Bias gradient: column sums of grad_pre, in blocks of columns so that the inner loop runs along rows of memory.
  at::parallel_for(0, (G + 63) / 64, 1, [&](int64_t begin, int64_t end) {
    const int64_t k0 = begin * 64, k1 = std::min(G, end * 64);
    std::fill(p.grad_bias + k0, p.grad_bias + k1, scalar_t(0));
    for (int64_t r = 0; r < rows_total; ++r) {
      const scalar_t* row = p.grad_pre + r * G;
      for (int64_t k = k0; k < k1; ++k) p.grad_bias[k] += row[k];
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
        p.grad_w_peephole[H + j] += d_pre[p.layout.f_block * H + j] * c_prev[j];
        p.grad_w_peephole[2 * H + j] += d_pre[3 * H + j] * c[j];
      }
    }
  }
}

}  // namespace

extern const KernelTable kernel_table = {{&forward_loop<float>, &backward_loop<float>},
                                         {&forward_loop<double>, &backward_loop<double>}};

}  // namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE
