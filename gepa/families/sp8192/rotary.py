"""The sp8192 rotary tables (spec §4.4), one per way the reference's code can be executed.

The reference casts the whole model to bf16 and never restores the rotary `inv_freq` buffer, so
its table is built from bf16 values; eager PyTorch and Inductor round the intermediate steps
differently, and the numbers move by ~5e-6 BPB on the fixture. The config picks the table:

- `eager_bf16` (the fixtures): positions `arange(T)` in bf16 (257 -> 256, 2044..2047 -> 2048),
  each product position x inv_freq rounded to bf16, cos and sin rounded to bf16;
- `inductor_bf16` (what torch.compile on the real runs most likely built): bf16 positions and
  inv_freq, product kept in fp32, cos and sin rounded to bf16;
- `fp32`: the bf16-rounded inv_freq (what the buffer holds once the bf16 model is cast back with
  `.float()`), with fp32 positions, products, cos and sin. This is the "rotary table in fp32"
  whose effect the fixture README measured (+7.5e-6 BPB).

Above the run's TRAIN_SEQ_LEN the reference switches to NTK scaling with fp32 frequencies and
positions, whatever the table kind.
"""

from __future__ import annotations

import torch
from torch import Tensor


def inv_freq_fp32(dims: int, base: float) -> Tensor:
    return 1.0 / (base ** (torch.arange(0, dims, 2, dtype=torch.float32) / dims))


def cos_sin(kind: str, seq_len: int, dims: int, base: float, train_seq_len: int) -> tuple[Tensor, Tensor]:
    """fp32 (seq_len, dims/2) cos and sin tables, with the roundings of `kind`."""
    if seq_len > train_seq_len:
        scaled = base * (seq_len / train_seq_len) ** (dims / (dims - 2))
        freqs = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq_fp32(dims, scaled))
        return freqs.cos(), freqs.sin()
    inv = inv_freq_fp32(dims, base).to(torch.bfloat16)
    if kind == "fp32":
        freqs = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv.float())
        return freqs.cos(), freqs.sin()
    t = torch.arange(seq_len, dtype=torch.bfloat16)
    if kind == "eager_bf16":
        freqs = torch.outer(t, inv)  # each product rounded to bf16
    elif kind == "inductor_bf16":
        freqs = torch.outer(t.float(), inv.float())  # exact in fp32: two 8-bit mantissas
    else:
        raise ValueError(f"unknown rotary table {kind!r}")
    return freqs.cos().to(torch.bfloat16).float(), freqs.sin().to(torch.bfloat16).float()
