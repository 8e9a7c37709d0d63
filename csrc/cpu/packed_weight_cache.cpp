#include "packed_weight_cache.h"

#include <list>
#include <mutex>

namespace fastlstm::cpu {
namespace {

struct Entry {
  c10::weak_intrusive_ptr<c10::TensorImpl> tensor;
  const c10::TensorImpl* impl;
  PackedAs as;
  uint32_t version;
  const void* data;
  at::Tensor packed;
};

std::mutex cache_mutex;
std::list<Entry>& entries() {
  static auto* list = new std::list<Entry>();  // never destroyed: tensors may outlive static destruction order
  return *list;
}

}  // namespace

at::Tensor packed_weight(const at::Tensor& w, PackedAs as, const std::function<at::Tensor(const at::Tensor&)>& pack) {
  // Inference tensors count no versions (an in-place change would go unseen): packed every time.
  if (w.is_inference() || !w.has_storage()) return pack(w);
  const c10::TensorImpl* impl = w.unsafeGetTensorImpl();
  const uint32_t version = w._version();
  const void* data = w.const_data_ptr();  // `param.data = other` swaps the storage without a new version
  {
    std::lock_guard<std::mutex> lock(cache_mutex);
    auto& list = entries();
    for (auto it = list.begin(); it != list.end(); ++it) {
      if (it->impl == impl && it->as == as && it->version == version && it->data == data && !it->tensor.expired()) {
        list.splice(list.begin(), list, it);
        return it->packed;
      }
    }
  }
  at::Tensor packed = pack(w);
  std::lock_guard<std::mutex> lock(cache_mutex);
  auto& list = entries();
  list.remove_if([&](const Entry& e) { return (e.impl == impl && e.as == as) || e.tensor.expired(); });
  list.push_front(Entry{c10::weak_intrusive_ptr<c10::TensorImpl>(w.getIntrusivePtr()), impl, as, version, data, packed});
  if (list.size() > kPackedWeightCacheEntries) list.pop_back();
  return packed;
}

void clear_packed_weights() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  entries().clear();
}

}  // namespace fastlstm::cpu
