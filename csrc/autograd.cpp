// Autograd of every fastlstm op, in C++ for every device (the Autograd dispatch key). A formula registered from
// Python (torch.library.register_autograd) cost ~50 us a step (measured: a 50-step LSTMCell loop at batch 1, H=128,
// forward 3.6 -> 1.4 ms, forward + backward 6.9 -> 4.4 ms), several times the math of a single step.
//
// forward, cell_forward, layer_norm_lstm, gru: the forward ops run below autograd; their backward calls the fused
// backward op, or, under create_graph=True (grad mode on in backward), the op's differentiable backward
// (registration.cpp; its kernel recomputes the forward with the composed reference math in Python), whose gradient
// can be differentiated again: the second derivative costs a recompute, first-order training nothing.
// backward, cell_backward, ...: called directly they run, but differentiating through them is refused with a
// clear error: their own derivatives are not written.
#include <torch/autograd.h>
#include <torch/library.h>

#include <optional>
#include <tuple>

#include "lstm_op_driver.h"

namespace fastlstm {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

OptTensor optional(const at::Tensor& t) { return t.defined() ? OptTensor(t) : std::nullopt; }
at::Tensor or_undefined(const OptTensor& t) { return t ? *t : at::Tensor(); }

template <typename... Tensors>
variable_list as_list(const std::tuple<Tensors...>& result) {
  return std::apply([](const auto&... t) { return variable_list{t...}; }, result);
}

// Gradients of (w_ih, w_hh, b_ih, b_hh, w_peephole) from the backward op's (grad_w_ih, grad_w_hh, grad_bias,
// grad_w_peephole): one bias gradient serves both biases; absent inputs get none. (grad_w_hr is the last input's.)
variable_list weight_grads(AutogradContext* ctx, const BackwardResult& grads) {
  const auto has = [&](const char* name) { return ctx->saved_data[name].toBool(); };
  const at::Tensor& grad_bias = std::get<5>(grads);
  return {std::get<3>(grads), has("w_hh") ? std::get<4>(grads) : at::Tensor(),
          has("b_ih") ? grad_bias : at::Tensor(), has("b_hh") ? grad_bias : at::Tensor(),
          has("w_peephole") ? std::get<6>(grads) : at::Tensor()};
}

// create_graph=True: the gradients as a graph that can be differentiated again, from the differentiable backward
// op `name`. Its kernel is Python's; a C++ program that loaded the ops library alone has none.
template <typename Signature, typename... Args>
Gradients differentiable_backward(const char* name, const Args&... args) {
  const c10::OperatorHandle handle = c10::Dispatcher::singleton().findSchemaOrThrow(name, "");
  TORCH_CHECK(handle.hasKernelForDispatchKey(c10::DispatchKey::CompositeImplicitAutograd), "fastlstm: ", name,
              " has no kernel: the fused ops' second derivatives (create_graph=True) recompute the forward with "
              "fastlstm's Python reference, registered by `import fastlstm`; without Python they have first "
              "derivatives only");
  return handle.typed<Signature>().call(args...);
}

// A Function's gradients, one per argument of its forward (num_arguments), from `gradients`: one per defined
// tensor of `inputs` (each with its argument position), in order; every other argument gets none.
variable_list at_positions(size_t num_arguments, std::initializer_list<std::pair<size_t, at::Tensor>> inputs,
                           const Gradients& gradients) {
  variable_list result(num_arguments);
  size_t next = 0;
  for (const auto& [position, input] : inputs) {
    if (input.defined()) result[position] = gradients.at(next++);
  }
  TORCH_INTERNAL_ASSERT(next == gradients.size(), "fastlstm: expected ", next, " gradients, got ",
                        gradients.size());
  return result;
}

void remember_inputs(AutogradContext* ctx, const OptTensor& w_hh, const OptTensor& b_ih, const OptTensor& b_hh,
                     const OptTensor& w_peephole, const OptTensor& w_hr, double forget_bias, double cell_clip,
                     bool tf_layout) {
  // Outputs nobody differentiated arrive undefined instead of zero-filled (the workspace alone would be a
  // [T, B, 5H] fill per backward); the backward ops take missing gradients as zero.
  ctx->set_materialize_grads(false);
  ctx->saved_data["w_hh"] = w_hh.has_value();
  ctx->saved_data["b_ih"] = b_ih.has_value();
  ctx->saved_data["b_hh"] = b_hh.has_value();
  ctx->saved_data["w_peephole"] = w_peephole.has_value();
  ctx->saved_data["w_hr"] = w_hr.has_value();
  ctx->saved_data["forget_bias"] = forget_bias;
  ctx->saved_data["cell_clip"] = cell_clip;
  ctx->saved_data["tf_layout"] = tf_layout;
}

struct SequenceFunction : torch::autograd::Function<SequenceFunction> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0,
                               const at::Tensor& w_ih, const OptTensor& w_hh, const OptTensor& b_ih,
                               const OptTensor& b_hh, const OptTensor& w_peephole, const OptTensor& sequence_lengths,
                               double forget_bias, double cell_clip, bool training, bool tf_layout,
                               const OptTensor& w_hr) {
    static const auto op = op_handle<ForwardSignature>("fastlstm::forward");
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    auto result = as_list(op.call(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peephole, sequence_lengths, forget_bias,
                                  cell_clip, training, tf_layout, w_hr));
    ctx->mark_non_differentiable({result[3]});
    remember_inputs(ctx, w_hh, b_ih, b_hh, w_peephole, w_hr, forget_bias, cell_clip, tf_layout);
    // (the biases only for a second derivative's recompute)
    ctx->save_for_backward({x, h0, c0, w_ih, or_undefined(w_hh), or_undefined(w_peephole),
                            or_undefined(sequence_lengths), result[0], result[3], or_undefined(w_hr),
                            or_undefined(b_ih), or_undefined(b_hh)});
    return result;
  }

  static variable_list backward(AutogradContext* ctx, const variable_list& grads) {
    const variable_list s = ctx->get_saved_variables();
    if (at::GradMode::is_enabled()) {
      const Gradients g = differentiable_backward<ForwardDifferentiableBackwardSignature>(
          "fastlstm::forward_differentiable_backward", optional(grads[0]), optional(grads[1]), optional(grads[2]),
          s[0], s[1], s[2], s[3], optional(s[4]), optional(s[10]), optional(s[11]), optional(s[5]), optional(s[6]),
          ctx->saved_data["forget_bias"].toDouble(), ctx->saved_data["cell_clip"].toDouble(),
          ctx->saved_data["tf_layout"].toBool(), optional(s[9]));
      return at_positions(
          14, {{0, s[0]}, {1, s[1]}, {2, s[2]}, {3, s[3]}, {4, s[4]}, {5, s[10]}, {6, s[11]}, {7, s[5]}, {13, s[9]}},
          g);
    }
    static const auto op = op_handle<BackwardSignature>("fastlstm::backward");
    const BackwardResult g =
        op.call(optional(grads[0]), optional(grads[1]), optional(grads[2]), s[0], s[1], s[2], s[3], optional(s[4]),
                optional(s[5]), optional(s[6]), s[7], s[8], ctx->saved_data["cell_clip"].toDouble(),
                ctx->saved_data["tf_layout"].toBool(), optional(s[9]));
    variable_list result{std::get<0>(g), std::get<1>(g), std::get<2>(g)};
    for (const at::Tensor& grad : weight_grads(ctx, g)) result.push_back(grad);
    result.resize(13);  // sequence_lengths, forget_bias, cell_clip, training, tf_layout: none
    result.push_back(ctx->saved_data["w_hr"].toBool() ? std::get<7>(g) : at::Tensor());
    return result;
  }
};

