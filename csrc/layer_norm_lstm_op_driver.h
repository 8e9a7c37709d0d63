// The layer-normalised LSTM ops' bodies, the same on every device (as lstm_op_driver.h): validate, make dense, order
// rows by length, allocate, fill the params struct, run the device's kernel, restore the caller's row order.
// `Kernels` supplies, beside lstm_op_driver.h's workspace_empty:
//   template <typename scalar_t> static void layer_norm_forward(const LayerNormLstmParams<scalar_t>&);
//   template <typename scalar_t> static void layer_norm_backward(const LayerNormLstmParams<scalar_t>&);
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include <optional>

#include "input_checks.h"
#include "layer_norm_lstm_params.h"
#include "op_signatures.h"
#include "row_order.h"

namespace fastlstm {

namespace detail {

template <typename scalar_t>
const scalar_t* ln_data(const OptTensor& t) {
  return t ? t->const_data_ptr<scalar_t>() : nullptr;
}

// What forward and backward share. Every tensor is dense and in the kernels' row order.
template <typename scalar_t>
LayerNormLstmParams<scalar_t> layer_norm_params(const LstmSizes& s, const RowOrder& order, const at::Tensor& x,
                                                const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_ih,
                                                const at::Tensor& w_hh, const at::Tensor& ln_ih_weight,
                                                const OptTensor& ln_hh_weight, const at::Tensor& ln_cell_weight,
                                                const at::Tensor& ln_cell_bias, const OptTensor& g_mask,
                                                int64_t groups, bool carry_normalized_cell) {
  LayerNormLstmParams<scalar_t> p;
  p.seq_len = s.seq_len;
  p.batch = s.batch;
  p.input_size = s.input_size;
  p.hidden_size = s.hidden_size;
  p.active_rows = order.active_rows();
  p.groups = groups;
  p.carry_normalized_cell = carry_normalized_cell;
  p.x = x.const_data_ptr<scalar_t>();
  p.h0 = h0.const_data_ptr<scalar_t>();
  p.c0 = c0.const_data_ptr<scalar_t>();
  p.w_ih = w_ih.const_data_ptr<scalar_t>();
  p.w_hh = w_hh.const_data_ptr<scalar_t>();
  p.ln_ih_weight = ln_ih_weight.const_data_ptr<scalar_t>();
  p.ln_hh_weight = ln_data<scalar_t>(ln_hh_weight);
  p.ln_cell_weight = ln_cell_weight.const_data_ptr<scalar_t>();
  p.ln_cell_bias = ln_cell_bias.const_data_ptr<scalar_t>();
  p.g_mask = ln_data<scalar_t>(g_mask);
  return p;
}

inline OptTensor dense_optional(const OptTensor& t) { return t ? OptTensor(t->contiguous()) : std::nullopt; }

}  // namespace detail

template <typename Kernels>
ForwardResult layer_norm_lstm_op(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0,
                                 const at::Tensor& w_ih, const at::Tensor& w_hh, const OptTensor& bias,
                                 const at::Tensor& ln_ih_weight, const OptTensor& ln_hh_weight,
                                 const at::Tensor& ln_cell_weight, const at::Tensor& ln_cell_bias,
                                 const OptTensor& sequence_lengths, const OptTensor& g_mask, int64_t groups,
                                 double eps, double forget_bias, bool carry_normalized_cell, bool training) {
  constexpr const char* op = "fastlstm::layer_norm_lstm";
  [[maybe_unused]] const auto scope = Kernels::enter(op, x, std::nullopt);
  const LstmSizes s = check_layer_norm_lstm_inputs(op, x, h0, c0, w_ih, w_hh, bias, ln_ih_weight, ln_hh_weight,
                                                   ln_cell_weight, ln_cell_bias, g_mask, groups);
  TORCH_CHECK(eps > 0, op, ": expected eps > 0, got ", eps);
  const int64_t T = s.seq_len, B = s.batch, H = s.hidden_size;
  const RowOrder order(op, sequence_lengths, s, x);
  const at::Tensor xs = order.to_sorted(x, 1).contiguous(), h0s = order.to_sorted(h0, 0).contiguous(),
                   c0s = order.to_sorted(c0, 0).contiguous();
  const OptTensor mask = g_mask ? OptTensor(order.to_sorted(*g_mask, 1).contiguous()) : std::nullopt;
  const at::Tensor output = at::empty({T, B, H}, x.options());
  const at::Tensor h_n = at::empty({B, H}, x.options());
  const at::Tensor c_n = at::empty({B, H}, x.options());
  const int64_t width = layer_norm_workspace_width(H, ln_hh_weight.has_value());
  const at::Tensor workspace =
      training ? Kernels::workspace_empty({T, B, width}, x.options()) : at::empty({0}, x.options());
  // No row runs a step, or the state is empty (hidden_size 0, as torch.nn's cells allow): the state
  // passes through.
  if (T == 0 || B == 0 || H == 0) {
    h_n.copy_(h0s);
    c_n.copy_(c0s);
  } else {
    const at::Tensor w_ih_d = w_ih.contiguous(), w_hh_d = w_hh.contiguous(), ln_ih_d = ln_ih_weight.contiguous(),
                     ln_cw_d = ln_cell_weight.contiguous(), ln_cb_d = ln_cell_bias.contiguous();
    // Zeros for a missing bias: a per-element test of the pointer in the gate loop would keep it from vectorising.
    const at::Tensor bias_d = bias ? bias->contiguous() : at::zeros({4 * H}, x.options());
    const OptTensor ln_hh_d = detail::dense_optional(ln_hh_weight);
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fastlstm::layer_norm_lstm", [&] {
      auto p = detail::layer_norm_params<scalar_t>(s, order, xs, h0s, c0s, w_ih_d, w_hh_d, ln_ih_d, ln_hh_d, ln_cw_d,
                                                   ln_cb_d, mask, groups, carry_normalized_cell);
      p.eps = static_cast<scalar_t>(eps);
      p.forget_bias = static_cast<scalar_t>(forget_bias);
      p.bias = bias_d.const_data_ptr<scalar_t>();
      p.output = output.mutable_data_ptr<scalar_t>();
      p.h_n = h_n.mutable_data_ptr<scalar_t>();
      p.c_n = c_n.mutable_data_ptr<scalar_t>();
      p.workspace = training ? workspace.mutable_data_ptr<scalar_t>() : nullptr;
      Kernels::template layer_norm_forward<scalar_t>(p);
    });
  }
  // The workspace stays in the kernels' row order: backward reorders its other inputs the same way.
  return {order.to_original(output, 1), order.to_original(h_n, 0), order.to_original(c_n, 0), workspace};
}

