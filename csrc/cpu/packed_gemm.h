// The per-step recurrent GEMM of the float time loops on weights packed once per call, with one register-blocked
// FMA micro-kernel (as ONNX Runtime's MLAS: B in contiguous panels of two vectors' width, a tile of rows x panel
// accumulated in registers over the whole K). The general engines pack the weight on every call, or go through a
// kernel cache per call: at the small per-step shapes (tens of rows, K = H) that costs as much as the product.
//
// Compiled per instruction-set level (include it only from the per-level sources): the vector width and the tile
// come from the level's flags.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#if !defined(FASTLSTM_ISA_NAMESPACE)
#error "packed_gemm.h belongs to the per-level kernel sources (FASTLSTM_ISA_NAMESPACE undefined)"
#endif

namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE {

#if defined(__AVX512F__)
constexpr int64_t kVectorFloats = 16;
constexpr int64_t kTileRows = 8;  // 16 of the 32 zmm registers accumulate (at most 8: see panel_rows)
#elif defined(__AVX2__)
constexpr int64_t kVectorFloats = 8;
constexpr int64_t kTileRows = 6;  // 12 of the 16 ymm registers accumulate (MLAS's 6 x 16)
#else
constexpr int64_t kVectorFloats = 4;
constexpr int64_t kTileRows = 6;  // 12 of the 16 xmm registers
#endif
static_assert(kTileRows <= 8, "panel_rows has kernels for up to 8 rows");
// Output columns per panel: two vectors.
constexpr int64_t kPanelColumns = 2 * kVectorFloats;

// aligned(4): loads and stores through it may be unaligned (as GCC's own __m256_u).
typedef float FloatVector __attribute__((vector_size(kVectorFloats * sizeof(float)), aligned(4)));

// The panels of B [K, N] for columns [n0, n0 + width): panel q holds columns n0 + q * kPanelColumns + [0,
// kPanelColumns) as [K][kPanelColumns], zero past width. B given as b_kn [K, N] (row stride ldb) or, if b_kn is
// null, as its transpose b_nk [N, K] (row stride ldb).
inline int64_t panel_count(int64_t width) { return (width + kPanelColumns - 1) / kPanelColumns; }

inline void pack_panels(const float* b_kn, const float* b_nk, int64_t ldb, int64_t k, int64_t n0, int64_t width,
                        float* panels) {
  for (int64_t q = 0; q < panel_count(width); ++q) {
    float* panel = panels + q * k * kPanelColumns;
    const int64_t column0 = n0 + q * kPanelColumns;
    const int64_t columns = std::min(kPanelColumns, n0 + width - column0);
    for (int64_t p = 0; p < k; ++p) {
      float* out = panel + p * kPanelColumns;
      if (b_kn != nullptr) {
        std::copy(b_kn + p * ldb + column0, b_kn + p * ldb + column0 + columns, out);
      } else {
        for (int64_t col = 0; col < columns; ++col) out[col] = b_nk[(column0 + col) * ldb + p];
      }
      std::fill(out + columns, out + kPanelColumns, 0.0f);
    }
  }
}

// C[kRows, columns] (+)= A[kRows, K] . panel[K, columns], columns <= kPanelColumns.
template <int kRows>
inline void panel_tile(int64_t k, const float* __restrict__ a, int64_t lda, const float* __restrict__ panel,
                       int64_t columns, bool accumulate, float* __restrict__ c, int64_t ldc) {
  FloatVector acc[kRows][2];
  for (int r = 0; r < kRows; ++r) acc[r][0] = acc[r][1] = FloatVector{};
  for (int64_t p = 0; p < k; ++p) {
    const FloatVector b0 = *reinterpret_cast<const FloatVector*>(panel + p * kPanelColumns);
    const FloatVector b1 = *reinterpret_cast<const FloatVector*>(panel + p * kPanelColumns + kVectorFloats);
    for (int r = 0; r < kRows; ++r) {
      const float a_rp = a[r * lda + p];
      acc[r][0] += a_rp * b0;
      acc[r][1] += a_rp * b1;
    }
  }
  for (int r = 0; r < kRows; ++r) {
    float* out = c + r * ldc;
    if (columns == kPanelColumns) {
      FloatVector* out0 = reinterpret_cast<FloatVector*>(out);
      FloatVector* out1 = reinterpret_cast<FloatVector*>(out + kVectorFloats);
      *out0 = accumulate ? *out0 + acc[r][0] : acc[r][0];
      *out1 = accumulate ? *out1 + acc[r][1] : acc[r][1];
    } else {
      float sums[kPanelColumns];
      std::memcpy(sums, &acc[r][0], sizeof(FloatVector));
      std::memcpy(sums + kVectorFloats, &acc[r][1], sizeof(FloatVector));
      for (int64_t col = 0; col < columns; ++col) out[col] = accumulate ? out[col] + sums[col] : sums[col];
    }
  }
}

// One row (single steps, batch 1): the same product with four independent accumulator pairs over K, since one pair
// is a chain of dependent FMAs (latency-bound: C3's backward ran 2x slower on it than on Eigen's GEMV).
inline void panel_row(int64_t k, const float* __restrict__ a, const float* __restrict__ panel, int64_t columns,
                      bool accumulate, float* __restrict__ c) {
  FloatVector acc[4][2];
  for (int u = 0; u < 4; ++u) acc[u][0] = acc[u][1] = FloatVector{};
  int64_t p = 0;
  for (; p + 4 <= k; p += 4) {
    for (int u = 0; u < 4; ++u) {
      const float* b = panel + (p + u) * kPanelColumns;
      acc[u][0] += a[p + u] * *reinterpret_cast<const FloatVector*>(b);
      acc[u][1] += a[p + u] * *reinterpret_cast<const FloatVector*>(b + kVectorFloats);
    }
  }
  for (; p < k; ++p) {
    const float* b = panel + p * kPanelColumns;
    acc[0][0] += a[p] * *reinterpret_cast<const FloatVector*>(b);
    acc[0][1] += a[p] * *reinterpret_cast<const FloatVector*>(b + kVectorFloats);
  }
  FloatVector sum[2] = {(acc[0][0] + acc[1][0]) + (acc[2][0] + acc[3][0]),
                        (acc[0][1] + acc[1][1]) + (acc[2][1] + acc[3][1])};
  float sums[kPanelColumns];
  std::memcpy(sums, &sum[0], sizeof(FloatVector));
  std::memcpy(sums + kVectorFloats, &sum[1], sizeof(FloatVector));
  for (int64_t col = 0; col < columns; ++col) c[col] = accumulate ? c[col] + sums[col] : sums[col];
}

// C[rows, columns] (+)= A[rows, K] . panel for rows <= kTileRows: the tile kernel of that height.
inline void panel_rows(int64_t rows, int64_t k, const float* a, int64_t lda, const float* panel, int64_t columns,
                       bool accumulate, float* c, int64_t ldc) {
  switch (rows) {
    case 0: break;
    case 1: panel_row(k, a, panel, columns, accumulate, c); break;
    case 2: panel_tile<2>(k, a, lda, panel, columns, accumulate, c, ldc); break;
    case 3: panel_tile<3>(k, a, lda, panel, columns, accumulate, c, ldc); break;
    case 4: panel_tile<4>(k, a, lda, panel, columns, accumulate, c, ldc); break;
    case 5: panel_tile<5>(k, a, lda, panel, columns, accumulate, c, ldc); break;
    case 6: panel_tile<6>(k, a, lda, panel, columns, accumulate, c, ldc); break;
    case 7: panel_tile<7>(k, a, lda, panel, columns, accumulate, c, ldc); break;
    default: panel_tile<kTileRows>(k, a, lda, panel, columns, accumulate, c, ldc); break;
  }
}

// C[rows, width] (+)= A[rows, K] . B for the packed columns (see pack_panels), panel by panel (each stays in L1
// while every row tile passes over it).
inline void packed_gemm(int64_t rows, int64_t k, const float* a, int64_t lda, const float* panels, int64_t width,
                        bool accumulate, float* c, int64_t ldc) {
  for (int64_t q = 0; q < panel_count(width); ++q) {
    const float* panel = panels + q * k * kPanelColumns;
    const int64_t columns = std::min(kPanelColumns, width - q * kPanelColumns);
    for (int64_t row = 0; row < rows; row += kTileRows) {
      panel_rows(std::min(kTileRows, rows - row), k, a + row * lda, lda, panel, columns, accumulate,
                 c + row * ldc + q * kPanelColumns, ldc);
    }
  }
}

}  // namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE
