#include "quantized_rnn_kernel.h"

#include <ATen/native/CPUBlas.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../gru_gates.h"
#include "../lstm_gates.h"
#include "time_loop.h"

namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE {
namespace {

// brgemm's kernels are generated per shape: fixed tiles keep that to a handful (as lstm_bf16_kernel.cpp).
constexpr int64_t kRowTile = 64;
static_assert(kSliceAlign % kInt8ColumnBlock == 0);

// |a| of a whole row through the float's bits (an integer max reduction vectorizes where a float one, for NaN's
// sake, does not); NaN's bits are above infinity's, so a row holding NaN is told by its maximum.
inline uint32_t max_magnitude_bits(const float* __restrict__ row, int64_t k) {
  uint32_t max_bits = 0;
  for (int64_t j = 0; j < k; ++j) {
    uint32_t bits;
    std::memcpy(&bits, row + j, sizeof(bits));
    max_bits = std::max(max_bits, bits & 0x7fffffffu);
  }
  return max_bits;
}

// Rows [0, rows) of a [rows, k] (row stride lda) -> q [rows, k4] (see the header; the padding k..k4 is 128, whose
// products with the weights' zero padding vanish) and their scales. A row holding NaN gets scale NaN, so every
// product it enters is NaN, as in float32.
void quantize_rows(int64_t rows, int64_t k, int64_t k4, const float* a, int64_t lda, uint8_t* q, float* scale) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* __restrict__ row = a + r * lda;
    uint8_t* __restrict__ q_row = q + r * k4;
    const uint32_t max_bits = max_magnitude_bits(row, k);
    float amax;
    std::memcpy(&amax, &max_bits, sizeof(amax));
    const float inverse = amax > 0.0f && max_bits < 0x7f800000u ? 127.0f / amax : 0.0f;
    scale[r] = max_bits > 0x7f800000u ? NAN : amax / 127.0f;
    for (int64_t j = 0; j < k; ++j) {
      float v = std::nearbyint(row[j] * inverse);
      v = v >= -127.0f ? v : -127.0f;  // (NaN -> -127: a NaN row's scale already says NaN)
      v = v <= 127.0f ? v : 127.0f;
      q_row[j] = static_cast<uint8_t>(static_cast<int32_t>(v) + 128);
    }
    for (int64_t j = k; j < k4; ++j) q_row[j] = 128;
  }
}

// c[m, n0 : n0 + n] = q[m, :] . W[n0 : n0 + n, :]^T in int32 (q's row stride lda): brgemm's tiles, or a float32
// GEMM of the same integers (see the header).
void int8_products(const Int8Weight& w, int64_t k, int64_t m, int64_t n0, int64_t n, const uint8_t* q, int64_t lda,
                   int32_t* c, int64_t ldc) {
  if (w.packed != nullptr) {
    const int64_t k4 = int8_padded_k(k);
    for (int64_t m0 = 0; m0 < m; m0 += kRowTile) {
      for (int64_t block = n0; block < n0 + n; block += kInt8ColumnBlock) {
        at::native::cpublas::brgemm(std::min(kRowTile, m - m0), kInt8ColumnBlock, k4, lda, kInt8ColumnBlock, ldc,
                                    false, q + m0 * lda, w.packed + block * k4, c + m0 * ldc + block);
      }
    }
    return;
  }
  PooledScratch<float> a(m * k), product(m * n);
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t j = 0; j < k; ++j) a.data()[r * k + j] = static_cast<float>(static_cast<int32_t>(q[r * lda + j]) - 128);
  }
  gemm<float>(false, true, m, n, k, 1.0f, a.data(), k, w.as_float + n0 * k, k, 0.0f, product.data(), n);
  // Back to the u8 products' sums (the dequantization subtracts 128 * column_sums again).
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t column = 0; column < n; ++column) {
      c[r * ldc + n0 + column] = static_cast<int32_t>(std::nearbyint(product.data()[r * n + column])) +
                                 128 * w.column_sums[n0 + column];
    }
  }
}

// The real value of product column n of a row of scale `row_scale`.
inline __attribute__((always_inline)) float dequantized(float row_scale, const Int8Weight& w, const int32_t* sums,
                                                        int64_t n) {
  return row_scale * w.scale[n] * static_cast<float>(sums[n] - 128 * w.column_sums[n]);
}

// Units [j0, j1) of one LSTM row at one step (restrict parameters: GCC vectorizes the loop only so, see
// lstm_bf16_kernel.cpp's row_units).
__attribute__((noinline)) void lstm_row_units(int64_t H, int64_t j0, int64_t j1, float row_scale,
                                              const float* __restrict__ x_proj, const int32_t* __restrict__ sums,
                                              const int32_t* __restrict__ column_sums,
                                              const float* __restrict__ w_scale, float* __restrict__ c,
                                              float* __restrict__ h_next, float* __restrict__ out) {
  for (int64_t j = j0; j < j1; ++j) {
    float pre[4];
    for (int64_t gate = 0; gate < 4; ++gate) {
      const int64_t n = gate * H + j;
      pre[gate] = x_proj[n] + row_scale * w_scale[n] * static_cast<float>(sums[n] - 128 * column_sums[n]);
    }
    const auto g = gates_forward<float, false>(pre[0], pre[1], pre[2], pre[3], c[j], Peephole<float>{}, 0.0f, 0.0f);
    c[j] = g.c;
    h_next[j] = g.h;
    out[j] = g.h;
  }
}

