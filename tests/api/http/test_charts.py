"""The server-side charts never hang on values that differ only in their last bits: a result that
reproduces its claim exactly (up to float rounding) is the normal case for a verified entry."""

from __future__ import annotations

import threading

from api.http.charts import line_chart, nice_ticks


def _bounded(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    """Run fn in a thread; the join timeout only bounds a hang, it measures nothing."""
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(fn(*args, **kwargs)), daemon=True)
    t.start()
    t.join(30)
    assert out, f"{fn.__name__} did not return"
    return out[0]


def test_ticks_for_a_range_at_rounding_scale() -> None:
    lo, hi = 2.970330924691653, 2.9703309246916534  # adjacent doubles
    ticks = _bounded(nice_ticks, lo, hi, 4)
    assert ticks[0] <= lo and ticks[-1] >= hi and 2 <= len(ticks) <= 8
    assert all(b > a for a, b in zip(ticks, ticks[1:]))


def test_one_chunk_chart_with_a_claim_equal_to_the_measurement() -> None:
    svg = _bounded(line_chart, [2.970330924691653], title="Running BPB", ref=2.9703309246916534, ref_label="claimed")
    assert "<svg" in svg and "claimed" in svg


def test_ordinary_ranges_unchanged() -> None:
    assert nice_ticks(1.0, 1.1) == [1.0, 1.025, 1.05, 1.075, 1.1]
    assert nice_ticks(-3, 5) == [-4, -2, 0, 2, 4, 6]
