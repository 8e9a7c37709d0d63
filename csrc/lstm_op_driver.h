// The ops' bodies, the same on every device: validate, make dense, order rows by length, allocate, fill the params
// struct, run the device's kernel, restore the caller's row order. `Kernels` supplies
//   template <typename scalar_t> static void forward(const LstmParams<scalar_t>&);
//   template <typename scalar_t> static void backward(const LstmParams<scalar_t>&);
//   static at::Tensor workspace_empty(at::IntArrayRef sizes, const at::TensorOptions&);
// the allocation of the large buffers that never reach the user as outputs (workspace, gradient scratch), and
//   static auto enter(const char* op, const at::Tensor& x, const OptTensor& w_hr);
// an object held for the op's duration (CUDA: the device guard of x's device), which refuses what the device's
// kernels lack. Each device registers these bodies as they are (ops_cpu.cpp, ops_cuda.cpp), each cast to its
// signature in op_signatures.h, so that a signature that drifts from the others fails to compile.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include <optional>
#include <tuple>

#include "input_checks.h"
#include "lstm_params.h"
#include "op_signatures.h"
#include "row_order.h"

namespace fastlstm {

namespace detail {

inline OptTensor dense(const OptTensor& t) { return t ? OptTensor(t->contiguous()) : std::nullopt; }

// The weights as the kernels read them, dense. With tf_layout w_ih and w_hh are the row blocks [I, 4H] and [R, 4H] of
// TF's kernel [I + R, 4H] (views, no copy).
struct Weights {
  at::Tensor w_ih, w_hh;
  OptTensor w_hr;
};

inline Weights dense_weights(const LstmSizes& s, const at::Tensor& w_ih, const OptTensor& w_hh, const OptTensor& w_hr,
                             bool tf_layout) {
  if (!tf_layout) return {w_ih.contiguous(), w_hh->contiguous(), dense(w_hr)};
  const at::Tensor kernel = w_ih.contiguous();
  return {kernel.narrow(0, 0, s.input_size), kernel.narrow(0, s.input_size, s.recurrent_size), dense(w_hr)};
}

template <typename scalar_t>
const scalar_t* data_or_null(const OptTensor& t) {
  return t ? t->const_data_ptr<scalar_t>() : nullptr;
}

// What forward and backward share: sizes, row order, layout, the forward's inputs.
template <typename scalar_t>
LstmParams<scalar_t> common_params(const LstmSizes& s, const RowOrder& order, const at::Tensor& x,
                                   const at::Tensor& h0, const at::Tensor& c0, const Weights& w,
                                   const OptTensor& w_peephole, double cell_clip, bool tf_layout) {
  LstmParams<scalar_t> p;
  p.seq_len = s.seq_len;
  p.batch = s.batch;
  p.input_size = s.input_size;
  p.hidden_size = s.hidden_size;
  p.recurrent_size = s.recurrent_size;
  p.active_rows = order.active_rows();
  p.cell_clip = static_cast<scalar_t>(cell_clip);
  p.layout = WeightLayout::of(tf_layout);
  p.x = x.const_data_ptr<scalar_t>();
  p.h0 = h0.const_data_ptr<scalar_t>();
  p.c0 = c0.const_data_ptr<scalar_t>();
  p.w_ih = w.w_ih.const_data_ptr<scalar_t>();
  p.w_hh = w.w_hh.const_data_ptr<scalar_t>();
  p.w_hr = data_or_null<scalar_t>(w.w_hr);
  p.w_peephole = data_or_null<scalar_t>(w_peephole);
  return p;
}

// x is [T, B, I]; with output == false (single step) no output tensor is written.
template <typename Kernels>
ForwardResult run_forward(const LstmSizes& s, const RowOrder& order, const at::Tensor& x, const at::Tensor& h0,
                          const at::Tensor& c0, const Weights& w, const OptTensor& b_ih, const OptTensor& b_hh,
                          const OptTensor& w_peephole, double forget_bias, double cell_clip, bool training,
                          bool with_output, bool tf_layout) {
  const int64_t T = s.seq_len, B = s.batch, H = s.hidden_size, R = s.recurrent_size;
  const at::Tensor output = with_output ? at::empty({T, B, R}, x.options()) : at::Tensor();
  const at::Tensor h_n = at::empty({B, R}, x.options());
  const at::Tensor c_n = at::empty({B, H}, x.options());
  const at::Tensor workspace = Kernels::workspace_empty({training ? T : 0, B, kWorkspaceWidth * H}, x.options());
  // No row runs a step, or the state is empty (hidden_size 0, as torch.nn's cells allow): the state
  // passes through.
  if (T == 0 || B == 0 || H == 0) {
    h_n.copy_(h0);
    c_n.copy_(c0);
    return {output, h_n, c_n, training ? workspace : at::empty({0}, x.options())};
  }
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fastlstm::forward", [&] {
    auto p = common_params<scalar_t>(s, order, x, h0, c0, w, w_peephole, cell_clip, tf_layout);
    p.forget_bias = static_cast<scalar_t>(forget_bias);
    p.b_ih = data_or_null<scalar_t>(b_ih);
    p.b_hh = data_or_null<scalar_t>(b_hh);
    p.output = with_output ? output.mutable_data_ptr<scalar_t>() : nullptr;
    p.h_n = h_n.mutable_data_ptr<scalar_t>();
    p.c_n = c_n.mutable_data_ptr<scalar_t>();
    p.workspace = training ? workspace.mutable_data_ptr<scalar_t>() : nullptr;
    Kernels::template forward<scalar_t>(p);
  });
  return {output, h_n, c_n, training ? workspace : at::empty({0}, x.options())};
}

