#include "lstm_bf16_kernel.h"

#include <ATen/native/CPUBlas.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "../gru_gates.h"
#include "../lstm_gates.h"
#include "../lstm_params.h"
#include "bf16_tiles.h"
#include "time_loop.h"

namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE {
namespace {

constexpr int64_t kRowTile = kBf16RowTile;
static_assert(kSliceAlign % kBf16ColumnBlock == 0);

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
void step_units(const Bf16LstmParams& p, int64_t j0, int64_t j1, float* pre_t, int64_t pre_stride,
                c10::BFloat16* out_t) {
  const int64_t H = p.hidden_size;
  for (int64_t b = 0; b < p.batch; ++b) {
    float* pre = pre_t + b * pre_stride;
    row_units<kPeephole, kKeepGates>(H, j0, j1, p.bias, p.w_peephole, p.forget_bias, p.cell_clip, pre, pre + H,
                                     pre + 2 * H, pre + 3 * H, pre + 4 * H, p.c + b * H,
                                     reinterpret_cast<uint16_t*>(out_t + b * H));
  }
}

using StepUnits = void (*)(const Bf16LstmParams&, int64_t, int64_t, float*, int64_t, c10::BFloat16*);

StepUnits step_units_for(const Bf16LstmParams& p) {
  if (p.w_peephole != nullptr) return p.keep_gates ? step_units<true, true> : step_units<true, false>;
  return p.keep_gates ? step_units<false, true> : step_units<false, false>;
}

// Inference runs the input's products step by step, into a [B, 4H] scratch that stays in cache: all steps' at once
// wrote a float32 [T, B, 4H] array and read it back (C1: 52 MB each way), as training must (that array is its
// workspace). Below an AMX tile's 16 rows the per-step products waste the tiles: all at once there.
constexpr int64_t kMinRowsForInputPerStep = 16;

void forward(const Bf16LstmParams& p) {
  const int64_t T = p.seq_len, B = p.batch, I = p.input_size, H = p.hidden_size, G = 4 * H;
  const StepUnits units = step_units_for(p);
  const bool input_per_step = !p.keep_gates && B >= kMinRowsForInputPerStep;
  PooledScratch<float> scratch(p.keep_gates ? 0 : (input_per_step ? 1 : T) * B * G);
  float* const pre = p.keep_gates ? p.pre : scratch.data();
  const int64_t pre_stride = p.keep_gates ? p.pre_stride : G;
  if (!input_per_step) {
    // The input projection of every step at once: [T * B, I] . w_ih^T, its row and column tiles shared out.
    const int64_t rows = T * B, row_tiles = (rows + kRowTile - 1) / kRowTile;
    at::parallel_for(0, row_tiles, 1, [&](int64_t first, int64_t last) {
      bf16_gemm_tiles(std::min(rows, last * kRowTile) - first * kRowTile, G, I, p.x + first * kRowTile * I, I,
                 p.w_ih_packed, 0, pre + first * kRowTile * pre_stride, pre_stride, false);
      at::native::cpublas::brgemm_release();
    });
  }
  // The time loop: one team for all steps, each thread owning a slice of units in every gate block (its columns
  // of the products and their gate math), one barrier per step.
  run_team(team_size(T, B, H), H, [&](int64_t j0, int64_t j1, const auto& sync) {
    for (int64_t t = 0; t < T; ++t) {
      const c10::BFloat16* h_prev = t == 0 ? p.h0 : p.output + (t - 1) * B * H;
      float* pre_t = pre + (input_per_step ? 0 : t * B * pre_stride);
      if (j1 > j0) {
        for (int64_t gate = 0; gate < 4; ++gate) {
          if (input_per_step) {
            bf16_gemm_tiles(B, j1 - j0, I, p.x + t * B * I, I, p.w_ih_packed, gate * H + j0, pre_t + gate * H + j0,
                       pre_stride, false);
          }
          bf16_gemm_tiles(B, j1 - j0, H, h_prev, H, p.w_hh_packed, gate * H + j0, pre_t + gate * H + j0, pre_stride,
                     true);
        }
        units(p, j0, j1, pre_t, pre_stride, p.output + t * B * H);
      }
      sync();
    }
    at::native::cpublas::brgemm_release();
  });
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
        bf16_gemm_tiles(B, j1 - j0, 4 * H, p.d_pre + t * B * 4 * H, 4 * H, p.w_hh_packed, j0, p.dh + j0, H, false);
      }
    }
    at::native::cpublas::brgemm_release();
  });
}

