"""The sliding-window lists of the baseline lineage (spec §7 and §9), as `gepa.windows.WindowPlan`s
for the shared sliding driver, and which of them golfcheck may publish.

- `reference`: SlidingWindowEval at HEAD (after PR #124). A window starts at every multiple of the
  stride below the stream end; it scores all its targets if it starts at 0, else its last
  `stride` ones (all of them if it is shorter). Windows after the last full one all end at the
  stream end, so they score its final targets again: the reference's tail re-scoring.
- `exact_once`: the 10-layer sliding record. Only full windows (`start + seq_len <= total`); the
  first scores all its targets, every other one its last `stride`.
- `last_stride`: the MLP3x_QAT_Int6 and MixedQuant_Int6Int8 records. The same full windows, but
  every one, the first included, scores only its last `stride` targets: the first
  `seq_len - stride` targets are never scored.
- `gap_after_first`: the Seq2048_FP16Emb record. The first full window scores all its targets,
  the next starts at `seq_len - stride` and scores its last `stride`, then one every `stride`
  (full windows only): targets [seq_len, 2·seq_len - 2·stride) are never scored.

A rule that leaves targets unscored measured a subset of the validation set (and one that counts
some twice, gap_after_first with stride > seq_len / 2, weighs them unevenly), so it is never
golfcheck's number: `planners` then scores the stream with `gepa.windows.plan_windows`'s
`exact_once` (the same stride and window length, every target exactly once) and reports the
rule's own figure alongside, read off the same forward passes where its windows are among
golfcheck's (`gepa.windows.align`). The closed-form counts (FLOP estimates without torch) are in
`gepa.families.baseline.flops`.
"""

from __future__ import annotations

from typing import Callable

import torch

from gepa.windows import WindowPlan, full_windows, plan_windows


def plan_reference(total: int, seq_len: int, stride: int) -> WindowPlan:
    starts = torch.arange(0, max(total, 0), stride, dtype=torch.int64)
    lengths = torch.clamp(starts + seq_len, max=total) - starts
    score_from = torch.clamp(lengths - stride, min=0)
    score_from[starts == 0] = 0
    return WindowPlan(starts, lengths, score_from, total, seq_len, stride)


def _full_starts(total: int, seq_len: int, stride: int, first: int = 0) -> torch.Tensor:
    """Starts first, first + stride, ... of the windows that end within the stream."""
    n = (total - seq_len - first) // stride + 1 if total - seq_len >= first else 0
    return first + torch.arange(n, dtype=torch.int64) * stride


def plan_exact_once(total: int, seq_len: int, stride: int) -> WindowPlan:
    starts = _full_starts(total, seq_len, stride)
    score_from = torch.where(starts == 0, 0, seq_len - stride)
    return full_windows(starts, total, seq_len, stride, score_from)


def plan_last_stride(total: int, seq_len: int, stride: int) -> WindowPlan:
    starts = _full_starts(total, seq_len, stride)
    return full_windows(starts, total, seq_len, stride, torch.full_like(starts, seq_len - stride))


def plan_gap_after_first(total: int, seq_len: int, stride: int) -> WindowPlan:
    if total < seq_len:
        return full_windows(torch.zeros(0, dtype=torch.int64), total, seq_len, stride, torch.zeros(0, dtype=torch.int64))
    starts = torch.cat((torch.zeros(1, dtype=torch.int64), _full_starts(total, seq_len, stride, seq_len - stride)))
    score_from = torch.where(starts == 0, 0, seq_len - stride)
    return full_windows(starts, total, seq_len, stride, score_from)


RULES: dict[str, Callable[[int, int, int], WindowPlan]] = {
    "reference": plan_reference, "exact_once": plan_exact_once,
    "last_stride": plan_last_stride, "gap_after_first": plan_gap_after_first,
}


def planner(tail: str, seq_len: int, stride: int) -> Callable[[int], WindowPlan]:
    """The rule's own window list (what the record computed)."""
    fn = RULES[tail]
    return lambda total: fn(total, seq_len, stride)


def planners(tail: str, seq_len: int, stride: int) -> tuple[Callable[[int], WindowPlan],
                                                             Callable[[int], WindowPlan | None]]:
    """(golfcheck's plan, the rule's own plan when it differs): the rule itself when it scores
    every target once (or is `reference`, whose tail repeats are SlidingWindowEval's metric);
    otherwise every target exactly once, with the rule's plan to report alongside."""
    rule = planner(tail, seq_len, stride)

    def scored(total: int) -> WindowPlan:
        own = rule(total)
        return own if publishable(tail, own) else plan_windows(total, seq_len, stride, tail="exact_once")

    def compare(total: int) -> WindowPlan | None:
        own = rule(total)
        return None if publishable(tail, own) else own

    return scored, compare


def publishable(tail: str, plan: WindowPlan) -> bool:
    """Whether a rule's own list may be golfcheck's number: no target left out, and none counted
    twice except by the reference's documented tail re-scoring (gap_after_first with a stride above
    half the window scores the first window's end again)."""
    return plan.unscored_targets() == 0 and (tail == "reference" or plan.scored_targets() == plan.total)
