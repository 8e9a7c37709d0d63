// The sequence ops under torch.autocast (the AutocastCPU / AutocastCUDA dispatch keys): floating inputs are cast to
// the autocast dtype (at::autocast::cached_cast: float32 master weights are cast once per autocast region, and the
// casts are differentiable, so gradients reach them) and the op runs on its low-precision path (low_precision.h,
// cpu/lstm_bf16_kernel.h). Being dispatcher kernels, they serve the modules, fastlstm.functional, torch.ops calls,
// torch.compile and torch.export alike.
//
// Result dtypes follow torch.nn's under autocast (torch 2.13, measured): torch.nn.LSTM returns output, h_n and c_n
// in the autocast dtype, so forward and layer_norm_lstm do too; torch.nn.GRU runs in float32 under CPU autocast, so
// gru computes in the autocast dtype but returns float32. The single-step ops have no autocast kernel: torch.nn's
// LSTMCell / GRUCell stay float32 under autocast, and so do fastlstm's (a per-step cast would also cost more than the
// step). The backward ops need none: autograd calls them with the dtypes the forward saw.
#include <ATen/autocast_mode.h>
#include <torch/library.h>

#include <tuple>
#include <utility>

#include "op_signatures.h"

namespace fastlstm {
namespace {

template <c10::DeviceType kDevice>
constexpr c10::DispatchKey autocast_key() {
  return kDevice == c10::DeviceType::CUDA ? c10::DispatchKey::AutocastCUDA : c10::DispatchKey::AutocastCPU;
}

template <typename T>
const T& cast(at::ScalarType, const T& value, c10::DeviceType) {
  return value;
}
inline at::Tensor cast(at::ScalarType dtype, const at::Tensor& t, c10::DeviceType device) {
  return at::autocast::cached_cast(dtype, t, device);
}
inline OptTensor cast(at::ScalarType dtype, const OptTensor& t, c10::DeviceType device) {
  return at::autocast::cached_cast(dtype, t, device);
}

template <const char* kName, c10::DeviceType kDevice, bool kResultsInFloat32, typename Signature>
struct Autocast;

template <const char* kName, c10::DeviceType kDevice, bool kResultsInFloat32, typename... Results, typename... Args>
struct Autocast<kName, kDevice, kResultsInFloat32, std::tuple<Results...>(Args...)> {
  static std::tuple<Results...> call(Args... args) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(autocast_key<kDevice>());
    static const auto op = op_handle<std::tuple<Results...>(Args...)>(kName);
    const at::ScalarType dtype = at::autocast::get_autocast_dtype(kDevice);
    auto result = op.call(cast(dtype, args, kDevice)...);
    if constexpr (kResultsInFloat32) {
      std::apply([](auto&... t) { ((t = t.to(at::kFloat)), ...); }, result);
    }
    return result;
  }
};

constexpr char kForward[] = "fastlstm::forward";
constexpr char kLayerNorm[] = "fastlstm::layer_norm_lstm";
constexpr char kGru[] = "fastlstm::gru";

template <c10::DeviceType kDevice>
void register_autocast(torch::Library& m) {
  m.impl("forward", &Autocast<kForward, kDevice, false, ForwardSignature>::call);
  m.impl("layer_norm_lstm", &Autocast<kLayerNorm, kDevice, false, LayerNormForwardSignature>::call);
  m.impl("gru", &Autocast<kGru, kDevice, true, GruForwardSignature>::call);
}

}  // namespace

TORCH_LIBRARY_IMPL(fastlstm, AutocastCPU, m) { register_autocast<c10::DeviceType::CPU>(m); }
TORCH_LIBRARY_IMPL(fastlstm, AutocastCUDA, m) { register_autocast<c10::DeviceType::CUDA>(m); }

}  // namespace fastlstm
