#include "gemm.h"

#include <dlfcn.h>

#include <Eigen/Core>
#include <cstdlib>
#include <cstring>

namespace fastlstm::cpu {
namespace {

// Fortran BLAS, LP64 (32-bit integers), column-major.
template <typename scalar_t>
using FortranGemm = void (*)(const char*, const char*, const int*, const int*, const int*, const scalar_t*,
                             const scalar_t*, const int*, const scalar_t*, const int*, const scalar_t*, scalar_t*,
                             const int*);

template <typename scalar_t>
FortranGemm<scalar_t> lookup_blas(const char* name) {
  // RTLD_DEFAULT: libtorch_cpu is already loaded (fastlstm._C is only imported after torch).
  return reinterpret_cast<FortranGemm<scalar_t>>(dlsym(RTLD_DEFAULT, name));
}

struct Blas {
  FortranGemm<float> sgemm = lookup_blas<float>("sgemm_");
  FortranGemm<double> dgemm = lookup_blas<double>("dgemm_");
  GemmEngine engine = choose_engine();

  GemmEngine choose_engine() const {
    const char* asked = std::getenv("FASTLSTM_GEMM");
    if (asked != nullptr && std::strcmp(asked, "eigen") == 0) return GemmEngine::Eigen;
    return (sgemm != nullptr && dgemm != nullptr) ? GemmEngine::Blas : GemmEngine::Eigen;
  }
};

const Blas& blas() {
  static const Blas instance;
  return instance;
}

FortranGemm<float> fortran_gemm(float*) { return blas().sgemm; }
FortranGemm<double> fortran_gemm(double*) { return blas().dgemm; }

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

}  // namespace

GemmEngine gemm_engine() { return blas().engine; }

template <typename scalar_t>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, scalar_t alpha, const scalar_t* a,
          int64_t lda, const scalar_t* b, int64_t ldb, scalar_t beta, scalar_t* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (gemm_engine() == GemmEngine::Eigen || k == 0) {
    eigen_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands, keep the flags.
  const char ta = trans_a ? 'T' : 'N';
  const char tb = trans_b ? 'T' : 'N';
  const int mi = static_cast<int>(n), ni = static_cast<int>(m), ki = static_cast<int>(k);
  const int ldai = static_cast<int>(ldb), ldbi = static_cast<int>(lda), ldci = static_cast<int>(ldc);
  fortran_gemm(static_cast<scalar_t*>(nullptr))(&tb, &ta, &mi, &ni, &ki, &alpha, b, &ldai, a, &ldbi, &beta, c,
                                                &ldci);
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t);

}  // namespace fastlstm::cpu
