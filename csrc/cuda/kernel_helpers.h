// What every CUDA time loop (lstm_kernel.cu, layer_norm_lstm_kernel.cu, gru_kernel.cu) uses around its own
// kernels: launch sizes, non-owning tensor views of kernel memory for ATen's cuBLAS GEMMs and reductions, the GEMM,
// and the state copies.
#pragma once

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>

namespace fastlstm::cuda {

// Threads per block of the pointwise kernels over (row, unit).
constexpr int kThreads = 256;

inline int blocks_for(int64_t count) { return static_cast<int>((count + kThreads - 1) / kThreads); }

template <typename scalar_t>
at::TensorOptions options_of() {
  return at::TensorOptions()
      .dtype(c10::CppTypeToScalarType<scalar_t>::value)
      .device(at::kCUDA, at::cuda::current_device());
}

// A non-owning, contiguous tensor view of kernel memory.
template <typename scalar_t>
at::Tensor view_of(const scalar_t* data, at::IntArrayRef sizes) {
  return at::from_blob(const_cast<scalar_t*>(data), sizes, options_of<scalar_t>());
}

// A non-owning [rows, cols] view with row stride ld.
template <typename scalar_t>
at::Tensor matrix(const scalar_t* data, int64_t rows, int64_t cols, int64_t ld) {
  return at::from_blob(const_cast<scalar_t*>(data), {rows, cols}, {ld, 1}, options_of<scalar_t>());
}

// Row-major C[m, n] = alpha op(A) op(B) + beta C (row strides lda/ldb/ldc) through ATen's addmm, i.e. cuBLAS on the
// current stream. (ATen does not export its raw cuBLAS wrappers; addmm on strided views reaches the same call.)
// beta == 0 ignores what C held, NaN included.
template <typename scalar_t>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, scalar_t alpha, const scalar_t* a,
          int64_t lda, const scalar_t* b, int64_t ldb, scalar_t beta, scalar_t* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  const at::Tensor a_op = trans_a ? matrix(a, k, m, lda).t() : matrix(a, m, k, lda);
  const at::Tensor b_op = trans_b ? matrix(b, n, k, ldb).t() : matrix(b, k, n, ldb);
  matrix(c, m, n, ldc).addmm_(a_op, b_op, beta, alpha);
}

// destination[0, count) = source's, or zeros when there is no source (an absent initial state or gradient).
template <typename scalar_t>
void copy_or_zero(scalar_t* destination, const scalar_t* source, int64_t count, cudaStream_t stream) {
  const size_t bytes = count * sizeof(scalar_t);
  if (source != nullptr) {
    C10_CUDA_CHECK(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyDeviceToDevice, stream));
  } else {
    C10_CUDA_CHECK(cudaMemsetAsync(destination, 0, bytes, stream));
  }
}

// h_n [B, H] = each row's output at its last running step (p: a cell's params with seq_len, batch, hidden_size,
// rows_at(t), output [T, B, H], h_n; rows sorted longest first, rows that never run keep what h_n holds: h0).
template <typename Params>
void copy_last_outputs(const Params& p, cudaStream_t stream) {
  const int64_t T = p.seq_len, B = p.batch, H = p.hidden_size;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t from = t + 1 < T ? p.rows_at(t + 1) : 0, to = p.rows_at(t);
    if (to > from) {
      C10_CUDA_CHECK(cudaMemcpyAsync(p.h_n + from * H, p.output + (t * B + from) * H,
                                     (to - from) * H * sizeof(*p.h_n), cudaMemcpyDeviceToDevice, stream));
    }
  }
}

}  // namespace fastlstm::cuda
