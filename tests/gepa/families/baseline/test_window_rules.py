"""The baseline lineage's sliding-window rules, without a model: each rule scores exactly the
target positions its record's loop scores (rebuilt here from the records' own loop shapes), what
golfcheck publishes scores every target exactly once, the comparison is read off the same windows
whenever it can be, the closed-form counts agree with the plans, and a result with unscored
targets is never full coverage."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from gepa.errors import ConfigError
from gepa.families.baseline import config as bcfg
from gepa.families.baseline.flops import rule_counts, run_counts
from gepa.families.baseline.windows import RULES, planners
from gepa.windows import align
from tests.support.baseline_rules import record_positions

GRID = list(itertools.product((1, 63, 64, 65, 127, 128, 129, 200, 256, 257, 1000, 4097),
                              ((128, 64), (128, 48), (128, 32), (64, 64), (96, 7), (128, 100), (256, 64))))


def plan_positions(plan) -> Counter:
    out: Counter = Counter()
    for lo, hi in zip(*(t.tolist() for t in plan.scored_spans())):
        out.update(range(lo, hi))
    return out


def _cases(rule):
    for total, (seq_len, stride) in GRID:
        if rule == "gap_after_first" and stride >= seq_len:
            continue  # the record's loop never advances; the config refuses it
        yield total, seq_len, stride


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_rule_scores_what_its_record_scores(rule):
    for total, seq_len, stride in _cases(rule):
        want = record_positions(rule, total, seq_len, stride)
        plan = RULES[rule](total, seq_len, stride)
        assert plan_positions(plan) == want, (rule, total, seq_len, stride)
        assert plan.unscored_targets() == total - len(want)
        assert rule_counts(rule, total, seq_len, stride) == (len(plan), sum(want.values()), total - len(want))


def test_the_march_rules_leave_the_targets_their_descriptions_say():
    total, seq_len, stride = 22528, 128, 32
    missing = set(range(total)) - set(record_positions("last_stride", total, seq_len, stride))
    assert missing == set(range(seq_len - stride))  # the first T - s targets
    missing = set(range(total)) - set(record_positions("gap_after_first", total, seq_len, stride))
    assert missing == set(range(seq_len, 2 * seq_len - 2 * stride))  # [T, 2T - 2s)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_golfcheck_scores_every_target_once_and_compares_only_rules_with_gaps(rule):
    for total, seq_len, stride in _cases(rule):
        scored, compare = planners(rule, seq_len, stride)
        plan, other = scored(total), compare(total)
        rule_plan = RULES[rule](total, seq_len, stride)
        counts = plan_positions(plan)
        if rule == "reference" and rule_plan.unscored_targets() == 0:
            assert plan_positions(plan) == plan_positions(rule_plan)  # repeats allowed: the metric itself
            assert set(counts) == set(range(total))
        else:
            assert counts == Counter(range(total)), (rule, total, seq_len, stride)
        own_is_fine = rule_plan.unscored_targets() == 0 and (rule == "reference" or rule_plan.scored_targets() == total)
        assert (other is None) == own_is_fine
        if other is not None:
            assert plan_positions(other) == plan_positions(rule_plan)
            shared = align(other, plan)
            # The record's windows are golfcheck's own except gap_after_first with stride not dividing T.
            expect_shared = not (rule == "gap_after_first" and seq_len % stride and len(other) > 1)
            assert (shared is not None) == expect_shared, (rule, total, seq_len, stride)
            if shared is not None:
                lo, hi = shared
                picked: Counter = Counter()
                for s, a, b in zip(plan.starts.tolist(), lo.tolist(), hi.tolist()):
                    picked.update(range(s + a, s + b))
                assert picked == plan_positions(other)
        windows = len(plan) + (len(other) if other is not None and align(other, plan) is None else 0)
        positions = plan.scored_targets() + (other.scored_targets() if other is not None and
                                             align(other, plan) is None else 0)
        assert run_counts(rule, total, seq_len, stride) == (windows, positions)


def test_tail_values_and_the_never_ending_loop():
    for tail in bcfg.TAILS:
        assert bcfg.from_dict({"eval": {"mode": "sliding", "tail": tail, "seq_len": 128, "stride": 32}}).eval.tail == tail
    with pytest.raises(ConfigError, match="eval.stride .* gap_after_first"):
        bcfg.from_dict({"eval": {"mode": "sliding", "tail": "gap_after_first", "seq_len": 128, "stride": 128}})
    with pytest.raises(ConfigError, match="eval.tail must be one of reference, exact_once, last_stride, gap_after_first"):
        bcfg.from_dict({"eval": {"mode": "sliding", "tail": "tail_only"}})
