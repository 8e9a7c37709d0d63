// Gate math of one LSTM unit, forward and backward, shared by the CPU and CUDA kernels.
//
// Torch gate order (i, f, g, o). TF LSTMBlockCell options are folded in:
//   i = sigmoid(pre_i + w_ci * c_prev)
//   f = sigmoid(pre_f + forget_bias + w_cf * c_prev)
//   g = tanh(pre_g)
//   c = clip(f * c_prev + i * g, +-cell_clip)        (cell_clip <= 0: no clip)
//   o = sigmoid(pre_o + w_co * c)                     (o's peephole reads the new, clipped c)
//   h = o * tanh(c)
// With peepholes off (kPeephole false) no product with c is formed at all: 0 * inf would put a NaN where the
// plain LSTM (and torch) has none.
#pragma once

#include "activations.h"

namespace fastlstm {

template <typename scalar_t>
FASTLSTM_HOST_DEVICE scalar_t clip_cell(scalar_t c, scalar_t cell_clip) {
  if (cell_clip > scalar_t(0)) {
    c = c > cell_clip ? cell_clip : c;
    c = c < -cell_clip ? -cell_clip : c;
  }
  return c;
}

// Peephole weights of one unit (unused when kPeephole is false).
template <typename scalar_t>
struct Peephole {
  scalar_t input, forget, output;
};

// w_peephole [3, H] rows (w_ci, w_cf, w_co) at unit j.
template <typename scalar_t, bool kPeephole>
FASTLSTM_HOST_DEVICE Peephole<scalar_t> peephole_at(const scalar_t* w_peephole, int64_t hidden_size, int64_t j) {
  if constexpr (!kPeephole) return {scalar_t(0), scalar_t(0), scalar_t(0)};
  return {w_peephole[j], w_peephole[hidden_size + j], w_peephole[2 * hidden_size + j]};
}

template <typename scalar_t>
struct GatesForward {
  scalar_t i, f, g, o;  // activated gates
  scalar_t c, h;        // new (clipped) cell and hidden state
};

template <typename scalar_t, bool kPeephole>
FASTLSTM_HOST_DEVICE GatesForward<scalar_t> gates_forward(
    scalar_t pre_i, scalar_t pre_f, scalar_t pre_g, scalar_t pre_o, scalar_t c_prev,
    Peephole<scalar_t> peephole, scalar_t forget_bias, scalar_t cell_clip) {
  GatesForward<scalar_t> r;
  r.i = sigmoid(kPeephole ? pre_i + peephole.input * c_prev : pre_i);
  r.f = sigmoid(kPeephole ? pre_f + forget_bias + peephole.forget * c_prev : pre_f + forget_bias);
  r.g = tanh_act(pre_g);
  r.c = clip_cell(r.f * c_prev + r.i * r.g, cell_clip);
  r.o = sigmoid(kPeephole ? pre_o + peephole.output * r.c : pre_o);
  r.h = r.o * tanh_act(r.c);
  return r;
}

template <typename scalar_t>
struct GatesBackward {
  scalar_t d_pre_i, d_pre_f, d_pre_g, d_pre_o;  // gradients of the pre-activations
  scalar_t d_c_prev;                            // gradient flowing to the previous cell state
};

// d_h, d_c: gradients arriving at this step's h and c (from the output, the next step and the final state).
// The clip's gradient is the true one: zero where the cell was clipped. (TF's fused kernels pass it straight through.)
template <typename scalar_t, bool kPeephole>
FASTLSTM_HOST_DEVICE GatesBackward<scalar_t> gates_backward(
    scalar_t i, scalar_t f, scalar_t g, scalar_t o, scalar_t c, scalar_t c_prev,
    scalar_t d_h, scalar_t d_c, Peephole<scalar_t> peephole, scalar_t cell_clip) {
  GatesBackward<scalar_t> r;
  const scalar_t tanh_c = tanh_act(c);
  r.d_pre_o = d_h * tanh_c * o * (scalar_t(1) - o);
  scalar_t d_c_total = d_c + d_h * o * (scalar_t(1) - tanh_c * tanh_c);
  if constexpr (kPeephole) d_c_total += r.d_pre_o * peephole.output;
  // Non-short-circuit & and |: && and || are branches, which keep the loop from vectorising.
  const bool clipped = (cell_clip > scalar_t(0)) & ((c >= cell_clip) | (c <= -cell_clip));
  d_c_total = select_value(clipped, scalar_t(0), d_c_total);
  r.d_pre_i = d_c_total * g * i * (scalar_t(1) - i);
  r.d_pre_f = d_c_total * c_prev * f * (scalar_t(1) - f);
  r.d_pre_g = d_c_total * i * (scalar_t(1) - g * g);
  r.d_c_prev = d_c_total * f;
  if constexpr (kPeephole) r.d_c_prev += r.d_pre_i * peephole.input + r.d_pre_f * peephole.forget;
  return r;
}

}  // namespace fastlstm