struct CellFunction : torch::autograd::Function<CellFunction> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& h, const at::Tensor& c,
                               const at::Tensor& w_ih, const OptTensor& w_hh, const OptTensor& b_ih,
                               const OptTensor& b_hh, const OptTensor& w_peephole, double forget_bias,
                               double cell_clip, bool training, bool tf_layout, const OptTensor& w_hr) {
    static const auto op = op_handle<CellForwardSignature>("fastlstm::cell_forward");
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    auto result = as_list(
        op.call(x, h, c, w_ih, w_hh, b_ih, b_hh, w_peephole, forget_bias, cell_clip, training, tf_layout, w_hr));
    ctx->mark_non_differentiable({result[2]});
    remember_inputs(ctx, w_hh, b_ih, b_hh, w_peephole, w_hr, forget_bias, cell_clip, tf_layout);
    ctx->save_for_backward({x, h, c, w_ih, or_undefined(w_hh), or_undefined(w_peephole), result[2],
                            or_undefined(w_hr), or_undefined(b_ih), or_undefined(b_hh)});
    return result;
  }

  static variable_list backward(AutogradContext* ctx, const variable_list& grads) {
    const variable_list s = ctx->get_saved_variables();
    if (at::GradMode::is_enabled()) {
      const Gradients g = differentiable_backward<CellDifferentiableBackwardSignature>(
          "fastlstm::cell_forward_differentiable_backward", optional(grads[0]), optional(grads[1]), s[0], s[1], s[2],
          s[3], optional(s[4]), optional(s[8]), optional(s[9]), optional(s[5]),
          ctx->saved_data["forget_bias"].toDouble(), ctx->saved_data["cell_clip"].toDouble(),
          ctx->saved_data["tf_layout"].toBool(), optional(s[7]));
      return at_positions(
          13, {{0, s[0]}, {1, s[1]}, {2, s[2]}, {3, s[3]}, {4, s[4]}, {5, s[8]}, {6, s[9]}, {7, s[5]}, {12, s[7]}},
          g);
    }
    static const auto op = op_handle<CellBackwardSignature>("fastlstm::cell_backward");
    const BackwardResult g = op.call(optional(grads[0]), optional(grads[1]), s[0], s[1], s[2], s[3], optional(s[4]),
                                     optional(s[5]), s[6], ctx->saved_data["cell_clip"].toDouble(),
                                     ctx->saved_data["tf_layout"].toBool(), optional(s[7]));
    variable_list result{std::get<0>(g), std::get<1>(g), std::get<2>(g)};
    for (const at::Tensor& grad : weight_grads(ctx, g)) result.push_back(grad);
    result.resize(12);  // forget_bias, cell_clip, training, tf_layout: none
    result.push_back(ctx->saved_data["w_hr"].toBool() ? std::get<7>(g) : at::Tensor());
    return result;
  }
};

