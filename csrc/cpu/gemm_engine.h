// Which GEMM the CPU kernels call, and the BLAS that torch links. One copy per process (baseline code), shared by
// the per-level kernels of gemm.h.
//
// Engines: Rows, fastlstm's own kernel for a few rows against a transposed weight (single steps, small batches);
// Brgemm, torch's oneDNN batch-reduce micro-kernel (at::native::cpublas::brgemm; float32); Blas, the BLAS torch
// itself links (MKL in the x86 wheels); Eigen, compiled per instruction-set level. Which is fastest depends on the
// host (measured: brgemm fastest on AMD Zen 4, slowest on Zen 1; MKL slow on Zen 4), so by default (Auto) each
// shape class is timed once per process on every engine that can serve it and the fastest kept.
// FASTLSTM_GEMM=brgemm|blas|eigen (read once) forces one instead, with Eigen where it cannot serve a call.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../export.h"

namespace fastlstm::cpu {

enum class GemmEngine { Auto, Rows, Brgemm, Blas, Eigen };

FASTLSTM_API const char* engine_name(GemmEngine engine);

// Auto, or the engine FASTLSTM_GEMM forces.
FASTLSTM_API GemmEngine gemm_engine();

// Fortran BLAS, LP64, column-major; nullptr where torch exports none.
template <typename scalar_t>
using FortranGemm = void (*)(const char*, const char*, const int*, const int*, const int*, const scalar_t*,
                             const scalar_t*, const int*, const scalar_t*, const int*, const scalar_t*, scalar_t*,
                             const int*);
FortranGemm<float> blas_sgemm();
FortranGemm<double> blas_dgemm();

// The measured choices: a shape class (see gemm.cpp's shape_class) -> the engine that won. Recorded by the kernels,
// read by fastlstm.cpu_capability() and the benchmark.
bool find_choice(uint64_t shape_class, GemmEngine* engine);
void record_choice(uint64_t shape_class, GemmEngine engine, std::string description);
FASTLSTM_API std::vector<std::pair<std::string, std::string>> recorded_choices();  // (shape class, engine)

}  // namespace fastlstm::cpu