__attribute__((noinline)) void gru_row_units(int64_t H, int64_t j0, int64_t j1, float row_scale,
                                             const float* __restrict__ x_proj, const int32_t* __restrict__ sums,
                                             const int32_t* __restrict__ column_sums,
                                             const float* __restrict__ w_scale,
                                             const float* __restrict__ recurrent_bias,
                                             const float* __restrict__ h_prev, float* __restrict__ h_next,
                                             float* __restrict__ out) {
  for (int64_t j = j0; j < j1; ++j) {
    float rec[3];
    for (int64_t gate = 0; gate < 3; ++gate) {
      const int64_t n = gate * H + j;
      rec[gate] = row_scale * w_scale[n] * static_cast<float>(sums[n] - 128 * column_sums[n]) + recurrent_bias[n];
    }
    const auto g = gru_gates_forward<float>(x_proj[j], x_proj[H + j], x_proj[2 * H + j], rec[0], rec[1], rec[2],
                                            h_prev[j]);
    h_next[j] = g.h;
    out[j] = g.h;
  }
}

void forward(const QuantizedRnnParams& p) {
  const int64_t T = p.seq_len, B = p.batch, I = p.input_size, H = p.hidden_size;
  const bool lstm = p.cell == QuantizedCell::Lstm;
  const int64_t gates = lstm ? 4 : 3, G = gates * H, I4 = int8_padded_k(I), H4 = int8_padded_k(H);
  PooledScratch<float> x_proj(T * B * G), h_buffers(2 * B * H), c(lstm ? B * H : 0);
  PooledScratch<int32_t> step_sums(B * G);
  std::memcpy(h_buffers.data(), p.h0, B * H * sizeof(float));
  if (lstm) std::memcpy(c.data(), p.c0, B * H * sizeof(float));

  // The input projection of every step at once, by row tiles: quantize, multiply, dequantize and add the bias.
  const int64_t rows = T * B, row_tiles = (rows + kRowTile - 1) / kRowTile;
  at::parallel_for(0, row_tiles, 1, [&](int64_t first, int64_t last) {
    PooledScratch<uint8_t> q(kRowTile * I4);
    PooledScratch<float> scale(kRowTile);
    PooledScratch<int32_t> sums(kRowTile * G);
    for (int64_t tile = first; tile < last; ++tile) {
      const int64_t r0 = tile * kRowTile, m = std::min(kRowTile, rows - r0);
      quantize_rows(m, I, I4, p.x + r0 * I, I, q.data(), scale.data());
      int8_products(p.w_ih, I, m, 0, G, q.data(), I4, sums.data(), G);
      for (int64_t r = 0; r < m; ++r) {
        float* __restrict__ out = x_proj.data() + (r0 + r) * G;
        const int32_t* row_sums = sums.data() + r * G;
        for (int64_t n = 0; n < G; ++n) out[n] = dequantized(scale.data()[r], p.w_ih, row_sums, n) + p.input_bias[n];
      }
    }
    if (p.w_ih.packed != nullptr) at::native::cpublas::brgemm_release();
  });

  // The time loop in one team, each thread owning a slice of units in every gate block; each quantizes the whole
  // previous h for itself (cheaper than a second barrier per step), and writes the next h into the other buffer.
  run_team(team_size(T, B, H, gates), H, [&](int64_t j0, int64_t j1, const auto& sync) {
    PooledScratch<uint8_t> q(B * H4);
    PooledScratch<float> scale(B);
    for (int64_t t = 0; t < T; ++t) {
      const float* h_prev = h_buffers.data() + (t % 2) * B * H;
      float* h_next = h_buffers.data() + ((t + 1) % 2) * B * H;
      if (j1 > j0) {
        quantize_rows(B, H, H4, h_prev, H, q.data(), scale.data());
        for (int64_t gate = 0; gate < gates; ++gate) {
          int8_products(p.w_hh, H, B, gate * H + j0, j1 - j0, q.data(), H4, step_sums.data(), G);
        }
        for (int64_t b = 0; b < B; ++b) {
          float* out = p.output + (t * B + b) * H;
          if (p.lengths != nullptr && t >= p.lengths[b]) {
            std::memcpy(h_next + b * H + j0, h_prev + b * H + j0, (j1 - j0) * sizeof(float));
            std::memset(out + j0, 0, (j1 - j0) * sizeof(float));
            continue;
          }
          const float* x_row = x_proj.data() + (t * B + b) * G;
          const int32_t* sums = step_sums.data() + b * G;
          if (lstm) {
            lstm_row_units(H, j0, j1, scale.data()[b], x_row, sums, p.w_hh.column_sums, p.w_hh.scale, c.data() + b * H,
                           h_next + b * H, out);
          } else {
            gru_row_units(H, j0, j1, scale.data()[b], x_row, sums, p.w_hh.column_sums, p.w_hh.scale, p.recurrent_bias,
                          h_prev + b * H, h_next + b * H, out);
          }
        }
      }
      sync();
    }
    if (p.w_hh.packed != nullptr) at::native::cpublas::brgemm_release();
  });
  std::memcpy(p.h_n, h_buffers.data() + (T % 2) * B * H, B * H * sizeof(float));
  if (lstm) std::memcpy(p.c_n, c.data(), B * H * sizeof(float));
}

}  // namespace

const QuantizedKernelTable quantized_kernel_table{forward};

}  // namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE
