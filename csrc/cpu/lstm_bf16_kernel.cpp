#include "lstm_bf16_kernel.h"

#include <ATen/native/CPUBlas.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "../lstm_gates.h"
#include "../lstm_params.h"
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

// Units [j0, j1) of one row. The gate blocks come as separate restrict parameters (GCC honours restrict on
// parameters, not on locals): through one pointer at offsets k * H it could not tell the kept gates' stores from
// the later loads, and left the training loop scalar (measured 5x the inference loop's time).
template <bool kPeephole, bool kKeepGates>
__attribute__((noinline)) void row_units(int64_t H, int64_t j0, int64_t j1, const float* __restrict__ bias,
                                         const float* __restrict__ w_peephole, float forget_bias, float cell_clip,
                                         float* __restrict__ pre_i, float* __restrict__ pre_f,
                                         float* __restrict__ pre_g, float* __restrict__ pre_o,
                                         float* __restrict__ kept_c, float* __restrict__ c, uint16_t* __restrict__ h) {
  for (int64_t j = j0; j < j1; ++j) {
    const auto g = gates_forward<float, kPeephole>(
        pre_i[j] + bias[j], pre_f[j] + bias[H + j], pre_g[j] + bias[2 * H + j], pre_o[j] + bias[3 * H + j], c[j],
        peephole_at<float, kPeephole>(w_peephole, H, j), forget_bias, cell_clip);
    if constexpr (kKeepGates) {
      pre_i[j] = g.i;
      pre_f[j] = g.f;
      pre_g[j] = g.g;
      pre_o[j] = g.o;
      kept_c[j] = g.c;
    }
    c[j] = g.c;
    h[j] = bfloat16_bits(g.h);
  }
}

template <bool kPeephole, bool kKeepGates>
void step_units(const Bf16LstmParams& p, int64_t j0, int64_t j1, float* pre_t, c10::BFloat16* out_t) {
  const int64_t H = p.hidden_size;
  for (int64_t b = 0; b < p.batch; ++b) {
    float* pre = pre_t + b * p.pre_stride;
    row_units<kPeephole, kKeepGates>(H, j0, j1, p.bias, p.w_peephole, p.forget_bias, p.cell_clip, pre, pre + H,
                                     pre + 2 * H, pre + 3 * H, pre + 4 * H, p.c + b * H,
                                     reinterpret_cast<uint16_t*>(out_t + b * H));
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

inline __attribute__((always_inline)) float bfloat16_value(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &wide, sizeof(value));
  return value;
}

// Units [j0, j1) of one row backward (restrict parameters: see row_units).
template <bool kWithGradOutput>
__attribute__((noinline)) void backward_row_units(int64_t H, int64_t j0, int64_t j1, float cell_clip,
                                                  const float* __restrict__ gates, const float* __restrict__ c_prev,
                                                  const uint16_t* __restrict__ grad_out, const float* __restrict__ dh,
                                                  float* __restrict__ dc, uint16_t* __restrict__ d_pre_i,
                                                  uint16_t* __restrict__ d_pre_f, uint16_t* __restrict__ d_pre_g,
                                                  uint16_t* __restrict__ d_pre_o) {
  for (int64_t j = j0; j < j1; ++j) {
    float d_h = dh[j];
    if constexpr (kWithGradOutput) d_h += bfloat16_value(grad_out[j]);
    const auto r = gates_backward<float, false>(gates[j], gates[H + j], gates[2 * H + j], gates[3 * H + j],
                                                gates[4 * H + j], c_prev[j], d_h, dc[j], Peephole<float>{}, cell_clip);
    d_pre_i[j] = bfloat16_bits(r.d_pre_i);
    d_pre_f[j] = bfloat16_bits(r.d_pre_f);
    d_pre_g[j] = bfloat16_bits(r.d_pre_g);
    d_pre_o[j] = bfloat16_bits(r.d_pre_o);
    dc[j] = r.d_c_prev;
  }
}

template <bool kWithGradOutput>
void backward_units(const Bf16LstmBackwardParams& p, int64_t t, int64_t j0, int64_t j1) {
  const int64_t H = p.hidden_size, B = p.batch, width = kWorkspaceWidth * H;
  const float* ws_t = p.workspace + t * B * width;
  const auto* grad_out_t = reinterpret_cast<const uint16_t*>(p.grad_output) + (kWithGradOutput ? t * B * H : 0);
  auto* d_pre_t = reinterpret_cast<uint16_t*>(p.d_pre) + t * B * 4 * H;
  for (int64_t b = 0; b < B; ++b) {
    const float* c_prev = t == 0 ? p.c0 + b * H : ws_t - B * width + b * width + 4 * H;
    uint16_t* d_pre = d_pre_t + b * 4 * H;
    backward_row_units<kWithGradOutput>(H, j0, j1, p.cell_clip, ws_t + b * width, c_prev,
                                        kWithGradOutput ? grad_out_t + b * H : nullptr, p.dh + b * H, p.dc + b * H,
                                        d_pre, d_pre + H, d_pre + 2 * H, d_pre + 3 * H);
  }
}

void backward(const Bf16LstmBackwardParams& p) {
  const int64_t T = p.seq_len, B = p.batch, H = p.hidden_size;
  const auto units = p.grad_output != nullptr ? backward_units<true> : backward_units<false>;
  // Units split as in forward; the gate gradients of a step are all read by every thread's product (one barrier
  // between), while dh and dc of a thread's units are its own.
  run_team(team_size(T, B, H), H, [&](int64_t j0, int64_t j1, const auto& sync) {
    for (int64_t t = T - 1; t >= 0; --t) {
      if (j1 > j0) units(p, t, j0, j1);
      sync();
      if (j1 > j0) {
        gemm_tiles(B, j1 - j0, 4 * H, p.d_pre + t * B * 4 * H, 4 * H, p.w_hh_packed, j0, p.dh + j0, H, false);
      }
    }
    at::native::cpublas::brgemm_release();
  });
}

}  // namespace

const Bf16KernelTable bf16_kernel_table{forward, backward};

}  // namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE
