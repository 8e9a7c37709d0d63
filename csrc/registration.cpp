// Every fastlstm op schema, once. Kernels are registered per device in cpu/ and cuda/, autograd in autograd.cpp,
// fake (meta) kernels in python/fastlstm/_ops.py, the differentiable backwards in python/fastlstm/double_backward.py.
#include <torch/library.h>

TORCH_LIBRARY(fastlstm, m) {
  // One layer, one direction, the whole sequence. Shapes: x [T, B, I], h0/c0 [B, H], w_ih [4H, I], w_hh [4H, H],
  // b_ih/b_hh [4H], w_peephole [3, H] (w_ci, w_cf, w_co), sequence_lengths [B] int64 (0 <= length <= T).
  // w_hh is required in torch's layout. tf_layout: w_ih is TF's kernel [I + R, 4H] as it is (the rows for x, then for
  // h; gate blocks i, j, f, o, biases too) and w_hh is None, as TF's LSTMBlockCell takes it.
  // w_hr [P, H] projects each step's h (torch.nn.LSTM's proj_size, TF's LSTMCell num_proj; [H, P] with tf_layout,
  // TF's projection/kernel): the recurrent state and the output are then P wide (R = P; else R = H): h0 [B, P],
  // w_hh [4H, P], output [T, B, P], h_n [B, P]. CPU kernels only.
  // Every option has a default, so forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh) is the plain nn.LSTM layer.
  // training=True (the default) keeps the workspace that backward needs, so the plain call is differentiable;
  // training=False skips it (inference: less memory, no backward). sequence_lengths may live on the CPU whatever x's
  // device is; every other tensor must be on x's device.
  // T = 0 runs no step: output [0, B, R], h_n = h0, c_n = c0 (and backward passes the state gradients through).
  // Returns output [T, B, R], h_n [B, R], c_n [B, H] and a workspace for backward ([T, B, 5H], or [0] if not training).
  m.def(
      "forward(Tensor x, Tensor h0, Tensor c0, Tensor w_ih, Tensor? w_hh, Tensor? b_ih, Tensor? b_hh, "
      "Tensor? w_peephole=None, Tensor? sequence_lengths=None, float forget_bias=0., float cell_clip=0., "
      "bool training=True, bool tf_layout=False, Tensor? w_hr=None) "
      "-> (Tensor output, Tensor h_n, Tensor c_n, Tensor workspace)");
  // Gradients of forward's tensor inputs; grad_bias serves b_ih and b_hh alike; grad_w_peephole is [0] without
  // peepholes, grad_w_hh [0] with tf_layout (grad_w_ih is then the whole kernel's), grad_w_hr [0] without projection.
  // Missing output gradients count as zero.
  m.def(
      "backward(Tensor? grad_output, Tensor? grad_h_n, Tensor? grad_c_n, Tensor x, Tensor h0, Tensor c0, "
      "Tensor w_ih, Tensor? w_hh, Tensor? w_peephole, Tensor? sequence_lengths, Tensor output, Tensor workspace, "
      "float cell_clip, bool tf_layout=False, Tensor? w_hr=None) "
      "-> (Tensor grad_x, Tensor grad_h0, Tensor grad_c0, Tensor grad_w_ih, Tensor grad_w_hh, Tensor grad_bias, "
      "Tensor grad_w_peephole, Tensor grad_w_hr)");
  // One step (TF's LSTMBlockCell): x [B, I], h [B, R], c [B, H]; returns h_new [B, R], c_new [B, H] and a workspace
  // [B, 5H] (or [0] if not training).
  m.def(
      "cell_forward(Tensor x, Tensor h, Tensor c, Tensor w_ih, Tensor? w_hh, Tensor? b_ih, Tensor? b_hh, "
      "Tensor? w_peephole=None, float forget_bias=0., float cell_clip=0., bool training=True, "
      "bool tf_layout=False, Tensor? w_hr=None) -> (Tensor h_new, Tensor c_new, Tensor workspace)");
  m.def(
      "cell_backward(Tensor? grad_h_new, Tensor? grad_c_new, Tensor x, Tensor h, Tensor c, Tensor w_ih, "
      "Tensor? w_hh, Tensor? w_peephole, Tensor workspace, float cell_clip, bool tf_layout=False, "
      "Tensor? w_hr=None) "
      "-> (Tensor grad_x, Tensor grad_h, Tensor grad_c, Tensor grad_w_ih, Tensor grad_w_hh, Tensor grad_bias, "
      "Tensor grad_w_peephole, Tensor grad_w_hr)");
  // The layer-normalised LSTM, one layer and direction (formulation: csrc/layer_norm_lstm_params.h). Shapes: x
  // [T, B, I], h0/c0 [B, H], w_ih [4H, I], w_hh [4H, H] (torch's layout and gate order i, f, g, o), bias [4H] (b_ih
  // + b_hh; TF's per-gate shifts), ln_ih_weight [4H], ln_hh_weight [4H] or None (None: one norm of W_ih x + W_hh h,
  // TF's LayerNormBasicLSTMCell; given: a norm of each, haste's LayerNormLSTM), ln_cell_weight/ln_cell_bias [H],
  // g_mask [T, B, H] (dropout on g, scaled by 1 / keep), groups: norms per 4H row (1 or 4: one per gate).
  // carry_normalized_cell: the carried c is LN(c) (TF) instead of c (haste). T = 0 and lengths as forward.
  // Returns output [T, B, H], h_n, c_n [B, H] and a workspace for backward (or [0] if not training).
  m.def(
      "layer_norm_lstm(Tensor x, Tensor h0, Tensor c0, Tensor w_ih, Tensor w_hh, Tensor? bias, Tensor ln_ih_weight, "
      "Tensor? ln_hh_weight, Tensor ln_cell_weight, Tensor ln_cell_bias, Tensor? sequence_lengths=None, "
      "Tensor? g_mask=None, int groups=1, float eps=1e-05, float forget_bias=0., bool carry_normalized_cell=False, "
      "bool training=True) -> (Tensor output, Tensor h_n, Tensor c_n, Tensor workspace)");
  // Gradients of layer_norm_lstm's tensor inputs (grad_bias whether or not a bias was given; grad_ln_hh_weight [0]
  // without ln_hh_weight). Missing output gradients count as zero.
  m.def(
      "layer_norm_lstm_backward(Tensor? grad_output, Tensor? grad_h_n, Tensor? grad_c_n, Tensor x, Tensor h0, "
      "Tensor c0, Tensor w_ih, Tensor w_hh, Tensor ln_ih_weight, Tensor? ln_hh_weight, Tensor ln_cell_weight, "
      "Tensor ln_cell_bias, Tensor? sequence_lengths, Tensor? g_mask, Tensor output, Tensor workspace, int groups, "
      "bool carry_normalized_cell) -> (Tensor grad_x, Tensor grad_h0, Tensor grad_c0, Tensor grad_w_ih, "
      "Tensor grad_w_hh, Tensor grad_bias, Tensor grad_ln_ih_weight, Tensor grad_ln_hh_weight, "
      "Tensor grad_ln_cell_weight, Tensor grad_ln_cell_bias)");
  // The GRU, one layer and direction (formula: csrc/gru_params.h). Shapes: x [T, B, I], h0 [B, H], w_ih [3H, I],
  // w_hh [3H, H], b_ih/b_hh [3H] (gate blocks r, z, n), sequence_lengths as forward. linear_before_reset (ONNX's
  // name): True, torch's / cuDNN's convention, r * (W_hn h + b_hn); False, TF1's GRUCell / GRUBlockCell,
  // W_hn (r * h) + b_hn. Returns output [T, B, H], h_n [B, H] and a workspace for backward ([T, B, 4H], or [0] if not
  // training).
  m.def(
      "gru(Tensor x, Tensor h0, Tensor w_ih, Tensor w_hh, Tensor? b_ih, Tensor? b_hh, "
      "Tensor? sequence_lengths=None, bool training=True, bool linear_before_reset=True) "
      "-> (Tensor output, Tensor h_n, Tensor workspace)");
  m.def(
      "gru_backward(Tensor? grad_output, Tensor? grad_h_n, Tensor x, Tensor h0, Tensor w_ih, Tensor w_hh, "
      "Tensor? sequence_lengths, Tensor output, Tensor workspace, bool linear_before_reset=True) "
      "-> (Tensor grad_x, Tensor grad_h0, Tensor grad_w_ih, Tensor grad_w_hh, Tensor grad_b_ih, Tensor grad_b_hh)");
  // The backward of forward, cell_forward, layer_norm_lstm and gru as a differentiable graph: what their autograd
  // (csrc/autograd.cpp) calls under create_graph=True, so that the gradient can be differentiated again. Each takes
  // the output gradients (None: zero) and its forward's inputs, and returns the gradients of the forward's
  // differentiable tensor inputs that were given (not None), in the forward's order: x, h0, c0, w_ih, w_hh, b_ih,
  // b_hh, w_peephole, w_hr for the LSTM ops (no sequence_lengths); x, h0, c0, w_ih, w_hh, bias, ln_ih_weight,
  // ln_hh_weight, ln_cell_weight, ln_cell_bias for layer_norm_lstm (no sequence_lengths, g_mask); x, h0, w_ih,
  // w_hh, b_ih, b_hh for gru. Their kernel is Python's (python/fastlstm/double_backward.py: it recomputes the forward
  // with the composed reference math), registered when fastlstm is imported.
  m.def(
      "forward_differentiable_backward(Tensor? grad_output, Tensor? grad_h_n, Tensor? grad_c_n, Tensor x, "
      "Tensor h0, Tensor c0, Tensor w_ih, Tensor? w_hh, Tensor? b_ih, Tensor? b_hh, Tensor? w_peephole, "
      "Tensor? sequence_lengths, float forget_bias, float cell_clip, bool tf_layout, Tensor? w_hr) -> Tensor[]");
  m.def(
      "cell_forward_differentiable_backward(Tensor? grad_h_new, Tensor? grad_c_new, Tensor x, Tensor h, Tensor c, "
      "Tensor w_ih, Tensor? w_hh, Tensor? b_ih, Tensor? b_hh, Tensor? w_peephole, float forget_bias, "
      "float cell_clip, bool tf_layout, Tensor? w_hr) -> Tensor[]");
  m.def(
      "layer_norm_lstm_differentiable_backward(Tensor? grad_output, Tensor? grad_h_n, Tensor? grad_c_n, Tensor x, "
      "Tensor h0, Tensor c0, Tensor w_ih, Tensor w_hh, Tensor? bias, Tensor ln_ih_weight, Tensor? ln_hh_weight, "
      "Tensor ln_cell_weight, Tensor ln_cell_bias, Tensor? sequence_lengths, Tensor? g_mask, int groups, float eps, "
      "float forget_bias, bool carry_normalized_cell) -> Tensor[]");
  m.def(
      "gru_differentiable_backward(Tensor? grad_output, Tensor? grad_h_n, Tensor x, Tensor h0, Tensor w_ih, "
      "Tensor w_hh, Tensor? b_ih, Tensor? b_hh, Tensor? sequence_lengths, bool linear_before_reset) -> Tensor[]");
  // int8 dynamic-quantized inference (CPU, no autograd; cpu/quantized_rnn_kernel.h says how it quantizes): one layer,
  // one direction, float32 x [T, B, I], h0 / c0 [B, H], biases [G * H]; int8 weights w_ih [G * H, I], w_hh
  // [G * H, H] with float32 scales [G * H] (one per output channel: w ~ w_int8 * scale); G = 4 (gate blocks i, f,
  // g, o) or 3 for the GRU (r, z, n; torch's convention). sequence_lengths [B] int64 as in forward.
  // Returns output [T, B, H], h_n [B, H] (and c_n [B, H]), float32.
  m.def(
      "quantized_lstm(Tensor x, Tensor h0, Tensor c0, Tensor w_ih, Tensor w_ih_scale, Tensor w_hh, "
      "Tensor w_hh_scale, Tensor? b_ih=None, Tensor? b_hh=None, Tensor? sequence_lengths=None) "
      "-> (Tensor output, Tensor h_n, Tensor c_n)");
  m.def(
      "quantized_gru(Tensor x, Tensor h0, Tensor w_ih, Tensor w_ih_scale, Tensor w_hh, Tensor w_hh_scale, "
      "Tensor? b_ih=None, Tensor? b_hh=None, Tensor? sequence_lengths=None) -> (Tensor output, Tensor h_n)");
}
