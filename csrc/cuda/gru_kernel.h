// CUDA time loops of one GRU layer and direction (gru_params.h), both conventions, on the current stream.
#pragma once

#include "../gru_params.h"

namespace fastlstm::cuda {

template <typename scalar_t>
void gru_forward(const GruParams<scalar_t>& p);

template <typename scalar_t>
void gru_backward(const GruParams<scalar_t>& p);

}  // namespace fastlstm::cuda