template <typename Kernels>
BackwardResult run_backward(const LstmSizes& s, const RowOrder& order, const OptTensor& grad_output,
                            const OptTensor& grad_h_n, const OptTensor& grad_c_n, const at::Tensor& x,
                            const at::Tensor& h0, const at::Tensor& c0, const Weights& w,
                            const OptTensor& w_peephole, const at::Tensor& output, const at::Tensor& workspace,
                            double cell_clip, bool tf_layout) {
  const int64_t T = s.seq_len, B = s.batch, I = s.input_size, H = s.hidden_size, R = s.recurrent_size;
  const auto options = x.options();
  const at::Tensor grad_pre = Kernels::workspace_empty({T, B, 4 * H}, options);
  const at::Tensor grad_x = at::empty({T, B, I}, options);
  const at::Tensor grad_h0 = at::empty({B, R}, options);
  const at::Tensor grad_c0 = at::empty({B, H}, options);
  // With tf_layout the kernel's gradient is one tensor [I + R, 4H]: grad_w_ih's rows, then grad_w_hh's.
  const at::Tensor grad_kernel = tf_layout ? at::empty({I + R, 4 * H}, options) : at::Tensor();
  const at::Tensor grad_w_ih = tf_layout ? grad_kernel.narrow(0, 0, I) : at::empty(w.w_ih.sizes(), options);
  const at::Tensor grad_w_hh = tf_layout ? grad_kernel.narrow(0, I, R) : at::empty(w.w_hh.sizes(), options);
  const at::Tensor grad_w_hr = w.w_hr ? at::empty(w.w_hr->sizes(), options) : at::empty({0}, options);
  const at::Tensor grad_bias = at::empty({4 * H}, options);
  const at::Tensor grad_w_peephole = at::empty({w_peephole ? 3 : 0, w_peephole ? H : 0}, options);
  // No row ran a step, or the state is empty: the state gradients pass through, x and the weights had no
  // effect.
  if (T == 0 || B == 0 || H == 0) {
    grad_x.zero_();
    grad_h0.copy_(grad_h_n ? *grad_h_n : at::zeros_like(grad_h0));
    grad_c0.copy_(grad_c_n ? *grad_c_n : at::zeros_like(grad_c0));
    for (const at::Tensor& grad : {tf_layout ? grad_kernel : grad_w_ih, grad_w_hh, grad_w_hr, grad_bias,
                                   grad_w_peephole}) {
      grad.zero_();
    }
  } else {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fastlstm::backward", [&] {
      auto p = common_params<scalar_t>(s, order, x, h0, c0, w, w_peephole, cell_clip, tf_layout);
      p.grad_output = data_or_null<scalar_t>(grad_output);
      p.grad_h_n = data_or_null<scalar_t>(grad_h_n);
      p.grad_c_n = data_or_null<scalar_t>(grad_c_n);
      p.saved_output = output.defined() ? output.const_data_ptr<scalar_t>() : nullptr;
      p.saved_workspace = workspace.const_data_ptr<scalar_t>();
      p.grad_pre = grad_pre.mutable_data_ptr<scalar_t>();
      p.grad_x = grad_x.mutable_data_ptr<scalar_t>();
      p.grad_h0 = grad_h0.mutable_data_ptr<scalar_t>();
      p.grad_c0 = grad_c0.mutable_data_ptr<scalar_t>();
      p.grad_w_ih = grad_w_ih.mutable_data_ptr<scalar_t>();
      p.grad_w_hh = grad_w_hh.mutable_data_ptr<scalar_t>();
      p.grad_bias = grad_bias.mutable_data_ptr<scalar_t>();
      p.grad_w_peephole = w_peephole ? grad_w_peephole.mutable_data_ptr<scalar_t>() : nullptr;
      p.grad_w_hr = w.w_hr ? grad_w_hr.mutable_data_ptr<scalar_t>() : nullptr;
      Kernels::template backward<scalar_t>(p);
    });
  }
  if (tf_layout) {
    return {grad_x, grad_h0, grad_c0, grad_kernel, at::empty({0}, options), grad_bias, grad_w_peephole, grad_w_hr};
  }
  return {grad_x, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_bias, grad_w_peephole, grad_w_hr};
}

}  // namespace detail