template <typename Kernels>
LayerNormBackwardResult layer_norm_lstm_backward_op(
    const OptTensor& grad_output, const OptTensor& grad_h_n, const OptTensor& grad_c_n, const at::Tensor& x,
    const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_ih, const at::Tensor& w_hh,
    const at::Tensor& ln_ih_weight, const OptTensor& ln_hh_weight, const at::Tensor& ln_cell_weight,
    const at::Tensor& ln_cell_bias, const OptTensor& sequence_lengths, const OptTensor& g_mask,
    const at::Tensor& output, const at::Tensor& workspace, int64_t groups, bool carry_normalized_cell) {
  constexpr const char* op = "fastlstm::layer_norm_lstm_backward";
  [[maybe_unused]] const auto scope = Kernels::enter(op, x, std::nullopt);
  const LstmSizes s = check_layer_norm_lstm_inputs(op, x, h0, c0, w_ih, w_hh, std::nullopt, ln_ih_weight,
                                                   ln_hh_weight, ln_cell_weight, ln_cell_bias, g_mask, groups);
  const int64_t T = s.seq_len, B = s.batch, I = s.input_size, H = s.hidden_size, G = 4 * H;
  const bool separate = ln_hh_weight.has_value();
  check_grad(op, "grad_output", grad_output, {T, B, H}, x);
  check_grad(op, "grad_h_n", grad_h_n, {B, H}, x);
  check_grad(op, "grad_c_n", grad_c_n, {B, H}, x);
  check_grad(op, "output", output, {T, B, H}, x);
  check_workspace(op, workspace, {T, B, layer_norm_workspace_width(H, separate)}, x);
  const RowOrder order(op, sequence_lengths, s, x);
  auto sorted = [&](const OptTensor& t, int64_t dim) -> OptTensor {
    return t ? OptTensor(order.to_sorted(*t, dim).contiguous()) : std::nullopt;
  };
  const auto options = x.options();
  const at::Tensor grad_w_ih = at::empty({G, I}, options),
                   grad_w_hh = at::empty({G, H}, options), grad_bias = at::empty({G}, options),
                   grad_ln_ih = at::empty({G}, options), grad_ln_hh = at::empty({separate ? G : 0}, options),
                   grad_ln_cw = at::empty({H}, options), grad_ln_cb = at::empty({H}, options);
  // No row ran a step, or the state is empty: the state gradients pass through, x and the weights had no
  // effect.
  if (T == 0 || B == 0 || H == 0) {
    const at::Tensor grad_h0 = grad_h_n ? grad_h_n->clone() : at::zeros({B, H}, options);
    const at::Tensor grad_c0 = grad_c_n ? grad_c_n->clone() : at::zeros({B, H}, options);
    for (const at::Tensor& grad : {grad_w_ih, grad_w_hh, grad_bias, grad_ln_ih, grad_ln_hh, grad_ln_cw, grad_ln_cb}) {
      grad.zero_();
    }
    return {at::zeros({T, B, I}, options), grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_bias, grad_ln_ih, grad_ln_hh,
            grad_ln_cw, grad_ln_cb};
  }
  const at::Tensor grad_input_pre = Kernels::workspace_empty({T, B, G}, options);
  const at::Tensor grad_recurrent_pre = separate ? Kernels::workspace_empty({T, B, G}, options) : grad_input_pre;
  const OptTensor go = sorted(grad_output, 1), ghn = sorted(grad_h_n, 0), gcn = sorted(grad_c_n, 0),
                  mask = sorted(g_mask, 1), ln_hh_d = detail::dense_optional(ln_hh_weight);
  const at::Tensor xs = *sorted(x, 1), h0s = *sorted(h0, 0), c0s = *sorted(c0, 0), outs = *sorted(output, 1),
                   ws = workspace.contiguous(), w_ih_d = w_ih.contiguous(), w_hh_d = w_hh.contiguous(),
                   ln_ih_d = ln_ih_weight.contiguous(), ln_cw_d = ln_cell_weight.contiguous(),
                   ln_cb_d = ln_cell_bias.contiguous();
  const at::Tensor grad_x_sorted = at::empty({T, B, I}, options);
  const at::Tensor grad_h0_sorted = at::empty({B, H}, options), grad_c0_sorted = at::empty({B, H}, options);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fastlstm::layer_norm_lstm_backward", [&] {
    auto p = detail::layer_norm_params<scalar_t>(s, order, xs, h0s, c0s, w_ih_d, w_hh_d, ln_ih_d, ln_hh_d, ln_cw_d,
                                                 ln_cb_d, mask, groups, carry_normalized_cell);
    p.grad_output = detail::ln_data<scalar_t>(go);
    p.grad_h_n = detail::ln_data<scalar_t>(ghn);
    p.grad_c_n = detail::ln_data<scalar_t>(gcn);
    p.saved_output = outs.const_data_ptr<scalar_t>();
    p.saved_workspace = ws.const_data_ptr<scalar_t>();
    p.grad_input_pre = grad_input_pre.mutable_data_ptr<scalar_t>();
    p.grad_recurrent_pre = grad_recurrent_pre.mutable_data_ptr<scalar_t>();
    p.grad_x = grad_x_sorted.mutable_data_ptr<scalar_t>();
    p.grad_h0 = grad_h0_sorted.mutable_data_ptr<scalar_t>();
    p.grad_c0 = grad_c0_sorted.mutable_data_ptr<scalar_t>();
    p.grad_w_ih = grad_w_ih.mutable_data_ptr<scalar_t>();
    p.grad_w_hh = grad_w_hh.mutable_data_ptr<scalar_t>();
    p.grad_bias = grad_bias.mutable_data_ptr<scalar_t>();
    p.grad_ln_ih_weight = grad_ln_ih.mutable_data_ptr<scalar_t>();
    p.grad_ln_hh_weight = separate ? grad_ln_hh.mutable_data_ptr<scalar_t>() : nullptr;
    p.grad_ln_cell_weight = grad_ln_cw.mutable_data_ptr<scalar_t>();
    p.grad_ln_cell_bias = grad_ln_cb.mutable_data_ptr<scalar_t>();
    Kernels::template layer_norm_backward<scalar_t>(p);
  });
  return {order.to_original(grad_x_sorted, 1), order.to_original(grad_h0_sorted, 0),
          order.to_original(grad_c0_sorted, 0), grad_w_ih, grad_w_hh, grad_bias, grad_ln_ih, grad_ln_hh, grad_ln_cw,
          grad_ln_cb};
}

}  // namespace fastlstm
