"""Bits-per-byte bookkeeping in float64 (spec §5).

bpb = Σnll / (ln 2 · Σbytes), where a target's bytes are its base bytes plus one for a leading
space unless the previous token is a boundary (BOS, control, unknown).
"""

from __future__ import annotations

import math
import torch

from gepa.tokenizer import ByteLUTs


def target_bytes(prev_ids: torch.Tensor, tgt_ids: torch.Tensor, luts: ByteLUTs) -> torch.Tensor:
    """Bytes per target position, as int64 (same shape as `tgt_ids`)."""
    base = luts.base_bytes[tgt_ids].to(torch.int64)
    extra = luts.has_leading_space[tgt_ids] & ~luts.is_boundary[prev_ids]
    return base + extra.to(torch.int64)


class BpbAccumulator:
    """Float64 sums of NLL, targets and bytes.

    Tensor inputs are summed on their own device and only brought to the host when a value is
    read, so a GPU evaluation does not synchronise after every batch."""

    def __init__(self, nll_sum: float = 0.0, tokens: int = 0, bytes: int = 0):
        self._nll: float | torch.Tensor = float(nll_sum)
        self._tokens: int | torch.Tensor = int(tokens)
        self._bytes: int | torch.Tensor = int(bytes)

    def add(self, nll_sum: float | torch.Tensor, tokens: int | torch.Tensor,
            nbytes: int | torch.Tensor) -> None:
        if isinstance(nll_sum, torch.Tensor):
            nll_sum = nll_sum.detach().to(torch.float64).sum()
        self._nll = self._nll + nll_sum
        self._tokens = self._tokens + (tokens.sum() if isinstance(tokens, torch.Tensor) else int(tokens))
        self._bytes = self._bytes + (nbytes.sum() if isinstance(nbytes, torch.Tensor) else int(nbytes))

    @property
    def nll_sum(self) -> float:
        if isinstance(self._nll, torch.Tensor):
            self._nll = float(self._nll.item())
        return self._nll

    @property
    def tokens(self) -> int:
        if isinstance(self._tokens, torch.Tensor):
            self._tokens = int(self._tokens.item())
        return self._tokens

    @property
    def bytes(self) -> int:
        if isinstance(self._bytes, torch.Tensor):
            self._bytes = int(self._bytes.item())
        return self._bytes

    def merge(self, other: "BpbAccumulator") -> "BpbAccumulator":
        return BpbAccumulator(self.nll_sum + other.nll_sum, self.tokens + other.tokens,
                              self.bytes + other.bytes)

    def copy(self) -> "BpbAccumulator":
        return BpbAccumulator(self.nll_sum, self.tokens, self.bytes)

    @property
    def loss(self) -> float:
        """Mean loss in nats per token."""
        return self.nll_sum / self.tokens if self.tokens else float("nan")

    @property
    def bpb(self) -> float:
        return self.nll_sum / (math.log(2.0) * self.bytes) if self.bytes else float("nan")


def position_bytes(tokens: torch.Tensor, luts: ByteLUTs) -> torch.Tensor:
    """Bytes credited to each position of a stream when it is scored as a target (int32; the
    first position is never a target and gets 0)."""
    out = torch.zeros(tokens.numel(), dtype=torch.int32)
    if tokens.numel() > 1:
        ids = tokens.to(torch.int64)
        out[1:] = target_bytes(ids[:-1], ids[1:], luts).to(torch.int32)
    return out