template <typename Kernels>
ForwardResult forward_op(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_ih,
                         const OptTensor& w_hh, const OptTensor& b_ih, const OptTensor& b_hh,
                         const OptTensor& w_peephole, const OptTensor& sequence_lengths, double forget_bias,
                         double cell_clip, bool training, bool tf_layout, const OptTensor& w_hr) {
  constexpr const char* op = "fastlstm::forward";
  [[maybe_unused]] const auto scope = Kernels::enter(op, x, w_hr);
  const LstmSizes s = check_lstm_inputs(op, false, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peephole, tf_layout, w_hr);
  const RowOrder order(op, sequence_lengths, s, x);
  auto [output, h_n, c_n, workspace] = detail::run_forward<Kernels>(
      s, order, order.to_sorted(x, 1).contiguous(), order.to_sorted(h0, 0).contiguous(),
      order.to_sorted(c0, 0).contiguous(), detail::dense_weights(s, w_ih, w_hh, w_hr, tf_layout), detail::dense(b_ih),
      detail::dense(b_hh), detail::dense(w_peephole), forget_bias, cell_clip, training, /*with_output=*/true,
      tf_layout);
  // The workspace stays in the kernels' row order: backward reorders its other inputs the same way.
  return {order.to_original(output, 1), order.to_original(h_n, 0), order.to_original(c_n, 0), workspace};
}

template <typename Kernels>
BackwardResult backward_op(const OptTensor& grad_output, const OptTensor& grad_h_n, const OptTensor& grad_c_n,
                           const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_ih,
                           const OptTensor& w_hh, const OptTensor& w_peephole, const OptTensor& sequence_lengths,
                           const at::Tensor& output, const at::Tensor& workspace, double cell_clip,
                           bool tf_layout, const OptTensor& w_hr) {
  constexpr const char* op = "fastlstm::backward";
  [[maybe_unused]] const auto scope = Kernels::enter(op, x, w_hr);
  const LstmSizes s =
      check_lstm_inputs(op, false, x, h0, c0, w_ih, w_hh, std::nullopt, std::nullopt, w_peephole, tf_layout, w_hr);
  const int64_t T = s.seq_len, B = s.batch, H = s.hidden_size, R = s.recurrent_size;
  check_grad(op, "grad_output", grad_output, {T, B, R}, x);
  check_grad(op, "grad_h_n", grad_h_n, {B, R}, x);
  check_grad(op, "grad_c_n", grad_c_n, {B, H}, x);
  check_grad(op, "output", output, {T, B, R}, x);
  check_workspace(op, workspace, {T, B, kWorkspaceWidth * H}, x);
  const RowOrder order(op, sequence_lengths, s, x);
  auto sorted = [&](const OptTensor& t, int64_t dim) -> OptTensor {
    return t ? OptTensor(order.to_sorted(*t, dim).contiguous()) : std::nullopt;
  };
  auto [grad_x, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_bias, grad_w_peephole, grad_w_hr] =
      detail::run_backward<Kernels>(s, order, sorted(grad_output, 1), sorted(grad_h_n, 0), sorted(grad_c_n, 0),
                                    *sorted(x, 1), *sorted(h0, 0), *sorted(c0, 0),
                                    detail::dense_weights(s, w_ih, w_hh, w_hr, tf_layout), detail::dense(w_peephole),
                                    *sorted(output, 1), workspace.contiguous(), cell_clip, tf_layout);
  return {order.to_original(grad_x, 1), order.to_original(grad_h0, 0), order.to_original(grad_c0, 0),
          grad_w_ih, grad_w_hh, grad_bias, grad_w_peephole, grad_w_hr};
}

