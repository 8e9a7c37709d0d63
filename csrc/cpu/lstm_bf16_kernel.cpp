#include "lstm_bf16_kernel.h"

#include <ATen/native/CPUBlas.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "../lstm_gates.h"
#include "time_loop.h"

namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE {
namespace {

// brgemm's kernels are generated per shape: fixed tiles keep that to a handful (rows: what the AMX and AVX-512
// kernels block for; columns: one packed block).
constexpr int64_t kRowTile = 64;
static_assert(kSliceAlign % kBf16ColumnBlock == 0);

// C[m, n] (+)= A[m, k] . B[:, b_column : b_column + n], B packed in column blocks (b_column and n multiples of the
// block). Tiled by rows and blocks, K whole.
void gemm_tiles(int64_t m, int64_t n, int64_t k, const c10::BFloat16* a, int64_t lda, const c10::BFloat16* b_packed,
                int64_t b_column, float* c, int64_t ldc, bool accumulate) {
  for (int64_t m0 = 0; m0 < m; m0 += kRowTile) {
    for (int64_t n0 = 0; n0 < n; n0 += kBf16ColumnBlock) {
      at::native::cpublas::brgemm(std::min(kRowTile, m - m0), kBf16ColumnBlock, k, lda, kBf16ColumnBlock, ldc,
                                  accumulate, a + m0 * lda, b_packed + (b_column + n0) * k, c + m0 * ldc + n0);
    }
  }
}

// float -> bfloat16 bits, rounded to nearest even, NaN kept a (quiet) NaN: c10::BFloat16's constructor rounds the
// same way, but its branch on NaN kept the gate loop scalar (measured: the loop took ~30% of a C1 step).
inline __attribute__((always_inline)) uint16_t bfloat16_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  const uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
  const uint32_t mask = 0u - static_cast<uint32_t>(value != value);
  return static_cast<uint16_t>((0x7fc0u & mask) | (rounded & ~mask));
}

template <bool kPeephole, bool kKeepGates>
void step_units(const Bf16LstmParams& p, int64_t j0, int64_t j1, float* __restrict__ pre_t,
                c10::BFloat16* out_t) {
  // Locals, not p's fields: the stores below could alias p and would force reloads that keep the loop scalar.
  const int64_t H = p.hidden_size, B = p.batch, stride = p.pre_stride;
  const float* __restrict__ bias = p.bias;
  const float* __restrict__ w_peephole = p.w_peephole;
  float* const c_state = p.c;
  const float forget_bias = p.forget_bias, cell_clip = p.cell_clip;
  for (int64_t b = 0; b < B; ++b) {
    float* __restrict__ pre = pre_t + b * stride;
    float* __restrict__ c = c_state + b * H;
    uint16_t* __restrict__ h = reinterpret_cast<uint16_t*>(out_t + b * H);
    for (int64_t j = j0; j < j1; ++j) {
      const auto g = gates_forward<float, kPeephole>(
          pre[j] + bias[j], pre[H + j] + bias[H + j], pre[2 * H + j] + bias[2 * H + j],
          pre[3 * H + j] + bias[3 * H + j], c[j], peephole_at<float, kPeephole>(w_peephole, H, j), forget_bias,
          cell_clip);
      if constexpr (kKeepGates) {
        pre[j] = g.i;
        pre[H + j] = g.f;
        pre[2 * H + j] = g.g;
        pre[3 * H + j] = g.o;
        pre[4 * H + j] = g.c;
      }
      c[j] = g.c;
      h[j] = bfloat16_bits(g.h);
    }
  }
}

using StepUnits = void (*)(const Bf16LstmParams&, int64_t, int64_t, float*, c10::BFloat16*);

StepUnits step_units_for(const Bf16LstmParams& p) {
  if (p.w_peephole != nullptr) return p.keep_gates ? step_units<true, true> : step_units<true, false>;
  return p.keep_gates ? step_units<false, true> : step_units<false, false>;
}

void forward(const Bf16LstmParams& p) {
  const int64_t T = p.seq_len, B = p.batch, I = p.input_size, H = p.hidden_size, G = 4 * H;
  const StepUnits units = step_units_for(p);
  // The input projection of every step at once: [T * B, I] . w_ih^T, its row and column tiles shared out.
  const int64_t rows = T * B, row_tiles = (rows + kRowTile - 1) / kRowTile;
  at::parallel_for(0, row_tiles, 1, [&](int64_t first, int64_t last) {
    gemm_tiles(std::min(rows, last * kRowTile) - first * kRowTile, G, I, p.x + first * kRowTile * I, I,
               p.w_ih_packed, 0, p.pre + first * kRowTile * p.pre_stride, p.pre_stride, false);
    at::native::cpublas::brgemm_release();
  });
  // The time loop: one team for all steps, each thread owning a slice of units in every gate block (its columns
  // of the recurrent product and their gate math), one barrier per step.
  run_team(team_size(T, B, H), H, [&](int64_t j0, int64_t j1, const auto& sync) {
    for (int64_t t = 0; t < T; ++t) {
      const c10::BFloat16* h_prev = t == 0 ? p.h0 : p.output + (t - 1) * B * H;
      float* pre_t = p.pre + t * B * p.pre_stride;
      if (j1 > j0) {
        for (int64_t gate = 0; gate < 4; ++gate) {
          gemm_tiles(B, j1 - j0, H, h_prev, H, p.w_hh_packed, gate * H + j0, pre_t + gate * H + j0,
                     p.pre_stride, true);
        }
        units(p, j0, j1, pre_t, p.output + t * B * H);
      }
      sync();
    }
    at::native::cpublas::brgemm_release();
  });
}

}  // namespace

const Bf16KernelTable bf16_kernel_table{forward};

}  // namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE
