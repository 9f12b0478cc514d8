"""Bits-per-byte bookkeeping in float64 (spec §5).

bpb = Σnll / (ln 2 · Σbytes), where a target's bytes are its base bytes plus one for a leading
space unless the previous token is a boundary (BOS, control, unknown).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gepa.tokenizer import ByteLUTs


def target_bytes(prev_ids: torch.Tensor, tgt_ids: torch.Tensor, luts: ByteLUTs) -> torch.Tensor:
    """Bytes per target position, as int64 (same shape as `tgt_ids`)."""
    base = luts.base_bytes[tgt_ids].to(torch.int64)
    extra = luts.has_leading_space[tgt_ids] & ~luts.is_boundary[prev_ids]
    return base + extra.to(torch.int64)


@dataclass
class BpbAccumulator:
    nll_sum: float = 0.0    # nats, float64
    tokens: int = 0
    bytes: int = 0

    def add(self, nll_sum: float | torch.Tensor, tokens: int | torch.Tensor,
            nbytes: int | torch.Tensor) -> None:
        if isinstance(nll_sum, torch.Tensor):
            nll_sum = float(nll_sum.detach().to(torch.float64).sum().item())
        self.nll_sum += float(nll_sum)
        self.tokens += int(tokens)
        self.bytes += int(nbytes)

    def merge(self, other: "BpbAccumulator") -> "BpbAccumulator":
        return BpbAccumulator(self.nll_sum + other.nll_sum, self.tokens + other.tokens,
                              self.bytes + other.bytes)

    @property
    def loss(self) -> float:
        """Mean loss in nats per token."""
        return self.nll_sum / self.tokens if self.tokens else float("nan")

    @property
    def bpb(self) -> float:
        return self.nll_sum / (math.log(2.0) * self.bytes) if self.bytes else float("nan")
