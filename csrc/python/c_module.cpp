// fastlstm._C, the Python module whose import loads the ops library libfastlstm_ops.so (linked, found next to it; the
// ops register through static initialisers): the CPU helpers the Python layer exports (fastlstm.cpu_capability(),
// empty_cache(), build_info(), ...) and the constants the fake kernels share with C++. Bound with nanobind, built
// against Python's stable ABI where nanobind allows it (Python >= 3.12; see CMakeLists.txt); links no
// libtorch_python.
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <string>
#include <vector>

#include "../cpu/buffer_pool.h"
#include "../cpu/cpu_capability.h"
#include "../cpu/gemm_engine.h"
#include "../gru_params.h"
#include "../layer_norm_lstm_params.h"
#include "../lstm_params.h"

namespace nb = nanobind;

namespace {

// The comma-separated list CMake passes in as a macro, as a list.
std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  for (size_t begin = 0; begin < text.size();) {
    const size_t end = std::min(text.find(',', begin), text.size());
    if (end > begin) items.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return items;
}

}  // namespace

NB_MODULE(_C, m) {
  namespace cpu = fastlstm::cpu;
  m.doc() = "fastlstm ops (see torch.ops.fastlstm): the library's CPU helpers and build information";

  m.def("gemm_engine", [] { return std::string(cpu::engine_name(cpu::gemm_engine())); },
        "FASTLSTM_GEMM's engine (brgemm, blas, eigen) or 'auto' (measured per shape class).");
  m.def(
      "cpu_capability",
      [] {
        nb::list supported, choices;
        for (cpu::CpuCapability level : cpu::supported_capabilities()) supported.append(cpu::capability_name(level));
        for (const auto& [shape, engine] : cpu::recorded_choices()) choices.append(nb::make_tuple(shape, engine));
        nb::dict result;
        result["level"] = cpu::capability_name(cpu::cpu_capability());
        result["supported"] = supported;
        result["gemm"] = cpu::engine_name(cpu::gemm_engine());
        result["gemm_choices"] = choices;
        return result;
      },
      "{'level': the instruction-set level the CPU kernels run, 'supported': the levels this CPU and build have, "
      "'gemm': 'auto' or the forced engine, 'gemm_choices': [(shape class, engine measured fastest), ...] so far}.");
  m.def("empty_cache", [] { cpu::empty_cache(); }, "Releases every idle block of the CPU buffer pool to the OS.");
  m.def(
      "cpu_memory_stats",
      [] {
        const cpu::PoolStats stats = cpu::pool_stats();
        nb::dict result;
        result["in_use_bytes"] = stats.in_use_bytes;
        result["idle_bytes"] = stats.idle_bytes;
        result["cap_bytes"] = stats.cap_bytes;
        return result;
      },
      "The CPU buffer pool's bytes in use, idle (cached) and its cap (FASTLSTM_CPU_CACHE_MB).");
  m.def(
      "build_info",
      [] {
        nb::dict result;
        result["torch"] = FASTLSTM_BUILT_TORCH;
        result["isa_levels"] = split_list(FASTLSTM_BUILT_ISA_LEVELS);
        result["native"] = FASTLSTM_BUILT_NATIVE != 0;
        result["cuda_architectures"] = split_list(FASTLSTM_BUILT_CUDA_ARCHITECTURES);
#ifdef Py_LIMITED_API
        result["python_abi"] = "abi3";
#else
        result["python_abi"] = "cp" + std::to_string(PY_MAJOR_VERSION) + std::to_string(PY_MINOR_VERSION);
#endif
        return result;
      },
      "What this build compiled in: {'torch': the torch version built against, 'isa_levels': the CPU kernels' "
      "instruction-set levels, 'native': -march=native, 'cuda_architectures': the CUDA kernels' architectures "
      "(empty: a CPU-only build), 'python_abi': 'abi3' (Python's stable ABI) or the one Python it was built for}.");

  // The workspaces' widths per step and row, for the fake kernels (python/fastlstm/_ops.py): the LSTM's in units of
  // H; the layer-normalised LSTM's in units of H plus a constant (layer_norm_lstm_params.h); the GRU's in units of H.
  m.attr("WORKSPACE_WIDTH") = fastlstm::kWorkspaceWidth;
  m.attr("LAYER_NORM_WORKSPACE_UNITS_SEPARATE") = fastlstm::kLayerNormUnitsSeparate;
  m.attr("LAYER_NORM_WORKSPACE_UNITS_JOINT") = fastlstm::kLayerNormUnitsJoint;
  m.attr("LAYER_NORM_WORKSPACE_STATS") = fastlstm::kLayerNormStats;
  m.attr("GRU_WORKSPACE_WIDTH") = fastlstm::kGruWorkspaceWidth;
}
