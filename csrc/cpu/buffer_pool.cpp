#include "buffer_pool.h"

#include "packed_weight_cache.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

namespace fastlstm::cpu {
namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kPageBytes = 4096;
// Below this, malloc is fast and keeps freed memory in its own small-chunk bins: no caching, no mapping.
constexpr size_t kMinMappedBytes = size_t{256} << 10;
// Tensors smaller than this go to torch's allocator.
constexpr size_t kMinPooledTensorBytes = size_t{1} << 20;
// The window over which the peak bytes in use bound the idle bytes: a training step of a deep stack makes a few
// dozen op calls, and a block each of them reuses stays in the window.
constexpr size_t kWindowCalls = 16;

size_t cache_cap_bytes() {
  const char* value = std::getenv("FASTLSTM_CPU_CACHE_MB");
  if (value == nullptr || *value == '\0') return size_t{1024} << 20;
  char* end = nullptr;
  const unsigned long long megabytes = std::strtoull(value, &end, 10);
  TORCH_CHECK(end != nullptr && *end == '\0', "fastlstm: expected FASTLSTM_CPU_CACHE_MB to be a whole number of ",
              "megabytes, got '", value, "'");
  return static_cast<size_t>(megabytes) << 20;
}

#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer sees malloc'd blocks of the exact size, not mapped and reused ones: every buffer is its own.
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

class BufferPool {
 public:
  void* acquire(size_t bytes) {
    if (bytes < kMinMappedBytes || kSanitized) {
      void* data = std::aligned_alloc(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
      TORCH_CHECK(data != nullptr, "fastlstm: out of memory allocating ", bytes, " bytes");
      return data;
    }
    const size_t rounded = (bytes + kPageBytes - 1) / kPageBytes * kPageBytes;
    std::lock_guard<std::mutex> lock(mutex_);
    // Best fit among idle blocks no more than twice the request, so a small request never pins a huge block.
    auto it = idle_.lower_bound(rounded);
    void* data = nullptr;
    size_t size = rounded;
    if (it != idle_.end() && it->first <= 2 * rounded) {
      data = it->second;
      size = it->first;
      idle_bytes_ -= size;
      idle_.erase(it);
    } else {
      data = mmap(nullptr, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      TORCH_CHECK(data != MAP_FAILED, "fastlstm: out of memory allocating ", rounded, " bytes");
    }
    blocks_[data] = Block{size, calls_};
    in_use_bytes_ += size;
    window_[calls_ % kWindowCalls] = std::max(window_[calls_ % kWindowCalls], in_use_bytes_);
    return data;
  }

  void release(void* data) {
    std::unique_lock<std::mutex> lock(mutex_);
    auto block = blocks_.find(data);
    if (block == blocks_.end()) {  // a small block from malloc
      lock.unlock();
      std::free(data);
      return;
    }
    block->second.last_call = calls_;
    in_use_bytes_ -= block->second.bytes;
    idle_.emplace(block->second.bytes, data);
    idle_bytes_ += block->second.bytes;
    trim(idle_limit());
  }

  // One op call: the window moves on, and what it no longer justifies is released.
  void tick() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++calls_;
    window_[calls_ % kWindowCalls] = in_use_bytes_;
    trim(idle_limit());
  }

  void empty() {
    std::lock_guard<std::mutex> lock(mutex_);
    trim(0);
  }

  PoolStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {in_use_bytes_, idle_bytes_, cap_};
  }

 private:
  struct Block {
    size_t bytes;
    size_t last_call;  // when it was last acquired or released
  };

  size_t idle_limit() const {
    return std::min(cap_, *std::max_element(window_.begin(), window_.end()));
  }

  // Unmaps the least recently used idle blocks until at most `limit` bytes stay idle.
  void trim(size_t limit) {
    while (idle_bytes_ > limit) {
      auto oldest = idle_.begin();
      for (auto it = idle_.begin(); it != idle_.end(); ++it) {
        if (blocks_.at(it->second).last_call < blocks_.at(oldest->second).last_call) oldest = it;
      }
      const size_t bytes = oldest->first;
      munmap(oldest->second, bytes);
      blocks_.erase(oldest->second);
      idle_.erase(oldest);
      idle_bytes_ -= bytes;
    }
  }

  std::mutex mutex_;
  std::multimap<size_t, void*> idle_;          // bytes -> idle block
  std::unordered_map<void*, Block> blocks_;    // every mapped block, in use or idle
  std::array<size_t, kWindowCalls> window_{};  // peak bytes in use during each of the last calls
  size_t calls_ = 0;
  size_t in_use_bytes_ = 0;
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
  pool().tick();
  const size_t bytes = c10::multiply_integers(sizes) * options.dtype().itemsize();
  if (bytes < kMinPooledTensorBytes || options.device().type() != at::kCPU) return at::empty(sizes, options);
  return at::from_blob(acquire_buffer(bytes), sizes, [](void* data) { release_buffer(data); }, options);
}

PoolStats pool_stats() { return pool().stats(); }

void empty_cache() {
  pool().empty();
  clear_packed_weights();
}

}  // namespace fastlstm::cpu
