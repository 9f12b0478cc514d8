"""Per-track leaderboard from loaded records.

Ranking key, per track: the record's score (lower is better), then the earlier date, then the
smaller total bytes, then the folder name. The score is the mean val_bpb over the reported
seeds when per-seed results exist (the README's criterion is a mean over runs; a few files put
one seed's or the best seed's number in `val_bpb`), else the submission's `val_bpb`. Ties on
score go to the earlier submission (records are accepted chronologically, R14); equal scores
share a rank. Records without a score are listed after the ranked ones with rank None.
A `record_support` folder (a re-run that backs another record's claim, `supports_pr`) is folded
into the row of the record it supports, as the official board shows it: the row keeps the
supported record's name and author and shows the support's headline (its re-run over more
seeds). The supported record is the one whose submission.json names that PR, else the latest
earlier record in the track whose folder name starts with the same technique token. A support
whose record is not found stays a row of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from gepa.compliance.record import Record

SCORE_DECIMALS = 8  # compare scores after rounding, so float noise in means cannot break ties


@dataclass(frozen=True)
class Entry:
    rank: int | None
    track: str
    folder: str
    name: str
    author: str | None
    score: float | None
    val_bpb: float | None
    seeds: int
    bytes_total: int | None
    date: str | None
    submission_type: str | None  # "record_support" rows back another PR's claim; the service may fold them
    record: Record
    support: str | None = None   # folder of the record_support folded into this row


def _key(r: Record, score: float):
    return (round(score, SCORE_DECIMALS), r.date or "9999-99-99", r.bytes_total if r.bytes_total is not None else 1 << 62, r.folder.name)


def _pr_of(r: Record) -> int | None:
    raw = r.submission.raw if isinstance(r.submission.raw, dict) else {}
    for key in ("pr", "pr_number", "pull_request"):
        v = raw.get(key)
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    return None


def _token(r: Record) -> str:
    parts = r.folder.name.split("_")
    return parts[1].lower() if len(parts) > 1 else r.folder.name.lower()


def supported_record(support: Record, recs: list[Record]) -> Record | None:
    """The record a `record_support` folder backs (None if it cannot be told)."""
    raw = support.submission.raw if isinstance(support.submission.raw, dict) else {}
    pr = raw.get("supports_pr")
    others = [r for r in recs if r is not support and r.submission.submission_type != "record_support"]
    by_pr = [r for r in others if pr is not None and _pr_of(r) == pr]
    if by_pr:
        return by_pr[0]
    cands = [r for r in others if _token(r) == _token(support) and (r.date or "") <= (support.date or "9999")]
    return max(cands, key=lambda r: (r.date or "", r.folder.name)) if cands else None


def rank_entries(records: Iterable[Record]) -> dict[str, list[Entry]]:
    by_track: dict[str, list[Record]] = {}
    for r in records:
        by_track.setdefault(r.track or "unknown", []).append(r)
    out: dict[str, list[Entry]] = {}
    for track, recs in sorted(by_track.items()):
        folded: dict[int, Record] = {}  # id(supported record) -> its support
        for r in recs:
            if r.submission.submission_type == "record_support" and r.score is not None:
                target = supported_record(r, recs)
                if target is not None and id(target) not in folded:
                    folded[id(target)] = r
        hidden = {id(s) for s in folded.values()}
        scores = {id(r): (folded[id(r)].score if id(r) in folded else r.score) for r in recs}
        shown = [r for r in recs if id(r) not in hidden]
        scored = sorted((r for r in shown if scores[id(r)] is not None), key=lambda r: _key(r, scores[id(r)]))
        rows: list[Entry] = []
        prev, rank = None, 0
        for i, r in enumerate(scored, start=1):
            s = round(scores[id(r)], SCORE_DECIMALS)
            if s != prev:
                rank, prev = i, s
            rows.append(_entry(rank, track, r, scores[id(r)], folded.get(id(r))))
        rows += [_entry(None, track, r, None, None) for r in sorted((r for r in shown if scores[id(r)] is None),
                                                                  key=lambda r: r.folder.name)]
        out[track] = rows
    return out


def _entry(rank, track, r: Record, score: float | None, support: Record | None) -> Entry:
    return Entry(rank=rank, track=track, folder=r.folder.name, name=r.name, author=r.author, score=score,
                 val_bpb=r.val_bpb, seeds=len(support.seeds if support else r.seeds), bytes_total=r.bytes_total,
                 date=r.date, submission_type=r.submission.submission_type, record=r,
                 support=support.folder.name if support else None)
