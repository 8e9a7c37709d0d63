#include "gemm.h"

#include <ATen/Parallel.h>
#include <ATen/native/CPUBlas.h>

#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <string>
#include <type_traits>
#include <unordered_map>

#include "buffer_pool.h"

namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE {
namespace {

#if defined(CPUBLAS_BRGEMM_F32F32F32)
constexpr bool kHaveBrgemm = true;
#else
constexpr bool kHaveBrgemm = false;
#endif

FortranGemm<float> fortran_gemm(float*) { return blas_sgemm(); }
FortranGemm<double> fortran_gemm(double*) { return blas_dgemm(); }

template <typename scalar_t>
void eigen_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, scalar_t alpha, const scalar_t* a,
                int64_t lda, const scalar_t* b, int64_t ldb, scalar_t beta, scalar_t* c, int64_t ldc) {
  using RowMajor = Eigen::Matrix<scalar_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using ColMajor = Eigen::Matrix<scalar_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
  using Stride = Eigen::OuterStride<>;
  Eigen::Map<RowMajor, 0, Stride> c_map(c, m, n, Stride(ldc));
  if (beta == scalar_t(0)) {
    c_map.setZero();
  } else if (beta != scalar_t(1)) {
    c_map *= beta;
  }
  // A stored transposed is the row-major [k, m] matrix, i.e. a column-major [m, k] one: no copy either way.
  auto run = [&](const auto& a_map, const auto& b_map) { c_map.noalias() += alpha * a_map * b_map; };
  auto with_b = [&](const auto& a_map) {
    if (trans_b) {
      run(a_map, Eigen::Map<const ColMajor, 0, Stride>(b, k, n, Stride(ldb)));
    } else {
      run(a_map, Eigen::Map<const RowMajor, 0, Stride>(b, k, n, Stride(ldb)));
    }
  };
  if (trans_a) {
    with_b(Eigen::Map<const ColMajor, 0, Stride>(a, m, k, Stride(lda)));
  } else {
    with_b(Eigen::Map<const RowMajor, 0, Stride>(a, m, k, Stride(lda)));
  }
}

// Eigen's product runs on the calling thread. The GEMMs that reach it (float64 ones, and float32 ones with a
// transposed operand and too few rows for the copy brgemm needs to pay) can be wide: split their columns over torch's
// threads when the work pays for a fork (~1 MFLOP a chunk).
template <typename scalar_t>
void eigen_gemm_columns(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, scalar_t alpha,
                        const scalar_t* a, int64_t lda, const scalar_t* b, int64_t ldb, scalar_t beta, scalar_t* c,
                        int64_t ldc) {
  constexpr int64_t kColumns = 64;
  const int64_t blocks = (n + kColumns - 1) / kColumns;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(1, 2 * m * kColumns * k));
  at::parallel_for(0, blocks, grain, [&](int64_t begin, int64_t end) {
    const int64_t n0 = begin * kColumns, width = std::min(n, end * kColumns) - n0;
    eigen_gemm(trans_a, trans_b, m, width, k, alpha, a, lda, trans_b ? b + n0 * ldb : b + n0, ldb, beta, c + n0,
               ldc);
  });
}

// C[m, n] (+)= A[m, k] . B^T with B stored [n, k] and few rows m: each C value is a dot product of two contiguous
// rows. B streams through once, a row at a time, against up to kRowBlock rows of A whose partial sums stay in
// registers. The general GEMMs pack B first, which at these shapes costs as much as the product (single steps in TF's
// layout: dh = d_pre . W with W^T stored [H, 4H]).
constexpr int64_t kRowBlock = 8;

template <int kRows, typename scalar_t>
void dot_rows(int64_t n0, int64_t n1, int64_t k, const scalar_t* a, int64_t lda, const scalar_t* b, int64_t ldb,
              bool accumulate, scalar_t* c, int64_t ldc) {
  constexpr int64_t kLanes = 64 / sizeof(scalar_t);
  for (int64_t j = n0; j < n1; ++j) {
    const scalar_t* __restrict__ b_row = b + j * ldb;
    scalar_t acc[kRows][kLanes] = {};
    int64_t q = 0;
    for (; q + kLanes <= k; q += kLanes) {
      for (int row = 0; row < kRows; ++row) {
        const scalar_t* __restrict__ a_row = a + row * lda + q;
#pragma omp simd
        for (int64_t lane = 0; lane < kLanes; ++lane) acc[row][lane] += a_row[lane] * b_row[q + lane];
      }
    }
    for (int row = 0; row < kRows; ++row) {
      scalar_t sum = 0;
      for (int64_t lane = 0; lane < kLanes; ++lane) sum += acc[row][lane];
      for (int64_t r = q; r < k; ++r) sum += a[row * lda + r] * b_row[r];
      scalar_t& out = c[row * ldc + j];
      out = accumulate ? out + sum : sum;
    }
  }
}