// The backward ops below autograd, behind a node whose own backward refuses.
template <typename Signature>
struct NoSecondDerivative : torch::autograd::Function<NoSecondDerivative<Signature>> {
  template <typename... Args>
  static variable_list forward(AutogradContext*, const char* name, const Args&... args) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    return as_list(op_handle<Signature>(name).call(args...));
  }

  static variable_list backward(AutogradContext*, const variable_list&) {
    TORCH_CHECK(false,
                "fastlstm: the fused backward ops have no derivative of their own (called directly, then "
                "differentiated); differentiate the forward op with create_graph=True instead: its gradient is "
                "differentiable");
  }
};

// The layer-normalised LSTM (registration.cpp): inputs x, h0, c0, w_ih, w_hh, bias, ln_ih_weight, ln_hh_weight,
// ln_cell_weight, ln_cell_bias, then sequence_lengths, g_mask and the options, which have no gradient.
struct LayerNormSequenceFunction : torch::autograd::Function<LayerNormSequenceFunction> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0,
                               const at::Tensor& w_ih, const at::Tensor& w_hh, const OptTensor& bias,
                               const at::Tensor& ln_ih_weight, const OptTensor& ln_hh_weight,
                               const at::Tensor& ln_cell_weight, const at::Tensor& ln_cell_bias,
                               const OptTensor& sequence_lengths, const OptTensor& g_mask, int64_t groups, double eps,
                               double forget_bias, bool carry_normalized_cell, bool training) {
    static const auto op = op_handle<LayerNormForwardSignature>("fastlstm::layer_norm_lstm");
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    auto result = as_list(op.call(x, h0, c0, w_ih, w_hh, bias, ln_ih_weight, ln_hh_weight, ln_cell_weight,
                                  ln_cell_bias, sequence_lengths, g_mask, groups, eps, forget_bias,
                                  carry_normalized_cell, training));
    ctx->mark_non_differentiable({result[3]});
    ctx->set_materialize_grads(false);
    ctx->saved_data["bias"] = bias.has_value();
    ctx->saved_data["groups"] = groups;
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["forget_bias"] = forget_bias;
    ctx->saved_data["carry_normalized_cell"] = carry_normalized_cell;
    ctx->save_for_backward({x, h0, c0, w_ih, w_hh, ln_ih_weight, or_undefined(ln_hh_weight), ln_cell_weight,
                            ln_cell_bias, or_undefined(sequence_lengths), or_undefined(g_mask), result[0],
                            result[3], or_undefined(bias)});
    return result;
  }

  static variable_list backward(AutogradContext* ctx, const variable_list& grads) {
    const variable_list s = ctx->get_saved_variables();
    if (at::GradMode::is_enabled()) {
      const Gradients g = differentiable_backward<LayerNormDifferentiableBackwardSignature>(
          "fastlstm::layer_norm_lstm_differentiable_backward", optional(grads[0]), optional(grads[1]),
          optional(grads[2]), s[0], s[1], s[2], s[3], s[4], optional(s[13]), s[5], optional(s[6]), s[7], s[8],
          optional(s[9]), optional(s[10]), ctx->saved_data["groups"].toInt(), ctx->saved_data["eps"].toDouble(),
          ctx->saved_data["forget_bias"].toDouble(), ctx->saved_data["carry_normalized_cell"].toBool());
      return at_positions(17,
                          {{0, s[0]}, {1, s[1]}, {2, s[2]}, {3, s[3]}, {4, s[4]}, {5, s[13]}, {6, s[5]}, {7, s[6]},
                           {8, s[7]}, {9, s[8]}},
                          g);
    }
    static const auto op = op_handle<LayerNormBackwardSignature>("fastlstm::layer_norm_lstm_backward");
    const LayerNormBackwardResult g =
        op.call(optional(grads[0]), optional(grads[1]), optional(grads[2]), s[0], s[1], s[2], s[3], s[4], s[5],
                optional(s[6]), s[7], s[8], optional(s[9]), optional(s[10]), s[11], s[12],
                ctx->saved_data["groups"].toInt(), ctx->saved_data["carry_normalized_cell"].toBool());
    variable_list result = as_list(g);
    if (!ctx->saved_data["bias"].toBool()) result[5] = at::Tensor();
    if (!s[6].defined()) result[7] = at::Tensor();
    result.resize(17);  // sequence_lengths, g_mask, groups, eps, forget_bias, carry_normalized_cell, training: none
    return result;
  }
};

