// bf16 weights packed for brgemm (lstm_bf16_op.cpp), kept between calls: packing costs more than a whole short
// sequence (measured at I = H = 512, one thread: ~1.5 ms of a 2.2 ms single step), and a served or trained model
// passes the same weight tensors call after call. An entry is the packed copy of one tensor at one version: an
// in-place change (an optimizer step) bumps the version and the next call repacks; an entry whose tensor was freed
// is never matched (it holds a weak reference, so an address reused by a new tensor is not mistaken for it). At
// most kPackedWeightCacheEntries entries, least recently used out first; fastlstm.empty_cache() drops them all.
#pragma once

#include <ATen/ATen.h>

#include <functional>

namespace fastlstm::cpu {

constexpr size_t kPackedWeightCacheEntries = 16;

// Which packing of a weight an entry holds: the forward reads W^T, the backward W; an int8 weight's entries are its
// VNNI blocks, its column sums and its values in float32 (quantized_rnn_op.cpp).
enum class PackedAs { Transposed, IsRows, Int8Vnni, ColumnSums, Float };

// pack(w) the first time, the kept copy after while w is alive and unchanged. Thread-safe.
at::Tensor packed_weight(const at::Tensor& w, PackedAs as, const std::function<at::Tensor(const at::Tensor&)>& pack);

void clear_packed_weights();

}  // namespace fastlstm::cpu
