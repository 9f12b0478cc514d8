"""Per-track leaderboard from loaded records.

Ranking key, per track: the record's score (lower is better), then the earlier date, then the
smaller total bytes, then the folder name. The score is the mean val_bpb over the reported
seeds when per-seed results exist (the README's criterion is a mean over runs; a few files put
one seed's or the best seed's number in `val_bpb`), else the submission's `val_bpb`. Ties on
score go to the earlier submission (records are accepted chronologically, R14); equal scores
share a rank. Records without a score are listed after the ranked ones with rank None.
Every folder is one row (a `record_support` folder too, marked by `submission_type`).
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


def _key(r: Record):
    return (round(r.score, SCORE_DECIMALS), r.date or "9999-99-99", r.bytes_total if r.bytes_total is not None else 1 << 62, r.folder.name)


def rank_entries(records: Iterable[Record]) -> dict[str, list[Entry]]:
    by_track: dict[str, list[Record]] = {}
    for r in records:
        by_track.setdefault(r.track or "unknown", []).append(r)
    out: dict[str, list[Entry]] = {}
    for track, recs in sorted(by_track.items()):
        scored = sorted((r for r in recs if r.score is not None), key=_key)
        rows: list[Entry] = []
        prev, rank = None, 0
        for i, r in enumerate(scored, start=1):
            s = round(r.score, SCORE_DECIMALS)
            if s != prev:
                rank, prev = i, s
            rows.append(_entry(rank, track, r))
        rows += [_entry(None, track, r) for r in sorted((r for r in recs if r.score is None), key=lambda r: r.folder.name)]
        out[track] = rows
    return out


def _entry(rank, track, r: Record) -> Entry:
    return Entry(rank=rank, track=track, folder=r.folder.name, name=r.name, author=r.author, score=r.score,
                 val_bpb=r.val_bpb, seeds=len(r.seeds), bytes_total=r.bytes_total, date=r.date,
                 submission_type=r.submission.submission_type, record=r)
