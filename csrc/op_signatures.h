// The C++ types of the ops registered in registration.cpp (whose schemas are the source of truth), for the code that
// calls them through the dispatcher: the autograd kernels (autograd.cpp) and the direct calls of the Python layer
// (python/direct_calls.cpp).
#pragma once

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>
#include <vector>

namespace fastlstm {

using OptTensor = std::optional<at::Tensor>;
using ForwardResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
using CellForwardResult = std::tuple<at::Tensor, at::Tensor, at::Tensor>;
using BackwardResult =
    std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

using ForwardSignature = ForwardResult(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                       const OptTensor&, const OptTensor&, const OptTensor&, const OptTensor&,
                                       const OptTensor&, double, double, bool, bool, const OptTensor&);
using BackwardSignature = BackwardResult(const OptTensor&, const OptTensor&, const OptTensor&, const at::Tensor&,
                                         const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptTensor&,
                                         const OptTensor&, const OptTensor&, const at::Tensor&, const at::Tensor&,
                                         double, bool, const OptTensor&);
using CellForwardSignature = CellForwardResult(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                               const at::Tensor&, const OptTensor&, const OptTensor&,
                                               const OptTensor&, const OptTensor&, double, double, bool, bool,
                                               const OptTensor&);
using CellBackwardSignature = BackwardResult(const OptTensor&, const OptTensor&, const at::Tensor&, const at::Tensor&,
                                             const at::Tensor&, const at::Tensor&, const OptTensor&,
                                             const OptTensor&, const at::Tensor&, double, bool, const OptTensor&);

// The layer-normalised LSTM (layer_norm_lstm_params.h): forward, and backward's gradients of x, h0, c0, w_ih, w_hh,
// bias, ln_ih_weight, ln_hh_weight, ln_cell_weight, ln_cell_bias.
using LayerNormBackwardResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                                           at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
using LayerNormForwardSignature = ForwardResult(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                const at::Tensor&, const at::Tensor&, const OptTensor&,
                                                const at::Tensor&, const OptTensor&, const at::Tensor&,
                                                const at::Tensor&, const OptTensor&, const OptTensor&, int64_t, double,
                                                double, bool, bool);
using LayerNormBackwardSignature = LayerNormBackwardResult(
    const OptTensor&, const OptTensor&, const OptTensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
    const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptTensor&, const at::Tensor&, const at::Tensor&,
    const OptTensor&, const OptTensor&, const at::Tensor&, const at::Tensor&, int64_t, bool);

// The GRU: forward (output, h_n, workspace), and backward's gradients of x, h0, w_ih, w_hh, b_ih, b_hh.
using GruForwardResult = std::tuple<at::Tensor, at::Tensor, at::Tensor>;
using GruBackwardResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
using GruForwardSignature = GruForwardResult(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                             const at::Tensor&, const OptTensor&, const OptTensor&, const OptTensor&,
                                             bool, bool);
using GruBackwardSignature = GruBackwardResult(const OptTensor&, const OptTensor&, const at::Tensor&,
                                               const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                               const OptTensor&, const at::Tensor&, const at::Tensor&, bool);

// The differentiable backwards (registration.cpp): one gradient per given differentiable input.
using Gradients = std::vector<at::Tensor>;
using ForwardDifferentiableBackwardSignature = Gradients(const OptTensor&, const OptTensor&, const OptTensor&,
                                                         const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                         const at::Tensor&, const OptTensor&, const OptTensor&,
                                                         const OptTensor&, const OptTensor&, const OptTensor&, double,
                                                         double, bool, const OptTensor&);
using CellDifferentiableBackwardSignature = Gradients(const OptTensor&, const OptTensor&, const at::Tensor&,
                                                      const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                      const OptTensor&, const OptTensor&, const OptTensor&,
                                                      const OptTensor&, double, double, bool, const OptTensor&);
using LayerNormDifferentiableBackwardSignature = Gradients(
    const OptTensor&, const OptTensor&, const OptTensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
    const at::Tensor&, const at::Tensor&, const OptTensor&, const at::Tensor&, const OptTensor&, const at::Tensor&,
    const at::Tensor&, const OptTensor&, const OptTensor&, int64_t, double, double, bool);
using GruDifferentiableBackwardSignature = Gradients(const OptTensor&, const OptTensor&, const at::Tensor&,
                                                     const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                     const OptTensor&, const OptTensor&, const OptTensor&, bool);

// The dispatcher's handle of op `name` ("fastlstm::forward", ...), typed; throws if it is not registered.
template <typename Signature>
c10::TypedOperatorHandle<Signature> op_handle(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

}  // namespace fastlstm