// The GRU: inputs x, h0, w_ih, w_hh, b_ih, b_hh, then sequence_lengths and the options, which have no gradient.
struct GruSequenceFunction : torch::autograd::Function<GruSequenceFunction> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& h0,
                               const at::Tensor& w_ih, const at::Tensor& w_hh, const OptTensor& b_ih,
                               const OptTensor& b_hh, const OptTensor& sequence_lengths, bool training,
                               bool linear_before_reset) {
    static const auto op = op_handle<GruForwardSignature>("fastlstm::gru");
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    auto result = as_list(op.call(x, h0, w_ih, w_hh, b_ih, b_hh, sequence_lengths, training, linear_before_reset));
    ctx->mark_non_differentiable({result[2]});
    ctx->set_materialize_grads(false);
    ctx->saved_data["b_ih"] = b_ih.has_value();
    ctx->saved_data["b_hh"] = b_hh.has_value();
    ctx->saved_data["linear_before_reset"] = linear_before_reset;
    ctx->save_for_backward({x, h0, w_ih, w_hh, or_undefined(sequence_lengths), result[0], result[2],
                            or_undefined(b_ih), or_undefined(b_hh)});
    return result;
  }

  static variable_list backward(AutogradContext* ctx, const variable_list& grads) {
    const variable_list s = ctx->get_saved_variables();
    if (at::GradMode::is_enabled()) {
      const Gradients g = differentiable_backward<GruDifferentiableBackwardSignature>(
          "fastlstm::gru_differentiable_backward", optional(grads[0]), optional(grads[1]), s[0], s[1], s[2], s[3],
          optional(s[7]), optional(s[8]), optional(s[4]), ctx->saved_data["linear_before_reset"].toBool());
      return at_positions(9, {{0, s[0]}, {1, s[1]}, {2, s[2]}, {3, s[3]}, {4, s[7]}, {5, s[8]}}, g);
    }
    static const auto op = op_handle<GruBackwardSignature>("fastlstm::gru_backward");
    variable_list result =
        as_list(op.call(optional(grads[0]), optional(grads[1]), s[0], s[1], s[2], s[3], optional(s[4]), s[5], s[6],
                        ctx->saved_data["linear_before_reset"].toBool()));
    if (!ctx->saved_data["b_ih"].toBool()) result[4] = at::Tensor();
    if (!ctx->saved_data["b_hh"].toBool()) result[5] = at::Tensor();
    result.resize(9);  // sequence_lengths, training, linear_before_reset: none
    return result;
  }
};

