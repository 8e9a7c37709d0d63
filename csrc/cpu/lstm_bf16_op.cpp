#include "lstm_bf16_op.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/native/CPUBlas.h>

#include <cstdlib>
#include <cstring>

#include "../input_checks.h"
#include "../lstm_params.h"
#include "buffer_pool.h"
#include "cpu_capability.h"
#include "layer_norm_lstm_kernel.h"
#include "lstm_bf16_kernel.h"
#include "packed_weight_cache.h"

namespace fastlstm::cpu {
namespace {

bool kernel_enabled() {
  static const bool enabled = [] {
    const char* asked = std::getenv("FASTLSTM_BF16");
    TORCH_CHECK(asked == nullptr || !*asked || std::strcmp(asked, "kernel") == 0 || std::strcmp(asked, "convert") == 0,
                "fastlstm: expected FASTLSTM_BF16 to be kernel or convert, got '", asked, "'");
    return (asked == nullptr || std::strcmp(asked, "convert") != 0) && cpu_capability() == CpuCapability::Avx512 &&
           at::native::cpublas::could_pack(at::kBFloat16);
  }();
  return enabled;
}

// W [rows, K] -> W^T [K, rows] as brgemm reads it: column blocks of kBf16ColumnBlock, each [K / 2, block, 2] (VNNI
// pairs of k) on its own (oneDNN's own packing takes no rows wider than 64 columns). Written here from W directly:
// cpublas::pack wants W^T materialised first, and the two passes cost ~1 ms at I = H = 512.
at::Tensor pack_transposed(const at::Tensor& w) {
  const at::Tensor dense = w.contiguous();
  const int64_t n = dense.size(0), k = dense.size(1), blocks = n / kBf16ColumnBlock;
  at::Tensor packed = at::empty({blocks, k / 2, kBf16ColumnBlock, 2}, w.options());
  const auto* in = dense.const_data_ptr<c10::BFloat16>();
  auto* out = packed.mutable_data_ptr<c10::BFloat16>();
  at::parallel_for(0, blocks, 1, [&](int64_t first, int64_t last) {
    for (int64_t block = first; block < last; ++block) {
      c10::BFloat16* block_out = out + block * k * kBf16ColumnBlock;
      for (int64_t column = 0; column < kBf16ColumnBlock; ++column) {
        const c10::BFloat16* row = in + (block * kBf16ColumnBlock + column) * k;
        for (int64_t pair = 0; pair < k / 2; ++pair) {
          block_out[(pair * kBf16ColumnBlock + column) * 2] = row[2 * pair];
          block_out[(pair * kBf16ColumnBlock + column) * 2 + 1] = row[2 * pair + 1];
        }
      }
    }
  });
  return packed;
}

at::Tensor pack_as_is(const at::Tensor& w) { return pack_transposed(w.t()); }

bool serves(const at::Tensor& x, const OptTensor& sequence_lengths, bool tf_layout, const OptTensor& w_hr,
            const LstmSizes& s) {
  return x.scalar_type() == at::kBFloat16 && !sequence_lengths && !w_hr && !tf_layout && s.seq_len > 0 &&
         s.batch > 0 && s.input_size % 2 == 0 && s.hidden_size % kBf16ColumnBlock == 0 && kernel_enabled();
}

at::Tensor float_copy(const OptTensor& t, const at::Tensor& like) {
  return t ? t->to(at::kFloat, false, /*copy=*/true).contiguous() : at::zeros(like.sizes(), like.options().dtype(at::kFloat));
}

}  // namespace

std::optional<BackwardResult> lstm_backward_bf16_op(const OptTensor& grad_output, const OptTensor& grad_h_n,
                                                    const OptTensor& grad_c_n, const at::Tensor& x,
                                                    const at::Tensor& h0, const at::Tensor& c0,
                                                    const at::Tensor& w_ih, const OptTensor& w_hh,
                                                    const OptTensor& w_peephole, const OptTensor& sequence_lengths,
                                                    const at::Tensor& output, const at::Tensor& workspace,
                                                    double cell_clip, bool tf_layout, const OptTensor& w_hr) {
  constexpr const char* op = "fastlstm::backward";
  if (x.scalar_type() != at::kBFloat16 || w_peephole || workspace.scalar_type() != at::kFloat) return std::nullopt;
  const LstmSizes s =
      check_lstm_inputs(op, false, x, h0, c0, w_ih, w_hh, std::nullopt, std::nullopt, w_peephole, false, w_hr);
  if (!serves(x, sequence_lengths, tf_layout, w_hr, s)) return std::nullopt;
  const int64_t T = s.seq_len, B = s.batch, I = s.input_size, H = s.hidden_size;
  check_grad(op, "grad_output", grad_output, {T, B, H}, x);
  check_grad(op, "grad_h_n", grad_h_n, {B, H}, x);
  check_grad(op, "grad_c_n", grad_c_n, {B, H}, x);
  check_grad(op, "output", output, {T, B, H}, x);
  TORCH_CHECK(workspace.sizes() == at::IntArrayRef({T, B, kWorkspaceWidth * H}), op,
              ": expected the workspace of a bf16 training forward, of shape [", T, ", ", B, ", ",
              kWorkspaceWidth * H, "], got ", workspace.sizes());
  const at::Tensor workspace_dense = workspace.contiguous(), c0_float = c0.to(at::kFloat).contiguous();
  const at::Tensor grad_output_dense = grad_output ? grad_output->contiguous() : at::Tensor();
  const at::Tensor dh = float_copy(grad_h_n, h0), dc = float_copy(grad_c_n, c0);
  const at::Tensor d_pre = at::empty({T, B, 4 * H}, x.options());
  const at::Tensor w_hh_packed = packed_weight(*w_hh, PackedAs::IsRows, pack_as_is);

  Bf16LstmBackwardParams p;
  p.seq_len = T;
  p.batch = B;
  p.hidden_size = H;
  p.workspace = workspace_dense.const_data_ptr<float>();
  p.c0 = c0_float.const_data_ptr<float>();
  p.grad_output = grad_output ? grad_output_dense.const_data_ptr<c10::BFloat16>() : nullptr;
  p.w_hh_packed = w_hh_packed.const_data_ptr<c10::BFloat16>();
  p.cell_clip = static_cast<float>(cell_clip);
  p.dh = dh.mutable_data_ptr<float>();
  p.dc = dc.mutable_data_ptr<float>();
  p.d_pre = d_pre.mutable_data_ptr<c10::BFloat16>();
  lstm_backward_bf16(p);

  // The products over all steps, on torch's bf16 GEMM (oneDNN: AMX / AVX512_BF16, float32 sums, one rounding).
  const at::Tensor d_pre_rows = d_pre.view({T * B, 4 * H});
  const at::Tensor h_prev = at::cat({h0.unsqueeze(0), output.narrow(0, 0, T - 1)}).view({T * B, H});
  return BackwardResult{d_pre_rows.mm(w_ih).view({T, B, I}),
                        dh.to(at::kBFloat16),
                        dc.to(at::kBFloat16),
                        d_pre_rows.t().mm(x.reshape({T * B, I})),
                        d_pre_rows.t().mm(h_prev),
                        d_pre_rows.sum(0, /*keepdim=*/false, at::kFloat).to(at::kBFloat16),
                        at::empty({0, 0}, x.options()),
                        at::empty({0}, x.options())};
}

std::optional<ForwardResult> lstm_forward_bf16_op(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0,
                                                  const at::Tensor& w_ih, const OptTensor& w_hh,
                                                  const OptTensor& b_ih, const OptTensor& b_hh,
                                                  const OptTensor& w_peephole, const OptTensor& sequence_lengths,
                                                  double forget_bias, double cell_clip, bool training,
                                                  bool tf_layout, const OptTensor& w_hr) {
  if (x.scalar_type() != at::kBFloat16 || sequence_lengths || w_hr || tf_layout) return std::nullopt;
  const LstmSizes s = check_lstm_inputs("fastlstm::forward", false, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_peephole,
                                        false, w_hr);
  const int64_t T = s.seq_len, B = s.batch, I = s.input_size, H = s.hidden_size;
  if (!serves(x, sequence_lengths, tf_layout, w_hr, s)) return std::nullopt;
  const auto float_options = x.options().dtype(at::kFloat);
  const at::Tensor x_dense = x.contiguous(), h0_dense = h0.contiguous();
  const at::Tensor w_ih_packed = packed_weight(w_ih, PackedAs::Transposed, pack_transposed);
  const at::Tensor w_hh_packed = packed_weight(*w_hh, PackedAs::Transposed, pack_transposed);
  at::Tensor bias = at::zeros({4 * H}, float_options);
  if (b_ih) bias.add_(*b_ih);
  if (b_hh) bias.add_(*b_hh);
  const at::Tensor peephole = w_peephole ? w_peephole->to(at::kFloat).contiguous() : at::Tensor();
  const at::Tensor c = c0.to(at::kFloat, /*non_blocking=*/false, /*copy=*/true).contiguous();
  const at::Tensor output = at::empty({T, B, H}, x.options());
  const at::Tensor workspace = training ? pooled_empty({T, B, kWorkspaceWidth * H}, float_options)
                                        : at::empty({0}, float_options);

  Bf16LstmParams p;
  p.seq_len = T;
  p.batch = B;
  p.input_size = I;
  p.hidden_size = H;
  p.x = x_dense.const_data_ptr<c10::BFloat16>();
  p.h0 = h0_dense.const_data_ptr<c10::BFloat16>();
  p.w_ih_packed = w_ih_packed.const_data_ptr<c10::BFloat16>();
  p.w_hh_packed = w_hh_packed.const_data_ptr<c10::BFloat16>();
  p.bias = bias.const_data_ptr<float>();
  p.w_peephole = peephole.defined() ? peephole.const_data_ptr<float>() : nullptr;
  p.forget_bias = static_cast<float>(forget_bias);
  p.cell_clip = static_cast<float>(cell_clip);
  p.pre = training ? workspace.mutable_data_ptr<float>() : nullptr;
  p.pre_stride = training ? workspace.size(2) : 0;
  p.keep_gates = training;
  p.c = c.mutable_data_ptr<float>();
  p.output = output.mutable_data_ptr<c10::BFloat16>();
  lstm_forward_bf16(p);
  return ForwardResult{output, output[T - 1].clone(), c.to(at::kBFloat16), workspace};
}

std::optional<GruForwardResult> gru_forward_bf16_op(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& w_ih,
                                                   const at::Tensor& w_hh, const OptTensor& b_ih,
                                                   const OptTensor& b_hh, const OptTensor& sequence_lengths,
                                                   bool training, bool linear_before_reset) {
  if (x.scalar_type() != at::kBFloat16 || training || sequence_lengths || !linear_before_reset) return std::nullopt;
  const LstmSizes s = check_gru_inputs("fastlstm::gru", x, h0, w_ih, w_hh, b_ih, b_hh);
  if (!serves(x, sequence_lengths, false, std::nullopt, s)) return std::nullopt;
  const int64_t T = s.seq_len, B = s.batch, H = s.hidden_size;
  const auto float_bias = [&](const OptTensor& b) {
    return b ? b->to(at::kFloat).contiguous() : at::zeros({3 * H}, x.options().dtype(at::kFloat));
  };
  const at::Tensor x_dense = x.contiguous(), h0_dense = h0.contiguous(), b_ih_f = float_bias(b_ih),
                   b_hh_f = float_bias(b_hh);
  const at::Tensor w_ih_packed = packed_weight(w_ih, PackedAs::Transposed, pack_transposed);
  const at::Tensor w_hh_packed = packed_weight(w_hh, PackedAs::Transposed, pack_transposed);
  const at::Tensor output = at::empty({T, B, H}, x.options());

  Bf16GruParams p;
  p.seq_len = T;
  p.batch = B;
  p.input_size = s.input_size;
  p.hidden_size = H;
  p.x = x_dense.const_data_ptr<c10::BFloat16>();
  p.h0 = h0_dense.const_data_ptr<c10::BFloat16>();
  p.w_ih_packed = w_ih_packed.const_data_ptr<c10::BFloat16>();
  p.w_hh_packed = w_hh_packed.const_data_ptr<c10::BFloat16>();
  p.b_ih = b_ih_f.const_data_ptr<float>();
  p.b_hh = b_hh_f.const_data_ptr<float>();
  p.output = output.mutable_data_ptr<c10::BFloat16>();
  gru_forward_bf16(p);
  return GruForwardResult{output, output[T - 1].clone(), at::empty({0}, x.options())};
}

std::optional<ForwardResult> layer_norm_lstm_forward_bf16_op(
    const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_ih, const at::Tensor& w_hh,
    const OptTensor& bias, const at::Tensor& ln_ih_weight, const OptTensor& ln_hh_weight,
    const at::Tensor& ln_cell_weight, const at::Tensor& ln_cell_bias, const OptTensor& sequence_lengths,
    const OptTensor& g_mask, int64_t groups, double eps, double forget_bias, bool carry_normalized_cell,
    bool training) {
  constexpr const char* op = "fastlstm::layer_norm_lstm";
  if (x.scalar_type() != at::kBFloat16 || training || sequence_lengths || g_mask) return std::nullopt;
  const LstmSizes s = check_layer_norm_lstm_inputs(op, x, h0, c0, w_ih, w_hh, bias, ln_ih_weight, ln_hh_weight,
                                                   ln_cell_weight, ln_cell_bias, g_mask, groups);
  TORCH_CHECK(eps > 0, op, ": expected eps > 0, got ", eps);
  if (!serves(x, sequence_lengths, false, std::nullopt, s)) return std::nullopt;
  const int64_t T = s.seq_len, B = s.batch, H = s.hidden_size;
  const auto as_float = [&](const at::Tensor& t) { return t.to(at::kFloat).contiguous(); };
  const at::Tensor bias_f = bias ? as_float(*bias) : at::zeros({4 * H}, x.options().dtype(at::kFloat));
  const at::Tensor ln_ih_f = as_float(ln_ih_weight), ln_cw_f = as_float(ln_cell_weight),
                   ln_cb_f = as_float(ln_cell_bias);
  const at::Tensor ln_hh_f = ln_hh_weight ? as_float(*ln_hh_weight) : at::Tensor();
  const at::Tensor x_dense = x.contiguous(), h0_dense = h0.contiguous();
  const at::Tensor c = c0.to(at::kFloat, /*non_blocking=*/false, /*copy=*/true).contiguous();
  const at::Tensor w_ih_packed = packed_weight(w_ih, PackedAs::Transposed, pack_transposed);
  const at::Tensor w_hh_packed = packed_weight(w_hh, PackedAs::Transposed, pack_transposed);
  const at::Tensor output = at::empty({T, B, H}, x.options());

  LayerNormBf16Params p;
  p.cell.seq_len = T;
  p.cell.batch = B;
  p.cell.input_size = s.input_size;
  p.cell.hidden_size = H;
  p.cell.groups = groups;
  p.cell.eps = static_cast<float>(eps);
  p.cell.forget_bias = static_cast<float>(forget_bias);
  p.cell.carry_normalized_cell = carry_normalized_cell;
  p.cell.bias = bias_f.const_data_ptr<float>();
  p.cell.ln_ih_weight = ln_ih_f.const_data_ptr<float>();
  p.cell.ln_hh_weight = ln_hh_weight ? ln_hh_f.const_data_ptr<float>() : nullptr;
  p.cell.ln_cell_weight = ln_cw_f.const_data_ptr<float>();
  p.cell.ln_cell_bias = ln_cb_f.const_data_ptr<float>();
  p.x = x_dense.const_data_ptr<c10::BFloat16>();
  p.h0 = h0_dense.const_data_ptr<c10::BFloat16>();
  p.w_ih_packed = w_ih_packed.const_data_ptr<c10::BFloat16>();
  p.w_hh_packed = w_hh_packed.const_data_ptr<c10::BFloat16>();
  p.c = c.mutable_data_ptr<float>();
  p.output = output.mutable_data_ptr<c10::BFloat16>();
  layer_norm_lstm_forward_bf16(p);
  return ForwardResult{output, output[T - 1].clone(), c.to(at::kBFloat16), at::empty({0}, x.options())};
}

}  // namespace fastlstm::cpu
