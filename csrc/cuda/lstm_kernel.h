// CUDA time loops of one LSTM layer and direction (see lstm_params.h for the shapes). Everything runs on the current
// stream: cuBLAS GEMMs (through ATen's wrapper) and one fused pointwise kernel per step, forward and backward.
#pragma once

#include "../lstm_params.h"

namespace fastlstm::cuda {

template <typename scalar_t>
void lstm_forward(const LstmParams<scalar_t>& p);

template <typename scalar_t>
void lstm_backward(const LstmParams<scalar_t>& p);

}  // namespace fastlstm::cuda
