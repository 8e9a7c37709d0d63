// CUDA kernels of every fastlstm op: the same op bodies as the CPU (lstm_op_driver.h) with the CUDA time loops.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../op_bodies_registration.h"
#include "gru_kernel.h"
#include "layer_norm_lstm_kernel.h"
#include "lstm_kernel.h"

namespace fastlstm {
namespace {

struct CudaKernels {
  // Each op runs on the device of x (multi-GPU processes), on that device's current stream; the CUDA time loops
  // have no projection.
  static c10::cuda::CUDAGuard enter(const char* op, const at::Tensor& x, const OptTensor& w_hr) {
    TORCH_CHECK(!w_hr, op, ": projections (w_hr) run on the CPU kernels only; on CUDA tensors use cuDNN "
                "(fastlstm.functional's backend='cudnn' or 'auto') or backend='reference'");
    return c10::cuda::CUDAGuard(x.device());
  }
  static constexpr bool kHasBf16Forward = false;  // bf16 runs in float32 between casts (low_precision.h)
  template <typename scalar_t>
  static void forward(const LstmParams<scalar_t>& p) {
    cuda::lstm_forward(p);
  }
  template <typename scalar_t>
  static void backward(const LstmParams<scalar_t>& p) {
    cuda::lstm_backward(p);
  }
  template <typename scalar_t>
  static void layer_norm_forward(const LayerNormLstmParams<scalar_t>& p) {
    cuda::layer_norm_lstm_forward(p);
  }
  template <typename scalar_t>
  static void layer_norm_backward(const LayerNormLstmParams<scalar_t>& p) {
    cuda::layer_norm_lstm_backward(p);
  }
  template <typename scalar_t>
  static void gru_forward(const GruParams<scalar_t>& p) {
    cuda::gru_forward(p);
  }
  template <typename scalar_t>
  static void gru_backward(const GruParams<scalar_t>& p) {
    cuda::gru_backward(p);
  }
  static at::Tensor workspace_empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
    return at::empty(sizes, options);  // torch's caching allocator already reuses device memory
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(fastlstm, CUDA, m) { register_op_bodies<CudaKernels>(m); }

}  // namespace fastlstm
