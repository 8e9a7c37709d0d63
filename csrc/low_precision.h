// bfloat16 and float16 on the kernels that compute in float32: every op takes them, and where no kernel of its own
// serves the dtype (see cpu/lstm_bf16_kernel.h for the one that does), the op runs in float32 between two casts.
// Why float32 inside: the gates and the cell state are sums of many products, and c is carried over every step, so
// their rounding to 8 bits of mantissa would compound along the sequence; torch.nn.LSTM's bf16 kernel (oneDNN) also
// keeps them in float32. What comes back: every output in the inputs' dtype (as torch.nn.LSTM returns for a bf16
// module: output, h_n and c_n all bf16), except the workspace, which stays float32 (the activated gates and c that
// backward reads: its precision is the backward's).
//
// InFloat32<op, workspace_arg, workspace_result>::call has op's signature: with no bf16/half tensor among the
// arguments it is op itself; else it checks that every floating tensor has that one dtype (the workspace argument,
// if any, float32), casts them to float32, calls op and casts the results back (all but workspace_result).
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <optional>
#include <string>
#include <tuple>
#include <utility>

namespace fastlstm {

namespace low_precision {

inline bool is_low_precision(at::ScalarType dtype) { return dtype == at::kBFloat16 || dtype == at::kHalf; }

inline void find_low(const at::Tensor& t, std::optional<at::ScalarType>& low) {
  if (!low && t.defined() && is_low_precision(t.scalar_type())) low = t.scalar_type();
}
inline void find_low(const std::optional<at::Tensor>& t, std::optional<at::ScalarType>& low) {
  if (t) find_low(*t, low);
}
template <typename T>
void find_low(const T&, std::optional<at::ScalarType>&) {}

// The schema's name of argument `index` of op `name`, for error messages.
inline std::string argument_name(const char* name, size_t index) {
  const auto handle = c10::Dispatcher::singleton().findSchemaOrThrow(name, "");
  return handle.schema().arguments().at(index).name();
}

inline void check_dtype(const char* name, size_t index, const at::Tensor& t, at::ScalarType low, bool workspace) {
  if (!t.defined() || !at::isFloatingType(t.scalar_type())) return;
  const at::ScalarType expected = workspace ? at::kFloat : low;
  TORCH_CHECK(t.scalar_type() == expected, name, ": expected ", argument_name(name, index), " in ", expected,
              workspace ? " (the workspace of a low-precision forward)" : " (the dtype of the op's other tensors)",
              ", got ", t.scalar_type());
}
inline void check_dtype(const char* name, size_t index, const std::optional<at::Tensor>& t, at::ScalarType low,
                        bool workspace) {
  if (t) check_dtype(name, index, *t, low, workspace);
}
template <typename T>
void check_dtype(const char*, size_t, const T&, at::ScalarType, bool) {}

inline at::Tensor widen(const at::Tensor& t) {
  return t.defined() && is_low_precision(t.scalar_type()) ? t.to(at::kFloat) : t;
}
inline std::optional<at::Tensor> widen(const std::optional<at::Tensor>& t) {
  return t ? std::optional<at::Tensor>(widen(*t)) : t;
}
template <typename T>
const T& widen(const T& value) {
  return value;
}

template <typename... Tensors, size_t... k>
std::tuple<Tensors...> narrow(std::tuple<Tensors...> result, at::ScalarType low, int keep,
                              std::index_sequence<k...>) {
  ((std::get<k>(result) = static_cast<int>(k) == keep || !std::get<k>(result).defined()
                              ? std::get<k>(result)
                              : std::get<k>(result).to(low)),
   ...);
  return result;
}

}  // namespace low_precision

template <const char* kName, auto kOp, int kWorkspaceArg, int kWorkspaceResult, typename F = decltype(kOp)>
struct InFloat32;

template <const char* kName, auto kOp, int kWorkspaceArg, int kWorkspaceResult, typename... Results, typename... Args>
struct InFloat32<kName, kOp, kWorkspaceArg, kWorkspaceResult, std::tuple<Results...> (*)(Args...)> {
  static std::tuple<Results...> call(Args... args) {
    std::optional<at::ScalarType> low;
    size_t index = 0;
    // (The workspace argument is float32 even for a bf16 op, so it does not decide the dtype.)
    ((static_cast<int>(index++) == kWorkspaceArg ? void() : low_precision::find_low(args, low)), ...);
    if (!low) return kOp(args...);
    index = 0;
    ((low_precision::check_dtype(kName, index, args, *low, static_cast<int>(index) == kWorkspaceArg), ++index), ...);
    return low_precision::narrow(kOp(low_precision::widen(args)...), *low, kWorkspaceResult,
                                 std::index_sequence_for<Results...>{});
  }
};

}  // namespace fastlstm
