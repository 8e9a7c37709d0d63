// The instruction-set levels the CPU kernels are compiled for, and the one this process runs.
//
// The kernel translation units (time loops, gate math, small GEMMs: see CMakeLists.txt) are compiled once per level,
// each into its own namespace (isa_baseline, isa_avx2, isa_avx512), and one is picked when the library loads: the
// best the CPU (and the OS, for the wider registers) supports, or a lower one named by FASTLSTM_CPU_CAPABILITY
// (baseline | avx2 | avx512, as torch's ATEN_CPU_CAPABILITY). One binary then runs on every x86-64 CPU.
#pragma once

#include <string>
#include <vector>

#include "../export.h"

namespace fastlstm::cpu {

enum class CpuCapability { Baseline = 0, Avx2 = 1, Avx512 = 2 };

FASTLSTM_API const char* capability_name(CpuCapability capability);

// The levels this CPU supports, lowest first.
FASTLSTM_API std::vector<CpuCapability> supported_capabilities();

// The level the kernels run at (chosen once per process).
FASTLSTM_API CpuCapability cpu_capability();

}  // namespace fastlstm::cpu
