#include "quantized_rnn_kernel.h"

#include <ATen/native/CPUBlas.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

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

// The quantized rows as the products read them: uint8 (value + 128) for brgemm, rows padded to k4 with 128 (whose
// products with the weights' zero padding vanish); or, for the float32 products, the values as floats, rows of k.
template <typename Quantized>
constexpr int64_t quantized_stride(int64_t k) {
  return std::is_same_v<Quantized, uint8_t> ? int8_padded_k(k) : k;
}

// Rows [0, rows) of a [rows, k] (row stride lda) -> q (see above) and their scales. A row holding NaN gets scale NaN,
// so every product it enters is NaN, as in float32.
template <typename Quantized>
void quantize_rows(int64_t rows, int64_t k, const float* a, int64_t lda, Quantized* q, float* scale) {
  const int64_t ldq = quantized_stride<Quantized>(k);
  for (int64_t r = 0; r < rows; ++r) {
    const float* __restrict__ row = a + r * lda;
    Quantized* __restrict__ q_row = q + r * ldq;
    const uint32_t max_bits = max_magnitude_bits(row, k);
    float amax;
    std::memcpy(&amax, &max_bits, sizeof(amax));
    const float inverse = amax > 0.0f && max_bits < 0x7f800000u ? 127.0f / amax : 0.0f;
    scale[r] = max_bits > 0x7f800000u ? NAN : amax / 127.0f;
    for (int64_t j = 0; j < k; ++j) {
      float v = std::nearbyint(row[j] * inverse);
      v = v >= -127.0f ? v : -127.0f;  // (NaN -> -127: a NaN row's scale already says NaN)
      v = v <= 127.0f ? v : 127.0f;
      if constexpr (std::is_same_v<Quantized, uint8_t>) {
        q_row[j] = static_cast<uint8_t>(static_cast<int32_t>(v) + 128);
      } else {
        q_row[j] = v;
      }
    }
    for (int64_t j = k; j < ldq; ++j) q_row[j] = 128;
  }
}

// c[m, n0 : n0 + n] = q[m, :] . W[n0 : n0 + n, :]^T in int32 (q's row stride lda), on brgemm's tiles. (scratch:
// the float32 products' [m, n], unused here.)
void int8_products(const Int8Weight& w, int64_t k, int64_t m, int64_t n0, int64_t n, const uint8_t* q, int64_t lda,
                   int32_t* c, int64_t ldc, float*) {
  const int64_t k4 = int8_padded_k(k);
  for (int64_t m0 = 0; m0 < m; m0 += kRowTile) {
    for (int64_t block = n0; block < n0 + n; block += kInt8ColumnBlock) {
      at::native::cpublas::brgemm(std::min(kRowTile, m - m0), kInt8ColumnBlock, k4, lda, kInt8ColumnBlock, ldc,
                                  false, q + m0 * lda, w.packed + block * k4, c + m0 * ldc + block);
    }
  }
}

// The same as a float32 GEMM of the integers (see the header), back in the u8 products' sums (the dequantization
// subtracts 128 * column_sums again).
void int8_products(const Int8Weight& w, int64_t k, int64_t m, int64_t n0, int64_t n, const float* q, int64_t lda,
                   int32_t* c, int64_t ldc, float* scratch) {
  gemm<float>(false, true, m, n, k, 1.0f, q, lda, w.as_float + n0 * k, k, 0.0f, scratch, n);
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t column = 0; column < n; ++column) {
      c[r * ldc + n0 + column] = static_cast<int32_t>(std::nearbyint(scratch[r * n + column])) +
                                 128 * w.column_sums[n0 + column];
    }
  }
}

inline void release_tiles(const uint8_t*) { at::native::cpublas::brgemm_release(); }
inline void release_tiles(const float*) {}

// The real value of product column n of a row of scale row_scale (see the header).
inline __attribute__((always_inline)) float dequantized(float row_scale, const float* __restrict__ w_scale,
                                                        const int32_t* __restrict__ column_sums,
                                                        const int32_t* __restrict__ sums, int64_t n) {
  return row_scale * w_scale[n] * static_cast<float>(sums[n] - 128 * column_sums[n]);
}

