#include "row_order.h"

#include <ATen/ATen.h>

namespace fastlstm {

RowOrder::RowOrder(const char* op, const std::optional<at::Tensor>& sequence_lengths, const LstmSizes& sizes,
                   const at::Tensor& x) {
  if (!sequence_lengths) return;
  at::Tensor lengths = check_sequence_lengths(op, *sequence_lengths, sizes, x);
  const int64_t* values = lengths.const_data_ptr<int64_t>();
  bool sorted = true;
  for (int64_t b = 1; b < sizes.batch; ++b) sorted = sorted && values[b - 1] >= values[b];
  if (!sorted) {
    sorted_to_original_ = std::get<1>(lengths.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
    original_to_sorted_ = at::empty_like(sorted_to_original_);
    original_to_sorted_.index_put_({sorted_to_original_}, at::arange(sizes.batch, lengths.options()));
    lengths = lengths.index_select(0, sorted_to_original_);
    values = lengths.const_data_ptr<int64_t>();
  }
  // values is now non-increasing: count the rows with length > t.
  active_rows_.resize(sizes.seq_len);
  int64_t rows = sizes.batch;
  for (int64_t t = 0; t < sizes.seq_len; ++t) {
    while (rows > 0 && values[rows - 1] <= t) --rows;
    active_rows_[t] = rows;
  }
}

at::Tensor RowOrder::to_sorted(const at::Tensor& t, int64_t dim) const {
  if (!sorted_to_original_.defined()) return t;
  return t.index_select(dim, sorted_to_original_.to(t.device()));
}

at::Tensor RowOrder::to_original(const at::Tensor& t, int64_t dim) const {
  if (!original_to_sorted_.defined()) return t;
  return t.index_select(dim, original_to_sorted_.to(t.device()));
}

}  // namespace fastlstm
