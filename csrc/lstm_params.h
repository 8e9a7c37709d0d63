// The one parameter block every LSTM kernel (CPU and CUDA, forward and backward) takes.
//
// Sizes: T = seq_len, B = batch, I = input_size, H = hidden_size, G = 4H (gates i, f, g, o), R = recurrent_size: the
// width of h and of the output (P = proj_size with a projection w_hr, else H).
// All tensors are dense row-major (the op boundary makes them contiguous); shapes are listed beside each pointer.
// Rows of a batch with sequence lengths are sorted by length, longest first, so that the rows still running at step t are
// the prefix [0, active_rows[t]) and the GEMMs shrink with the batch.
#pragma once

#include <cstdint>

namespace fastlstm {

// Workspace of one step and row: the 4H activated gates, then the new (clipped) cell state.
constexpr int64_t kWorkspaceWidth = 5;

// How the weights are laid out, filled once per call from the op's tf_layout flag. torch's: w_ih [4H, I], w_hh [4H, R],
// gate blocks (i, f, g, o). TF's (fastlstm.cells): w_ih [I, 4H] and w_hh [R, 4H], the row blocks of TF's kernel
// [I + R, 4H], gate blocks (i, j=g, f, o). f_block and g_block are the positions of f and g among the 4 blocks of every
// 4H row (pre-activations, workspace, gradients); i is block 0 and o block 3 in both.
struct WeightLayout {
  bool tf = false;  // the weights stored transposed, [K, 4H], in TF's gate order
  int64_t f_block = 1;
  int64_t g_block = 2;

  static constexpr WeightLayout of(bool tf_layout) {
    return tf_layout ? WeightLayout{true, 2, 1} : WeightLayout{false, 1, 2};
  }
};

template <typename scalar_t>
struct LstmParams {
  int64_t seq_len = 0;
  int64_t batch = 0;
  int64_t input_size = 0;
  int64_t hidden_size = 0;
  int64_t recurrent_size = 0;

  // Rows still running at step t, [T]; nullptr means all B rows run every step.
  const int64_t* active_rows = nullptr;

  scalar_t forget_bias = 0;
  scalar_t cell_clip = 0;  // <= 0: no clipping

  WeightLayout layout;

  // Inputs.
  const scalar_t* x = nullptr;           // [T, B, I]
  const scalar_t* h0 = nullptr;          // [B, R]
  const scalar_t* c0 = nullptr;          // [B, H]
  const scalar_t* w_ih = nullptr;        // [4H, I] ([I, 4H] with tf_layout)
  const scalar_t* w_hh = nullptr;        // [4H, R] ([R, 4H] with tf_layout)
  const scalar_t* b_ih = nullptr;        // [4H], or nullptr
  const scalar_t* b_hh = nullptr;        // [4H], or nullptr
  const scalar_t* w_peephole = nullptr;  // [3, H] rows (w_ci, w_cf, w_co), or nullptr
  const scalar_t* w_hr = nullptr;        // [P, H] ([H, P] with tf_layout): h = (o * tanh(c)) . w_hr^T; or nullptr

  // Forward outputs.
  scalar_t* output = nullptr;     // [T, B, R]; zero past a row's length; nullptr: not written (single step)
  scalar_t* h_n = nullptr;        // [B, R]
  scalar_t* c_n = nullptr;        // [B, H]
  scalar_t* workspace = nullptr;  // [T, B, 5H] when training (returned for backward); nullptr: inference

  // Backward inputs: gradients arriving at the forward outputs; nullptr means zero.
  const scalar_t* grad_output = nullptr;  // [T, B, R]
  const scalar_t* grad_h_n = nullptr;     // [B, R]
  const scalar_t* grad_c_n = nullptr;     // [B, H]
  const scalar_t* saved_output = nullptr; // [T, B, R], the forward's output (h of each step)
  const scalar_t* saved_workspace = nullptr;  // [T, B, 5H]

  // Backward outputs.
  scalar_t* grad_pre = nullptr;         // [T, B, 4H] scratch: gradient of the gate pre-activations
  scalar_t* grad_x = nullptr;           // [T, B, I]
  scalar_t* grad_h0 = nullptr;          // [B, R]
  scalar_t* grad_c0 = nullptr;          // [B, H]
  scalar_t* grad_w_ih = nullptr;        // shaped as w_ih
  scalar_t* grad_w_hh = nullptr;        // shaped as w_hh
  scalar_t* grad_bias = nullptr;        // [4H]
  scalar_t* grad_w_peephole = nullptr;  // [3, H], or nullptr when there are no peepholes
  scalar_t* grad_w_hr = nullptr;        // shaped as w_hr, or nullptr without projection

  int64_t rows_at(int64_t t) const { return active_rows ? active_rows[t] : batch; }
};

}  // namespace fastlstm
