// CUDA kernels of every fastlstm op: the same op bodies as the CPU (lstm_op_driver.h) with the CUDA time loops.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../lstm_op_driver.h"
#include "lstm_kernel.h"

namespace fastlstm {
namespace {

void refuse_projection(const char* op, const OptTensor& w_hr) {
  TORCH_CHECK(!w_hr, op, ": projections (w_hr) run on the CPU kernels only; on CUDA tensors use cuDNN "
              "(fastlstm.functional's backend='cudnn' or 'auto') or backend='reference'");
}

struct CudaKernels {
  template <typename scalar_t>
  static void forward(const LstmParams<scalar_t>& p) {
    cuda::lstm_forward(p);
  }
  template <typename scalar_t>
  static void backward(const LstmParams<scalar_t>& p) {
    cuda::lstm_backward(p);
  }
  static at::Tensor workspace_empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
    return at::empty(sizes, options);  // torch's caching allocator already reuses device memory
  }
};

// Each op runs on the device of x (multi-GPU processes), on that device's current stream.
ForwardResult forward_cuda(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_ih,
                           const OptTensor& w_hh, const OptTensor& b_ih, const OptTensor& b_hh,
                           const OptTensor& w_peephole, const OptTensor& sequence_lengths, double forget_bias,
                           double cell_clip, bool training, bool tf_layout, const OptTensor& w_hr) {
  refuse_projection("fastlstm::forward", w_hr);
  const c10::cuda::CUDAGuard guard(x.device());
  return forward_op<CudaKernels>(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peephole, sequence_lengths, forget_bias,
                                 cell_clip, training, tf_layout, w_hr);
}

BackwardResult backward_cuda(const OptTensor& grad_output, const OptTensor& grad_h_n, const OptTensor& grad_c_n,
                             const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_ih,
                             const OptTensor& w_hh, const OptTensor& w_peephole, const OptTensor& sequence_lengths,
                             const at::Tensor& output, const at::Tensor& workspace, double cell_clip,
                             bool tf_layout, const OptTensor& w_hr) {
  refuse_projection("fastlstm::backward", w_hr);
  const c10::cuda::CUDAGuard guard(x.device());
  return backward_op<CudaKernels>(grad_output, grad_h_n, grad_c_n, x, h0, c0, w_ih, w_hh, w_peephole,
                                  sequence_lengths, output, workspace, cell_clip, tf_layout, w_hr);
}

CellForwardResult cell_forward_cuda(const at::Tensor& x, const at::Tensor& h, const at::Tensor& c,
                                    const at::Tensor& w_ih, const OptTensor& w_hh, const OptTensor& b_ih,
                                    const OptTensor& b_hh, const OptTensor& w_peephole, double forget_bias,
                                    double cell_clip, bool training, bool tf_layout, const OptTensor& w_hr) {
  refuse_projection("fastlstm::cell_forward", w_hr);
  const c10::cuda::CUDAGuard guard(x.device());
  return cell_forward_op<CudaKernels>(x, h, c, w_ih, w_hh, b_ih, b_hh, w_peephole, forget_bias, cell_clip, training,
                                      tf_layout, w_hr);
}

BackwardResult cell_backward_cuda(const OptTensor& grad_h_new, const OptTensor& grad_c_new, const at::Tensor& x,
                                  const at::Tensor& h, const at::Tensor& c, const at::Tensor& w_ih,
                                  const OptTensor& w_hh, const OptTensor& w_peephole, const at::Tensor& workspace,
                                  double cell_clip, bool tf_layout, const OptTensor& w_hr) {
  refuse_projection("fastlstm::cell_backward", w_hr);
  const c10::cuda::CUDAGuard guard(x.device());
  return cell_backward_op<CudaKernels>(grad_h_new, grad_c_new, x, h, c, w_ih, w_hh, w_peephole, workspace,
                                       cell_clip, tf_layout, w_hr);
}

}  // namespace

TORCH_LIBRARY_IMPL(fastlstm, CUDA, m) {
  m.impl("forward", &forward_cuda);
  m.impl("backward", &backward_cuda);
  m.impl("cell_forward", &cell_forward_cuda);
  m.impl("cell_backward", &cell_backward_cuda);
}

}  // namespace fastlstm
