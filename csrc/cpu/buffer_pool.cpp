#include "buffer_pool.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

namespace fastlstm::cpu {
namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kMinPooledBytes = size_t{1} << 20;  // smaller buffers: torch's allocator is cheap enough

size_t cache_cap_bytes() {
  const char* value = std::getenv("FASTLSTM_CPU_CACHE_MB");
  const size_t megabytes = value != nullptr ? std::stoull(value) : 1024;
  return megabytes << 20;
}

class BufferPool {
 public:
  void* acquire(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // Best fit among idle blocks no more than twice the request, so a small request never pins a huge block.
      auto it = idle_.lower_bound(bytes);
      if (it != idle_.end() && it->first <= 2 * bytes) {
        void* data = it->second;
        idle_bytes_ -= it->first;
        idle_.erase(it);
        return data;
      }
    }
    const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    void* data = std::aligned_alloc(kAlignment, rounded);
    TORCH_CHECK(data != nullptr, "fastlstm: out of memory allocating ", rounded, " bytes");
    std::lock_guard<std::mutex> lock(mutex_);
    sizes_[data] = rounded;
    return data;
  }

  void release(void* data) {
    std::lock_guard<std::mutex> lock(mutex_);
    const size_t bytes = sizes_.at(data);
    if (idle_bytes_ + bytes <= cap_) {
      idle_.emplace(bytes, data);
      idle_bytes_ += bytes;
      return;
    }
    sizes_.erase(data);
    std::free(data);
  }

 private:
  std::mutex mutex_;
  std::multimap<size_t, void*> idle_;         // bytes -> block
  std::unordered_map<void*, size_t> sizes_;   // every live or idle block
  size_t idle_bytes_ = 0;
  const size_t cap_ = cache_cap_bytes();
};

BufferPool& pool() {
  // Never destroyed: tensors holding pool memory may outlive static destruction at interpreter exit.
  static BufferPool* instance = new BufferPool();
  return *instance;
}

}  // namespace

void* acquire_buffer(size_t bytes) { return pool().acquire(bytes); }

void release_buffer(void* data) { pool().release(data); }

at::Tensor pooled_empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
  const size_t bytes = c10::multiply_integers(sizes) * options.dtype().itemsize();
  if (bytes < kMinPooledBytes || options.device().type() != at::kCPU) return at::empty(sizes, options);
  return at::from_blob(acquire_buffer(bytes), sizes, [](void* data) { release_buffer(data); }, options);
}

}  // namespace fastlstm::cpu
