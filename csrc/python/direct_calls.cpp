// fastlstm._direct: the forward ops called from Python without torch.ops' boxing. torch.ops converts every argument
// to an IValue against the schema on each call, ~9 us of a ~15 us single step at batch 1, H=128 (measured); here
// pybind11 converts them straight to the C++ types and the call goes through the dispatcher unboxed, so the device
// kernels, autograd and tracing are the op's own. The Python layer uses it in eager mode only (torch.compile and
// tensor subclasses see torch.ops). Linked against libtorch_python, unlike the ops library (_C), which C++ programs
// load without Python.
#include <torch/extension.h>

#include "../op_signatures.h"

namespace fastlstm {
namespace {

// A callable for op `name` of type Signature taking the op's arguments, then below_autograd: nothing needs a
// gradient, so skip the autograd kernel (it costs ~1 us a call with nothing to record).
template <typename Signature>
struct Direct;

template <typename Result, typename... Args>
struct Direct<Result(Args...)> {
  static auto call(const char* name) {
    return [name](Args... args, bool below_autograd) -> Result {
      static const auto op = op_handle<Result(Args...)>(name);  // (one per op: each Signature is one op's)
      std::optional<at::AutoDispatchBelowAutograd> guard;
      if (below_autograd) guard.emplace();
      return op.call(args...);
    };
  }
};

}  // namespace
}  // namespace fastlstm

PYBIND11_MODULE(_direct, m) {
  using namespace fastlstm;
  m.doc() = "fastlstm's forward ops called without torch.ops' argument boxing (eager mode; see functional.py): each "
            "takes the op's arguments, then below_autograd";
  m.def("forward", Direct<ForwardSignature>::call("fastlstm::forward"));
  m.def("cell_forward", Direct<CellForwardSignature>::call("fastlstm::cell_forward"));
  m.def("layer_norm_lstm", Direct<LayerNormForwardSignature>::call("fastlstm::layer_norm_lstm"));
  m.def("gru", Direct<GruForwardSignature>::call("fastlstm::gru"));
}