template <typename scalar_t>
void small_rows_gemm_bt(int64_t m, int64_t n, int64_t k, const scalar_t* a, int64_t lda, const scalar_t* b,
                        int64_t ldb, bool accumulate, scalar_t* c, int64_t ldc) {
  // ~256 kFLOP per parallel chunk of columns.
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 18) / std::max<int64_t>(1, 2 * m * k));
  at::parallel_for(0, n, grain, [&](int64_t n0, int64_t n1) {
    for (int64_t i0 = 0; i0 < m; i0 += kRowBlock) {
      const scalar_t* a_block = a + i0 * lda;
      scalar_t* c_block = c + i0 * ldc;
      switch (std::min(kRowBlock, m - i0)) {
        case 1: dot_rows<1>(n0, n1, k, a_block, lda, b, ldb, accumulate, c_block, ldc); break;
        case 2: dot_rows<2>(n0, n1, k, a_block, lda, b, ldb, accumulate, c_block, ldc); break;
        case 3: dot_rows<3>(n0, n1, k, a_block, lda, b, ldb, accumulate, c_block, ldc); break;
        case 4: dot_rows<4>(n0, n1, k, a_block, lda, b, ldb, accumulate, c_block, ldc); break;
        case 5: dot_rows<5>(n0, n1, k, a_block, lda, b, ldb, accumulate, c_block, ldc); break;
        case 6: dot_rows<6>(n0, n1, k, a_block, lda, b, ldb, accumulate, c_block, ldc); break;
        case 7: dot_rows<7>(n0, n1, k, a_block, lda, b, ldb, accumulate, c_block, ldc); break;
        default: dot_rows<8>(n0, n1, k, a_block, lda, b, ldb, accumulate, c_block, ldc); break;
      }
    }
  });
}

template <typename scalar_t>
void blas_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, scalar_t alpha, const scalar_t* a,
               int64_t lda, const scalar_t* b, int64_t ldb, scalar_t beta, scalar_t* c, int64_t ldc) {
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands, keep the flags.
  const char ta = trans_a ? 'T' : 'N';
  const char tb = trans_b ? 'T' : 'N';
  const int mi = static_cast<int>(n), ni = static_cast<int>(m), ki = static_cast<int>(k);
  const int ldai = static_cast<int>(ldb), ldbi = static_cast<int>(lda), ldci = static_cast<int>(ldc);
  fortran_gemm(static_cast<scalar_t*>(nullptr))(&tb, &ta, &mi, &ni, &ki, &alpha, b, &ldai, a, &ldbi, &beta, c,
                                                &ldci);
}

#if defined(CPUBLAS_BRGEMM_F32F32F32)
// C[m, n] (+)= A[m, k] B[k, n], all row-major, in 64x64 tiles of C, spread over threads when the work pays for it.
void brgemm_tiles(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                  bool accumulate, float* c, int64_t ldc) {
  constexpr int64_t kTile = 64;
  constexpr int64_t kDepth = 256;
  const int64_t m_tiles = (m + kTile - 1) / kTile, n_tiles = (n + kTile - 1) / kTile;
  // ~1 MFLOP per parallel chunk: smaller GEMMs (one step at batch 1) stay on the calling thread.
  const int64_t tile_flops = 2 * std::min(m, kTile) * std::min(n, kTile) * k;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 20) / tile_flops);
  at::parallel_for(0, m_tiles * n_tiles, grain, [&](int64_t begin, int64_t end) {
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t m0 = (tile / n_tiles) * kTile, n0 = (tile % n_tiles) * kTile;
      // K in blocks: a long K (the weight gradients reduce over all T*B rows) runs ~5x slower in one call.
      for (int64_t k0 = 0; k0 < k; k0 += kDepth) {
        at::native::cpublas::brgemm(std::min(kTile, m - m0), std::min(kTile, n - n0), std::min(kDepth, k - k0), lda,
                                    ldb, ldc, accumulate || k0 > 0, a + m0 * lda + k0, b + k0 * ldb + n0,
                                    c + m0 * ldc + n0, /*is_vnni=*/false);
      }
    }
  });
}
#endif

