// nanobind's conversion of torch.Tensor <-> at::Tensor, for modules built against Python's stable ABI.
//
// torch's own converters (torch/csrc/autograd/python_variable.h, pybind11's caster in torch/csrc/utils/pybind.h)
// need the full CPython API, so a stable-ABI module cannot include them. What they do is small: a torch.Tensor is
// a Python object whose C struct is PyObject_HEAD followed by the at::Tensor (THPVariable), and libtorch_python
// exports the class object and the wrapping function. check_tensor_layout() checks this mirror against that torch
// when the module loads (fastlstm pins the torch minor version it was built with, see python/fastlstm/__init__.py).
#pragma once

#include <nanobind/nanobind.h>

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

// Exported by libtorch_python (declared in torch/csrc/autograd/python_variable.h).
__attribute__((visibility("default"))) extern PyObject* THPVariableClass;
__attribute__((visibility("default"))) PyObject* THPVariable_Wrap(const at::TensorBase& var);

namespace fastlstm::python {

// torch's THPVariable: the object behind every torch.Tensor (and its subclasses: nn.Parameter, ...).
struct TensorObject {
  PyObject_HEAD
  at::Tensor tensor;
};

inline bool is_tensor(PyObject* object) {
  if (THPVariableClass == nullptr) return false;
  if (Py_TYPE(object) == reinterpret_cast<PyTypeObject*>(THPVariableClass)) return true;
  const int result = PyObject_IsInstance(object, THPVariableClass);
  if (result < 0) PyErr_Clear();
  return result == 1;
}

// Raises ImportError unless a tensor wrapped by torch reads back through TensorObject as the same tensor.
inline void check_tensor_layout() {
  const at::Tensor probe = at::empty({1});
  PyObject* wrapped = THPVariable_Wrap(probe);
  if (wrapped == nullptr) throw nanobind::python_error();
  const bool same = is_tensor(wrapped) &&
                    reinterpret_cast<TensorObject*>(wrapped)->tensor.unsafeGetTensorImpl() ==
                        probe.unsafeGetTensorImpl();
  Py_DECREF(wrapped);
  if (!same) {
    throw nanobind::import_error(
        "fastlstm._direct: this torch's Python tensor object is not laid out as the one fastlstm was built "
        "against (PyObject header, then at::Tensor); rebuild fastlstm against the installed torch");
  }
}

}  // namespace fastlstm::python

namespace nanobind::detail {

template <>
struct type_caster<at::Tensor> {
  NB_TYPE_CASTER(at::Tensor, const_name("torch.Tensor"))

  bool from_python(handle src, uint8_t, cleanup_list*) noexcept {
    if (!fastlstm::python::is_tensor(src.ptr())) return false;
    value = reinterpret_cast<fastlstm::python::TensorObject*>(src.ptr())->tensor;
    return true;
  }

  static handle from_cpp(const at::Tensor& tensor, rv_policy, cleanup_list*) noexcept {
    try {
      return THPVariable_Wrap(tensor);
    } catch (const std::exception& error) {
      PyErr_SetString(PyExc_RuntimeError, error.what());
      return handle();
    }
  }
};

}  // namespace nanobind::detail
