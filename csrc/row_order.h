// Per-row sequence lengths, turned into what the kernels need: rows sorted longest first, so that the rows still
// running at step t are a prefix and each step's GEMM covers only them.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <vector>

#include "input_checks.h"

namespace fastlstm {

class RowOrder {
 public:
  // No lengths: every row runs every step and nothing is reordered.
  RowOrder(const char* op, const std::optional<at::Tensor>& sequence_lengths, const LstmSizes& sizes,
           const at::Tensor& x);

  // Rows running at step t, [T]; nullptr when all rows run every step.
  const int64_t* active_rows() const { return active_rows_.empty() ? nullptr : active_rows_.data(); }

  // Reorder the batch dimension `dim` of t from the caller's order to the kernels' order, and back.
  at::Tensor to_sorted(const at::Tensor& t, int64_t dim) const;
  at::Tensor to_original(const at::Tensor& t, int64_t dim) const;

 private:
  std::vector<int64_t> active_rows_;
  at::Tensor sorted_to_original_;  // [B] int64, undefined when the lengths are already sorted
  at::Tensor original_to_sorted_;
};

}  // namespace fastlstm
