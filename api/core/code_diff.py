"""Code diffs for reviewers: a submission's train_gpt.py against the same submitter's previous
submission, or against the current record (the best verified entry of its track, as the public
leaderboard ranks it).

Lines are split and numbered by `gepa.lines.split_lines`, the numbering the rule engine's
evidence uses, so "line 31" in a diff, in rule evidence and in the code view is the same line.
Rows carry raw text only; escaping (and highlighting) is the page's job.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable, TypeVar

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from api.core.leaderboard import verified_entries
from api.core.models import Submission
from gepa.lines import split_lines

CONTEXT = 3
# difflib's matcher is quadratic or worse on adversarial input (thousands of lines drawn from a
# handful of distinct ones took minutes). A submitted file is cut at these sizes, and past
# EXACT_CELLS the middle is matched with autojunk (lines that are >1% of the file do not anchor
# a match): still a correct diff, maybe a coarser one, and well under a second at the caps.
MAX_DIFF_BYTES = 1_000_000
MAX_DIFF_LINES = 5_000
EXACT_CELLS = 90_000
TARGETS = ("previous", "record")


@dataclass(frozen=True)
class Row:
    """One unified-diff row: `kind` is same | del | add | gap; a gap row's `skipped` counts the
    unchanged lines it stands for."""

    kind: str
    old_no: int | None = None
    new_no: int | None = None
    text: str = ""
    skipped: int = 0


@dataclass(frozen=True)
class Pair:
    """One side-by-side row: the old line (or None) next to the new line (or None)."""

    kind: str  # same | change | del | add | gap
    old_no: int | None = None
    old_text: str | None = None
    new_no: int | None = None
    new_text: str | None = None
    skipped: int = 0


@dataclass(frozen=True)
class Diff:
    rows: list[Row]
    pairs: list[Pair]
    added: int
    removed: int
    truncated: bool

    @property
    def identical(self) -> bool:
        return self.added == 0 and self.removed == 0


def decode(data: bytes) -> tuple[str, bool]:
    truncated = len(data) > MAX_DIFF_BYTES
    return data[:MAX_DIFF_BYTES].decode("utf-8", "replace"), truncated


def opcodes(a: list[str], b: list[str]) -> list[tuple[str, int, int, int, int]]:
    """difflib opcodes for a → b: common head and tail taken off first (exact and cheap, and
    most revisions touch a few lines), the middle matched exactly when small, with autojunk when large."""
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    mid_a, mid_b = a[head:len(a) - tail], b[head:len(b) - tail]
    out: list[tuple[str, int, int, int, int]] = []
    if head:
        out.append(("equal", 0, head, 0, head))
    if mid_a or mid_b:
        exact = len(mid_a) * len(mid_b) <= EXACT_CELLS
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, mid_a, mid_b, autojunk=not exact).get_opcodes():
            out.append((tag, i1 + head, i2 + head, j1 + head, j2 + head))
    if tail:
        out.append(("equal", len(a) - tail, len(a), len(b) - tail, len(b)))
    return out


T = TypeVar("T")


def _collapse(items: list[T], changed: list[bool], context: int | None, gap: Callable[[int], T]) -> list[T]:
    """Keep changed rows and `context` rows around them; each hidden run becomes one gap row."""
    if context is None:
        return items
    keep = [False] * len(items)
    for i, c in enumerate(changed):
        if c:
            for j in range(max(0, i - context), min(len(items), i + context + 1)):
                keep[j] = True
    out: list[T] = []
    run = 0
    for item, k in zip(items, keep):
        if k:
            if run:
                out.append(gap(run))
                run = 0
            out.append(item)
        else:
            run += 1
    if run:
        out.append(gap(run))
    return out


def diff_text(old: str, new: str, *, context: int | None = CONTEXT, truncated: bool = False) -> Diff:
    """The diff of two texts; `context=None` keeps every unchanged line."""
    a, b = split_lines(old), split_lines(new)
    if len(a) > MAX_DIFF_LINES or len(b) > MAX_DIFF_LINES:
        a, b, truncated = a[:MAX_DIFF_LINES], b[:MAX_DIFF_LINES], True
    rows: list[Row] = []
    pairs: list[Pair] = []
    added = removed = 0
    for tag, i1, i2, j1, j2 in opcodes(a, b):
        if tag == "equal":
            for k in range(i2 - i1):
                rows.append(Row("same", i1 + k + 1, j1 + k + 1, b[j1 + k]))
                pairs.append(Pair("same", i1 + k + 1, a[i1 + k], j1 + k + 1, b[j1 + k]))
            continue
        removed += i2 - i1
        added += j2 - j1
        rows += [Row("del", old_no=i + 1, text=a[i]) for i in range(i1, i2)]
        rows += [Row("add", new_no=j + 1, text=b[j]) for j in range(j1, j2)]
        for k in range(max(i2 - i1, j2 - j1)):
            i, j = i1 + k, j1 + k
            o = (i + 1, a[i]) if i < i2 else (None, None)
            n = (j + 1, b[j]) if j < j2 else (None, None)
            kind = "change" if o[0] and n[0] else ("del" if o[0] else "add")
            pairs.append(Pair(kind, o[0], o[1], n[0], n[1]))
    rows = _collapse(rows, [r.kind != "same" for r in rows], context, lambda n: Row("gap", skipped=n))
    pairs = _collapse(pairs, [p.kind != "same" for p in pairs], context, lambda n: Pair("gap", skipped=n))
    return Diff(rows, pairs, added, removed, truncated)


def previous_submission(session: Session, sub: Submission) -> Submission | None:
    """The same submitter's latest submission made before this one (any track or state)."""
    earlier = or_(Submission.created_at < sub.created_at,
                  and_(Submission.created_at == sub.created_at, Submission.id < sub.id))
    return session.scalar(select(Submission).where(Submission.submitter_id == sub.submitter_id, earlier)
                          .order_by(Submission.created_at.desc(), Submission.id.desc()).limit(1))


def current_record(session: Session, sub: Submission) -> Submission | None:
    """The best verified entry of the submission's track other than itself: the leaderboard's #1,
    or, when this submission holds the record, the runner-up."""
    for entry in verified_entries(session, sub.track, runs="all"):
        if entry["submission_id"] != sub.id:
            return session.get(Submission, entry["submission_id"])
    return None


def holds_record(session: Session, sub: Submission) -> bool:
    best = verified_entries(session, sub.track, runs="all")[:1]
    return bool(best) and best[0]["submission_id"] == sub.id


def target(session: Session, sub: Submission, against: str) -> Submission | None:
    if against not in TARGETS:
        raise ValueError(f"against must be one of {', '.join(TARGETS)}")
    return previous_submission(session, sub) if against == "previous" else current_record(session, sub)
