// CPU time loops of one LSTM layer and direction (see lstm_params.h for the shapes).
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

}  // namespace fastlstm::cpu