// Units [j0, j1) of one GRU row (restrict parameters: see row_units).
__attribute__((noinline)) void gru_row_units(int64_t H, int64_t j0, int64_t j1, const float* __restrict__ in,
                                             const float* __restrict__ rec, const float* __restrict__ b_ih,
                                             const float* __restrict__ b_hh, const uint16_t* __restrict__ h_prev,
                                             uint16_t* __restrict__ h) {
  for (int64_t j = j0; j < j1; ++j) {
    const auto g = gru_gates_forward<float>(in[j] + b_ih[j], in[H + j] + b_ih[H + j], in[2 * H + j] + b_ih[2 * H + j],
                                            rec[j] + b_hh[j], rec[H + j] + b_hh[H + j],
                                            rec[2 * H + j] + b_hh[2 * H + j], bfloat16_value(h_prev[j]));
    h[j] = bfloat16_bits(g.h);
  }
}

// As forward's inference: the input's products per step from 16 rows, else all at once; the recurrent ones apart
// (the reset gate scales W_hn h + b_hn alone).
void gru_forward(const Bf16GruParams& p) {
  const int64_t T = p.seq_len, B = p.batch, I = p.input_size, H = p.hidden_size, G = 3 * H;
  const bool input_per_step = B >= kMinRowsForInputPerStep;
  PooledScratch<float> in((input_per_step ? 1 : T) * B * G), rec(B * G);
  if (!input_per_step) {
    const int64_t rows = T * B, row_tiles = (rows + kRowTile - 1) / kRowTile;
    at::parallel_for(0, row_tiles, 1, [&](int64_t first, int64_t last) {
      bf16_gemm_tiles(std::min(rows, last * kRowTile) - first * kRowTile, G, I, p.x + first * kRowTile * I, I,
                 p.w_ih_packed, 0, in.data() + first * kRowTile * G, G, false);
      at::native::cpublas::brgemm_release();
    });
  }
  run_team(team_size(T, B, H, 3), H, [&](int64_t j0, int64_t j1, const auto& sync) {
    for (int64_t t = 0; t < T; ++t) {
      const c10::BFloat16* h_prev = t == 0 ? p.h0 : p.output + (t - 1) * B * H;
      float* in_t = in.data() + (input_per_step ? 0 : t * B * G);
      if (j1 > j0) {
        for (int64_t gate = 0; gate < 3; ++gate) {
          if (input_per_step) {
            bf16_gemm_tiles(B, j1 - j0, I, p.x + t * B * I, I, p.w_ih_packed, gate * H + j0, in_t + gate * H + j0, G,
                       false);
          }
          bf16_gemm_tiles(B, j1 - j0, H, h_prev, H, p.w_hh_packed, gate * H + j0, rec.data() + gate * H + j0, G, false);
        }
        for (int64_t b = 0; b < B; ++b) {
          gru_row_units(H, j0, j1, in_t + b * G, rec.data() + b * G, p.b_ih, p.b_hh,
                        reinterpret_cast<const uint16_t*>(h_prev + b * H),
                        reinterpret_cast<uint16_t*>(p.output + (t * B + b) * H));
        }
      }
      sync();
    }
    at::native::cpublas::brgemm_release();
  });
}

}  // namespace

const Bf16KernelTable bf16_kernel_table{forward, backward, gru_forward};

}  // namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE
