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

    def scored_spans(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per window, the half-open range [lo, hi) of target indices it scores."""
        return self.starts + self.score_from, self.starts + self.lengths

    def covered_targets(self) -> int:
        """Distinct targets scored at least once (a target scored twice counts once)."""
        lo, hi = self.scored_spans()
        keep = hi > lo
        lo, hi = lo[keep], hi[keep]
        if not lo.numel():
            return 0
        order = torch.argsort(lo, stable=True)
        lo, hi = lo[order], hi[order]
        # Sorted by start, a span adds what lies beyond the furthest end seen before it.
        reach = torch.cummax(hi, dim=0).values
        before = torch.cat((torch.zeros(1, dtype=torch.int64), reach[:-1]))
        return int((hi - torch.maximum(lo, before)).clamp(min=0).sum())

    def unscored_targets(self) -> int:
        """Targets of the stream that no window scores (a rule that leaves gaps)."""
        return self.total - self.covered_targets()


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


def full_windows(starts: torch.Tensor, total: int, seq_len: int, stride: int,
                 score_from: torch.Tensor) -> WindowPlan:
    """A plan of whole `seq_len` windows at `starts`, each scoring from its `score_from`."""
    starts = starts.to(torch.int64)
    lengths = torch.full_like(starts, seq_len)
    return WindowPlan(starts, lengths, score_from.to(torch.int64), total, seq_len, stride)


def align(sub: WindowPlan, plan: WindowPlan) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Where `sub` is a selection of `plan`'s scoring: per window of `plan`, the positions [lo, hi)
    that `sub` scores in that same window (lo == hi where `sub` has none). None when a window of
    `sub` is not one of `plan`'s (same start and length) or scores a position that `plan`'s window
    does not: then `sub` cannot be read off `plan`'s forward passes. `plan`'s starts must ascend,
    as every planner makes them."""
    n = len(plan)
    lo = torch.zeros(n, dtype=torch.int64)
    hi = torch.zeros(n, dtype=torch.int64)
    if not len(sub):
        return lo, hi
    if not n or len(sub) != int(torch.unique(sub.starts).numel()):
        return None
    idx = torch.searchsorted(plan.starts, sub.starts).clamp(max=n - 1)
    same = (plan.starts[idx] == sub.starts) & (plan.lengths[idx] == sub.lengths)
    inside = (sub.score_from >= plan.score_from[idx]) | (sub.score_from >= sub.lengths)
    if not bool((same & inside).all()) or int(torch.unique(idx).numel()) != len(sub):
        return None
    lo[idx], hi[idx] = sub.score_from, sub.lengths
    return lo, hi


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