// Units [j0, j1) of one LSTM row at one step, from the row's two products (restrict parameters: GCC vectorizes the
// loop only so, see lstm_bf16_kernel.cpp's row_units).
__attribute__((noinline)) void lstm_row_units(int64_t H, int64_t j0, int64_t j1, float x_scale,
                                              const int32_t* __restrict__ x_sums,
                                              const int32_t* __restrict__ ih_column_sums,
                                              const float* __restrict__ ih_scale, float h_scale,
                                              const int32_t* __restrict__ h_sums,
                                              const int32_t* __restrict__ hh_column_sums,
                                              const float* __restrict__ hh_scale, const float* __restrict__ bias,
                                              float* __restrict__ c, float* __restrict__ h_next,
                                              float* __restrict__ out) {
  for (int64_t j = j0; j < j1; ++j) {
    float pre[4];
    for (int64_t gate = 0; gate < 4; ++gate) {
      const int64_t n = gate * H + j;
      pre[gate] = (dequantized(x_scale, ih_scale, ih_column_sums, x_sums, n) + bias[n]) +
                  dequantized(h_scale, hh_scale, hh_column_sums, h_sums, n);
    }
    const auto g = gates_forward<float, false>(pre[0], pre[1], pre[2], pre[3], c[j], Peephole<float>{}, 0.0f, 0.0f);
    c[j] = g.c;
    h_next[j] = g.h;
    out[j] = g.h;
  }
}

__attribute__((noinline)) void gru_row_units(int64_t H, int64_t j0, int64_t j1, float x_scale,
                                             const int32_t* __restrict__ x_sums,
                                             const int32_t* __restrict__ ih_column_sums,
                                             const float* __restrict__ ih_scale, float h_scale,
                                             const int32_t* __restrict__ h_sums,
                                             const int32_t* __restrict__ hh_column_sums,
                                             const float* __restrict__ hh_scale, const float* __restrict__ b_ih,
                                             const float* __restrict__ b_hh, const float* __restrict__ h_prev,
                                             float* __restrict__ h_next, float* __restrict__ out) {
  for (int64_t j = j0; j < j1; ++j) {
    float in[3], rec[3];
    for (int64_t gate = 0; gate < 3; ++gate) {
      const int64_t n = gate * H + j;
      in[gate] = dequantized(x_scale, ih_scale, ih_column_sums, x_sums, n) + b_ih[n];
      rec[gate] = dequantized(h_scale, hh_scale, hh_column_sums, h_sums, n) + b_hh[n];
    }
    const auto g = gru_gates_forward<float>(in[0], in[1], in[2], rec[0], rec[1], rec[2], h_prev[j]);
    h_next[j] = g.h;
    out[j] = g.h;
  }
}

