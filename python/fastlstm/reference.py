"""The LSTM math composed from plain torch ops: the oracle of the tests and the path for what no kernel covers.

Torch gate order (i, f, g, o) and weight layout (w_ih [4H, I], w_hh [4H, H_out], b_ih/b_hh [4H], w_hr [H_out, H]).
TF options: ``forget_bias`` is added to f before the sigmoid; ``cell_clip`` > 0 clips c to +-cell_clip (the clipped c
is carried); ``w_peephole`` [3, H] holds (w_ci, w_cf, w_co): i and f read c_prev, o reads the new c.
"""

import torch


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, *, w_hr=None, w_peephole=None, forget_bias=0.0,
              cell_clip=0.0):
    """One step. x [B, I], h [B, H_out], c [B, H] -> (h_new [B, H_out], c_new [B, H])."""
    gates = x @ w_ih.t() + h @ w_hh.t()
    if b_ih is not None:
        gates = gates + b_ih
    if b_hh is not None:
        gates = gates + b_hh
    i, f, g, o = gates.chunk(4, dim=-1)
    if w_peephole is not None:
        i = i + w_peephole[0] * c
        f = f + w_peephole[1] * c
    i = torch.sigmoid(i)
    f = torch.sigmoid(f + forget_bias)
    g = torch.tanh(g)
    c_new = f * c + i * g
    if cell_clip > 0:
        c_new = c_new.clamp(-cell_clip, cell_clip)
    if w_peephole is not None:
        o = o + w_peephole[2] * c_new
    h_new = torch.sigmoid(o) * torch.tanh(c_new)
    if w_hr is not None:
        h_new = h_new @ w_hr.t()
    return h_new, c_new


def lstm_sequence(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, *, w_hr=None, w_peephole=None,
                  sequence_lengths=None, forget_bias=0.0, cell_clip=0.0):
    """One layer, one direction. x [T, B, I], h0 [B, H_out], c0 [B, H], sequence_lengths [B] or None.

    Returns output [T, B, H_out] (zero past a row's length), h_n [B, H_out], c_n [B, H] (the state at each row's
    length; the initial state for length 0).
    """
    h, c = h0, c0
    running = None
    if sequence_lengths is not None:
        steps = torch.arange(x.shape[0], device=sequence_lengths.device)
        running = (steps.unsqueeze(1) < sequence_lengths.unsqueeze(0)).to(x.device).unsqueeze(-1)  # [T, B, 1]
    outputs = []
    for t in range(x.shape[0]):
        h_new, c_new = lstm_cell(x[t], h, c, w_ih, w_hh, b_ih, b_hh, w_hr=w_hr, w_peephole=w_peephole,
                                 forget_bias=forget_bias, cell_clip=cell_clip)
        if running is None:
            h, c = h_new, c_new
            outputs.append(h_new)
        else:
            h = torch.where(running[t], h_new, h)
            c = torch.where(running[t], c_new, c)
            outputs.append(torch.where(running[t], h_new, torch.zeros_like(h_new)))
    if not outputs:
        return x.new_zeros((0, x.shape[1], h0.shape[-1])), h0.clone(), c0.clone()
    return torch.stack(outputs), h, c
