// The GRU ops' bodies, the same on every device (as lstm_op_driver.h). `Kernels` supplies, beside
// lstm_op_driver.h's workspace_empty and enter:
//   template <typename scalar_t> static void gru_forward(const GruParams<scalar_t>&);
//   template <typename scalar_t> static void gru_backward(const GruParams<scalar_t>&);
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include <optional>

#include "gru_params.h"
#include "input_checks.h"
#include "op_signatures.h"
#include "row_order.h"

namespace fastlstm {

template <typename Kernels>
GruForwardResult gru_op(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& w_ih, const at::Tensor& w_hh,
                        const OptTensor& b_ih, const OptTensor& b_hh, const OptTensor& sequence_lengths,
                        bool training, bool linear_before_reset) {
  constexpr const char* op = "fastlstm::gru";
  [[maybe_unused]] const auto scope = Kernels::enter(op, x, std::nullopt);
  const LstmSizes s = check_gru_inputs(op, x, h0, w_ih, w_hh, b_ih, b_hh);
  const int64_t T = s.seq_len, B = s.batch, H = s.hidden_size;
  const RowOrder order(op, sequence_lengths, s, x);
  const at::Tensor xs = order.to_sorted(x, 1).contiguous(), h0s = order.to_sorted(h0, 0).contiguous();
  const at::Tensor output = at::empty({T, B, H}, x.options()), h_n = at::empty({B, H}, x.options());
  const at::Tensor workspace = training ? Kernels::workspace_empty({T, B, kGruWorkspaceWidth * H}, x.options())
                                        : at::empty({0}, x.options());
  // No row runs a step, or the state is empty (hidden_size 0, as torch.nn's cells allow): the state
  // passes through.
  if (T == 0 || B == 0 || H == 0) {
    h_n.copy_(h0s);
  } else {
    // Zeros for a missing bias: a per-element test of the pointer in the gate loop would keep it from vectorising.
    const auto bias = [&](const OptTensor& b) { return b ? b->contiguous() : at::zeros({3 * H}, x.options()); };
    const at::Tensor w_ih_d = w_ih.contiguous(), w_hh_d = w_hh.contiguous(), b_ih_d = bias(b_ih), b_hh_d = bias(b_hh);
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fastlstm::gru", [&] {
      GruParams<scalar_t> p;
      p.seq_len = T;
      p.batch = B;
      p.input_size = s.input_size;
      p.hidden_size = H;
      p.active_rows = order.active_rows();
      p.linear_before_reset = linear_before_reset;
      p.x = xs.const_data_ptr<scalar_t>();
      p.h0 = h0s.const_data_ptr<scalar_t>();
      p.w_ih = w_ih_d.const_data_ptr<scalar_t>();
      p.w_hh = w_hh_d.const_data_ptr<scalar_t>();
      p.b_ih = b_ih_d.const_data_ptr<scalar_t>();
      p.b_hh = b_hh_d.const_data_ptr<scalar_t>();
      p.output = output.mutable_data_ptr<scalar_t>();
      p.h_n = h_n.mutable_data_ptr<scalar_t>();
      p.workspace = training ? workspace.mutable_data_ptr<scalar_t>() : nullptr;
      Kernels::template gru_forward<scalar_t>(p);
    });
  }
  // The workspace stays in the kernels' row order: backward reorders its other inputs the same way.
  return {order.to_original(output, 1), order.to_original(h_n, 0), workspace};
}

