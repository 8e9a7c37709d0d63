// Row-major GEMM on raw pointers for the CPU time loops: no tensors, no dispatcher, no allocation per call.
//
// C[m, n] = alpha * op(A)[m, k] * op(B)[k, n] + beta * C, with lda/ldb/ldc the row strides (in elements) of the
// matrices as stored; op(X) is X or, with trans_x, X transposed. beta == 0 ignores what C held (NaN included).
#pragma once

#include <cstdint>

namespace fastlstm::cpu {

enum class GemmEngine { Brgemm, Blas, Eigen };

// Brgemm (the default where torch has it): float GEMMs with at least 64 rows (or untransposed operands) tiled onto
// torch's oneDNN batch-reduce micro-kernel (at::native::cpublas::brgemm), the only GEMM in torch that runs AVX-512
// code on AMD CPUs too (measured here on 2 EPYC cores: 350-390 GFLOP/s against MKL's 140-190); Eigen for the rest.
// Eigen: every GEMM through Eigen (faster than MKL here at every LSTM size measured). Blas: the BLAS that torch
// itself links (MKL in the x86 wheels). FASTLSTM_GEMM=blas|eigen in the environment (read once) forces one.
GemmEngine gemm_engine();

// out[cols, rows] = in[rows, cols] transposed; ld_in, ld_out are the row strides (ld_out 0: dense, = rows).
template <typename scalar_t>
void transpose(const scalar_t* in, int64_t rows, int64_t cols, int64_t ld_in, scalar_t* out, int64_t ld_out = 0);

template <typename scalar_t>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, scalar_t alpha, const scalar_t* a,
          int64_t lda, const scalar_t* b, int64_t ldb, scalar_t beta, scalar_t* c, int64_t ldc);

}  // namespace fastlstm::cpu
