// CPU kernels of every fastlstm op.
#include <torch/library.h>

#include "../op_bodies_registration.h"
#include "buffer_pool.h"
#include "gru_kernel.h"
#include "layer_norm_lstm_kernel.h"
#include "lstm_bf16_op.h"
#include "lstm_kernel.h"

namespace fastlstm {
namespace {

struct CpuKernels {
  struct Scope {};  // nothing to set up around a CPU op
  static Scope enter(const char*, const at::Tensor&, const OptTensor&) { return {}; }
  static constexpr bool kHasBf16Forward = true;
  static constexpr auto bf16_forward = &cpu::lstm_forward_bf16_op;
  static constexpr auto bf16_backward = &cpu::lstm_backward_bf16_op;
  static constexpr auto bf16_gru_forward = &cpu::gru_forward_bf16_op;
  static constexpr auto bf16_layer_norm_forward = &cpu::layer_norm_lstm_forward_bf16_op;
  template <typename scalar_t>
  static void forward(const LstmParams<scalar_t>& p) {
    cpu::lstm_forward(p);
  }
  template <typename scalar_t>
  static void backward(const LstmParams<scalar_t>& p) {
    cpu::lstm_backward(p);
  }
  template <typename scalar_t>
  static void layer_norm_forward(const LayerNormLstmParams<scalar_t>& p) {
    cpu::layer_norm_lstm_forward(p);
  }
  template <typename scalar_t>
  static void layer_norm_backward(const LayerNormLstmParams<scalar_t>& p) {
    cpu::layer_norm_lstm_backward(p);
  }
  template <typename scalar_t>
  static void gru_forward(const GruParams<scalar_t>& p) {
    cpu::gru_forward(p);
  }
  template <typename scalar_t>
  static void gru_backward(const GruParams<scalar_t>& p) {
    cpu::gru_backward(p);
  }
  static at::Tensor workspace_empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
    return cpu::pooled_empty(sizes, options);
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(fastlstm, CPU, m) { register_op_bodies<CpuKernels>(m); }

}  // namespace fastlstm
