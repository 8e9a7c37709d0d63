// lstm_forward / lstm_backward: the kernels of the level cpu_capability() picked.
#include <c10/util/Exception.h>

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

const KernelTable& kernels() {
  static const KernelTable& table = table_for(cpu_capability());
  return table;
}

}  // namespace

template <>
void lstm_forward<float>(const LstmParams<float>& p) {
  kernels().forward_float(p);
}
template <>
void lstm_forward<double>(const LstmParams<double>& p) {
  kernels().forward_double(p);
}
template <>
void lstm_backward<float>(const LstmParams<float>& p) {
  kernels().backward_float(p);
}
template <>
void lstm_backward<double>(const LstmParams<double>& p) {
  kernels().backward_double(p);
}

}  // namespace fastlstm::cpu