template <typename Kernels>
CellForwardResult cell_forward_op(const at::Tensor& x, const at::Tensor& h, const at::Tensor& c,
                                  const at::Tensor& w_ih, const OptTensor& w_hh, const OptTensor& b_ih,
                                  const OptTensor& b_hh, const OptTensor& w_peephole, double forget_bias,
                                  double cell_clip, bool training, bool tf_layout, const OptTensor& w_hr) {
  constexpr const char* op = "fastlstm::cell_forward";
  [[maybe_unused]] const auto scope = Kernels::enter(op, x, w_hr);
  const LstmSizes s = check_lstm_inputs(op, true, x, h, c, w_ih, w_hh, b_ih, b_hh, w_peephole, tf_layout, w_hr);
  const RowOrder all_rows(op, std::nullopt, s, x);
  auto [output, h_new, c_new, workspace] = detail::run_forward<Kernels>(
      s, all_rows, x.contiguous().unsqueeze(0), h.contiguous(), c.contiguous(),
      detail::dense_weights(s, w_ih, w_hh, w_hr, tf_layout), detail::dense(b_ih), detail::dense(b_hh),
      detail::dense(w_peephole), forget_bias, cell_clip, training, /*with_output=*/false, tf_layout);
  return {h_new, c_new, training ? workspace.squeeze(0) : workspace};
}

template <typename Kernels>
BackwardResult cell_backward_op(const OptTensor& grad_h_new, const OptTensor& grad_c_new, const at::Tensor& x,
                                const at::Tensor& h, const at::Tensor& c, const at::Tensor& w_ih,
                                const OptTensor& w_hh, const OptTensor& w_peephole, const at::Tensor& workspace,
                                double cell_clip, bool tf_layout, const OptTensor& w_hr) {
  constexpr const char* op = "fastlstm::cell_backward";
  [[maybe_unused]] const auto scope = Kernels::enter(op, x, w_hr);
  const LstmSizes s =
      check_lstm_inputs(op, true, x, h, c, w_ih, w_hh, std::nullopt, std::nullopt, w_peephole, tf_layout, w_hr);
  check_grad(op, "grad_h_new", grad_h_new, {s.batch, s.recurrent_size}, x);
  check_grad(op, "grad_c_new", grad_c_new, {s.batch, s.hidden_size}, x);
  check_workspace(op, workspace, {s.batch, kWorkspaceWidth * s.hidden_size}, x);
  const RowOrder all_rows(op, std::nullopt, s, x);
  auto [grad_x, grad_h, grad_c, grad_w_ih, grad_w_hh, grad_bias, grad_w_peephole, grad_w_hr] =
      detail::run_backward<Kernels>(s, all_rows, std::nullopt, detail::dense(grad_h_new), detail::dense(grad_c_new),
                                    x.contiguous().unsqueeze(0), h.contiguous(), c.contiguous(),
                                    detail::dense_weights(s, w_ih, w_hh, w_hr, tf_layout), detail::dense(w_peephole),
                                    at::Tensor(), workspace.contiguous().unsqueeze(0), cell_clip, tf_layout);
  return {grad_x.squeeze(0), grad_h, grad_c, grad_w_ih, grad_w_hh, grad_bias, grad_w_peephole, grad_w_hr};
}

}  // namespace fastlstm
