// Every cell's CPU kernels at the level cpu_capability() picked (each cell's table is chosen once per process).
#include <type_traits>

#include "cpu_capability.h"
#include "gru_kernel.h"
#include "layer_norm_lstm_kernel.h"
#include "lstm_bf16_kernel.h"
#include "lstm_kernel.h"
#include "quantized_rnn_kernel.h"

namespace fastlstm::cpu {
namespace {

// A cell's table at the chosen level; avx2 / avx512 are null where this build lacks the level (type_identity: a
// plain nullptr must not take part in deducing Table, as in a -march=native build, which has the baseline alone).
template <typename Table>
const Table& at_level(CpuCapability capability, const Table& baseline, const std::type_identity_t<Table>* avx2,
                      const std::type_identity_t<Table>* avx512) {
  if (capability == CpuCapability::Avx512 && avx512 != nullptr) return *avx512;
  if (capability == CpuCapability::Avx2 && avx2 != nullptr) return *avx2;
  return baseline;
}

#if defined(FASTLSTM_HAVE_ISA_AVX2)
#define FASTLSTM_AVX2_TABLE(name) (&isa_avx2::name)
#else
#define FASTLSTM_AVX2_TABLE(name) nullptr
#endif
#if defined(FASTLSTM_HAVE_ISA_AVX512)
#define FASTLSTM_AVX512_TABLE(name) (&isa_avx512::name)
#else
#define FASTLSTM_AVX512_TABLE(name) nullptr
#endif
#define FASTLSTM_TABLE_AT_LEVEL(name) \
  at_level(cpu_capability(), isa_baseline::name, FASTLSTM_AVX2_TABLE(name), FASTLSTM_AVX512_TABLE(name))

template <typename Table>
const Table& table();
template <>
const KernelTable& table<KernelTable>() {
  static const KernelTable& chosen = FASTLSTM_TABLE_AT_LEVEL(kernel_table);
  return chosen;
}
template <>
const LayerNormKernelTable& table<LayerNormKernelTable>() {
  static const LayerNormKernelTable& chosen = FASTLSTM_TABLE_AT_LEVEL(layer_norm_kernel_table);
  return chosen;
}

template <>
const GruKernelTable& table<GruKernelTable>() {
  static const GruKernelTable& chosen = FASTLSTM_TABLE_AT_LEVEL(gru_kernel_table);
  return chosen;
}

template <typename scalar_t, typename Table>
const auto& kernels() {
  if constexpr (std::is_same_v<scalar_t, float>) {
    return table<Table>().f32;
  } else {
    return table<Table>().f64;
  }
}

}  // namespace

template <typename scalar_t>
void lstm_forward(const LstmParams<scalar_t>& p) {
  kernels<scalar_t, KernelTable>().forward(p);
}

template <typename scalar_t>
void lstm_backward(const LstmParams<scalar_t>& p) {
  kernels<scalar_t, KernelTable>().backward(p);
}

template <typename scalar_t>
void layer_norm_lstm_forward(const LayerNormLstmParams<scalar_t>& p) {
  kernels<scalar_t, LayerNormKernelTable>().forward(p);
}

template <typename scalar_t>
void layer_norm_lstm_backward(const LayerNormLstmParams<scalar_t>& p) {
  kernels<scalar_t, LayerNormKernelTable>().backward(p);
}

template <typename scalar_t>
void gru_forward(const GruParams<scalar_t>& p) {
  kernels<scalar_t, GruKernelTable>().forward(p);
}

template <typename scalar_t>
void gru_backward(const GruParams<scalar_t>& p) {
  kernels<scalar_t, GruKernelTable>().backward(p);
}

void lstm_forward_bf16(const Bf16LstmParams& p) {
  static const Bf16KernelTable& chosen = FASTLSTM_TABLE_AT_LEVEL(bf16_kernel_table);
  chosen.forward(p);
}

void lstm_backward_bf16(const Bf16LstmBackwardParams& p) {
  static const Bf16KernelTable& chosen = FASTLSTM_TABLE_AT_LEVEL(bf16_kernel_table);
  chosen.backward(p);
}

void gru_forward_bf16(const Bf16GruParams& p) {
  static const Bf16KernelTable& chosen = FASTLSTM_TABLE_AT_LEVEL(bf16_kernel_table);
  chosen.gru_forward(p);
}

void layer_norm_lstm_forward_bf16(const LayerNormBf16Params& p) { table<LayerNormKernelTable>().bf16_forward(p); }

void quantized_rnn_forward(const QuantizedRnnParams& p) {
  static const QuantizedKernelTable& chosen = FASTLSTM_TABLE_AT_LEVEL(quantized_kernel_table);
  chosen.forward(p);
}

template void lstm_forward<float>(const LstmParams<float>&);
template void lstm_forward<double>(const LstmParams<double>&);
template void lstm_backward<float>(const LstmParams<float>&);
template void lstm_backward<double>(const LstmParams<double>&);
template void layer_norm_lstm_forward<float>(const LayerNormLstmParams<float>&);
template void layer_norm_lstm_forward<double>(const LayerNormLstmParams<double>&);
template void layer_norm_lstm_backward<float>(const LayerNormLstmParams<float>&);
template void layer_norm_lstm_backward<double>(const LayerNormLstmParams<double>&);
template void gru_forward<float>(const GruParams<float>&);
template void gru_forward<double>(const GruParams<double>&);
template void gru_backward<float>(const GruParams<float>&);
template void gru_backward<double>(const GruParams<double>&);

}  // namespace fastlstm::cpu