template <typename Kernels>
GruBackwardResult gru_backward_op(const OptTensor& grad_output, const OptTensor& grad_h_n, const at::Tensor& x,
                                  const at::Tensor& h0, const at::Tensor& w_ih, const at::Tensor& w_hh,
                                  const OptTensor& sequence_lengths, const at::Tensor& output,
                                  const at::Tensor& workspace, bool linear_before_reset) {
  constexpr const char* op = "fastlstm::gru_backward";
  [[maybe_unused]] const auto scope = Kernels::enter(op, x, std::nullopt);
  const LstmSizes s = check_gru_inputs(op, x, h0, w_ih, w_hh, std::nullopt, std::nullopt);
  const int64_t T = s.seq_len, B = s.batch, I = s.input_size, H = s.hidden_size, G = 3 * H;
  check_grad(op, "grad_output", grad_output, {T, B, H}, x);
  check_grad(op, "grad_h_n", grad_h_n, {B, H}, x);
  check_grad(op, "output", output, {T, B, H}, x);
  check_workspace(op, workspace, {T, B, kGruWorkspaceWidth * H}, x);
  const auto options = x.options();
  const at::Tensor grad_w_ih = at::empty({G, I}, options), grad_w_hh = at::empty({G, H}, options),
                   grad_b_ih = at::empty({G}, options), grad_b_hh = at::empty({G}, options);
  // No row ran a step, or the state is empty: the state gradient passes through, x and the weights had no
  // effect.
  if (T == 0 || B == 0 || H == 0) {
    for (const at::Tensor& grad : {grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh}) grad.zero_();
    return {at::zeros({T, B, I}, options), grad_h_n ? grad_h_n->clone() : at::zeros({B, H}, options), grad_w_ih,
            grad_w_hh, grad_b_ih, grad_b_hh};
  }
  const RowOrder order(op, sequence_lengths, s, x);
  auto sorted = [&](const OptTensor& t, int64_t dim) -> OptTensor {
    return t ? OptTensor(order.to_sorted(*t, dim).contiguous()) : std::nullopt;
  };
  const OptTensor go = sorted(grad_output, 1), ghn = sorted(grad_h_n, 0);
  const at::Tensor xs = *sorted(x, 1), h0s = *sorted(h0, 0), outs = *sorted(output, 1), ws = workspace.contiguous(),
                   w_ih_d = w_ih.contiguous(), w_hh_d = w_hh.contiguous();
  const at::Tensor grad_input_pre = Kernels::workspace_empty({T, B, G}, options);
  const at::Tensor grad_recurrent_pre = Kernels::workspace_empty({T, B, G}, options);
  const at::Tensor grad_x = at::empty({T, B, I}, options), grad_h0 = at::empty({B, H}, options);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fastlstm::gru_backward", [&] {
    GruParams<scalar_t> p;
    p.seq_len = T;
    p.batch = B;
    p.input_size = I;
    p.hidden_size = H;
    p.active_rows = order.active_rows();
    p.linear_before_reset = linear_before_reset;
    p.x = xs.const_data_ptr<scalar_t>();
    p.h0 = h0s.const_data_ptr<scalar_t>();
    p.w_ih = w_ih_d.const_data_ptr<scalar_t>();
    p.w_hh = w_hh_d.const_data_ptr<scalar_t>();
    p.grad_output = go ? go->const_data_ptr<scalar_t>() : nullptr;
    p.grad_h_n = ghn ? ghn->const_data_ptr<scalar_t>() : nullptr;
    p.saved_output = outs.const_data_ptr<scalar_t>();
    p.saved_workspace = ws.const_data_ptr<scalar_t>();
    p.grad_input_pre = grad_input_pre.mutable_data_ptr<scalar_t>();
    p.grad_recurrent_pre = grad_recurrent_pre.mutable_data_ptr<scalar_t>();
    p.grad_x = grad_x.mutable_data_ptr<scalar_t>();
    p.grad_h0 = grad_h0.mutable_data_ptr<scalar_t>();
    p.grad_w_ih = grad_w_ih.mutable_data_ptr<scalar_t>();
    p.grad_w_hh = grad_w_hh.mutable_data_ptr<scalar_t>();
    p.grad_b_ih = grad_b_ih.mutable_data_ptr<scalar_t>();
    p.grad_b_hh = grad_b_hh.mutable_data_ptr<scalar_t>();
    Kernels::template gru_backward<scalar_t>(p);
  });
  return {order.to_original(grad_x, 1), order.to_original(grad_h0, 0), grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh};
}

}  // namespace fastlstm