// The brgemm micro-kernel takes A and B untransposed; a transposed operand is copied once (serves() admits only
// GEMMs large enough for the copy to be noise; the kernels pre-transpose what they reuse across steps themselves).
void brgemm_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                 const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
#if defined(CPUBLAS_BRGEMM_F32F32F32)
  // From the pool: the copies are megabytes at the sizes that take this path.
  const PooledScratch<float> a_copy(trans_a ? m * k : 0), b_copy(trans_b ? k * n : 0);
  if (trans_a) {
    transpose(a, k, m, lda, a_copy.data());
    a = a_copy.data();
    lda = k;
  }
  if (trans_b) {
    transpose(b, n, k, ldb, b_copy.data());
    b = b_copy.data();
    ldb = n;
  }
  brgemm_tiles(m, n, k, a, lda, b, ldb, beta == 1.0f, c, ldc);
#endif
}

// Whether `engine` can serve this call.
template <typename scalar_t>
bool serves(GemmEngine engine, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, scalar_t alpha,
            scalar_t beta) {
  const bool plain_scaling = alpha == scalar_t(1) && (beta == scalar_t(0) || beta == scalar_t(1));
  switch (engine) {
    case GemmEngine::Rows:
      return !trans_a && trans_b && m <= 2 * kRowBlock && plain_scaling;
    case GemmEngine::Brgemm:
      // A transposed operand is copied first: only where the GEMM is large enough for the copy to be noise.
      return kHaveBrgemm && std::is_same_v<scalar_t, float> && k > 0 && plain_scaling && !(trans_a && n < 64) &&
             !(trans_b && m < 64);
    case GemmEngine::Blas:
      return fortran_gemm(static_cast<scalar_t*>(nullptr)) != nullptr && k > 0 &&
             std::max({m, n, k}) <= INT_MAX;
    case GemmEngine::Eigen:
      return true;
    case GemmEngine::Auto:
      break;
  }
  return false;
}