ForwardResult forward_autograd(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0,
                               const at::Tensor& w_ih, const OptTensor& w_hh, const OptTensor& b_ih,
                               const OptTensor& b_hh, const OptTensor& w_peephole, const OptTensor& sequence_lengths,
                               double forget_bias, double cell_clip, bool training, bool tf_layout,
                               const OptTensor& w_hr) {
  const variable_list r = SequenceFunction::apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peephole, sequence_lengths,
                                                  forget_bias, cell_clip, training, tf_layout, w_hr);
  return {r[0], r[1], r[2], r[3]};
}

CellForwardResult cell_forward_autograd(const at::Tensor& x, const at::Tensor& h, const at::Tensor& c,
                                        const at::Tensor& w_ih, const OptTensor& w_hh, const OptTensor& b_ih,
                                        const OptTensor& b_hh, const OptTensor& w_peephole, double forget_bias,
                                        double cell_clip, bool training, bool tf_layout, const OptTensor& w_hr) {
  const variable_list r = CellFunction::apply(x, h, c, w_ih, w_hh, b_ih, b_hh, w_peephole, forget_bias, cell_clip,
                                              training, tf_layout, w_hr);
  return {r[0], r[1], r[2]};
}

BackwardResult as_backward_result(const variable_list& r) {
  return {r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]};
}

BackwardResult backward_autograd(const OptTensor& grad_output, const OptTensor& grad_h_n, const OptTensor& grad_c_n,
                                 const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0,
                                 const at::Tensor& w_ih, const OptTensor& w_hh, const OptTensor& w_peephole,
                                 const OptTensor& sequence_lengths, const at::Tensor& output,
                                 const at::Tensor& workspace, double cell_clip, bool tf_layout,
                                 const OptTensor& w_hr) {
  return as_backward_result(NoSecondDerivative<BackwardSignature>::apply(
      "fastlstm::backward", grad_output, grad_h_n, grad_c_n, x, h0, c0, w_ih, w_hh, w_peephole, sequence_lengths,
      output, workspace, cell_clip, tf_layout, w_hr));
}

BackwardResult cell_backward_autograd(const OptTensor& grad_h_new, const OptTensor& grad_c_new, const at::Tensor& x,
                                      const at::Tensor& h, const at::Tensor& c, const at::Tensor& w_ih,
                                      const OptTensor& w_hh, const OptTensor& w_peephole,
                                      const at::Tensor& workspace, double cell_clip, bool tf_layout,
                                      const OptTensor& w_hr) {
  return as_backward_result(NoSecondDerivative<CellBackwardSignature>::apply(
      "fastlstm::cell_backward", grad_h_new, grad_c_new, x, h, c, w_ih, w_hh, w_peephole, workspace, cell_clip,
      tf_layout, w_hr));
}

