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

}  // namespace

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
  if (T == 0 || B == 0 || I % 2 != 0 || H % kBf16ColumnBlock != 0 || !kernel_enabled()) return std::nullopt;
  const auto float_options = x.options().dtype(at::kFloat);
  const at::Tensor x_dense = x.contiguous(), h0_dense = h0.contiguous();
  const at::Tensor w_ih_packed = packed_weight(w_ih, pack_transposed);
  const at::Tensor w_hh_packed = packed_weight(*w_hh, pack_transposed);
  at::Tensor bias = at::zeros({4 * H}, float_options);
  if (b_ih) bias.add_(*b_ih);
  if (b_hh) bias.add_(*b_hh);
  const at::Tensor peephole = w_peephole ? w_peephole->to(at::kFloat).contiguous() : at::Tensor();
  const at::Tensor c = c0.to(at::kFloat, /*non_blocking=*/false, /*copy=*/true).contiguous();
  const at::Tensor output = at::empty({T, B, H}, x.options());
  const at::Tensor workspace = training ? pooled_empty({T, B, kWorkspaceWidth * H}, float_options)
                                        : at::empty({0}, float_options);
  const at::Tensor pre = training ? workspace : pooled_empty({T, B, 4 * H}, float_options);

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
  p.pre = pre.mutable_data_ptr<float>();
  p.pre_stride = pre.size(2);
  p.keep_gates = training;
  p.c = c.mutable_data_ptr<float>();
  p.output = output.mutable_data_ptr<c10::BFloat16>();
  lstm_forward_bf16(p);
  return ForwardResult{output, output[T - 1].clone(), c.to(at::kBFloat16), workspace};
}

}  // namespace fastlstm::cpu
