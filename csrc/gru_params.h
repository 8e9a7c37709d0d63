// The parameter block of the GRU kernels (forward and backward); the gate math is gru_gates.h.
//
// torch's / cuDNN's GRU (ONNX linear_before_reset=1), gate blocks (r, z, n) of 3H, w_ih [3H, I], w_hh [3H, H]:
//   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
//   z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
//   n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
//   h' = (1 - z) * n + z * h
// With linear_before_reset false, TF1's GRUCell / GRUBlockCell (gate order r, u = z; ONNX linear_before_reset=0):
// the candidate n (TF's c) = tanh(W_in x + b_in + W_hn (r * h) + b_hn): the reset gate multiplies h before the matmul.
// Sizes: T = seq_len, B = batch, I = input_size, H = hidden_size, G = 3H. Rows sorted longest first as in
// lstm_params.h (active_rows).
#pragma once

#include <cstdint>

namespace fastlstm {

// Workspace of one step and row: r, z, n, and W_hn h + b_hn (linear_before_reset) or r * h (not).
constexpr int64_t kGruWorkspaceWidth = 4;

template <typename scalar_t>
struct GruParams {
  int64_t seq_len = 0;
  int64_t batch = 0;
  int64_t input_size = 0;
  int64_t hidden_size = 0;
  const int64_t* active_rows = nullptr;  // [T] or nullptr (all rows run every step)
  bool linear_before_reset = true;       // false: TF's candidate, W_hn (r * h)

  // Inputs.
  const scalar_t* x = nullptr;     // [T, B, I]
  const scalar_t* h0 = nullptr;    // [B, H]
  const scalar_t* w_ih = nullptr;  // [3H, I]
  const scalar_t* w_hh = nullptr;  // [3H, H]
  const scalar_t* b_ih = nullptr;  // [3H] (zeros for none)
  const scalar_t* b_hh = nullptr;  // [3H] (zeros for none)

  // Forward outputs.
  scalar_t* output = nullptr;     // [T, B, H]; zero past a row's length
  scalar_t* h_n = nullptr;        // [B, H]
  scalar_t* workspace = nullptr;  // [T, B, 4H] when training; nullptr: inference

  // Backward inputs (nullptr gradients count as zero).
  const scalar_t* grad_output = nullptr;      // [T, B, H]
  const scalar_t* grad_h_n = nullptr;         // [B, H]
  const scalar_t* saved_output = nullptr;     // [T, B, H]
  const scalar_t* saved_workspace = nullptr;  // [T, B, 4H]

  // Backward outputs.
  scalar_t* grad_input_pre = nullptr;      // [T, B, 3H] scratch: gradient of W_ih x + b_ih
  scalar_t* grad_recurrent_pre = nullptr;  // [T, B, 3H] scratch: gradient of W_hh h + b_hh
  scalar_t* grad_x = nullptr;              // [T, B, I]
  scalar_t* grad_h0 = nullptr;             // [B, H]
  scalar_t* grad_w_ih = nullptr;           // [3H, I]
  scalar_t* grad_w_hh = nullptr;           // [3H, H]
  scalar_t* grad_b_ih = nullptr;           // [3H]
  scalar_t* grad_b_hh = nullptr;           // [3H]

  int64_t rows_at(int64_t t) const { return active_rows ? active_rows[t] : batch; }
};

}  // namespace fastlstm
