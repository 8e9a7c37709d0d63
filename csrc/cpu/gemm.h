// Row-major GEMM on raw pointers for the CPU time loops: no tensors, no dispatcher, no allocation per call.
// Compiled once per instruction-set level: include it only from the per-level kernel sources (CMakeLists.txt
// defines FASTLSTM_ISA_NAMESPACE for them).
//
// C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C, with lda/ldb/ldc the row strides (in elements) of the
// matrices as stored; op(X) is X or, with trans_x, X transposed. beta == 0 ignores what C held (NaN included).
// The engine is gemm_engine.h's: forced, or measured per shape class.
#pragma once

#include <cstdint>

#include "gemm_engine.h"

#if !defined(FASTLSTM_ISA_NAMESPACE)
#error "gemm.h belongs to the per-level kernel sources (FASTLSTM_ISA_NAMESPACE undefined)"
#endif

namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE {

// out[cols, rows] = in[rows, cols] transposed; ld_in, ld_out are the row strides (ld_out 0: dense, = rows).
template <typename scalar_t>
void transpose(const scalar_t* in, int64_t rows, int64_t cols, int64_t ld_in, scalar_t* out, int64_t ld_out = 0);

template <typename scalar_t>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, scalar_t alpha, const scalar_t* a,
          int64_t lda, const scalar_t* b, int64_t ldb, scalar_t beta, scalar_t* c, int64_t ldc);

}  // namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE
