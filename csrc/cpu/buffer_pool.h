// Large CPU buffers for the kernels (workspaces, gradient scratch, per-call scratch of the time loops and GEMMs).
//
// Fresh memory costs a page fault per 4 KiB page on first touch: measured here, allocating and writing 65 MB took
// 19.7 ms against 2.9 ms for writing a reused buffer — about a fifth of a C1 training step. So freed blocks are
// kept idle for reuse, but only what is actually reused:
//   - idle bytes never exceed the peak bytes in use over the last kWindowCalls op calls (a training loop at fixed
//     shapes keeps its blocks; after one huge batch, later small calls shed the huge blocks within a few calls);
//   - nor FASTLSTM_CPU_CACHE_MB (read once; default 1024; 0 turns caching off);
//   - empty_cache() (fastlstm.empty_cache()) releases every idle block now.
// Blocks are mapped from the OS directly (mmap), so a released block leaves the process (malloc would keep large
// freed chunks in its heap). Every kernel scratch comes from here, per-thread scratch included: nothing is kept
// in thread_local buffers.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstddef>
#include <utility>

#include "../export.h"

namespace fastlstm::cpu {

// A buffer of at least `bytes`, 64-byte aligned; return it with release_buffer.
void* acquire_buffer(size_t bytes);
void release_buffer(void* data);

// at::empty for CPU tensors, served from the pool (small tensors go to torch's allocator). Each call counts as one
// op call for the pool's window.
at::Tensor pooled_empty(at::IntArrayRef sizes, const at::TensorOptions& options);

struct PoolStats {
  size_t in_use_bytes;  // held by live buffers and tensors
  size_t idle_bytes;    // cached for reuse
  size_t cap_bytes;     // FASTLSTM_CPU_CACHE_MB
};
FASTLSTM_API PoolStats pool_stats();

// Releases every idle block to the OS.
FASTLSTM_API void empty_cache();

// A typed scratch buffer from the pool for the lifetime of the object.
template <typename scalar_t>
class PooledScratch {
 public:
  explicit PooledScratch(size_t count)
      : data_(count ? static_cast<scalar_t*>(acquire_buffer(count * sizeof(scalar_t))) : nullptr) {}
  ~PooledScratch() {
    if (data_) release_buffer(data_);
  }
  PooledScratch(PooledScratch&& other) noexcept : data_(std::exchange(other.data_, nullptr)) {}
  PooledScratch& operator=(PooledScratch&& other) noexcept {
    if (this != &other) {
      if (data_) release_buffer(data_);
      data_ = std::exchange(other.data_, nullptr);
    }
    return *this;
  }
  PooledScratch(const PooledScratch&) = delete;
  PooledScratch& operator=(const PooledScratch&) = delete;
  scalar_t* data() const { return data_; }

 private:
  scalar_t* data_;
};

}  // namespace fastlstm::cpu
