"""The sliding-window lists of the baseline lineage (spec §7 and §9.1), as `gepa.windows.WindowPlan`s
for the shared sliding driver.

- `reference`: SlidingWindowEval at HEAD (after PR #124). A window starts at every multiple of the
  stride below the stream end; it scores all its targets if it starts at 0, else its last
  `stride` ones (all of them if it is shorter). Windows after the last full one all end at the
  stream end, so they score its final targets again: the reference's tail re-scoring.
- `exact_once`: the 10-layer sliding record. Only full windows (`start + seq_len <= total`); the
  first scores all its targets, every other one its last `stride`.
Their closed-form counts (for FLOP estimates without torch) are in `gepa.families.baseline.flops`.
"""

from __future__ import annotations

from typing import Callable

import torch

from gepa.windows import WindowPlan


def plan_reference(total: int, seq_len: int, stride: int) -> WindowPlan:
    starts = torch.arange(0, max(total, 0), stride, dtype=torch.int64)
    lengths = torch.clamp(starts + seq_len, max=total) - starts
    score_from = torch.clamp(lengths - stride, min=0)
    score_from[starts == 0] = 0
    return WindowPlan(starts, lengths, score_from, total, seq_len, stride)


def plan_exact_once(total: int, seq_len: int, stride: int) -> WindowPlan:
    n = (total - seq_len) // stride + 1 if total >= seq_len else 0
    starts = torch.arange(n, dtype=torch.int64) * stride
    lengths = torch.full((n,), seq_len, dtype=torch.int64)
    score_from = torch.full((n,), seq_len - stride, dtype=torch.int64)
    score_from[starts == 0] = 0
    return WindowPlan(starts, lengths, score_from, total, seq_len, stride)


def planner(tail: str, seq_len: int, stride: int) -> Callable[[int], WindowPlan]:
    fn = plan_exact_once if tail == "exact_once" else plan_reference
    return lambda total: fn(total, seq_len, stride)