ForwardResult layer_norm_autograd(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0,
                                  const at::Tensor& w_ih, const at::Tensor& w_hh, const OptTensor& bias,
                                  const at::Tensor& ln_ih_weight, const OptTensor& ln_hh_weight,
                                  const at::Tensor& ln_cell_weight, const at::Tensor& ln_cell_bias,
                                  const OptTensor& sequence_lengths, const OptTensor& g_mask, int64_t groups,
                                  double eps, double forget_bias, bool carry_normalized_cell, bool training) {
  const variable_list r = LayerNormSequenceFunction::apply(x, h0, c0, w_ih, w_hh, bias, ln_ih_weight, ln_hh_weight,
                                                           ln_cell_weight, ln_cell_bias, sequence_lengths, g_mask,
                                                           groups, eps, forget_bias, carry_normalized_cell, training);
  return {r[0], r[1], r[2], r[3]};
}

LayerNormBackwardResult layer_norm_backward_autograd(
    const OptTensor& grad_output, const OptTensor& grad_h_n, const OptTensor& grad_c_n, const at::Tensor& x,
    const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_ih, const at::Tensor& w_hh,
    const at::Tensor& ln_ih_weight, const OptTensor& ln_hh_weight, const at::Tensor& ln_cell_weight,
    const at::Tensor& ln_cell_bias, const OptTensor& sequence_lengths, const OptTensor& g_mask,
    const at::Tensor& output, const at::Tensor& workspace, int64_t groups, bool carry_normalized_cell) {
  const variable_list r = NoSecondDerivative<LayerNormBackwardSignature>::apply(
      "fastlstm::layer_norm_lstm_backward", grad_output, grad_h_n, grad_c_n, x, h0, c0, w_ih, w_hh, ln_ih_weight,
      ln_hh_weight, ln_cell_weight, ln_cell_bias, sequence_lengths, g_mask, output, workspace, groups,
      carry_normalized_cell);
  return {r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9]};
}

GruForwardResult gru_autograd(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& w_ih,
                              const at::Tensor& w_hh, const OptTensor& b_ih, const OptTensor& b_hh,
                              const OptTensor& sequence_lengths, bool training, bool linear_before_reset) {
  const variable_list r =
      GruSequenceFunction::apply(x, h0, w_ih, w_hh, b_ih, b_hh, sequence_lengths, training, linear_before_reset);
  return {r[0], r[1], r[2]};
}

GruBackwardResult gru_backward_autograd(const OptTensor& grad_output, const OptTensor& grad_h_n, const at::Tensor& x,
                                        const at::Tensor& h0, const at::Tensor& w_ih, const at::Tensor& w_hh,
                                        const OptTensor& sequence_lengths, const at::Tensor& output,
                                        const at::Tensor& workspace, bool linear_before_reset) {
  const variable_list r = NoSecondDerivative<GruBackwardSignature>::apply(
      "fastlstm::gru_backward", grad_output, grad_h_n, x, h0, w_ih, w_hh, sequence_lengths, output, workspace,
      linear_before_reset);
  return {r[0], r[1], r[2], r[3], r[4], r[5]};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastlstm, Autograd, m) {
  m.impl("forward", static_cast<ForwardSignature*>(&forward_autograd));
  m.impl("backward", static_cast<BackwardSignature*>(&backward_autograd));
  m.impl("cell_forward", static_cast<CellForwardSignature*>(&cell_forward_autograd));
  m.impl("cell_backward", static_cast<CellBackwardSignature*>(&cell_backward_autograd));
  m.impl("layer_norm_lstm", static_cast<LayerNormForwardSignature*>(&layer_norm_autograd));
  m.impl("layer_norm_lstm_backward", static_cast<LayerNormBackwardSignature*>(&layer_norm_backward_autograd));
  m.impl("gru", static_cast<GruForwardSignature*>(&gru_autograd));
  m.impl("gru_backward", static_cast<GruBackwardSignature*>(&gru_backward_autograd));
}

}  // namespace fastlstm
