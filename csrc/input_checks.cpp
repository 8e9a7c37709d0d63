#include "input_checks.h"

#include <c10/util/Exception.h>

#include <sstream>
#include <tuple>
#include <utility>

namespace fastlstm {
namespace {

std::string shape_string(at::IntArrayRef shape) {
  std::ostringstream out;
  out << "[";
  for (size_t k = 0; k < shape.size(); ++k) out << (k ? ", " : "") << shape[k];
  out << "]";
  return out.str();
}

void check_same_kind(const char* op, const char* name, const at::Tensor& t, const at::Tensor& x) {
  TORCH_CHECK(t.scalar_type() == x.scalar_type(), op, ": expected ", name, " to have x's dtype ", x.scalar_type(),
              ", got ", t.scalar_type());
  TORCH_CHECK(t.device() == x.device(), op, ": expected ", name, " on x's device ", x.device(), ", got ",
              t.device());
}

void check_shape(const char* op, const char* name, const at::Tensor& t, at::IntArrayRef expected,
                 const char* meaning) {
  TORCH_CHECK(t.sizes() == expected, op, ": expected ", name, " of shape ", shape_string(expected), " ", meaning,
              ", got ", shape_string(t.sizes()));
}

}  // namespace

LstmSizes check_lstm_inputs(const char* op, bool single_step, const at::Tensor& x, const at::Tensor& h0,
                            const at::Tensor& c0, const at::Tensor& w_ih, const std::optional<at::Tensor>& w_hh,
                            const std::optional<at::Tensor>& b_ih, const std::optional<at::Tensor>& b_hh,
                            const std::optional<at::Tensor>& w_peephole, bool tf_layout,
                            const std::optional<at::Tensor>& w_hr) {
  const int64_t x_dims = single_step ? 2 : 3;
  TORCH_CHECK(x.dim() == x_dims, op, ": expected x of ", x_dims, " dims ",
              single_step ? "[batch, input_size]" : "[seq_len, batch, input_size]", ", got ", x.dim(),
              " dims of shape ", shape_string(x.sizes()));
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble || x.scalar_type() == at::kBFloat16 ||
                  x.scalar_type() == at::kHalf, op,
              ": expected float32, float64, bfloat16 or float16 tensors, got x of dtype ", x.scalar_type());
  LstmSizes s;
  s.seq_len = single_step ? 1 : x.size(0);
  s.batch = x.size(x_dims - 2);
  s.input_size = x.size(x_dims - 1);
  // The recurrent width R comes from the weights, and must be the hidden size unless w_hr projects h to it.
  const char* recurrent = w_hr ? "proj_size" : "hidden_size";
  if (tf_layout) {
    TORCH_CHECK(!w_hh, op, ": expected w_hh None with tf_layout (w_ih is then TF's whole kernel [input_size + ",
                recurrent, ", 4 * hidden_size]), got a tensor of shape ", shape_string(w_hh->sizes()));
    TORCH_CHECK(w_ih.dim() == 2 && w_ih.size(1) % 4 == 0 && w_ih.size(0) >= s.input_size, op,
                ": expected w_ih of shape [input_size + ", recurrent,
                ", 4 * hidden_size] (tf_layout: TF's kernel), got ", shape_string(w_ih.sizes()));
    s.hidden_size = w_ih.size(1) / 4;
    s.recurrent_size = w_hr ? w_ih.size(0) - s.input_size : s.hidden_size;
    check_same_kind(op, "w_ih", w_ih, x);
    check_shape(op, "w_ih", w_ih, {s.input_size + s.recurrent_size, 4 * s.hidden_size},
                w_hr ? "[input_size + proj_size, 4 * hidden_size] (tf_layout: TF's kernel; input_size from x)"
                     : "[input_size + hidden_size, 4 * hidden_size] (tf_layout: TF's kernel; input_size from x)");
  } else {
    TORCH_CHECK(w_hh, op, ": expected w_hh of shape [4 * hidden_size, ", recurrent, "], got None (only tf_layout ",
                "takes the weights as one kernel)");
    TORCH_CHECK(w_hh->dim() == 2 && w_hh->size(0) % 4 == 0 &&
                    (w_hr || w_hh->size(0) == 4 * w_hh->size(1)),
                op, ": expected w_hh of shape [4 * hidden_size, ", recurrent, "], got ", shape_string(w_hh->sizes()));
    s.hidden_size = w_hh->size(0) / 4;
    s.recurrent_size = w_hh->size(1);
    check_same_kind(op, "w_hh", *w_hh, x);
    check_same_kind(op, "w_ih", w_ih, x);
    check_shape(op, "w_ih", w_ih, {4 * s.hidden_size, s.input_size},
                "[4 * hidden_size, input_size] (input_size from x)");
  }
  s.proj_size = w_hr ? s.recurrent_size : 0;
  if (w_hr) {
    check_same_kind(op, "w_hr", *w_hr, x);
    if (tf_layout) {
      check_shape(op, "w_hr", *w_hr, {s.hidden_size, s.proj_size},
                  "[hidden_size, proj_size] (tf_layout: TF's projection/kernel)");
    } else {
      check_shape(op, "w_hr", *w_hr, {s.proj_size, s.hidden_size}, "[proj_size, hidden_size]");
    }
  }
  const int64_t G = 4 * s.hidden_size;
  check_same_kind(op, "h0", h0, x);
  check_shape(op, "h0", h0, {s.batch, s.recurrent_size}, w_hr ? "[batch, proj_size]" : "[batch, hidden_size]");
  check_same_kind(op, "c0", c0, x);
  check_shape(op, "c0", c0, {s.batch, s.hidden_size}, "[batch, hidden_size]");
  if (b_ih) {
    check_same_kind(op, "b_ih", *b_ih, x);
    check_shape(op, "b_ih", *b_ih, {G}, "[4 * hidden_size]");
  }
  if (b_hh) {
    check_same_kind(op, "b_hh", *b_hh, x);
    check_shape(op, "b_hh", *b_hh, {G}, "[4 * hidden_size]");
  }
  if (w_peephole) {
    check_same_kind(op, "w_peephole", *w_peephole, x);
    check_shape(op, "w_peephole", *w_peephole, {3, s.hidden_size}, "[3, hidden_size] (rows w_ci, w_cf, w_co)");
  }
  return s;
}

LstmSizes check_layer_norm_lstm_inputs(const char* op, const at::Tensor& x, const at::Tensor& h0, const at::Tensor& c0,
                                       const at::Tensor& w_ih, const at::Tensor& w_hh,
                                       const std::optional<at::Tensor>& bias, const at::Tensor& ln_ih_weight,
                                       const std::optional<at::Tensor>& ln_hh_weight, const at::Tensor& ln_cell_weight,
                                       const at::Tensor& ln_cell_bias, const std::optional<at::Tensor>& g_mask,
                                       int64_t groups) {
  TORCH_CHECK(x.dim() == 3, op, ": expected x of 3 dims [seq_len, batch, input_size], got ", x.dim(),
              " dims of shape ", shape_string(x.sizes()));
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble || x.scalar_type() == at::kBFloat16 ||
                  x.scalar_type() == at::kHalf, op,
              ": expected float32, float64, bfloat16 or float16 tensors, got x of dtype ", x.scalar_type());
  TORCH_CHECK(w_hh.dim() == 2 && w_hh.size(0) == 4 * w_hh.size(1), op,
              ": expected w_hh of shape [4 * hidden_size, hidden_size], got ", shape_string(w_hh.sizes()));
  TORCH_CHECK(groups == 1 || groups == 4, op, ": expected groups 1 (one norm over the 4 gates) or 4 (one per gate), ",
              "got ", groups);
  LstmSizes s{x.size(0), x.size(1), x.size(2), w_hh.size(1), w_hh.size(1), 0};
  const int64_t G = 4 * s.hidden_size;
  check_same_kind(op, "w_hh", w_hh, x);
  check_same_kind(op, "w_ih", w_ih, x);
  check_shape(op, "w_ih", w_ih, {G, s.input_size}, "[4 * hidden_size, input_size] (input_size from x)");
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor*>{"h0", &h0}, {"c0", &c0}}) {
    check_same_kind(op, name, *t, x);
    check_shape(op, name, *t, {s.batch, s.hidden_size}, "[batch, hidden_size]");
  }
  for (const auto& [name, t, size] :
       {std::tuple<const char*, const at::Tensor*, int64_t>{"ln_ih_weight", &ln_ih_weight, G},
        {"ln_cell_weight", &ln_cell_weight, s.hidden_size}, {"ln_cell_bias", &ln_cell_bias, s.hidden_size}}) {
    check_same_kind(op, name, *t, x);
    check_shape(op, name, *t, {size}, size == G ? "[4 * hidden_size]" : "[hidden_size]");
  }
  for (const auto& [name, t] : {std::pair<const char*, const std::optional<at::Tensor>*>{"bias", &bias},
                                {"ln_hh_weight", &ln_hh_weight}}) {
    if (!*t) continue;
    check_same_kind(op, name, **t, x);
    check_shape(op, name, **t, {G}, "[4 * hidden_size]");
  }
  if (g_mask) {
    check_same_kind(op, "g_mask", *g_mask, x);
    check_shape(op, "g_mask", *g_mask, {s.seq_len, s.batch, s.hidden_size}, "[seq_len, batch, hidden_size]");
  }
  return s;
}

LstmSizes check_gru_inputs(const char* op, const at::Tensor& x, const at::Tensor& h0, const at::Tensor& w_ih,
                           const at::Tensor& w_hh, const std::optional<at::Tensor>& b_ih,
                           const std::optional<at::Tensor>& b_hh) {
  TORCH_CHECK(x.dim() == 3, op, ": expected x of 3 dims [seq_len, batch, input_size], got ", x.dim(),
              " dims of shape ", shape_string(x.sizes()));
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble || x.scalar_type() == at::kBFloat16 ||
                  x.scalar_type() == at::kHalf, op,
              ": expected float32, float64, bfloat16 or float16 tensors, got x of dtype ", x.scalar_type());
  TORCH_CHECK(w_hh.dim() == 2 && w_hh.size(0) == 3 * w_hh.size(1), op,
              ": expected w_hh of shape [3 * hidden_size, hidden_size], got ", shape_string(w_hh.sizes()));
  LstmSizes s{x.size(0), x.size(1), x.size(2), w_hh.size(1), w_hh.size(1), 0};
  const int64_t G = 3 * s.hidden_size;
  check_same_kind(op, "w_hh", w_hh, x);
  check_same_kind(op, "w_ih", w_ih, x);
  check_shape(op, "w_ih", w_ih, {G, s.input_size}, "[3 * hidden_size, input_size] (input_size from x)");
  check_same_kind(op, "h0", h0, x);
  check_shape(op, "h0", h0, {s.batch, s.hidden_size}, "[batch, hidden_size]");
  for (const auto& [name, t] : {std::pair<const char*, const std::optional<at::Tensor>*>{"b_ih", &b_ih},
                                {"b_hh", &b_hh}}) {
    if (!*t) continue;
    check_same_kind(op, name, **t, x);
    check_shape(op, name, **t, {G}, "[3 * hidden_size]");
  }
  return s;
}

at::Tensor check_sequence_lengths(const char* op, const at::Tensor& lengths, const LstmSizes& sizes,
                                  const at::Tensor& x) {
  TORCH_CHECK(lengths.device() == x.device() || lengths.device().is_cpu(), op,
              ": expected sequence_lengths on the CPU or on x's device ", x.device(), ", got ", lengths.device());
  TORCH_CHECK(!at::isFloatingType(lengths.scalar_type()) && !at::isComplexType(lengths.scalar_type()) &&
                  lengths.scalar_type() != at::kBool,
              op, ": expected integer sequence_lengths, got dtype ", lengths.scalar_type());
  check_shape(op, "sequence_lengths", lengths, {sizes.batch}, "[batch]");
  at::Tensor on_cpu = lengths.to(at::kCPU, at::kLong).contiguous();
  const int64_t* values = on_cpu.const_data_ptr<int64_t>();
  for (int64_t b = 0; b < sizes.batch; ++b) {
    TORCH_CHECK(values[b] >= 0 && values[b] <= sizes.seq_len, op, ": expected every sequence length in [0, ",
                sizes.seq_len, "] (seq_len), got ", values[b], " for batch row ", b);
  }
  return on_cpu;
}

void check_grad(const char* op, const char* name, const std::optional<at::Tensor>& grad, at::IntArrayRef shape,
                const at::Tensor& like) {
  if (!grad) return;
  check_same_kind(op, name, *grad, like);
  check_shape(op, name, *grad, shape, "(the shape of the forward output)");
}

void check_workspace(const char* op, const at::Tensor& workspace, at::IntArrayRef shape, const at::Tensor& like) {
  TORCH_CHECK(workspace.numel() > 0 || c10::multiply_integers(shape) == 0, op,
              ": the forward ran with training=False and kept no workspace; run it with training=True to "
              "differentiate");
  check_same_kind(op, "workspace", workspace, like);
  check_shape(op, "workspace", workspace, shape, "(as the forward returned it)");
}

}  // namespace fastlstm
