// CPU time loops of one LSTM layer and direction (see lstm_params.h for the shapes), compiled once per
// instruction-set level (cpu_capability.h). lstm_forward / lstm_backward run the level this process picked.
#pragma once

#include "../lstm_params.h"

namespace fastlstm::cpu {

// Reads x, h0, c0, weights, options; writes output (if set), h_n, c_n and the workspace (if set: training).
template <typename scalar_t>
void lstm_forward(const LstmParams<scalar_t>& p);

// Reads the forward inputs, saved_output, saved_workspace and the incoming gradients; writes every grad_* (and the
// grad_pre scratch).
template <typename scalar_t>
void lstm_backward(const LstmParams<scalar_t>& p);

// One level's kernels (lstm_kernel.cpp, compiled per level into namespace isa_<level>), per dtype.
template <typename scalar_t>
struct LevelKernels {
  void (*forward)(const LstmParams<scalar_t>&);
  void (*backward)(const LstmParams<scalar_t>&);
};
struct KernelTable {
  LevelKernels<float> f32;
  LevelKernels<double> f64;
};

namespace isa_baseline {
extern const KernelTable kernel_table;
}
namespace isa_avx2 {
extern const KernelTable kernel_table;
}
namespace isa_avx512 {
extern const KernelTable kernel_table;
}

}  // namespace fastlstm::cpu