template <typename Quantized>
void forward_with(const QuantizedRnnParams& p) {
  const int64_t T = p.seq_len, B = p.batch, I = p.input_size, H = p.hidden_size;
  const bool lstm = p.cell == QuantizedCell::Lstm;
  const int64_t gates = lstm ? 4 : 3, G = gates * H;
  const int64_t I4 = quantized_stride<Quantized>(I), H4 = quantized_stride<Quantized>(H);
  PooledScratch<Quantized> x_quantized(T * B * I4);
  PooledScratch<float> x_scale(T * B), h_buffers(2 * B * H), c(lstm ? B * H : 0);
  // Where the input's products run: per step on brgemm (their int32 sums for all steps at once, written and read
  // back, cost more than the products: C1 ~20% of the call), unless B is below an AMX tile's 16 rows (B = 1: 1.1 ms
  // at once, 1.9 ms per step); as one GEMM of every step's rows for the float32 products (per-step GEMMs of B rows
  // ran C4 at 2.4x float32's time).
  const bool input_at_once = std::is_same_v<Quantized, float> || B < 16;
  PooledScratch<int32_t> x_sums((input_at_once ? T : 1) * B * G), h_sums(B * G);
  std::memcpy(h_buffers.data(), p.h0, B * H * sizeof(float));
  if (lstm) std::memcpy(c.data(), p.c0, B * H * sizeof(float));

  // Every step's input rows quantized at once. Their products run in the time loop, step by step: a float32 input
  // projection of all steps, written and read back, cost more than the products (C1: 52 MB each way, ~20% of the
  // call).
  at::parallel_for(0, T * B, 64, [&](int64_t first, int64_t last) {
    quantize_rows(last - first, I, p.x + first * I, I, x_quantized.data() + first * I4, x_scale.data() + first);
    if (input_at_once) {
      PooledScratch<float> scratch(std::is_same_v<Quantized, float> ? (last - first) * G : 0);
      int8_products(p.w_ih, I, last - first, 0, G, x_quantized.data() + first * I4, I4, x_sums.data() + first * G, G,
                    scratch.data());
      release_tiles(x_quantized.data());
    }
  });

  // The time loop in one team, each thread owning a slice of units in every gate block; each quantizes the whole
  // previous h for itself (cheaper than a second barrier per step), and writes the next h into the other buffer.
  run_team(team_size(T, B, H, gates), H, [&](int64_t j0, int64_t j1, const auto& sync) {
    PooledScratch<Quantized> h_quantized(B * H4);
    PooledScratch<float> h_scale(B), scratch(std::is_same_v<Quantized, float> ? B * (j1 - j0) : 0);
    for (int64_t t = 0; t < T; ++t) {
      const float* h_prev = h_buffers.data() + (t % 2) * B * H;
      float* h_next = h_buffers.data() + ((t + 1) % 2) * B * H;
      if (j1 > j0) {
        quantize_rows(B, H, h_prev, H, h_quantized.data(), h_scale.data());
        for (int64_t gate = 0; gate < gates; ++gate) {
          if (!input_at_once) {
            int8_products(p.w_ih, I, B, gate * H + j0, j1 - j0, x_quantized.data() + t * B * I4, I4, x_sums.data(),
                          G, scratch.data());
          }
          int8_products(p.w_hh, H, B, gate * H + j0, j1 - j0, h_quantized.data(), H4, h_sums.data(), G,
                        scratch.data());
        }
        const int32_t* x_sums_t = x_sums.data() + (input_at_once ? t * B * G : 0);
        for (int64_t b = 0; b < B; ++b) {
          float* out = p.output + (t * B + b) * H;
          if (p.lengths != nullptr && t >= p.lengths[b]) {
            std::memcpy(h_next + b * H + j0, h_prev + b * H + j0, (j1 - j0) * sizeof(float));
            std::memset(out + j0, 0, (j1 - j0) * sizeof(float));
            continue;
          }
          const float xs = x_scale.data()[t * B + b], hs = h_scale.data()[b];
          const int32_t* xb = x_sums_t + b * G;
          const int32_t* hb = h_sums.data() + b * G;
          if (lstm) {
            lstm_row_units(H, j0, j1, xs, xb, p.w_ih.column_sums, p.w_ih.scale, hs, hb, p.w_hh.column_sums,
                           p.w_hh.scale, p.input_bias, c.data() + b * H, h_next + b * H, out);
          } else {
            gru_row_units(H, j0, j1, xs, xb, p.w_ih.column_sums, p.w_ih.scale, hs, hb, p.w_hh.column_sums,
                          p.w_hh.scale, p.input_bias, p.recurrent_bias, h_prev + b * H, h_next + b * H, out);
          }
        }
      }
      sync();
    }
    release_tiles(h_quantized.data());
  });
  std::memcpy(p.h_n, h_buffers.data() + (T % 2) * B * H, B * H * sizeof(float));
  if (lstm) std::memcpy(p.c_n, c.data(), B * H * sizeof(float));
}

void forward(const QuantizedRnnParams& p) {
  if (p.w_hh.packed != nullptr) {
    forward_with<uint8_t>(p);
  } else {
    forward_with<float>(p);
  }
}

}  // namespace

const QuantizedKernelTable quantized_kernel_table{forward};

}  // namespace fastlstm::cpu::FASTLSTM_ISA_NAMESPACE
