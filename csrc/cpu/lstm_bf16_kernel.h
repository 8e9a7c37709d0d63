// The LSTM's (and the GRU's, below) bfloat16 time loop on the CPU's bf16 matrix instructions (AMX tiles or AVX512_BF16 dot products,
// reached through oneDNN's brgemm micro-kernel, at::native::cpublas::brgemm): bf16 operands, float32 products,
// float32 gate math and cell state; h is rounded to bf16 as it leaves each step (it is both the step's output and
// the next step's GEMM operand, as in torch.nn.LSTM's bf16 kernel). Used by the forward op for bf16 inputs where
// lstm_bf16_serves() says so; everything else in bf16 runs in float32 between casts (low_precision.h).
#pragma once

#include <c10/util/BFloat16.h>

#include <cstdint>

namespace fastlstm::cpu {

// The packed weights' column blocks (lstm_bf16_op.cpp's pack_transposed): each brgemm call reads one block.
constexpr int64_t kBf16ColumnBlock = 32;

struct Bf16LstmParams {
  int64_t seq_len = 0, batch = 0, input_size = 0, hidden_size = 0;  // T, B, I, H
  const c10::BFloat16* x = nullptr;            // [T, B, I]
  const c10::BFloat16* h0 = nullptr;           // [B, H]
  const c10::BFloat16* w_ih_packed = nullptr;  // w_ih^T [I, 4H] as [4H / 32, I, 32]: column blocks, VNNI pairs
  const c10::BFloat16* w_hh_packed = nullptr;  // w_hh^T [H, 4H], likewise
  const float* bias = nullptr;                 // [4H]: b_ih + b_hh (zeros without biases)
  const float* w_peephole = nullptr;           // [3, H] (w_ci, w_cf, w_co), or nullptr
  float forget_bias = 0.0f, cell_clip = 0.0f;
  // Training: the workspace [T, B, pre_stride], first the gate pre-activations less the bias, then (pre_stride 5H,
  // the float32 kernels' layout) the activated gates i, f, g, o and c, which their backward reads. Inference:
  // nullptr (the kernel's own scratch).
  float* pre = nullptr;
  int64_t pre_stride = 0;
  bool keep_gates = false;
  float* c = nullptr;                  // [B, H]: c0 in, c_n out
  c10::BFloat16* output = nullptr;     // [T, B, H]
};

// The backward time loop (no peepholes): per step, from the forward's workspace, the gate gradients of each row
// (float32 math, stored bf16: the operand of every product that follows) and grad_h of the previous step, their
// product with w_hh (float32 sums). The weight and input gradients are one bf16 GEMM each over all steps
// afterwards (lstm_bf16_op.cpp).
struct Bf16LstmBackwardParams {
  int64_t seq_len = 0, batch = 0, hidden_size = 0;  // T, B, H
  const float* workspace = nullptr;                 // [T, B, 5H]: the forward's activated gates and c
  const float* c0 = nullptr;                        // [B, H]
  const c10::BFloat16* grad_output = nullptr;       // [T, B, H], or nullptr (zero)
  const c10::BFloat16* w_hh_packed = nullptr;       // w_hh [4H, H] in column blocks (VNNI pairs of its rows)
  float cell_clip = 0.0f;
  float* dh = nullptr;                              // [B, H]: grad_h_n in, grad_h0 out
  float* dc = nullptr;                              // [B, H]: grad_c_n in, grad_c0 out
  c10::BFloat16* d_pre = nullptr;                   // [T, B, 4H] out: gradients of the gate pre-activations
};

// The GRU's bfloat16 inference loop (torch's convention, linear_before_reset; no lengths): the same products, its
// gate math in float32 (gru_gates.h), h rounded to bf16 each step. Training and the other cases convert.
struct Bf16GruParams {
  int64_t seq_len = 0, batch = 0, input_size = 0, hidden_size = 0;  // T, B, I, H
  const c10::BFloat16* x = nullptr;            // [T, B, I]
  const c10::BFloat16* h0 = nullptr;           // [B, H]
  const c10::BFloat16* w_ih_packed = nullptr;  // w_ih^T [I, 3H] in column blocks, as the LSTM's
  const c10::BFloat16* w_hh_packed = nullptr;  // w_hh^T [H, 3H]
  const float* b_ih = nullptr;                 // [3H] (zeros without biases)
  const float* b_hh = nullptr;                 // [3H]
  c10::BFloat16* output = nullptr;             // [T, B, H]
};

// Whether this CPU and torch build have the bf16 brgemm (cpublas::could_pack: AVX512_BF16 or AMX).
bool bf16_brgemm_available();

// Runs the level this process picked (cpu_capability.h).
void lstm_forward_bf16(const Bf16LstmParams& p);
void lstm_backward_bf16(const Bf16LstmBackwardParams& p);
void gru_forward_bf16(const Bf16GruParams& p);

struct Bf16KernelTable {
  void (*forward)(const Bf16LstmParams&);
  void (*backward)(const Bf16LstmBackwardParams&);
  void (*gru_forward)(const Bf16GruParams&);
};
namespace isa_baseline {
extern const Bf16KernelTable bf16_kernel_table;
}
namespace isa_avx2 {
extern const Bf16KernelTable bf16_kernel_table;
}
namespace isa_avx512 {
extern const Bf16KernelTable bf16_kernel_table;
}

}  // namespace fastlstm::cpu