template <typename scalar_t>
void run_engine(GemmEngine engine, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, scalar_t alpha,
                const scalar_t* a, int64_t lda, const scalar_t* b, int64_t ldb, scalar_t beta, scalar_t* c,
                int64_t ldc) {
  switch (engine) {
    case GemmEngine::Rows:
      small_rows_gemm_bt(m, n, k, a, lda, b, ldb, beta == scalar_t(1), c, ldc);
      return;
    case GemmEngine::Brgemm:
      if constexpr (std::is_same_v<scalar_t, float>) {  // serves() admits float only
        brgemm_gemm(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc);
      }
      return;
    case GemmEngine::Blas:
      blas_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      return;
    default:
      eigen_gemm_columns(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
}

// The class of shapes that share a measured choice: exact row counts up to 16 (where the few-row kernels differ
// most), powers of two above, and whether the call runs inside a thread team (then every engine runs on one thread).
int64_t size_class(int64_t size) {
  int64_t bits = 0;
  while ((int64_t{1} << bits) < size) ++bits;
  return bits;
}

uint64_t shape_class(bool is_double, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, bool in_team) {
  const uint64_t rows = m <= 16 ? static_cast<uint64_t>(m) : 16 + size_class(m);
  return static_cast<uint64_t>(is_double) | uint64_t(trans_a) << 1 | uint64_t(trans_b) << 2 | uint64_t(in_team) << 3 |
         rows << 8 | static_cast<uint64_t>(size_class(n)) << 16 | static_cast<uint64_t>(size_class(k)) << 24;
}

// Times every engine that serves the call on a part of it (at most 128 x 1024 x 1024, into scratch: C untouched)
// and returns the fastest. Once per shape class and process.
template <typename scalar_t>
GemmEngine measure(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, scalar_t alpha, const scalar_t* a,
                   int64_t lda, const scalar_t* b, int64_t ldb, scalar_t beta) {
  const int64_t trial_m = std::min<int64_t>(m, 128), trial_n = std::min<int64_t>(n, 1024);
  const int64_t trial_k = std::min<int64_t>(k, 1024);
  const PooledScratch<scalar_t> scratch(trial_m * trial_n);
  std::fill(scratch.data(), scratch.data() + trial_m * trial_n, scalar_t(0));
  GemmEngine best = GemmEngine::Eigen;
  double best_seconds = 0;
  for (GemmEngine engine : {GemmEngine::Rows, GemmEngine::Brgemm, GemmEngine::Blas, GemmEngine::Eigen}) {
    if (!serves(engine, trans_a, trans_b, m, n, k, alpha, beta)) continue;
    double seconds = 0;
    for (int run = 0; run < 3; ++run) {  // the first run warms caches and any lazy set-up; the best of the others
      const auto start = std::chrono::steady_clock::now();
      run_engine(engine, trans_a, trans_b, trial_m, trial_n, trial_k, alpha, a, lda, b, ldb, beta, scratch.data(),
                 trial_n);
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (run == 1 || (run > 1 && elapsed < seconds)) seconds = elapsed;
    }
    if (best_seconds == 0 || seconds < best_seconds) {
      best = engine;
      best_seconds = seconds;
    }
  }
  return best;
}

// The engine of a call: forced (FASTLSTM_GEMM), or measured once per shape class (cached per thread, then in the
// process-wide table).
template <typename scalar_t>
GemmEngine choose_engine(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, scalar_t alpha,
                         const scalar_t* a, int64_t lda, const scalar_t* b, int64_t ldb, scalar_t beta) {
  const GemmEngine forced = gemm_engine();
  if (forced != GemmEngine::Auto) {
    // As before measuring: brgemm forced keeps the few-row kernel for 2-16 rows (it beats brgemm's packing there).
    if (forced == GemmEngine::Brgemm && m >= 2 && serves(GemmEngine::Rows, trans_a, trans_b, m, n, k, alpha, beta)) {
      return GemmEngine::Rows;
    }
    return serves(forced, trans_a, trans_b, m, n, k, alpha, beta) ? forced : GemmEngine::Eigen;
  }
  const bool in_team = at::in_parallel_region() || omp_in_parallel();
  const uint64_t key = shape_class(std::is_same_v<scalar_t, double>, trans_a, trans_b, m, n, k, in_team);
  thread_local std::unordered_map<uint64_t, GemmEngine> seen;
  auto it = seen.find(key);
  if (it != seen.end() && serves(it->second, trans_a, trans_b, m, n, k, alpha, beta)) return it->second;
  GemmEngine engine;
  if (!find_choice(key, &engine) || !serves(engine, trans_a, trans_b, m, n, k, alpha, beta)) {
    engine = measure(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta);
    char description[128];
    std::snprintf(description, sizeof(description), "%s m=%lld n=%lld k=%lld%s%s%s", 
                  std::is_same_v<scalar_t, double> ? "f64" : "f32", static_cast<long long>(m),
                  static_cast<long long>(n), static_cast<long long>(k), trans_a ? " A^T" : "", trans_b ? " B^T" : "",
                  in_team ? " (in team)" : "");
    record_choice(key, engine, description);
  }
  seen[key] = engine;
  return engine;
}

}  // namespace

template <typename scalar_t>
void transpose(const scalar_t* in, int64_t rows, int64_t cols, int64_t ld_in, scalar_t* out, int64_t ld_out) {
  if (ld_out == 0) ld_out = rows;
  constexpr int64_t kBlock = 32;
  const int64_t col_blocks = (cols + kBlock - 1) / kBlock;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, rows * kBlock));
  at::parallel_for(0, col_blocks, grain, [&](int64_t begin, int64_t end) {
    for (int64_t c0 = begin * kBlock; c0 < std::min(cols, end * kBlock); c0 += kBlock) {
      const int64_t c1 = std::min(cols, c0 + kBlock);
      for (int64_t r0 = 0; r0 < rows; r0 += kBlock) {
        const int64_t r1 = std::min(rows, r0 + kBlock);
        for (int64_t c = c0; c < c1; ++c) {
          for (int64_t r = r0; r < r1; ++r) out[c * ld_out + r] = in[r * ld_in + c];
        }
      }
    }
  });
}

template <typename scalar_t>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, scalar_t alpha, const scalar_t* a,
          int64_t lda, const scalar_t* b, int64_t ldb, scalar_t beta, scalar_t* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  const GemmEngine engine = choose_engine(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta);
  run_engine(engine, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template void transpose<float>(const float*, int64_t, int64_t, int64_t, float*, int64_t);
template void transpose<double>(const double*, int64_t, int64_t, int64_t, double*, int64_t);
template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t);

}  // namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE
