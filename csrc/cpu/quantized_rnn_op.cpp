// The CPU kernels of quantized_lstm / quantized_gru (registration.cpp): checks, the int8 weights packed for brgemm
// (kept between calls, packed_weight_cache.h), and the call of the time loop (quantized_rnn_kernel.h).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/native/CPUBlas.h>
#include <torch/library.h>

#include <sstream>
#include <string>
#include <tuple>

#include "../input_checks.h"
#include "cpu_capability.h"
#include "packed_weight_cache.h"
#include "quantized_rnn_kernel.h"

namespace fastlstm::cpu {

bool int8_brgemm_available() {
  // torch's u8 x s8 brgemm serves CPUs with AVX512_VNNI or AMX and raises elsewhere; one tiny call tells.
  static const bool available = [] {
    if (cpu_capability() != CpuCapability::Avx512) return false;
    try {
      uint8_t a[kInt8VnniGroup] = {129, 130, 131, 132};
      int8_t b[kInt8VnniGroup * kInt8ColumnBlock] = {};
      b[0] = 1;
      b[1] = 2;
      int32_t c[kInt8ColumnBlock] = {};
      at::native::cpublas::brgemm(1, kInt8ColumnBlock, kInt8VnniGroup, kInt8VnniGroup, kInt8ColumnBlock,
                                  kInt8ColumnBlock, false, a, b, c);
      at::native::cpublas::brgemm_release();
      return c[0] == 129 + 2 * 130;
    } catch (const c10::Error&) {
      return false;
    }
  }();
  return available && at::globalContext().userEnabledMkldnn();
}

namespace {

using OptTensor = std::optional<at::Tensor>;

// W [N, K] -> [N / 32, K4 / 4, 32, 4]: W^T in column blocks, k in VNNI groups of four, zeros past K.
at::Tensor pack_vnni(const at::Tensor& w) {
  const at::Tensor dense = w.contiguous();
  const int64_t n = dense.size(0), k = dense.size(1), k4 = int8_padded_k(k), blocks = n / kInt8ColumnBlock;
  at::Tensor packed = at::zeros({blocks, k4 / kInt8VnniGroup, kInt8ColumnBlock, kInt8VnniGroup}, w.options());
  const int8_t* in = dense.const_data_ptr<int8_t>();
  int8_t* out = packed.mutable_data_ptr<int8_t>();
  at::parallel_for(0, blocks, 1, [&](int64_t first, int64_t last) {
    for (int64_t block = first; block < last; ++block) {
      for (int64_t column = 0; column < kInt8ColumnBlock; ++column) {
        const int8_t* row = in + (block * kInt8ColumnBlock + column) * k;
        for (int64_t j = 0; j < k; ++j) {
          out[((block * k4 / kInt8VnniGroup + j / kInt8VnniGroup) * kInt8ColumnBlock + column) * kInt8VnniGroup +
              j % kInt8VnniGroup] = row[j];
        }
      }
    }
  });
  return packed;
}

at::Tensor column_sums(const at::Tensor& w) { return w.sum(1, false, at::kInt).contiguous(); }

std::string sizes_of(const at::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

void check_float(const char* op, const char* name, const at::Tensor& t, at::IntArrayRef shape) {
  TORCH_CHECK(t.scalar_type() == at::kFloat && t.device().is_cpu(), op, ": expected ", name,
              " to be a float32 CPU tensor, got ", t.scalar_type(), " on ", t.device());
  TORCH_CHECK(t.sizes() == shape, op, ": expected ", name, " of shape ", shape, ", got ", sizes_of(t));
}

// An int8 weight [N, K] and its scales [N].
void check_int8_weight(const char* op, const char* name, const at::Tensor& w, const at::Tensor& scale, int64_t n,
                       int64_t k, const char* k_name) {
  TORCH_CHECK(w.scalar_type() == at::kChar && w.device().is_cpu(), op, ": expected ", name,
              " to be an int8 CPU tensor (fastlstm.quantized quantizes the float weights), got ", w.scalar_type(),
              " on ", w.device());
  TORCH_CHECK(w.dim() == 2 && w.size(0) == n && w.size(1) == k, op, ": expected ", name, " of shape [", n, ", ", k,
              "] ([gates * hidden_size, ", k_name, "]), got ", sizes_of(w));
  check_float(op, (std::string(name) + "_scale").c_str(), scale, {n});
}

at::Tensor as_float(const at::Tensor& w) { return w.to(at::kFloat).contiguous(); }

// keep: the tensors the pointers point into, alive for the call.
Int8Weight int8_weight(const at::Tensor& w, const at::Tensor& scale, bool packed, at::Tensor (&keep)[3]) {
  keep[0] = packed_weight(w, PackedAs::ColumnSums, column_sums);
  keep[1] = scale.contiguous();
  Int8Weight result;
  if (packed) {
    keep[2] = packed_weight(w, PackedAs::Int8Vnni, pack_vnni);
    result.packed = keep[2].const_data_ptr<int8_t>();
  } else {
    keep[2] = packed_weight(w, PackedAs::Float, as_float);
    result.as_float = keep[2].const_data_ptr<float>();
  }
  result.column_sums = keep[0].const_data_ptr<int32_t>();
  result.scale = keep[1].const_data_ptr<float>();
  return result;
}

// The shared body: checks, biases, the call. h_n / c_n are filled; c0 is undefined for the GRU.
std::tuple<at::Tensor, at::Tensor, at::Tensor> run(const char* op, QuantizedCell cell, const at::Tensor& x,
                                                    const at::Tensor& h0, const at::Tensor& c0,
                                                    const at::Tensor& w_ih, const at::Tensor& w_ih_scale,
                                                    const at::Tensor& w_hh, const at::Tensor& w_hh_scale,
                                                    const OptTensor& b_ih, const OptTensor& b_hh,
                                                    const OptTensor& sequence_lengths) {
  const bool lstm = cell == QuantizedCell::Lstm;
  TORCH_CHECK(x.dim() == 3, op, ": expected x of 3 dims [seq_len, batch, input_size], got ", x.dim(),
              " dims of shape ", sizes_of(x));
  TORCH_CHECK(x.scalar_type() == at::kFloat && x.device().is_cpu(), op,
              ": expected x to be a float32 CPU tensor (int8 weights, float32 activations), got ", x.scalar_type(),
              " on ", x.device());
  TORCH_CHECK(h0.dim() == 2, op, ": expected h0 of 2 dims [batch, hidden_size], got ", sizes_of(h0));
  const int64_t gates = lstm ? 4 : 3, T = x.size(0), B = x.size(1), I = x.size(2), H = h0.size(1), G = gates * H;
  check_int8_weight(op, "w_ih", w_ih, w_ih_scale, G, I, "input_size");
  check_int8_weight(op, "w_hh", w_hh, w_hh_scale, G, H, "hidden_size");
  check_float(op, "h0", h0, {B, H});
  if (lstm) check_float(op, "c0", c0, {B, H});
  if (b_ih) check_float(op, "b_ih", *b_ih, {G});
  if (b_hh) check_float(op, "b_hh", *b_hh, {G});
  at::Tensor lengths;
  if (sequence_lengths) {
    lengths = check_sequence_lengths(op, *sequence_lengths, LstmSizes{T, B, I, H, H, 0}, x).contiguous();
  }

  const auto options = x.options();
  at::Tensor output = at::empty({T, B, H}, options), h_n = at::empty({B, H}, options);
  at::Tensor c_n = lstm ? at::empty({B, H}, options) : at::Tensor();
  if (T == 0 || B == 0 || H == 0) {
    output.zero_();
    h_n.copy_(h0);
    if (lstm) c_n.copy_(c0);
    return {output, h_n, c_n};
  }
  // LSTM: both biases go with the input projection; GRU: b_hh stays apart (its n gate scales it by r).
  at::Tensor input_bias = b_ih ? b_ih->contiguous().clone() : at::zeros({G}, options);
  at::Tensor recurrent_bias = b_hh ? b_hh->contiguous() : at::zeros({G}, options);
  if (lstm) input_bias.add_(recurrent_bias);

  // brgemm's tiles take whole column blocks, each thread's slice of units whole blocks of every gate.
  const bool packed = int8_brgemm_available() && H % kInt8ColumnBlock == 0;
  at::Tensor keep_ih[3], keep_hh[3];
  const at::Tensor x_dense = x.contiguous(), h0_dense = h0.contiguous();
  const at::Tensor c0_dense = lstm ? c0.contiguous() : at::Tensor();
  QuantizedRnnParams p;
  p.cell = cell;
  p.seq_len = T;
  p.batch = B;
  p.input_size = I;
  p.hidden_size = H;
  p.x = x_dense.const_data_ptr<float>();
  p.h0 = h0_dense.const_data_ptr<float>();
  p.c0 = lstm ? c0_dense.const_data_ptr<float>() : nullptr;
  p.w_ih = int8_weight(w_ih, w_ih_scale, packed, keep_ih);
  p.w_hh = int8_weight(w_hh, w_hh_scale, packed, keep_hh);
  p.input_bias = input_bias.const_data_ptr<float>();
  p.recurrent_bias = lstm ? nullptr : recurrent_bias.const_data_ptr<float>();
  p.lengths = lengths.defined() ? lengths.const_data_ptr<int64_t>() : nullptr;
  p.output = output.mutable_data_ptr<float>();
  p.h_n = h_n.mutable_data_ptr<float>();
  p.c_n = lstm ? c_n.mutable_data_ptr<float>() : nullptr;
  quantized_rnn_forward(p);
  return {output, h_n, c_n};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> quantized_lstm(const at::Tensor& x, const at::Tensor& h0,
                                                               const at::Tensor& c0, const at::Tensor& w_ih,
                                                               const at::Tensor& w_ih_scale, const at::Tensor& w_hh,
                                                               const at::Tensor& w_hh_scale, const OptTensor& b_ih,
                                                               const OptTensor& b_hh,
                                                               const OptTensor& sequence_lengths) {
  return run("fastlstm::quantized_lstm", QuantizedCell::Lstm, x, h0, c0, w_ih, w_ih_scale, w_hh, w_hh_scale, b_ih,
             b_hh, sequence_lengths);
}

std::tuple<at::Tensor, at::Tensor> quantized_gru(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& w_ih,
                                                 const at::Tensor& w_ih_scale, const at::Tensor& w_hh,
                                                 const at::Tensor& w_hh_scale, const OptTensor& b_ih,
                                                 const OptTensor& b_hh, const OptTensor& sequence_lengths) {
  auto [output, h_n, unused] = run("fastlstm::quantized_gru", QuantizedCell::Gru, x, h0, at::Tensor(), w_ih,
                                   w_ih_scale, w_hh, w_hh_scale, b_ih, b_hh, sequence_lengths);
  return {output, h_n};
}

}  // namespace
}  // namespace fastlstm::cpu

TORCH_LIBRARY_IMPL(fastlstm, CPU, m) {
  m.impl("quantized_lstm", &fastlstm::cpu::quantized_lstm);
  m.impl("quantized_gru", &fastlstm::cpu::quantized_gru);
}
