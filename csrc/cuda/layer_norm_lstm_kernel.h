// CUDA time loops of one layer-normalised LSTM layer and direction (layer_norm_lstm_params.h): cuBLAS GEMMs and one
// kernel per step with a thread block per batch row (the row's norms are block reductions), on the current stream.
#pragma once

#include "../layer_norm_lstm_params.h"

namespace fastlstm::cuda {

template <typename scalar_t>
void layer_norm_lstm_forward(const LayerNormLstmParams<scalar_t>& p);

template <typename scalar_t>
void layer_norm_lstm_backward(const LayerNormLstmParams<scalar_t>& p);

}  // namespace fastlstm::cuda
