"""The public leaderboard: verified results ranked by measured BPB, plus historical claims.

Verified entries are submissions this service evaluated and published with a passing verdict,
whose stored result was computed on the full canonical validation set (coverage `full`): a demo
cut or another validation set is never ranked, whatever the verdict column says. Flagged or
disqualified ones drop out. The "claimed only" section lists record folders ingested
from the challenge repository: their numbers are what the authors reported, not measured here,
and every entry says so in `status`.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import Coverage, Record, Result, State, Submission, Verdict

CLAIMED_NOTE = ("Historical entries ingested from the challenge repository: val_bpb is the number the authors "
                "claimed; golfcheck did not measure it.")


def _competition_ranks(values: list[float]) -> list[int]:
    """1, 2, 2, 4: equal scores share a rank (values sorted ascending)."""
    ranks: list[int] = []
    for i, v in enumerate(values):
        ranks.append(ranks[-1] if i and v == values[i - 1] else i + 1)
    return ranks


def tracks(session: Session) -> list[str]:
    a = set(session.scalars(select(Submission.track).distinct()))
    b = set(session.scalars(select(Record.track).distinct()))
    return sorted(a | b)


def claimed_author(submission_json: str | None) -> str | None:
    """The free-text author submission.json claims: shown as "claimed author", never as the author
    (that is the authenticated submitter's display name)."""
    try:
        meta = json.loads(submission_json) if submission_json else None
    except ValueError:
        return None
    author = meta.get("author") if isinstance(meta, dict) else None
    return (author.strip()[:200] or None) if isinstance(author, str) else None


def known_tracks(session: Session, configured: list[str]) -> list[str]:
    """The tracks a board can be asked for: the configured ones and any that ingested records use."""
    return sorted(set(configured) | set(tracks(session)))


def verified_entries(session: Session, track: str) -> list[dict[str, Any]]:
    pairs = list(session.execute(
        select(Submission, Result).join(Result, Result.id == Submission.result_id).where(
            Submission.track == track,
            Submission.state == State.PUBLISHED.value,
            Submission.verdict == Verdict.PASS.value,
            Submission.flagged.is_(False),
            Submission.disqualified.is_(False),
            Submission.measured_val_bpb.is_not(None),
            Result.coverage == Coverage.FULL.value,
            Result.max_val_tokens.is_(None),
        ).order_by(Submission.measured_val_bpb, Submission.created_at, Submission.id)).all())
    rows = [s for s, _ in pairs]
    results = {s.id: r for s, r in pairs}
    ranks = _competition_ranks([float(r.measured_val_bpb or 0.0) for r in rows])
    return [{
        "rank": rank,
        "status": "verified",
        "track": r.track,
        "folder": r.folder,
        "name": r.name,
        "author": r.author,
        "claimed_author": claimed_author(r.submission_json),
        "family": r.family,
        "family_title": r.family_title,
        "val_bpb": r.measured_val_bpb,
        "claimed_val_bpb": r.claimed_val_bpb,
        "verdict": r.verdict,
        "submission_id": r.id,
        "bytes_total": r.counted_bytes,
        "submitted_at": r.created_at.isoformat().replace("+00:00", "Z"),
        **provenance(results[r.id]),
    } for rank, r in zip(ranks, rows)]


def provenance(res: Result | None) -> dict[str, Any]:
    """What a measured number was computed on: tokens and bytes scored against the canonical totals,
    the validation shards' sha256, and the coverage label (full | demo | non-canonical)."""
    if res is None:
        return {}
    return {
        "coverage": res.coverage or (Coverage.DEMO.value if res.max_val_tokens is not None else Coverage.NON_CANONICAL.value),
        "demo": res.max_val_tokens is not None,
        "tokens_scored": res.tokens_scored,
        "total_targets": res.total_targets,
        "val_tokens": res.val_tokens,
        "bytes_scored": res.bytes_scored,
        "canonical_bytes": res.canonical_bytes,
        "val_sha256": res.val_sha256,
        "canonical_val_sha256": res.canonical_val_sha256,
        "max_val_tokens": res.max_val_tokens,
    }


def claimed_entries(session: Session, track: str) -> list[dict[str, Any]]:
    rows = list(session.scalars(select(Record).where(Record.track == track)))
    # Ranked by the compliance ranking stored at ingest; unranked entries (no usable claim) last.
    rows.sort(key=lambda r: (r.rank is None, r.rank if r.rank is not None else 0,
                             r.claimed_val_bpb if r.claimed_val_bpb is not None else float("inf"), r.folder))
    out = []
    for r in rows:
        data = record_data(r)
        if data.get("folded_into"):
            continue  # a record_support folder: shown as the row of the record it backs
        out.append({
            "rank": r.rank,
            "status": "claimed",
            "track": r.track,
            "folder": r.folder,
            "name": r.name,
            "author": r.author,
            "val_bpb": r.claimed_val_bpb,
            "verdict": r.verdict,
            "date": r.date,
            "bytes_total": r.bytes_total,
            "score_source": data.get("score_source"),
            **({"support": data["support"]} if data.get("support") else {}),
        })
    return out


DEMO_NOTE = ("This server runs with the demo setting (GOLFCHECK_MAX_VAL_TOKENS={n}): it scores only the first "
             "{n} validation targets, so nothing it measures is verified, ranked or published.")


def build_leaderboard(session: Session, *, track: str, limit: int = 50, offset: int = 0,
                      demo_max_val_tokens: int | None = None) -> dict[str, Any]:
    verified = verified_entries(session, track)
    claimed = claimed_entries(session, track)
    return {
        "track": track,
        "demo": demo_max_val_tokens is not None,
        **({"demo_note": DEMO_NOTE.format(n=demo_max_val_tokens)} if demo_max_val_tokens is not None else {}),
        "tracks": tracks(session),
        "limit": limit,
        "offset": offset,
        "verified": {"total": len(verified), "entries": verified[offset:offset + limit]},
        "claimed_only": {"total": len(claimed), "note": CLAIMED_NOTE, "entries": claimed[offset:offset + limit]},
    }


def record_data(rec: Record) -> dict[str, Any]:
    return json.loads(rec.data) if rec.data else {}
