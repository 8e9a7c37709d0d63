// Row-major GEMM on raw pointers for the CPU time loops: no tensors, no dispatcher, no allocation per call.
//
// C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C, with lda/ldb/ldc the row strides (in elements) of the
// matrices as stored; op(X) is X or, with trans_x, X transposed. beta == 0 ignores what C held (NaN included).
#pragma once

#include <cstdint>

namespace fastlstm::cpu {

enum class GemmEngine { Blas, Eigen };

// Blas: the BLAS that torch itself links (MKL in the x86 wheels), found at load time; Eigen when torch exports none,
// or when the environment variable FASTLSTM_GEMM=eigen asks for it (read once).
GemmEngine gemm_engine();

template <typename scalar_t>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, scalar_t alpha, const scalar_t* a,
          int64_t lda, const scalar_t* b, int64_t ldb, scalar_t beta, scalar_t* c, int64_t ldc);

}  // namespace fastlstm::cpu
