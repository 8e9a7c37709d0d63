// FASTLSTM_API marks the few functions of the ops library (libfastlstm_ops.so, built with hidden symbols) that the
// Python module fastlstm._C calls: the CPU helpers behind fastlstm.cpu_capability(), empty_cache(), ...
#pragma once

#define FASTLSTM_API __attribute__((visibility("default")))
