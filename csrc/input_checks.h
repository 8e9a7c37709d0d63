// Validation at the op boundary: every message names the op, what was expected and what came.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>

namespace fastlstm {

// Sizes read off validated inputs. recurrent_size: the width of h and of the output, proj_size with a projection
// (w_hr), else hidden_size.
struct LstmSizes {
  int64_t seq_len, batch, input_size, hidden_size, recurrent_size, proj_size;
};

// x is [T, B, I] for the sequence ops and [B, I] for the single-step ops (then seq_len is 1). tf_layout: w_ih is
// TF's kernel [I + R, 4H] and w_hh is absent; w_hr, when given, projects h (see registration.cpp).
LstmSizes check_lstm_inputs(const char* op, bool single_step, const at::Tensor& x, const at::Tensor& h0,
                            const at::Tensor& c0, const at::Tensor& w_ih, const std::optional<at::Tensor>& w_hh,
                            const std::optional<at::Tensor>& b_ih, const std::optional<at::Tensor>& b_hh,
                            const std::optional<at::Tensor>& w_peephole, bool tf_layout,
                            const std::optional<at::Tensor>& w_hr);

// layer_norm_lstm's inputs (see registration.cpp); recurrent_size is hidden_size. eps > 0, groups 1 or 4.
LstmSizes check_layer_norm_lstm_inputs(const char* op, const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0,
                                       const at::Tensor& w_ih, const at::Tensor& w_hh,
                                       const std::optional<at::Tensor>& bias, const at::Tensor& ln_ih_weight,
                                       const std::optional<at::Tensor>& ln_hh_weight, const at::Tensor& ln_cell_weight,
                                       const at::Tensor& ln_cell_bias, const std::optional<at::Tensor>& g_mask,
                                       int64_t groups);

// The GRU's inputs (see registration.cpp); recurrent_size is hidden_size.
LstmSizes check_gru_inputs(const char* op, const at::Tensor& x, const at::Tensor& h0, const at::Tensor& w_ih,
                           const at::Tensor& w_hh, const std::optional<at::Tensor>& b_ih,
                           const std::optional<at::Tensor>& b_hh);

// sequence_lengths: 1-D integer [B], every value in [0, T], on the CPU or on x's device. Returns it as int64 on the
// CPU.
at::Tensor check_sequence_lengths(const char* op, const at::Tensor& lengths, const LstmSizes& sizes,
                                  const at::Tensor& x);

// A gradient, when given, must have the shape of the forward output it belongs to.
void check_grad(const char* op, const char* name, const std::optional<at::Tensor>& grad, at::IntArrayRef shape,
                const at::Tensor& like);

void check_workspace(const char* op, const at::Tensor& workspace, at::IntArrayRef shape, const at::Tensor& like);

}  // namespace fastlstm
