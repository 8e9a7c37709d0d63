// fastlstm._direct: the forward ops called from Python without torch.ops' boxing. torch.ops converts every argument
// to an IValue against the schema on each call: 17 of a 52 us single step at batch 1, H=128 on a Zen 1 host
// (measured); here nanobind converts them straight to the C++ types and the call goes through the dispatcher
// unboxed, so the device kernels, autograd and tracing are the op's own. The Python layer uses it in eager mode
// only (torch.compile and tensor subclasses see torch.ops). Built against Python's stable ABI where nanobind
// allows it (Python >= 3.12): it reaches torch's tensors through tensor_caster.h, not torch's Python headers.
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/tuple.h>

#include "../op_signatures.h"
#include "error_translation.h"
#include "tensor_caster.h"

namespace fastlstm {
namespace {

// A callable for op `name` of type Signature taking the op's arguments, then below_autograd: nothing needs a
// gradient, so skip the autograd kernel (it costs ~1 us a call with nothing to record). The op runs without the
// GIL, as torch.ops' calls do.
template <typename Signature>
struct Direct;

template <typename Result, typename... Args>
struct Direct<Result(Args...)> {
  static void bind(nanobind::module_& module, const char* python_name, const char* op_name) {
    module.def(
        python_name,
        [op_name](Args... args, bool below_autograd) -> Result {
          static const auto op = op_handle<Result(Args...)>(op_name);  // (one per op: each Signature is one op's)
          std::optional<at::AutoDispatchBelowAutograd> guard;
          if (below_autograd) guard.emplace();
          return op.call(args...);
        },
        nanobind::call_guard<nanobind::gil_scoped_release>());
  }
};

}  // namespace
}  // namespace fastlstm

NB_MODULE(_direct, m) {
  using namespace fastlstm;
  python::check_tensor_layout();
  python::register_error_translation();
  m.doc() = "fastlstm's forward ops called without torch.ops' argument boxing (eager mode; see functional.py): each "
            "takes the op's arguments, then below_autograd";
  Direct<ForwardSignature>::bind(m, "forward", "fastlstm::forward");
  Direct<CellForwardSignature>::bind(m, "cell_forward", "fastlstm::cell_forward");
  Direct<LayerNormForwardSignature>::bind(m, "layer_norm_lstm", "fastlstm::layer_norm_lstm");
  Direct<GruForwardSignature>::bind(m, "gru", "fastlstm::gru");
}
