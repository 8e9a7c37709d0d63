// The int8 dynamic-quantized time loop of the LSTM and the GRU (inference): weights int8 with one scale per output
// channel (quantized once, by fastlstm.quantized), activations quantized per row as they enter each product (the
// input once for all steps, h at every step: symmetric, stored as uint8 with zero point 128, so that the products
// are u8 x s8 with int32 sums: VNNI's vpdpbusd / AMX's tdpbusd, reached through oneDNN's brgemm,
// at::native::cpublas::brgemm), float32 dequantization, bias, gate math, states and outputs.
//
// A quantized row: q[k] = clamp(round(a[k] * 127 / amax), -127, 127) + 128, scale amax / 127 (0 for a zero row).
// A product's column n: scale_row * w_scale[n] * (sum_k q[k] w[n, k] - 128 * sum_k w[n, k]).
#pragma once

#include <cstdint>

namespace fastlstm::cpu {

// The packed weights' column blocks (one brgemm call each) and VNNI groups (k in fours).
constexpr int64_t kInt8ColumnBlock = 32;
constexpr int64_t kInt8VnniGroup = 4;

inline int64_t int8_padded_k(int64_t k) { return (k + kInt8VnniGroup - 1) / kInt8VnniGroup * kInt8VnniGroup; }

// One int8 weight W [N, K] as the kernel reads it.
struct Int8Weight {
  const int8_t* packed = nullptr;  // W^T as [N / 32, K4 / 4, 32, 4] (K4 = K padded to 4 with zeros) for brgemm, or
                                   // nullptr: the portable products run, on
  const float* as_float = nullptr;  // W [N, K] in float32 (its integers)
  const int32_t* column_sums = nullptr;  // [N]: sum_k W[n, k]
  const float* scale = nullptr;          // [N]
};

enum class QuantizedCell { Lstm, Gru };

struct QuantizedRnnParams {
  QuantizedCell cell = QuantizedCell::Lstm;
  int64_t seq_len = 0, batch = 0, input_size = 0, hidden_size = 0;  // T, B, I, H; G = 4 (LSTM) or 3 (GRU) gates
  const float* x = nullptr;                // [T, B, I]
  const float* h0 = nullptr;               // [B, H]
  const float* c0 = nullptr;               // [B, H] (LSTM)
  Int8Weight w_ih, w_hh;                   // [G * H, I], [G * H, H]
  const float* input_bias = nullptr;       // [G * H], added to the input projection (LSTM: b_ih + b_hh; GRU: b_ih)
  const float* recurrent_bias = nullptr;   // [G * H] added to the recurrent one (GRU: b_hh; LSTM: nullptr)
  const int64_t* lengths = nullptr;        // [B] or nullptr: rows past their length keep their state, output 0
  float* output = nullptr;                 // [T, B, H]
  float* h_n = nullptr;                    // [B, H]
  float* c_n = nullptr;                    // [B, H] (LSTM)
};

// Whether this process runs the products on brgemm (a CPU with AVX512_VNNI or AMX, oneDNN enabled, the avx512
// dispatch level). Elsewhere they run as float32 GEMMs of the same integers (exact while the sums stay below 2^24,
// i.e. K < 1040; beyond, rounded as a float32 product is): a CPU without int8 dot products gains nothing from int8,
// but loses nothing against float32 either (an integer loop ran 5x float32's time at the AVX2 level).
bool int8_brgemm_available();

// Runs the level this process picked (cpu_capability.h).
void quantized_rnn_forward(const QuantizedRnnParams& p);

struct QuantizedKernelTable {
  void (*forward)(const QuantizedRnnParams&);
};
namespace isa_baseline {
extern const QuantizedKernelTable quantized_kernel_table;
}
namespace isa_avx2 {
extern const QuantizedKernelTable quantized_kernel_table;
}
namespace isa_avx512 {
extern const QuantizedKernelTable quantized_kernel_table;
}

}  // namespace fastlstm::cpu
