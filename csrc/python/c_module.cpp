// fastlstm._C, the Python module whose import loads the ops library libfastlstm_ops.so (linked, found next to it; the
// ops register through static initialisers): the CPU helpers the Python layer exports (fastlstm.cpu_capability(),
// empty_cache(), ...) and the constants the fake kernels share with C++. Written against the raw CPython API: it
// links no libtorch_python.
#include <Python.h>

#include <utility>

#include "../cpu/buffer_pool.h"
#include "../cpu/cpu_capability.h"
#include "../cpu/gemm_engine.h"
#include "../gru_params.h"
#include "../layer_norm_lstm_params.h"
#include "../lstm_params.h"

namespace {

// FASTLSTM_GEMM's engine, or "auto" (measured per shape class: see cpu_capability()).
PyObject* gemm_engine(PyObject*, PyObject*) {
  return PyUnicode_FromString(fastlstm::cpu::engine_name(fastlstm::cpu::gemm_engine()));
}

// {"level": the instruction-set level the CPU kernels run, "supported": the levels this CPU and build have,
//  "gemm": "auto" or the forced engine, "gemm_choices": [(shape class, engine measured fastest), ...] so far}.
PyObject* cpu_capability(PyObject*, PyObject*) {
  namespace cpu = fastlstm::cpu;
  PyObject* supported = PyList_New(0);
  for (cpu::CpuCapability level : cpu::supported_capabilities()) {
    PyObject* name = PyUnicode_FromString(cpu::capability_name(level));
    PyList_Append(supported, name);
    Py_DECREF(name);
  }
  PyObject* choices = PyList_New(0);
  for (const auto& [shape, engine] : cpu::recorded_choices()) {
    PyObject* pair = Py_BuildValue("(ss)", shape.c_str(), engine.c_str());
    PyList_Append(choices, pair);
    Py_DECREF(pair);
  }
  return Py_BuildValue("{s:s,s:N,s:s,s:N}", "level", cpu::capability_name(cpu::cpu_capability()), "supported",
                       supported, "gemm", cpu::engine_name(cpu::gemm_engine()), "gemm_choices", choices);
}

PyObject* empty_cache(PyObject*, PyObject*) {
  fastlstm::cpu::empty_cache();
  Py_RETURN_NONE;
}

PyObject* cpu_memory_stats(PyObject*, PyObject*) {
  const fastlstm::cpu::PoolStats stats = fastlstm::cpu::pool_stats();
  return Py_BuildValue("{s:n,s:n,s:n}", "in_use_bytes", static_cast<Py_ssize_t>(stats.in_use_bytes), "idle_bytes",
                       static_cast<Py_ssize_t>(stats.idle_bytes), "cap_bytes",
                       static_cast<Py_ssize_t>(stats.cap_bytes));
}

PyMethodDef module_methods[] = {
    {"gemm_engine", gemm_engine, METH_NOARGS, "FASTLSTM_GEMM's engine (brgemm, blas, eigen) or 'auto' (measured)."},
    {"cpu_capability", cpu_capability, METH_NOARGS,
     "The CPU kernels' instruction-set level, the levels available, the GEMM engine and the measured choices."},
    {"empty_cache", empty_cache, METH_NOARGS, "Releases every idle block of the CPU buffer pool to the OS."},
    {"cpu_memory_stats", cpu_memory_stats, METH_NOARGS,
     "The CPU buffer pool's bytes in use, idle (cached) and its cap (FASTLSTM_CPU_CACHE_MB)."},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

// fastlstm._C is a plain extension module: importing it loads this library, which registers the ops.
PyMODINIT_FUNC PyInit__C(void) {
  static PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", "fastlstm ops (see torch.ops.fastlstm)", -1,
                               module_methods, nullptr, nullptr, nullptr, nullptr};
  PyObject* m = PyModule_Create(&module);
  if (m == nullptr) return nullptr;
  // The workspaces' widths per step and row, for the fake kernels (python/fastlstm/_ops.py): the LSTM's in units of
  // H; the layer-normalised LSTM's in units of H plus a constant (layer_norm_lstm_params.h); the GRU's in units of H.
  const std::pair<const char*, long> constants[] = {
      {"WORKSPACE_WIDTH", fastlstm::kWorkspaceWidth},
      {"LAYER_NORM_WORKSPACE_UNITS_SEPARATE", fastlstm::kLayerNormUnitsSeparate},
      {"LAYER_NORM_WORKSPACE_UNITS_JOINT", fastlstm::kLayerNormUnitsJoint},
      {"LAYER_NORM_WORKSPACE_STATS", fastlstm::kLayerNormStats},
      {"GRU_WORKSPACE_WIDTH", fastlstm::kGruWorkspaceWidth}};
  for (const auto& [name, value] : constants) {
    if (PyModule_AddIntConstant(m, name, value) != 0) {
      Py_DECREF(m);
      return nullptr;
    }
  }
  return m;
}
