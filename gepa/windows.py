"""Sliding-window geometry: which windows exist, which targets each scores, and which TTT chunk
each window belongs to.

Indices: the validation stream holds `total + 1` tokens; target t is token t+1 predicted from
tokens up to t. A window starting at `ws` covers inputs [ws, ws+wlen) and scores the targets
[ws+s, ws+wlen) where s = 0 for the first window and wlen - stride otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class WindowPlan:
    starts: torch.Tensor   # (W,) int64 window starts
    lengths: torch.Tensor  # (W,) int64 real (unpadded) lengths
    score_from: torch.Tensor  # (W,) int64 first scored position inside the window
    total: int
    seq_len: int
    stride: int

    def __len__(self) -> int:
        return int(self.starts.numel())

    def scored_targets(self) -> int:
        return int((self.lengths - self.score_from).sum())


def plan_windows(total: int, seq_len: int, stride: int, *, keep_first: bool = False,
                 tail: str = "reference") -> WindowPlan:
    """The reference window list.

    `keep_first` mirrors the TTT variant, which keeps ws == 0 even when the stream is shorter than
    one stride. With tail="reference" every partial window after the last full one re-scores the
    final `stride` targets, as the reference does; tail="exact_once" scores each target once.
    """
    starts = torch.arange(0, total, stride, dtype=torch.int64)
    lengths = torch.clamp(starts + seq_len, max=total) - starts
    # The reference rule drops windows shorter than a stride. exact_once keeps them: when the
    # context (seq_len - stride) is shorter than a stride, such a window is the only one that scores
    # the stream's last targets (windows with nothing new to score are dropped below).
    keep = lengths >= stride if tail == "reference" else torch.ones_like(lengths, dtype=torch.bool)
    if keep_first and starts.numel():
        keep[0] = True
    starts, lengths = starts[keep], lengths[keep]
    score_from = torch.clamp(lengths - stride, min=0)
    if starts.numel():
        score_from[0] = 0 if starts[0] == 0 else score_from[0]
    if tail == "exact_once" and starts.numel():
        # Targets already covered by an earlier window are dropped; windows left empty go too.
        ends = starts + lengths
        covered = torch.cummax(ends, dim=0).values
        prev_cov = torch.cat((torch.zeros(1, dtype=torch.int64), covered[:-1]))
        score_from = torch.maximum(score_from, prev_cov - starts)
        nonempty = score_from < lengths
        starts, lengths, score_from = starts[nonempty], lengths[nonempty], score_from[nonempty]
    return WindowPlan(starts, lengths, score_from, total, seq_len, stride)


def assign_chunks(plan: WindowPlan, chunk_tokens: int) -> tuple[int, list[torch.Tensor]]:
    """Group windows by the chunk that holds the start of their scored range (reference rule)."""
    num_chunks = max(1, -(-plan.total // chunk_tokens))
    first_scored = plan.starts + plan.score_from
    ci = torch.clamp(first_scored // chunk_tokens, max=num_chunks - 1)
    order = torch.arange(len(plan), dtype=torch.int64)
    groups = [order[ci == c] for c in range(num_chunks)]
    return num_chunks, groups


def split_contiguous(n: int, rank: int, world: int) -> tuple[int, int]:
    """This rank's contiguous share [lo, hi) of n items, as the reference splits across ranks."""
    return (n * rank) // world, (n * (rank + 1)) // world
