// The bfloat16 paths on the CPU's bf16 matrix instructions: the LSTM's forward and backward, the GRU's and the
// layer-norm LSTM's inference (lstm_bf16_kernel.h, layer_norm_lstm_kernel.h).
#pragma once

#include <optional>

#include "../op_signatures.h"

namespace fastlstm::cpu {

// The forward op's result from the bf16 kernel, or nullopt where that kernel does not serve the call: not bf16;
// sequence lengths, projections or TF's layout (those run in float32 between casts); an odd input size or a hidden
// size not a multiple of 32 (brgemm's VNNI pairs and column blocks); a CPU without AVX512_BF16 / AMX, a forced dispatch level below AVX-512
// (FASTLSTM_CPU_CAPABILITY), or FASTLSTM_BF16=convert.
std::optional<ForwardResult> lstm_forward_bf16_op(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0,
                                                  const at::Tensor& w_ih, const OptTensor& w_hh,
                                                  const OptTensor& b_ih, const OptTensor& b_hh,
                                                  const OptTensor& w_peephole, const OptTensor& sequence_lengths,
                                                  double forget_bias, double cell_clip, bool training,
                                                  bool tf_layout, const OptTensor& w_hr);

// The backward op's result from the bf16 kernels, or nullopt where they do not serve it: as above, and peepholes
// (their gradients run in float32 between casts), or a workspace not from a bf16 forward.
std::optional<BackwardResult> lstm_backward_bf16_op(const OptTensor& grad_output, const OptTensor& grad_h_n,
                                                    const OptTensor& grad_c_n, const at::Tensor& x,
                                                    const at::Tensor& h0, const at::Tensor& c0,
                                                    const at::Tensor& w_ih, const OptTensor& w_hh,
                                                    const OptTensor& w_peephole, const OptTensor& sequence_lengths,
                                                    const at::Tensor& output, const at::Tensor& workspace,
                                                    double cell_clip, bool tf_layout, const OptTensor& w_hr);

// The GRU op's result from the bf16 kernel (inference only: training=False), or nullopt: as the LSTM's forward,
// and training, or TF's convention (linear_before_reset=False: its reset gate scales h before the product).
std::optional<GruForwardResult> gru_forward_bf16_op(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& w_ih,
                                                   const at::Tensor& w_hh, const OptTensor& b_ih,
                                                   const OptTensor& b_hh, const OptTensor& sequence_lengths,
                                                   bool training, bool linear_before_reset);

// The layer-norm LSTM op's result from its bf16 kernel (inference, no lengths, no g_mask), or nullopt (as above).
std::optional<ForwardResult> layer_norm_lstm_forward_bf16_op(
    const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_ih, const at::Tensor& w_hh,
    const OptTensor& bias, const at::Tensor& ln_ih_weight, const OptTensor& ln_hh_weight,
    const at::Tensor& ln_cell_weight, const at::Tensor& ln_cell_bias, const OptTensor& sequence_lengths,
    const OptTensor& g_mask, int64_t groups, double eps, double forget_bias, bool carry_normalized_cell,
    bool training);

}  // namespace fastlstm::cpu
