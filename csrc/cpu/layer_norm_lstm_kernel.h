// CPU time loops of one layer-normalised LSTM layer and direction (layer_norm_lstm_params.h), compiled once per
// instruction-set level; layer_norm_lstm_forward / _backward run the level this process picked.
#pragma once

#include <c10/util/BFloat16.h>

#include "../layer_norm_lstm_params.h"

namespace fastlstm::cpu {

// Reads x, h0, c0, the weights and options; writes output, h_n, c_n and the workspace (if set: training).
template <typename scalar_t>
void layer_norm_lstm_forward(const LayerNormLstmParams<scalar_t>& p);

// Reads the forward inputs, saved_output, saved_workspace and the incoming gradients; writes every grad_* (and the
// two gradient scratches).
template <typename scalar_t>
void layer_norm_lstm_backward(const LayerNormLstmParams<scalar_t>& p);

// bfloat16 inference (layer_norm_lstm_op's bf16 path, cpu/lstm_bf16_op.cpp): the products on the bf16 brgemm, each
// row's norms, gates and cell in float32 (the float32 loop's row), h rounded to bf16 as it leaves each step (it is
// the next product's operand); rows split across threads as in the float32 loop, each thread running all steps of
// its rows with no barrier (a row's steps depend on that row alone).
struct LayerNormBf16Params {
  // Sizes, groups, eps, forget_bias, carry_normalized_cell, and the gains, shifts and bias in float32 (its x,
  // states, weights, mask and outputs are not read).
  LayerNormLstmParams<float> cell;
  const c10::BFloat16* x = nullptr;            // [T, B, I]
  const c10::BFloat16* h0 = nullptr;           // [B, H]
  const c10::BFloat16* w_ih_packed = nullptr;  // w_ih^T [I, 4H] in column blocks (lstm_bf16_kernel.h)
  const c10::BFloat16* w_hh_packed = nullptr;  // w_hh^T [H, 4H]
  float* c = nullptr;                          // [B, H]: c0 in, c_n out
  c10::BFloat16* output = nullptr;             // [T, B, H]
};

void layer_norm_lstm_forward_bf16(const LayerNormBf16Params& p);

template <typename scalar_t>
struct LayerNormLevelKernels {
  void (*forward)(const LayerNormLstmParams<scalar_t>&);
  void (*backward)(const LayerNormLstmParams<scalar_t>&);
};
struct LayerNormKernelTable {
  LayerNormLevelKernels<float> f32;
  LayerNormLevelKernels<double> f64;
  void (*bf16_forward)(const LayerNormBf16Params&);
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
