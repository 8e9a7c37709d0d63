// The bf16 kernels' shared pieces (lstm_bf16_kernel.cpp, layer_norm_lstm_kernel.cpp), compiled per level: products
// on oneDNN's brgemm in fixed tiles, and float -> bfloat16 rounding that keeps the loops vectorised.
#pragma once

#include <ATen/native/CPUBlas.h>
#include <c10/util/BFloat16.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "lstm_bf16_kernel.h"

#if !defined(FASTLSTM_ISA_NAMESPACE)
#error "bf16_tiles.h belongs to the per-level kernel sources (FASTLSTM_ISA_NAMESPACE undefined)"
#endif

namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE {

// brgemm's kernels are generated per shape: fixed tiles keep that to a handful (rows: what the AMX and AVX-512
// kernels block for; columns: one packed block).
constexpr int64_t kBf16RowTile = 64;

// C[m, n] (+)= A[m, k] . B[:, b_column : b_column + n], B packed in column blocks (b_column and n multiples of the
// block). Tiled by rows and blocks, K whole.
inline void bf16_gemm_tiles(int64_t m, int64_t n, int64_t k, const c10::BFloat16* a, int64_t lda,
                            const c10::BFloat16* b_packed, int64_t b_column, float* c, int64_t ldc, bool accumulate) {
  for (int64_t m0 = 0; m0 < m; m0 += kBf16RowTile) {
    for (int64_t n0 = 0; n0 < n; n0 += kBf16ColumnBlock) {
      at::native::cpublas::brgemm(std::min(kBf16RowTile, m - m0), kBf16ColumnBlock, k, lda, kBf16ColumnBlock, ldc,
                                  accumulate, a + m0 * lda, b_packed + (b_column + n0) * k, c + m0 * ldc + n0);
    }
  }
}

// float -> bfloat16 bits, rounded to nearest even, NaN kept a (quiet) NaN: c10::BFloat16's constructor rounds the
// same way, but its branch on NaN kept the gate loop scalar (measured: the loop took ~30% of a C1 step).
inline __attribute__((always_inline)) uint16_t bfloat16_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  const uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
  const uint32_t mask = 0u - static_cast<uint32_t>(value != value);
  return static_cast<uint16_t>((0x7fc0u & mask) | (rounded & ~mask));
}

inline __attribute__((always_inline)) float bfloat16_value(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &wide, sizeof(value));
  return value;
}

}  // namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE
