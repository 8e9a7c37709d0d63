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

// below_autograd: nothing needs a gradient, so skip the autograd kernel (it costs ~1 us a call with nothing to record).
ForwardResult forward(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_ih,
                      const OptTensor& w_hh, const OptTensor& b_ih, const OptTensor& b_hh, const OptTensor& w_peephole,
                      const OptTensor& sequence_lengths, double forget_bias, double cell_clip, bool training,
                      bool tf_layout, const OptTensor& w_hr, bool below_autograd) {
  static const auto op = op_handle<ForwardSignature>("fastlstm::forward");
  std::optional<at::AutoDispatchBelowAutograd> guard;
  if (below_autograd) guard.emplace();
  return op.call(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peephole, sequence_lengths, forget_bias, cell_clip, training,
                 tf_layout, w_hr);
}

CellForwardResult cell_forward(const at::Tensor& x, const at::Tensor& h, const at::Tensor& c, const at::Tensor& w_ih,
                               const OptTensor& w_hh, const OptTensor& b_ih, const OptTensor& b_hh,
                               const OptTensor& w_peephole, double forget_bias, double cell_clip, bool training,
                               bool tf_layout, const OptTensor& w_hr, bool below_autograd) {
  static const auto op = op_handle<CellForwardSignature>("fastlstm::cell_forward");
  std::optional<at::AutoDispatchBelowAutograd> guard;
  if (below_autograd) guard.emplace();
  return op.call(x, h, c, w_ih, w_hh, b_ih, b_hh, w_peephole, forget_bias, cell_clip, training, tf_layout, w_hr);
}

}  // namespace
}  // namespace fastlstm

PYBIND11_MODULE(_direct, m) {
  m.doc() = "fastlstm's forward ops called without torch.ops' argument boxing (eager mode; see functional.py)";
  m.def("forward", &fastlstm::forward, "torch.ops.fastlstm.forward's arguments, then below_autograd");
  m.def("cell_forward", &fastlstm::cell_forward, "torch.ops.fastlstm.cell_forward's arguments, then below_autograd");
}
