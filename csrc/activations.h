// sigmoid and tanh for the gate math. On the CPU, float uses a branch-free exp (Cephes' polynomial, ~1 ulp) that
// compilers vectorise inside the kernels' loops, where libm's expf/tanhf calls would keep them scalar (measured 10x
// slower at H=128). double and CUDA use the standard functions.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define FASTLSTM_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define FASTLSTM_HOST_DEVICE inline __attribute__((always_inline))
#endif

namespace fastlstm {

#if !defined(__CUDA_ARCH__)
// cond ? a : b on the bits. Both values are computed first, so the compiler vectorises the select as a blend at
// every level: a plain ?: whose arm holds a division or a float-to-int conversion stayed a branch below AVX-512
// (GCC will not compute a trapping arm that the condition skips), and the gate loops stayed scalar at the AVX2 and
// baseline levels (C4 inference at AVX2: 28% of the time in scalar gate math).
inline __attribute__((always_inline)) float select_float(bool cond, float a, float b) {
  uint32_t a_bits, b_bits;
  std::memcpy(&a_bits, &a, sizeof(a_bits));
  std::memcpy(&b_bits, &b, sizeof(b_bits));
  const uint32_t mask = 0u - static_cast<uint32_t>(cond);
  const uint32_t bits = (a_bits & mask) | (b_bits & ~mask);
  float result;
  std::memcpy(&result, &bits, sizeof(result));
  return result;
}

inline __attribute__((always_inline)) float vector_exp(float x) {
  // exp(x) = 2^n * exp(r), n = round(x / ln 2), |r| <= ln(2) / 2.
  // The clamps are written so that a NaN fails both comparisons and passes through (a NaN in the input must reach
  // the outputs and gradients, as in torch). Above ~88.4, n = 128 makes the scale the exponent pattern of +inf, so
  // exp overflows to inf as expf does (sigmoid(-inf) = 0, tanh(inf) = 1 exactly); below -87.3 it stops at ~1e-38.
  x = select_float(x > 88.7228391116729996f, 88.7228391116729996f, x);
  x = select_float(x < -87.3365447504019f, -87.3365447504019f, x);
  // Round to nearest by adding and removing 1.5 * 2^23 (|x / ln 2| < 2^22 here; NaN stays NaN): unlike
  // std::nearbyint, this vectorises without SSE4.1's roundps, i.e. at the baseline level too.
  constexpr float kRound = 12582912.0f;
  const float n = (x * 1.44269504088896341f + kRound) - kRound;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500E-4f;
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  p = p * r * r + r + 1.0f;
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}
#endif

// cond ? a : b, as a blend on the CPU for float (see select_float).
FASTLSTM_HOST_DEVICE float select_value(bool cond, float a, float b) {
#if defined(__CUDA_ARCH__)
  return cond ? a : b;
#else
  return select_float(cond, a, b);
#endif
}
FASTLSTM_HOST_DEVICE double select_value(bool cond, double a, double b) { return cond ? a : b; }

FASTLSTM_HOST_DEVICE float exp_fast(float x) {
#if defined(__CUDA_ARCH__)
  return ::expf(x);
#else
  return vector_exp(x);
#endif
}
FASTLSTM_HOST_DEVICE double exp_fast(double x) { return ::exp(x); }

template <typename scalar_t>
FASTLSTM_HOST_DEVICE scalar_t sigmoid(scalar_t x) {
  return scalar_t(1) / (scalar_t(1) + exp_fast(-x));
}

FASTLSTM_HOST_DEVICE float tanh_act(float x) {
#if defined(__CUDA_ARCH__)
  return ::tanhf(x);
#else
  // Near 0, 1 - 2 / (exp(2x) + 1) cancels: use Cephes' odd polynomial there (|x| < 0.625), the exp form elsewhere.
  const float z = x * x;
  float p = -5.70498872745E-3f;
  p = p * z + 2.06390887954E-2f;
  p = p * z - 5.37397155531E-2f;
  p = p * z + 1.33314422036E-1f;
  p = p * z - 3.33332819422E-1f;
  const float small = p * z * x + x;
  const float large = 1.0f - 2.0f / (vector_exp(2.0f * x) + 1.0f);
  return select_float(z < 0.390625f, small, large);
#endif
}
FASTLSTM_HOST_DEVICE double tanh_act(double x) { return ::tanh(x); }

}  // namespace fastlstm
