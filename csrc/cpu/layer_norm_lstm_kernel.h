// CPU time loops of one layer-normalised LSTM layer and direction (layer_norm_lstm_params.h), compiled once per
// instruction-set level; layer_norm_lstm_forward / _backward run the level this process picked.
#pragma once

#include "../layer_norm_lstm_params.h"

namespace fastlstm::cpu {

// Reads x, h0, c0, the weights and options; writes output, h_n, c_n and the workspace (if set: training).
template <typename scalar_t>
void layer_norm_lstm_forward(const LayerNormLstmParams<scalar_t>& p);

// Reads the forward inputs, saved_output, saved_workspace and the incoming gradients; writes every grad_* (and the
// two gradient scratches).
template <typename scalar_t>
void layer_norm_lstm_backward(const LayerNormLstmParams<scalar_t>& p);

template <typename scalar_t>
struct LayerNormLevelKernels {
  void (*forward)(const LayerNormLstmParams<scalar_t>&);
  void (*backward)(const LayerNormLstmParams<scalar_t>&);
};
struct LayerNormKernelTable {
  LayerNormLevelKernels<float> f32;
  LayerNormLevelKernels<double> f64;
};

namespace isa_baseline {
extern const LayerNormKernelTable layer_norm_kernel_table;
}
namespace isa_avx2 {
extern const LayerNormKernelTable layer_norm_kernel_table;
}
namespace isa_avx512 {
extern const LayerNormKernelTable layer_norm_kernel_table;
}

}  // namespace fastlstm::cpu
