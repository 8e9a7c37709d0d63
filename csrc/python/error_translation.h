// c10's exceptions as the Python exceptions torch raises for them (torch/csrc/Exceptions.h), without the C++
// backtrace unless TORCH_SHOW_CPP_STACKTRACES asks for it (c10 keeps both texts).
#pragma once

#include <nanobind/nanobind.h>

#include <c10/util/Exception.h>
#include <torch/csrc/utils/cpp_stacktraces.h>

namespace fastlstm::python {

inline void register_error_translation() {
  nanobind::register_exception_translator([](const std::exception_ptr& thrown, void*) {
    const auto raise = [](PyObject* type, const c10::Error& error) {
      PyErr_SetString(type, torch::get_cpp_stacktraces_enabled() ? error.what() : error.what_without_backtrace());
    };
    try {
      std::rethrow_exception(thrown);
    } catch (const c10::IndexError& error) {
      raise(PyExc_IndexError, error);
    } catch (const c10::ValueError& error) {
      raise(PyExc_ValueError, error);
    } catch (const c10::TypeError& error) {
      raise(PyExc_TypeError, error);
    } catch (const c10::NotImplementedError& error) {
      raise(PyExc_NotImplementedError, error);
    } catch (const c10::OutOfMemoryError& error) {
      nanobind::object torch_oom = nanobind::module_::import_("torch").attr("OutOfMemoryError");
      raise(torch_oom.ptr(), error);
    } catch (const c10::Error& error) {
      raise(PyExc_RuntimeError, error);
    }
  });
}

}  // namespace fastlstm::python
