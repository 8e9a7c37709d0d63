#include "cpu_capability.h"

#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>

namespace fastlstm::cpu {
namespace {

// The levels this build compiled the kernels for (CMakeLists.txt).
bool compiled(CpuCapability capability) {
  switch (capability) {
    case CpuCapability::Baseline:
      return true;
    case CpuCapability::Avx2:
#if defined(FASTLSTM_HAVE_ISA_AVX2)
      return true;
#else
      return false;
#endif
    case CpuCapability::Avx512:
#if defined(FASTLSTM_HAVE_ISA_AVX512)
      return true;
#else
      return false;
#endif
  }
  return false;
}

bool cpu_supports(CpuCapability capability) {
#if defined(__x86_64__) || defined(__i386__)
  // libgcc's checks include the OS's XSAVE support of the wider registers, not only the cpuid bits.
  switch (capability) {
    case CpuCapability::Baseline:
      return true;
    case CpuCapability::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2") &&
             __builtin_cpu_supports("f16c");
    case CpuCapability::Avx512:
      return cpu_supports(CpuCapability::Avx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq");
  }
#endif
  return capability == CpuCapability::Baseline;
}

CpuCapability choose() {
  CpuCapability best = CpuCapability::Baseline;
  for (CpuCapability level : supported_capabilities()) best = level;
  const char* asked = std::getenv("FASTLSTM_CPU_CAPABILITY");
  if (asked == nullptr || *asked == '\0') return best;
  for (CpuCapability level : {CpuCapability::Baseline, CpuCapability::Avx2, CpuCapability::Avx512}) {
    if (std::strcmp(asked, capability_name(level)) != 0) continue;
    // A level above what the CPU has would die on an illegal instruction: run the best one there is.
    return static_cast<int>(level) < static_cast<int>(best) ? level : best;
  }
  TORCH_CHECK(false, "fastlstm: expected FASTLSTM_CPU_CAPABILITY to be one of baseline, avx2, avx512, got '", asked,
              "'");
}

}  // namespace

const char* capability_name(CpuCapability capability) {
  switch (capability) {
    case CpuCapability::Baseline:
#if defined(FASTLSTM_NATIVE_BUILD)
      return "native";  // FASTLSTM_NATIVE=ON: one level, compiled for the build machine
#else
      return "baseline";
#endif
    case CpuCapability::Avx2:
      return "avx2";
    case CpuCapability::Avx512:
      return "avx512";
  }
  return "baseline";
}

std::vector<CpuCapability> supported_capabilities() {
  std::vector<CpuCapability> levels;
  for (CpuCapability level : {CpuCapability::Baseline, CpuCapability::Avx2, CpuCapability::Avx512}) {
    if (compiled(level) && cpu_supports(level)) levels.push_back(level);
  }
  return levels;
}

CpuCapability cpu_capability() {
  static const CpuCapability chosen = choose();
  return chosen;
}

}  // namespace fastlstm::cpu
