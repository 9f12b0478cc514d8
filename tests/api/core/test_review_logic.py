"""The reviewer tools' plain logic, without a server: diff rows rebuild both files exactly (also on
input built to make difflib slow), the CSV cell guard, and the queue query's validation and links."""

from __future__ import annotations

import csv
import io
import random

import pytest

from api.core import code_diff, review_bulk, review_queue, reviewer
from gepa.lines import split_lines


def _sides(d: code_diff.Diff) -> tuple[list[str], list[str]]:
    old = [r.text for r in d.rows if r.kind in ("same", "del")]
    new = [r.text for r in d.rows if r.kind in ("same", "add")]
    return old, new


CASES = {
    "edit": ("a\nb\nc\n", "a\nB\nc\nd\n"),
    "empty-old": ("", "x\ny\n"),
    "empty-new": ("x\ny\n", ""),
    "odd-breaks": ("one \x0c two\nthree \u2028 four\r\nfive\rsix\n", "one \x0c two\nthree \u2028 FOUR\r\nfive\rsix\n"),
    # Many copies of a few distinct lines: the shape that made an exact difflib run take minutes.
    "periodic": ("".join(f"l{i % 7}\n" for i in range(4000)), "".join(f"l{i % 5}\n" for i in range(4000))),
    "few-distinct": ("".join(f"l{random.Random(1).randrange(100)}\n" for _ in range(3000)),
                     "".join(f"l{random.Random(2).randrange(100)}\n" for _ in range(3000))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_full_diff_rebuilds_both_files_with_rule_engine_line_numbers(name: str) -> None:
    old, new = CASES[name]
    d = code_diff.diff_text(old, new, context=None)
    assert _sides(d) == (split_lines(old), split_lines(new))
    assert [r.old_no for r in d.rows if r.old_no] == list(range(1, len(split_lines(old)) + 1))
    assert [r.new_no for r in d.rows if r.new_no] == list(range(1, len(split_lines(new)) + 1))
    assert d.added == sum(r.kind == "add" for r in d.rows) and d.removed == sum(r.kind == "del" for r in d.rows)
    # Side by side holds the same lines.
    assert [p.old_text for p in d.pairs if p.old_no] == split_lines(old)
    assert [p.new_text for p in d.pairs if p.new_no] == split_lines(new)


def test_context_hides_unchanged_runs_as_gaps() -> None:
    old = "".join(f"line {i}\n" for i in range(1, 101))
    new = old.replace("line 50\n", "line fifty\n")
    d = code_diff.diff_text(old, new, context=2)
    kinds = [r.kind for r in d.rows]
    assert kinds == ["gap", "same", "same", "del", "add", "same", "same", "gap"]
    assert [r.skipped for r in d.rows if r.kind == "gap"] == [47, 48]
    assert code_diff.diff_text(old, old).identical


def test_long_files_are_cut_and_say_so() -> None:
    text = "".join(f"{i}\n" for i in range(code_diff.MAX_DIFF_LINES + 10))
    d = code_diff.diff_text(text, text + "extra\n", context=None)
    assert d.truncated and d.identical


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"])
def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(value: str) -> None:
    assert review_queue.csv_cell(value) == "'" + value
    rows = [dict.fromkeys(review_queue.EXPORT_COLUMNS, value)]
    for cell in list(csv.reader(io.StringIO(review_queue.to_csv(rows))))[1]:
        assert cell == "'" + value


def test_csv_plain_values() -> None:
    assert [review_queue.csv_cell(v) for v in (None, True, False, 1.25, "plain", 3)] == \
        ["", "true", "false", "1.25", "plain", "3"]


def test_queue_query_validates_and_keeps_the_view_in_links() -> None:
    q = review_queue.QueueQuery.parse({"state": "scored", "sort": "measured", "dir": "desc", "page": "2"})
    assert q.params() == {"state": "scored", "sort": "measured", "dir": "desc", "page": "2"}
    assert q.sorted_by("measured") == {"state": "scored", "sort": "measured"}  # asc is the default
    assert q.sorted_by("name") == {"state": "scored", "sort": "name"}
    for bad, message in (({"sort": "x"}, "sort must be one of"), ({"dir": "up"}, "dir must be"),
                         ({"state": "done"}, "state must be one of"), ({"since": "May"}, "since must be a date"),
                         ({"page": "0"}, "page must be"), ({"submitter": "x" * 300}, "longer than")):
        with pytest.raises(ValueError, match=message):
            review_queue.QueueQuery.parse(bad)


def test_bulk_validation_refuses_before_touching_anything() -> None:
    ids = [f"id-{i}" for i in range(review_bulk.MAX_ITEMS)]
    assert review_bulk.validate("note", ids + ids[:5], "why") == ids  # deduplicated, order kept
    for action, given, reason, message in (("note", ids + ["one more"], "why", "at most"),
                                           ("note", [], "why", "select at least one"),
                                           ("flag", ids[:2], "  ", "give a reason"),
                                           ("drop", ids[:2], "why", "choose an action"),
                                           ("note", ["x" * 100], "why", "not a submission id")):
        with pytest.raises(reviewer.ReviewError, match=message):
            review_bulk.validate(action, given, reason)
    assert review_bulk.validate("publish", ids[:1], "") == ids[:1]  # publishing needs no reason
