// Registers every op body (lstm_op_driver.h, layer_norm_lstm_op_driver.h, gru_op_driver.h) with one device's
// kernels, once for the CPU (cpu/ops_cpu.cpp) and once for CUDA (cuda/ops_cuda.cpp). Each body is cast to its
// signature in op_signatures.h (a signature that drifts fails to compile) and wrapped in InFloat32 (bfloat16 and
// float16 run there in float32 between casts, low_precision.h), unless the device's Kernels serve the LSTM's
// forward and backward and the GRU's and layer-norm LSTM's inference in bfloat16 themselves (Kernels::bf16_*, see
// cpu/ops_cpu.cpp).
#pragma once

#include <torch/library.h>

#include "gru_op_driver.h"
#include "layer_norm_lstm_op_driver.h"
#include "low_precision.h"
#include "lstm_op_driver.h"

namespace fastlstm {

namespace op_names {
inline constexpr char kForward[] = "fastlstm::forward";
inline constexpr char kBackward[] = "fastlstm::backward";
inline constexpr char kCellForward[] = "fastlstm::cell_forward";
inline constexpr char kCellBackward[] = "fastlstm::cell_backward";
inline constexpr char kLayerNorm[] = "fastlstm::layer_norm_lstm";
inline constexpr char kLayerNormBackward[] = "fastlstm::layer_norm_lstm_backward";
inline constexpr char kGru[] = "fastlstm::gru";
inline constexpr char kGruBackward[] = "fastlstm::gru_backward";
}  // namespace op_names

// Positions of the workspace among each op's arguments / results (registration.cpp's schemas); -1: none.
template <typename Kernels>
ForwardResult forward_entry(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_ih,
                            const OptTensor& w_hh, const OptTensor& b_ih, const OptTensor& b_hh,
                            const OptTensor& w_peephole, const OptTensor& sequence_lengths, double forget_bias,
                            double cell_clip, bool training, bool tf_layout, const OptTensor& w_hr) {
  if constexpr (Kernels::kHasBf16Forward) {
    if (auto result = Kernels::bf16_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peephole, sequence_lengths,
                                            forget_bias, cell_clip, training, tf_layout, w_hr)) {
      return *result;
    }
  }
  return InFloat32<op_names::kForward, static_cast<ForwardSignature*>(&forward_op<Kernels>), -1, 3>::call(
      x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peephole, sequence_lengths, forget_bias, cell_clip, training, tf_layout,
      w_hr);
}

template <typename Kernels>
BackwardResult backward_entry(const OptTensor& grad_output, const OptTensor& grad_h_n, const OptTensor& grad_c_n,
                              const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_ih,
                              const OptTensor& w_hh, const OptTensor& w_peephole, const OptTensor& sequence_lengths,
                              const at::Tensor& output, const at::Tensor& workspace, double cell_clip, bool tf_layout,
                              const OptTensor& w_hr) {
  if constexpr (Kernels::kHasBf16Forward) {
    if (auto result = Kernels::bf16_backward(grad_output, grad_h_n, grad_c_n, x, h0, c0, w_ih, w_hh, w_peephole,
                                             sequence_lengths, output, workspace, cell_clip, tf_layout, w_hr)) {
      return *result;
    }
  }
  return InFloat32<op_names::kBackward, static_cast<BackwardSignature*>(&backward_op<Kernels>), 11, -1>::call(
      grad_output, grad_h_n, grad_c_n, x, h0, c0, w_ih, w_hh, w_peephole, sequence_lengths, output, workspace,
      cell_clip, tf_layout, w_hr);
}

template <typename Kernels>
GruForwardResult gru_entry(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& w_ih, const at::Tensor& w_hh,
                           const OptTensor& b_ih, const OptTensor& b_hh, const OptTensor& sequence_lengths,
                           bool training, bool linear_before_reset) {
  if constexpr (Kernels::kHasBf16Forward) {
    if (auto result = Kernels::bf16_gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, sequence_lengths, training,
                                                linear_before_reset)) {
      return *result;
    }
  }
  return InFloat32<op_names::kGru, static_cast<GruForwardSignature*>(&gru_op<Kernels>), -1, 2>::call(
      x, h0, w_ih, w_hh, b_ih, b_hh, sequence_lengths, training, linear_before_reset);
}

template <typename Kernels>
ForwardResult layer_norm_entry(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0,
                               const at::Tensor& w_ih, const at::Tensor& w_hh, const OptTensor& bias,
                               const at::Tensor& ln_ih_weight, const OptTensor& ln_hh_weight,
                               const at::Tensor& ln_cell_weight, const at::Tensor& ln_cell_bias,
                               const OptTensor& sequence_lengths, const OptTensor& g_mask, int64_t groups,
                               double eps, double forget_bias, bool carry_normalized_cell, bool training) {
  if constexpr (Kernels::kHasBf16Forward) {
    if (auto result = Kernels::bf16_layer_norm_forward(x, h0, c0, w_ih, w_hh, bias, ln_ih_weight, ln_hh_weight,
                                                       ln_cell_weight, ln_cell_bias, sequence_lengths, g_mask,
                                                       groups, eps, forget_bias, carry_normalized_cell, training)) {
      return *result;
    }
  }
  return InFloat32<op_names::kLayerNorm, static_cast<LayerNormForwardSignature*>(&layer_norm_lstm_op<Kernels>), -1,
                   3>::call(x, h0, c0, w_ih, w_hh, bias, ln_ih_weight, ln_hh_weight, ln_cell_weight, ln_cell_bias,
                            sequence_lengths, g_mask, groups, eps, forget_bias, carry_normalized_cell, training);
}

template <typename Kernels>
void register_op_bodies(torch::Library& m) {
  using namespace op_names;
  m.impl("forward", static_cast<ForwardSignature*>(&forward_entry<Kernels>));
  m.impl("backward", static_cast<BackwardSignature*>(&backward_entry<Kernels>));
  m.impl("cell_forward",
         &InFloat32<kCellForward, static_cast<CellForwardSignature*>(&cell_forward_op<Kernels>), -1, 2>::call);
  m.impl("cell_backward",
         &InFloat32<kCellBackward, static_cast<CellBackwardSignature*>(&cell_backward_op<Kernels>), 8, -1>::call);
  m.impl("layer_norm_lstm", static_cast<LayerNormForwardSignature*>(&layer_norm_entry<Kernels>));
  m.impl("layer_norm_lstm_backward",
         &InFloat32<kLayerNormBackward,
                    static_cast<LayerNormBackwardSignature*>(&layer_norm_lstm_backward_op<Kernels>), 15, -1>::call);
  m.impl("gru", static_cast<GruForwardSignature*>(&gru_entry<Kernels>));
  m.impl("gru_backward",
         &InFloat32<kGruBackward, static_cast<GruBackwardSignature*>(&gru_backward_op<Kernels>), 8, -1>::call);
}

}  // namespace fastlstm
