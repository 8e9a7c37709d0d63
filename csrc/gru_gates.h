// Gate math of one GRU unit (torch's / cuDNN's convention, see gru_params.h), forward and backward, shared by the
// CPU and CUDA kernels.
#pragma once

#include "activations.h"

namespace fastlstm {

template <typename scalar_t>
struct GruGatesForward {
  scalar_t r, z, n, h;
};

// in_*: W_i* x + b_i*; rec_*: W_h* h + b_h*.
template <typename scalar_t>
FASTLSTM_HOST_DEVICE GruGatesForward<scalar_t> gru_gates_forward(scalar_t in_r, scalar_t in_z, scalar_t in_n,
                                                                 scalar_t rec_r, scalar_t rec_z, scalar_t rec_n,
                                                                 scalar_t h_prev) {
  GruGatesForward<scalar_t> g;
  g.r = sigmoid(in_r + rec_r);
  g.z = sigmoid(in_z + rec_z);
  g.n = tanh_act(in_n + g.r * rec_n);
  g.h = (scalar_t(1) - g.z) * g.n + g.z * h_prev;
  return g;
}

template <typename scalar_t>
struct GruGatesBackward {
  scalar_t d_r, d_z, d_in_n;  // gradients of the pre-activations r, z and of W_in x + b_in
  scalar_t d_rec_n;           // of W_hn h + b_hn
  scalar_t d_h_prev;          // the part of h_prev's gradient that does not pass through W_hh
};

// d_h: the gradient arriving at h' (from the output, the next step and the final state).
template <typename scalar_t>
FASTLSTM_HOST_DEVICE GruGatesBackward<scalar_t> gru_gates_backward(scalar_t r, scalar_t z, scalar_t n, scalar_t rec_n,
                                                                   scalar_t h_prev, scalar_t d_h) {
  GruGatesBackward<scalar_t> g;
  const scalar_t d_pre_n = d_h * (scalar_t(1) - z) * (scalar_t(1) - n * n);
  g.d_in_n = d_pre_n;
  g.d_rec_n = d_pre_n * r;
  g.d_r = d_pre_n * rec_n * r * (scalar_t(1) - r);
  g.d_z = d_h * (h_prev - n) * z * (scalar_t(1) - z);
  g.d_h_prev = d_h * z;
  return g;
}

}  // namespace fastlstm
