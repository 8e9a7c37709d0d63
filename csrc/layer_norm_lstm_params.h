// The parameter block of the layer-normalised LSTM kernels (forward and backward), and its workspace layout.
//
// One formulation covers both layer-norm LSTMs people use (torch gate order i, f, g, o; LN = (v - mean) / sqrt(var +
// eps), biased variance, over groups of the 4H pre-activations or over the H cell values):
//   a = W_ih x, r = W_hh h                                              [4H] each
//   separate norms (ln_hh_weight given; haste / Ba et al.):  pre = LN(a) * ln_ih_weight + LN(r) * ln_hh_weight + bias
//   joint norm (ln_hh_weight null; TF1's LayerNormBasicLSTMCell):  pre = LN(a + r) * ln_ih_weight + bias
//   i = sigmoid(pre_i), f = sigmoid(pre_f + forget_bias), g = tanh(pre_g) * g_mask, o = sigmoid(pre_o)
//   c_raw = f * c_prev + i * g,  n = LN(c_raw) * ln_cell_weight + ln_cell_bias,  h = o * tanh(n)
//   carried c: c_raw (haste), or n with carry_normalized_cell (TF: its "state" norm is part of the state).
// `groups` splits each 4H row into that many norms of 4H / groups values: 1 (haste: one norm over all gates) or 4
// (TF: one per gate). TF's per-gate shift is `bias`.
//
// Sizes: T = seq_len, B = batch, I = input_size, H = hidden_size, G = 4H. Rows sorted longest first as in
// lstm_params.h (active_rows).
#pragma once

#include <cstdint>

namespace fastlstm {

// Workspace of one step and row (width layer_norm_workspace_width(H, separate)):
//   [0, 4H) activated gates i, f, g (before the mask), o | [4H, 5H) carried c | [5H, 6H) LN(c_raw) before its gain
//   | [6H, 10H) LN(a) (separate) or LN(a + r) (joint) before its gain | [10H, 14H) LN(r) (separate only)
//   | kLayerNormStats values: 1/sqrt(var + eps) of the input norms (groups), of the recurrent norms (groups), of c.
constexpr int64_t kLayerNormStats = 16;
constexpr int64_t kLayerNormUnitsSeparate = 14;
constexpr int64_t kLayerNormUnitsJoint = 10;

inline int64_t layer_norm_workspace_width(int64_t hidden_size, bool separate) {
  return (separate ? kLayerNormUnitsSeparate : kLayerNormUnitsJoint) * hidden_size + kLayerNormStats;
}

template <typename scalar_t>
struct LayerNormLstmParams {
  int64_t seq_len = 0;
  int64_t batch = 0;
  int64_t input_size = 0;
  int64_t hidden_size = 0;
  const int64_t* active_rows = nullptr;  // [T] or nullptr (all rows run every step)

  int64_t groups = 1;  // norms per 4H row: 1 or 4
  scalar_t eps = 0;
  scalar_t forget_bias = 0;
  bool carry_normalized_cell = false;

  // Inputs.
  const scalar_t* x = nullptr;               // [T, B, I]
  const scalar_t* h0 = nullptr;              // [B, H]
  const scalar_t* c0 = nullptr;              // [B, H]
  const scalar_t* w_ih = nullptr;            // [4H, I]
  const scalar_t* w_hh = nullptr;            // [4H, H]
  const scalar_t* bias = nullptr;            // [4H] (zeros for none)
  const scalar_t* ln_ih_weight = nullptr;    // [4H]
  const scalar_t* ln_hh_weight = nullptr;    // [4H]; nullptr: the joint norm
  const scalar_t* ln_cell_weight = nullptr;  // [H]
  const scalar_t* ln_cell_bias = nullptr;    // [H]
  const scalar_t* g_mask = nullptr;          // [T, B, H] (dropout of g, already scaled by 1 / keep), or nullptr

  // Forward outputs.
  scalar_t* output = nullptr;     // [T, B, H]; zero past a row's length
  scalar_t* h_n = nullptr;        // [B, H]
  scalar_t* c_n = nullptr;        // [B, H]
  scalar_t* workspace = nullptr;  // [T, B, width] when training; nullptr: inference

  // Backward inputs (nullptr gradients count as zero).
  const scalar_t* grad_output = nullptr;      // [T, B, H]
  const scalar_t* grad_h_n = nullptr;         // [B, H]
  const scalar_t* grad_c_n = nullptr;         // [B, H]
  const scalar_t* saved_output = nullptr;     // [T, B, H]
  const scalar_t* saved_workspace = nullptr;  // [T, B, width]

  // Backward outputs.
  scalar_t* grad_input_pre = nullptr;      // [T, B, 4H] scratch: gradient of a
  scalar_t* grad_recurrent_pre = nullptr;  // [T, B, 4H] scratch: gradient of r (the same buffer as a's when joint)
  scalar_t* grad_x = nullptr;              // [T, B, I]
  scalar_t* grad_h0 = nullptr;             // [B, H]
  scalar_t* grad_c0 = nullptr;             // [B, H]
  scalar_t* grad_w_ih = nullptr;           // [4H, I]
  scalar_t* grad_w_hh = nullptr;           // [4H, H]
  scalar_t* grad_bias = nullptr;           // [4H]
  scalar_t* grad_ln_ih_weight = nullptr;   // [4H]
  scalar_t* grad_ln_hh_weight = nullptr;   // [4H], or nullptr (joint)
  scalar_t* grad_ln_cell_weight = nullptr;  // [H]
  scalar_t* grad_ln_cell_bias = nullptr;    // [H]

  bool separate() const { return ln_hh_weight != nullptr; }
  int64_t workspace_width() const { return layer_norm_workspace_width(hidden_size, separate()); }
  int64_t rows_at(int64_t t) const { return active_rows ? active_rows[t] : batch; }
};

}  // namespace fastlstm
