// lstm_forward / lstm_backward: the kernels of the level cpu_capability() picked.
#include <type_traits>

#include "cpu_capability.h"
#include "lstm_kernel.h"

namespace fastlstm::cpu {
namespace {

const KernelTable& table_for(CpuCapability capability) {
  switch (capability) {
#if defined(FASTLSTM_HAVE_ISA_AVX512)
    case CpuCapability::Avx512:
      return isa_avx512::kernel_table;
#endif
#if defined(FASTLSTM_HAVE_ISA_AVX2)
    case CpuCapability::Avx2:
      return isa_avx2::kernel_table;
#endif
    default:
      return isa_baseline::kernel_table;
  }
}

template <typename scalar_t>
const LevelKernels<scalar_t>& kernels() {
  static const KernelTable& table = table_for(cpu_capability());
  if constexpr (std::is_same_v<scalar_t, float>) {
    return table.f32;
  } else {
    return table.f64;
  }
}

}  // namespace

template <typename scalar_t>
void lstm_forward(const LstmParams<scalar_t>& p) {
  kernels<scalar_t>().forward(p);
}

template <typename scalar_t>
void lstm_backward(const LstmParams<scalar_t>& p) {
  kernels<scalar_t>().backward(p);
}

template void lstm_forward<float>(const LstmParams<float>&);
template void lstm_forward<double>(const LstmParams<double>&);
template void lstm_backward<float>(const LstmParams<float>&);
template void lstm_backward<double>(const LstmParams<double>&);

}  // namespace fastlstm::cpu
