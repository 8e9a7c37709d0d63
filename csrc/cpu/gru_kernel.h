// CPU time loops of one GRU layer and direction (gru_params.h), compiled once per instruction-set level;
// gru_forward / gru_backward run the level this process picked.
#pragma once

#include "../gru_params.h"

namespace fastlstm::cpu {

// Reads x, h0 and the weights; writes output, h_n and the workspace (if set: training).
template <typename scalar_t>
void gru_forward(const GruParams<scalar_t>& p);

// Reads the forward inputs, saved_output, saved_workspace and the incoming gradients; writes every grad_* (and the
// two gradient scratches).
template <typename scalar_t>
void gru_backward(const GruParams<scalar_t>& p);

template <typename scalar_t>
struct GruLevelKernels {
  void (*forward)(const GruParams<scalar_t>&);
  void (*backward)(const GruParams<scalar_t>&);
};
struct GruKernelTable {
  GruLevelKernels<float> f32;
  GruLevelKernels<double> f64;
};

namespace isa_baseline {
extern const GruKernelTable gru_kernel_table;
}
namespace isa_avx2 {
extern const GruKernelTable gru_kernel_table;
}
namespace isa_avx512 {
extern const GruKernelTable gru_kernel_table;
}

}  // namespace fastlstm::cpu
