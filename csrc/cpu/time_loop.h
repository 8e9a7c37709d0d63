// The time-loop machinery shared by the CPU cells' kernels, compiled per instruction-set level (include it only
// from the per-level sources): the thread team of a call, the weights as the GEMMs read them, and the recurrent
// weight packed for the fused step (RecurrentPanels::step). A cell brings its gate count and its pointwise
// functions; everything here is written for any number of gate blocks of H units each (gate block g owns columns
// [g*H, g*H + H) of the gate pre-activations).
#pragma once

#include <ATen/Parallel.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

#include "buffer_pool.h"
#include "gemm.h"
#include "packed_gemm.h"

#if !defined(FASTLSTM_ISA_NAMESPACE)
#error "time_loop.h belongs to the per-level kernel sources (FASTLSTM_ISA_NAMESPACE undefined)"
#endif

namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE {

// A weight is laid out transposed for the brgemm micro-kernel only when the copy (gates*H x K) is small against the
// work that reads it (T * B rows) and each GEMM has rows enough for the micro-kernel to beat Eigen's transposed read.
constexpr int64_t kMinTotalRowsForPacking = 64;
constexpr int64_t kMinGemmRowsForPacking = 8;

// The time loop runs in one team of threads for the whole call, each thread owning a slice of the hidden units (every
// gate block of them): per step it computes its columns of the recurrent GEMM and the gate math of its units, and
// the team meets at one barrier per step. A fork/join per GEMM and per pointwise pass (two per step) cost more than
// the work at mid sizes (C4: ~20 us of a ~30 us step). Slices are multiples of 32 units: whole panels of the packed
// recurrent weight at every level (packed_gemm.h).
constexpr int64_t kSliceAlign = 32;
static_assert(kSliceAlign % kPanelColumns == 0);
// Calls of fewer steps multiply by the weight as it is (see forward_loop); so does the backward of fewer rows.
constexpr int64_t kMinStepsForPacking = 4;
constexpr int64_t kMinRowsForPackedBackward = 4;
// forward_rows_split: at least this many batch rows per thread, and a packed recurrent weight no larger than a
// core's L2 (every thread streams all of it every step; L2 ranges from 512 KiB (Zen 1) to 2 MiB (Sapphire Rapids)
// on the hosts seen; 512 KiB where the OS does not say).
constexpr int64_t kMinRowsPerThread = 8;

inline int64_t l2_cache_bytes() {
  static const int64_t bytes = [] {
    const long reported = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return reported > 0 ? static_cast<int64_t>(reported) : int64_t{512} << 10;
  }();
  return bytes;
}

// Below ~64 kFLOP of recurrent GEMM per step a barrier costs more than a second thread brings (measured at B=1:
// H=128 (131 kFLOP) runs 3.7 -> 2.7 us a step on two threads). A single step also pays the team's start, once:
// it takes a team from ~1 MFLOP.
constexpr int64_t kMinStepFlopsForTeam = int64_t{1} << 16;
constexpr int64_t kMinSingleStepFlopsForTeam = int64_t{1} << 20;

// gates: the cell's gate blocks (4 for the LSTM).
inline int64_t team_size(int64_t seq_len, int64_t batch, int64_t hidden_size, int64_t gates = 4) {
  const int64_t step_flops = 2 * batch * gates * hidden_size * hidden_size;
  const int64_t min_flops = seq_len > 1 ? kMinStepFlopsForTeam : kMinSingleStepFlopsForTeam;
  if (step_flops < min_flops || at::in_parallel_region()) return 1;
  return std::clamp<int64_t>(hidden_size / kSliceAlign, 1, at::get_num_threads());
}

// Runs body(j0, j1, sync) on `threads` threads, each with its slice [j0, j1) of the H units; sync() is a barrier of
// the team (every thread must call it equally often).
template <typename Body>
void run_team(int64_t threads, int64_t hidden_size, const Body& body) {
  if (threads <= 1) {
    body(int64_t{0}, hidden_size, [] {});
    return;
  }
#pragma omp parallel num_threads(static_cast<int>(threads))
  {
    // The team the runtime granted may be smaller than asked for (OMP_THREAD_LIMIT): slice by its real size.
    const int64_t granted = omp_get_num_threads(), id = omp_get_thread_num();
    const int64_t per_thread = (hidden_size + granted - 1) / granted;
    const int64_t slice = (per_thread + kSliceAlign - 1) / kSliceAlign * kSliceAlign;
    const int64_t j0 = std::min(hidden_size, id * slice);
    body(j0, std::min(hidden_size, j0 + slice), [] {
#pragma omp barrier
    });
  }
}

// A weight as the GEMMs read it: W [4H, K] (torch's layout) and/or its transpose W^T [K, 4H] (TF's layout). The
// forward multiplies by W^T (x . W^T), which the brgemm micro-kernel wants stored as W^T; the backward by W
// (d_pre . W), wanted stored as W. The orientation the layout lacks is transposed into a pooled copy once per call
// when that pays (see above); else the GEMMs read the other one transposed in place.
template <typename scalar_t>
struct GemmWeight {
  const scalar_t* w = nullptr;    // [4H, K], or nullptr
  const scalar_t* w_t = nullptr;  // [K, 4H], or nullptr
  PooledScratch<scalar_t> packed{0};
};

template <typename scalar_t>
GemmWeight<scalar_t> gemm_weight(const scalar_t* weight, bool tf_layout, int64_t gates, int64_t k,
                                 int64_t total_rows, int64_t gemm_rows, bool want_w_t) {
  GemmWeight<scalar_t> result;
  (tf_layout ? result.w_t : result.w) = weight;
  if (want_w_t != tf_layout && total_rows >= kMinTotalRowsForPacking && gemm_rows >= kMinGemmRowsForPacking) {
    result.packed = PooledScratch<scalar_t>(gates * k);
    if (want_w_t) {
      transpose(weight, gates, k, k, result.packed.data());
      result.w_t = result.packed.data();
    } else {
      transpose(weight, k, gates, gates, result.packed.data());
      result.w = result.packed.data();
    }
  }
  return result;
}

// Columns [k0, k1) of out[rows, K] = d_pre[rows, 4H] . W (the backward's products for dx and dh).
template <typename scalar_t>
void gemm_by_weight(int64_t rows, int64_t gates, int64_t k, int64_t k0, int64_t k1, const scalar_t* d_pre,
                    const GemmWeight<scalar_t>& weight, scalar_t* out, int64_t ldo) {
  if (weight.w != nullptr) {
    gemm<scalar_t>(false, false, rows, k1 - k0, gates, 1, d_pre, gates, weight.w + k0, k, 0, out + k0, ldo);
  } else {
    gemm<scalar_t>(false, true, rows, k1 - k0, gates, 1, d_pre, gates, weight.w_t + k0 * gates, gates, 0, out + k0,
                   ldo);
  }
}

// Columns [n0, n1) of C[rows, N] (+)= A[rows, K] . W^T (the forward's products), W [N, K]; A's row stride lda (0:
// dense, K).
template <typename scalar_t>
void gemm_columns(int64_t rows, int64_t n, int64_t k, int64_t n0, int64_t n1, const scalar_t* a,
                  const GemmWeight<scalar_t>& weight, scalar_t beta, scalar_t* c, int64_t ldc, int64_t lda = 0) {
  lda = lda > 0 ? lda : k;
  if (weight.w_t == nullptr) {
    gemm<scalar_t>(false, true, rows, n1 - n0, k, 1, a, lda, weight.w + n0 * k, k, beta, c + n0, ldc);
  } else {
    gemm<scalar_t>(false, false, rows, n1 - n0, k, 1, a, lda, weight.w_t + n0, n, beta, c + n0, ldc);
  }
}

// Columns {g*H + j : every gate block g < gates; j in [j0, j1)} of C[rows, gates*H] (+)= A[rows, K] . W^T. One GEMM
// when the slice is all of H.
template <typename scalar_t>
void gemm_gate_columns(int64_t rows, int64_t hidden_size, int64_t k, int64_t j0, int64_t j1, const scalar_t* a,
                       const GemmWeight<scalar_t>& weight, scalar_t* c, int64_t ldc, scalar_t beta = 1,
                       int64_t gates = 4) {
  const int64_t G = gates * hidden_size;
  if (j0 == 0 && j1 == hidden_size) {
    gemm_columns<scalar_t>(rows, G, k, 0, G, a, weight, beta, c, ldc);
    return;
  }
  for (int64_t gate = 0; gate < gates; ++gate) {
    gemm_columns<scalar_t>(rows, G, k, gate * hidden_size + j0, gate * hidden_size + j1, a, weight, beta, c, ldc);
  }
}

// The recurrent weight of a float forward, packed for packed_gemm: per gate block g, the panels of output columns
// [g*H, g*H + H). Each thread packs the panels of its own units (no barrier: nobody else reads them).
struct RecurrentPanels {
  // Units per block and rows per chunk of RecurrentPanels::step: the gate math runs over loops long enough to pay
  // for its set-up (at one panel per call, 32 units, the set-up was ~10% of C4's step), and a panel serves four row
  // tiles while it is in L1.
  static constexpr int64_t kStepUnits = 128;
  static constexpr int64_t kChunkRows = 4 * kTileRows;
  static constexpr int64_t kMaxGates = 4;
  static_assert(kStepUnits % kPanelColumns == 0);

  int64_t hidden_size, recurrent_size, gates, gate_panels;
  PooledScratch<float> data;

  // gates: the cell's gate blocks (at most kMaxGates).
  RecurrentPanels(int64_t hidden, int64_t recurrent, int64_t gate_blocks = 4)
      : hidden_size(hidden), recurrent_size(recurrent), gates(gate_blocks), gate_panels(panel_count(hidden)),
        data(gates * gate_panels * recurrent * kPanelColumns) {}

  float* at(int64_t gate, int64_t j0) const {
    return data.data() + (gate * gate_panels + j0 / kPanelColumns) * recurrent_size * kPanelColumns;
  }

  // w_hh [gates*H, R] (torch's layout) or [R, gates*H] (tf_layout).
  void pack(const float* w_hh, bool tf_layout, int64_t j0, int64_t j1) const {
    const int64_t G = gates * hidden_size;
    for (int64_t gate = 0; gate < gates; ++gate) {
      pack_panels(tf_layout ? w_hh : nullptr, tf_layout ? nullptr : w_hh, tf_layout ? G : recurrent_size,
                  recurrent_size, gate * hidden_size + j0, j1 - j0, at(gate, j0));
    }
  }

  // The recurrent product of one step, fused with the gate math: per block of up to kStepUnits units of [j0, j1)
  // and chunk of up to kChunkRows rows of h [rows, R] (row stride ldh), the products of all gates go to a tile
  // (L1/L2) and units(row, u0, u1, tile_row, kStepUnits) runs the gate math of units [u0, u1) of that row from there:
  // the products never travel to the workspace and back, as with a GEMM into the workspace and a gate pass over it.
  // Panel-major: each panel (in K blocks of 256 when R is larger: 32 KiB at AVX-512) is read once per chunk and
  // stays in L1 across the chunk's row tiles (A/B against row-tile-major: +0.5-6% inference at C1-C4). j0 is a
  // multiple of kPanelColumns.
  template <typename Units>
  void step(int64_t rows, const float* h, int64_t ldh, int64_t j0, int64_t j1, const Units& units) const {
    alignas(64) float tile[kChunkRows][kMaxGates][kStepUnits];  // 64 KiB at AVX-512
    const int64_t k_block = recurrent_size > 384 ? 256 : recurrent_size;
    for (int64_t u0 = j0; u0 < j1; u0 += kStepUnits) {
      const int64_t u1 = std::min(j1, u0 + kStepUnits);
      for (int64_t row0 = 0; row0 < rows; row0 += kChunkRows) {
        const int64_t chunk = std::min(kChunkRows, rows - row0);
        for (int64_t gate = 0; gate < gates; ++gate) {
          for (int64_t q = u0; q < u1; q += kPanelColumns) {
            const float* panel = at(gate, q);
            for (int64_t k0 = 0; k0 < recurrent_size; k0 += k_block) {
              const int64_t k = std::min(k_block, recurrent_size - k0);
              for (int64_t row = 0; row < chunk; row += kTileRows) {
                panel_rows(std::min(kTileRows, chunk - row), k, h + (row0 + row) * ldh + k0, ldh,
                           panel + k0 * kPanelColumns, std::min(kPanelColumns, u1 - q), /*accumulate=*/k0 > 0,
                           &tile[row][gate][q - u0], kMaxGates * kStepUnits);
              }
            }
          }
        }
        for (int64_t i = 0; i < chunk; ++i) units(row0 + i, u0, u1, tile[i][0]);
      }
    }
  }
};

// Input projection of steps [t0, t1) for thread id of a team of count that splits the batch rows: its rows id,
// id + count, ... of each step, all G columns, into out (row (t0, 0) at out, row stride ld: row (t, b) at
// out + ((t - t0) * B + b) * ld). x [T, B, I].
template <typename scalar_t>
void project_own_rows(const scalar_t* x, int64_t B, int64_t I, int64_t G, const GemmWeight<scalar_t>& w_ih,
                      int64_t t0, int64_t t1, int64_t id, int64_t count, scalar_t* out, int64_t ld) {
  const scalar_t* x_own = x + (t0 * B + id) * I;
  if (B % count == 0) {  // the thread's rows of consecutive steps continue the same stride: one GEMM
    gemm_columns<scalar_t>((t1 - t0) * B / count, G, I, 0, G, x_own, w_ih, 0, out + id * ld, count * ld, count * I);
    return;
  }
  const int64_t rows = (B - id + count - 1) / count;
  if (rows == 0) return;
  for (int64_t t = t0; t < t1; ++t) {
    gemm_columns<scalar_t>(rows, G, I, 0, G, x_own + (t - t0) * B * I, w_ih, 0, out + ((t - t0) * B + id) * ld,
                           count * ld, count * I);
  }
}

// h_n [B, H] from the output [T, B, H] the gate math wrote h into: each row's last running step (rows never run
// keep h0, copied into h_n before the loop). Params: any cell's parameter block (seq_len, batch, hidden_size,
// rows_at, output, h_n).
template <typename Params>
void hidden_from_output(const Params& p) {
  const int64_t T = p.seq_len, B = p.batch, H = p.hidden_size;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t finishing_from = t + 1 < T ? p.rows_at(t + 1) : 0;  // rows running at t and not at t + 1
    for (int64_t b = finishing_from; b < p.rows_at(t); ++b) {
      std::memcpy(p.h_n + b * H, p.output + (t * B + b) * H, H * sizeof(*p.h_n));
    }
  }
}

// The slice of the R recurrent units (h, the output) that goes with a thread's slice [j0, j1) of the H hidden units:
// the same range without a projection, a proportional one with (consecutive threads tile [0, R)).
inline std::pair<int64_t, int64_t> recurrent_slice(int64_t j0, int64_t j1, int64_t hidden_size,
                                                   int64_t recurrent_size) {
  return {j0 * recurrent_size / hidden_size, j1 * recurrent_size / hidden_size};
}

}  // namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE
